#pragma once

// ServiceHost: the process around a service's gRPC handlers. gRPC server (callback API) with
// grpc.health.v1 health and server reflection, TLS or explicit plaintext, message size limits,
// keepalive, per-method RED metrics, Prometheus /metrics on its own port, graceful shutdown.

#include <functional>
#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "crm/runtime/config.h"
#include "grpcpp/grpcpp.h"
#include "prometheus/collectable.h"
#include "prometheus/registry.h"

namespace prometheus {
class Exposer;
}

namespace crm::runtime {

// Call first in main(), before any thread exists, so every thread inherits the mask and
// SIGTERM/SIGINT reach WaitForShutdownSignal() instead of killing the process.
void BlockShutdownSignals();

class ServiceHost {
 public:
  // Binds /metrics; the gRPC server starts with Start(). Health is NOT_SERVING until
  // SetServing(true) (storage and relay up).
  static absl::StatusOr<std::unique_ptr<ServiceHost>> Create(ServerOptions options);
  ~ServiceHost();

  prometheus::Registry& registry() { return *registry_; }
  std::shared_ptr<prometheus::Registry> shared_registry() { return registry_; }

  // Metrics read at scrape time (e.g. relay lag). The host keeps a weak reference.
  void AddCollectable(const std::shared_ptr<prometheus::Collectable>& collectable);

  absl::Status Start(const std::vector<grpc::Service*>& services);
  int grpc_port() const { return grpc_port_; }
  int metrics_port() const { return metrics_port_; }

  void SetServing(bool serving);

  // NOT_SERVING, wait drain_delay, stop accepting, let in-flight calls finish within
  // shutdown_grace (then cancel them). Idempotent.
  void Shutdown();
  // Blocks until SIGTERM or SIGINT, runs `before_shutdown` (if any: e.g. to answer calls that
  // would otherwise wait out their own deadlines), then Shutdown(). Needs
  // BlockShutdownSignals().
  void WaitForShutdownSignal(const std::function<void()>& before_shutdown = nullptr);

 private:
  explicit ServiceHost(ServerOptions options);

  ServerOptions options_;
  std::shared_ptr<prometheus::Registry> registry_;
  std::unique_ptr<prometheus::Exposer> exposer_;
  std::unique_ptr<grpc::Server> server_;
  int grpc_port_ = 0;
  int metrics_port_ = 0;
  std::once_flag shutdown_once_;
};

}  // namespace crm::runtime
