#include "crm/runtime/call.h"

#include <atomic>
#include <exception>

#include "absl/time/clock.h"
#include "crm/runtime/log.h"
#include "crm/runtime/status.h"

namespace crm::runtime {
namespace {

void LogRequest(const Method& method, const absl::Status& status, absl::Duration duration,
                std::string_view actor, const std::string& request_id) {
  nlohmann::json fields = {{"method", method.name},
                           {"code", absl::StatusCodeToString(status.code())},
                           {"duration_ms", absl::ToDoubleMilliseconds(duration)},
                           {"actor", std::string(actor)}};
  if (!request_id.empty()) fields["request_id"] = request_id;
  if (!status.ok()) fields["error"] = std::string(status.message());
  const bool server_fault = status.code() == absl::StatusCode::kInternal ||
                            status.code() == absl::StatusCode::kDataLoss ||
                            status.code() == absl::StatusCode::kUnknown;
  Log(server_fault ? spdlog::level::err : spdlog::level::info, "request", std::move(fields));
}

}  // namespace

grpc::ServerUnaryReactor* StartUnary(grpc::CallbackServerContext* context,
                                     const TokenVerifier& verifier, const Method& method,
                                     std::string request_id, UnaryHandler handler) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  const absl::Time start = absl::Now();
  std::string authorization;
  if (auto it = context->client_metadata().find("authorization");
      it != context->client_metadata().end()) {
    authorization.assign(it->second.data(), it->second.size());
  }
  absl::StatusOr<Principal> principal = verifier.Verify(authorization, start);
  absl::Status allowed = principal.ok() ? Authorize(*principal, method.scope) : principal.status();
  if (!allowed.ok()) {
    LogRequest(method, allowed, absl::Now() - start, principal.ok() ? principal->subject : "",
               request_id);
    reactor->Finish(ToGrpcStatus(allowed));
    return reactor;
  }
  auto finished = std::make_shared<std::atomic<bool>>(false);
  Finish finish = [reactor, start, method, actor = principal->subject,
                   request_id = std::move(request_id), finished](absl::Status status) {
    if (finished->exchange(true)) return;  // a handler bug must not finish a call twice
    LogRequest(method, status, absl::Now() - start, actor, request_id);
    reactor->Finish(ToGrpcStatus(status));
  };
  try {
    handler(*principal, finish);
  } catch (const std::exception& e) {  // never let an exception become UNKNOWN for the client
    finish(absl::InternalError(e.what()));
  }
  return reactor;
}

std::string BearerToken(const grpc::CallbackServerContext& context) {
  constexpr std::string_view kScheme = "Bearer ";
  const auto found = context.client_metadata().find("authorization");
  if (found == context.client_metadata().end()) return "";
  const std::string_view value(found->second.data(), found->second.size());
  return value.substr(0, kScheme.size()) == kScheme ? std::string(value.substr(kScheme.size()))
                                                     : "";
}

}  // namespace crm::runtime
