#include "echo_service.h"

#include "absl/time/clock.h"
#include "crm/runtime/call.h"
#include "crm/runtime/log.h"
#include "crm/runtime/status.h"

namespace crm::runtime {
namespace {

constexpr Method kEcho{"crm.runtime.testing.v1.EchoService/Echo", "contacts:read"};
constexpr Method kSlow{"crm.runtime.testing.v1.EchoService/Slow", "contacts:read"};
constexpr Method kRefuse{"crm.runtime.testing.v1.EchoService/Refuse", "contacts:write"};

}  // namespace

EchoService::EchoService(std::shared_ptr<const TokenVerifier> verifier)
    : verifier_(std::move(verifier)) {}

grpc::ServerUnaryReactor* EchoService::Echo(grpc::CallbackServerContext* context,
                                            const EchoRequest* request, EchoResponse* response) {
  return Unary(context, *verifier_, kEcho, *request,
               [this, request, response](const Principal& principal, Finish finish) {
                 ++handled_;
                 response->set_text(request->text());
                 response->set_actor_id(principal.subject);
                 response->set_actor_kind(principal.kind);
                 finish(absl::OkStatus());
               });
}

grpc::ServerUnaryReactor* EchoService::Slow(grpc::CallbackServerContext* context,
                                            const EchoRequest* request, EchoResponse* response) {
  return Unary(context, *verifier_, kSlow, *request,
               [this, request, response](const Principal& principal, Finish finish) {
                 ++handled_;
                 LogInfo("slow call started", {{"delay_ms", request->delay_ms()}});
                 absl::Status queued = executor_.Submit([=] {
                   absl::SleepFor(absl::Milliseconds(request->delay_ms()));
                   response->set_text(request->text());
                   response->set_actor_id(principal.subject);
                   finish(absl::OkStatus());
                 });
                 if (!queued.ok()) finish(queued);
               });
}

grpc::ServerUnaryReactor* EchoService::Refuse(grpc::CallbackServerContext* context,
                                              const EchoRequest* request, EchoResponse*) {
  return Unary(context, *verifier_, kRefuse, *request, [this](const Principal&, Finish finish) {
    ++handled_;
    finish(InvalidArgument({{"text", "must not be empty"}, {"delay_ms", "must be positive"}}));
  });
}

}  // namespace crm::runtime
