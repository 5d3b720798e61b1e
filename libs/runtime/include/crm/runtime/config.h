#pragma once

// Settings of every service: each is a flag (--grpc-listen) and an environment variable
// (CRM_GRPC_LISTEN); a flag wins over the environment. Bad values stop the process with one
// line naming the setting.

#include <cstdint>
#include <string>

#include "CLI/CLI.hpp"
#include "absl/status/status.h"
#include "absl/time/time.h"
#include "crm/runtime/auth.h"
#include "crm/runtime/client.h"

namespace crm::runtime {

struct TlsOptions {
  bool plaintext = false;      // development only; must be asked for explicitly
  std::string cert_file;       // server certificate chain (PEM)
  std::string key_file;        // its private key (PEM)
  std::string client_ca_file;  // CA that signs client certificates (mTLS)
  bool require_client_cert = false;
};

struct ServerOptions {
  std::string service;                         // name in logs and metrics
  std::string grpc_listen = "127.0.0.1:7000";  // host:port; port 0 picks a free one
  std::string metrics_listen = "127.0.0.1:9100";
  std::string data_dir;
  std::string log_level = "info";
  TlsOptions tls;
  AuthOptions auth;
  int64_t max_message_bytes = 4 << 20;
  absl::Duration drain_delay = absl::ZeroDuration();  // NOT_SERVING before refusing calls
  absl::Duration shutdown_grace = absl::Seconds(10);  // in-flight calls may finish in this
};

// Registers every setting on `app`, with `options`' current values as defaults.
void AddServerFlags(CLI::App& app, ServerOptions& options);

// Registers the settings of a service this one calls, e.g. peer "contact": --contact-service
// (host:port), --contact-service-plaintext, --contact-service-ca-file, --contact-service-cert-file
// and --contact-service-key-file (mTLS), --contact-service-server-name; CRM_CONTACT_SERVICE...
void AddPeerFlags(CLI::App& app, const std::string& peer, ChannelOptions& options);

// Cross-setting checks after parsing (e.g. TLS files unless plaintext).
absl::Status ValidateServerOptions(const ServerOptions& options);

// Parses argv (and the environment); on --help prints help and exits 0; on a bad value prints
// one line naming the setting and exits 2.
void ParseOrExit(CLI::App& app, int argc, char** argv,
                 const std::function<absl::Status()>& validate = nullptr);

}  // namespace crm::runtime
