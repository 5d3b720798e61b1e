#pragma once

// Outgoing gRPC calls: channels from TLS settings (or explicit plaintext), a deadline on every
// attempt, retries with jittered exponential backoff only for idempotent calls that failed
// with UNAVAILABLE, and the caller's (or a service's) bearer token forwarded.

#include <functional>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "grpcpp/grpcpp.h"

namespace crm::runtime {

struct ChannelOptions {
  std::string target;       // host:port
  bool plaintext = false;   // development only
  std::string ca_file;      // CA that signed the server certificate (PEM); empty = system
  std::string cert_file;    // client certificate for mTLS (PEM)
  std::string key_file;     // its key
  std::string server_name;  // expected name in the server certificate, if not the host
  int64_t max_message_bytes = 4 << 20;
};

absl::StatusOr<std::shared_ptr<grpc::Channel>> MakeChannel(const ChannelOptions& options);

struct CallOptions {
  std::string bearer_token;                   // forwarded as authorization: Bearer <token>
  absl::Duration timeout = absl::Seconds(2);  // per attempt
  bool idempotent = false;                    // only then are UNAVAILABLE calls retried
  int max_attempts = 3;
  absl::Duration initial_backoff = absl::Milliseconds(50);
  absl::Duration max_backoff = absl::Seconds(1);
};

// Runs `rpc` with a fresh ClientContext per attempt (deadline and token set) and returns the
// last status, field violations included. Blocking: call it from an executor, never from a
// gRPC reaction.
absl::Status CallWithRetry(const CallOptions& options,
                           const std::function<grpc::Status(grpc::ClientContext&)>& rpc);

}  // namespace crm::runtime
