#include "crm/runtime/config.h"

#include <cstdio>
#include <cstdlib>

#include "absl/strings/str_cat.h"

namespace crm::runtime {
namespace {

// "--grpc-listen" -> "CRM_GRPC_LISTEN"
std::string EnvName(std::string_view flag) {
  std::string env = "CRM_";
  for (char c : flag.substr(2)) env.push_back(c == '-' ? '_' : static_cast<char>(std::toupper(c)));
  return env;
}

template <typename T>
CLI::Option* Add(CLI::App& app, const std::string& flag, T& value, const std::string& help) {
  return app.add_option(flag, value, help)->envname(EnvName(flag))->capture_default_str();
}

CLI::Option* AddDuration(CLI::App& app, const std::string& flag, absl::Duration& value,
                         const std::string& help) {
  return app
      .add_option_function<std::string>(
          flag,
          [&value, flag](const std::string& text) {
            absl::Duration parsed;
            if (!absl::ParseDuration(text, &parsed) || parsed < absl::ZeroDuration()) {
              throw CLI::ValidationError(flag, "expects a duration such as 500ms, 10s or 1m");
            }
            value = parsed;
          },
          help)
      ->envname(EnvName(flag))
      ->default_str(absl::FormatDuration(value));
}

}  // namespace

void AddServerFlags(CLI::App& app, ServerOptions& o) {
  Add(app, "--grpc-listen", o.grpc_listen, "gRPC address host:port (port 0 = any free port)");
  Add(app, "--metrics-listen", o.metrics_listen, "Prometheus /metrics address host:port");
  Add(app, "--data-dir", o.data_dir, "folder of this service's RocksDB");
  Add(app, "--log-level", o.log_level, "trace, debug, info, warn, error or off")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "off"}));
  app.add_flag("--plaintext", o.tls.plaintext, "serve without TLS (local development only)")
      ->envname("CRM_PLAINTEXT");
  Add(app, "--tls-cert-file", o.tls.cert_file, "server certificate chain (PEM)")
      ->check(CLI::ExistingFile);
  Add(app, "--tls-key-file", o.tls.key_file, "server private key (PEM)")->check(CLI::ExistingFile);
  Add(app, "--tls-client-ca-file", o.tls.client_ca_file, "CA for client certificates (PEM)")
      ->check(CLI::ExistingFile);
  app.add_flag("--tls-require-client-cert", o.tls.require_client_cert,
               "refuse clients without a certificate signed by --tls-client-ca-file (mTLS)")
      ->envname("CRM_TLS_REQUIRE_CLIENT_CERT");
  Add(app, "--jwt-hs256-secret", o.auth.hs256_secret, "HS256 secret for bearer tokens (dev)");
  Add(app, "--jwt-public-key-file", o.auth.rs256_public_key_file, "RS256 public key (PEM)")
      ->check(CLI::ExistingFile);
  Add(app, "--jwt-issuer", o.auth.issuer, "accepted token issuer");
  Add(app, "--jwt-audience", o.auth.audience, "accepted token audience");
  Add(app, "--max-message-bytes", o.max_message_bytes, "largest request or response accepted")
      ->check(CLI::Range(int64_t{1024}, int64_t{64} << 20));
  AddDuration(app, "--drain-delay", o.drain_delay,
              "on SIGTERM, report NOT_SERVING this long before refusing new calls");
  AddDuration(app, "--shutdown-grace", o.shutdown_grace,
              "on SIGTERM, how long in-flight calls may take to finish");
}

absl::Status ValidateServerOptions(const ServerOptions& o) {
  if (!o.tls.plaintext && (o.tls.cert_file.empty() || o.tls.key_file.empty())) {
    return absl::InvalidArgumentError(
        "--tls-cert-file and --tls-key-file (CRM_TLS_CERT_FILE, CRM_TLS_KEY_FILE) are required "
        "unless --plaintext (CRM_PLAINTEXT=true) is set");
  }
  if (o.tls.require_client_cert && o.tls.client_ca_file.empty()) {
    return absl::InvalidArgumentError(
        "--tls-require-client-cert needs --tls-client-ca-file (CRM_TLS_CLIENT_CA_FILE)");
  }
  if (o.auth.hs256_secret.empty() && o.auth.rs256_public_key_file.empty()) {
    return absl::InvalidArgumentError(
        "--jwt-hs256-secret or --jwt-public-key-file (CRM_JWT_HS256_SECRET, "
        "CRM_JWT_PUBLIC_KEY_FILE) is required to verify bearer tokens");
  }
  return absl::OkStatus();
}

void ParseOrExit(CLI::App& app, int argc, char** argv,
                 const std::function<absl::Status()>& validate) {
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    std::exit(app.exit(e));
  } catch (const CLI::CallForAllHelp& e) {
    std::exit(app.exit(e));
  } catch (const CLI::ParseError& e) {
    std::fprintf(stderr, "%s: configuration error: %s\n", app.get_name().c_str(), e.what());
    std::exit(2);
  }
  if (validate) {
    if (absl::Status status = validate(); !status.ok()) {
      std::fprintf(stderr, "%s: configuration error: %s\n", app.get_name().c_str(),
                   std::string(status.message()).c_str());
      std::exit(2);
    }
  }
}

void AddPeerFlags(CLI::App& app, const std::string& peer, ChannelOptions& o) {
  const std::string flag = absl::StrCat("--", peer, "-service");
  Add(app, flag, o.target, absl::StrCat(peer, "-service address host:port"));
  app.add_flag(flag + "-plaintext", o.plaintext,
               absl::StrCat("call ", peer, "-service without TLS (local development only)"))
      ->envname(EnvName(flag + "-plaintext"));
  Add(app, flag + "-ca-file", o.ca_file, "CA of its server certificate (PEM; default: system)")
      ->check(CLI::ExistingFile);
  Add(app, flag + "-cert-file", o.cert_file, "client certificate for mTLS (PEM)")
      ->check(CLI::ExistingFile);
  Add(app, flag + "-key-file", o.key_file, "its private key (PEM)")->check(CLI::ExistingFile);
  Add(app, flag + "-server-name", o.server_name, "expected name in its certificate");
}

}  // namespace crm::runtime
