#pragma once

// A tiny service on the runtime, used by the runtime's tests (in-process and as a process).

#include <atomic>
#include <memory>

#include "crm/runtime/auth.h"
#include "crm/runtime/executor.h"
#include "crm/runtime/testing/v1/echo.grpc.pb.h"

namespace crm::runtime {

class EchoService final : public crm::runtime::testing::v1::EchoService::CallbackService {
 public:
  using EchoRequest = crm::runtime::testing::v1::EchoRequest;
  using EchoResponse = crm::runtime::testing::v1::EchoResponse;

  explicit EchoService(std::shared_ptr<const TokenVerifier> verifier);

  grpc::ServerUnaryReactor* Echo(grpc::CallbackServerContext* context, const EchoRequest* request,
                                 EchoResponse* response) override;
  grpc::ServerUnaryReactor* Slow(grpc::CallbackServerContext* context, const EchoRequest* request,
                                 EchoResponse* response) override;
  grpc::ServerUnaryReactor* Refuse(grpc::CallbackServerContext* context, const EchoRequest* request,
                                   EchoResponse* response) override;

  // Calls that reached a handler: proves refused calls never did.
  int handled() const { return handled_.load(); }

 private:
  std::shared_ptr<const TokenVerifier> verifier_;
  std::atomic<int> handled_{0};
  Executor executor_{2, 64};
};

}  // namespace crm::runtime
