// The test service as a process: used by the runtime's process tests (SIGTERM, config errors).
// Prints "grpc_port=<p> metrics_port=<m>" on stdout once serving.

#include <cstdio>

#include "crm/runtime/config.h"
#include "crm/runtime/log.h"
#include "crm/runtime/server.h"
#include "echo_service.h"

int main(int argc, char** argv) {
  crm::runtime::BlockShutdownSignals();
  crm::runtime::ServerOptions options{
      .service = "echo", .grpc_listen = "127.0.0.1:0", .metrics_listen = "127.0.0.1:0"};
  CLI::App app("Echo service for the runtime's tests", "echo_server");
  crm::runtime::AddServerFlags(app, options);
  crm::runtime::ParseOrExit(app, argc, argv,
                            [&] { return crm::runtime::ValidateServerOptions(options); });
  if (auto logging = crm::runtime::InitLogging(options.service, options.log_level); !logging.ok()) {
    std::fprintf(stderr, "echo_server: %s\n", std::string(logging.message()).c_str());
    return 2;
  }
  auto verifier = crm::runtime::TokenVerifier::Create(options.auth);
  if (!verifier.ok()) {
    std::fprintf(stderr, "echo_server: %s\n", std::string(verifier.status().message()).c_str());
    return 2;
  }
  auto host = crm::runtime::ServiceHost::Create(options);
  if (!host.ok()) {
    std::fprintf(stderr, "echo_server: %s\n", std::string(host.status().message()).c_str());
    return 1;
  }
  crm::runtime::EchoService service(
      std::shared_ptr<const crm::runtime::TokenVerifier>(std::move(*verifier)));
  if (auto started = (*host)->Start({&service}); !started.ok()) {
    std::fprintf(stderr, "echo_server: %s\n", std::string(started.message()).c_str());
    return 1;
  }
  (*host)->SetServing(true);
  std::printf("grpc_port=%d metrics_port=%d\n", (*host)->grpc_port(), (*host)->metrics_port());
  std::fflush(stdout);
  (*host)->WaitForShutdownSignal();
  return 0;
}
