#pragma once

// An in-process gRPC proxy for service tests: a test points service A at address() instead of
// service B, and the proxy forwards every unary call to B unchanged (request and response bytes,
// request metadata such as `authorization`, status code, message and details, response
// metadata) unless a rule tells it to fail the call. Library crm_fault_proxy.

#include <memory>
#include <optional>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "grpcpp/generic/async_generic_service.h"
#include "grpcpp/generic/generic_stub.h"
#include "grpcpp/server.h"
#include "grpcpp/support/status.h"

namespace crm::testing {

class FaultProxy {
 public:
  // Listens on 127.0.0.1 on a free port and forwards to `target` (host:port, plaintext).
  static absl::StatusOr<std::unique_ptr<FaultProxy>> Start(const std::string& target);
  // Shuts the server down and waits for the calls in flight (cancelled after a grace period).
  ~FaultProxy();
  FaultProxy(const FaultProxy&) = delete;
  FaultProxy& operator=(const FaultProxy&) = delete;

  // "127.0.0.1:<port>".
  std::string address() const;

  // After `pass` further calls of `method` (full name, "/pkg.Service/Method") have been
  // forwarded, the next `count` calls of it are answered with `status` without reaching the
  // target; later calls are forwarded again. Replaces an earlier rule for `method`.
  void FailCalls(const std::string& method, int pass, int count, grpc::Status status);

  // How many calls of `method` reached the proxy (forwarded or failed).
  int calls(const std::string& method) const;

 private:
  class Service;
  class Call;
  struct Rule {
    int pass = 0;
    int fail = 0;
    grpc::Status status;
  };

  explicit FaultProxy(const std::string& target);
  // Counts a call of `method`; the status to answer it with when a rule fails it.
  std::optional<grpc::Status> Admit(const std::string& method);

  grpc::GenericStub stub_;
  std::unique_ptr<Service> service_;  // outlives server_, which calls into it
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;

  mutable absl::Mutex mu_;
  absl::flat_hash_map<std::string, int> calls_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, Rule> rules_ ABSL_GUARDED_BY(mu_);
};

}  // namespace crm::testing
