#pragma once

// Every unary handler runs through Unary(): the bearer token is verified and the method's
// scope checked before the handler sees the request, so unauthenticated or unauthorised calls
// never reach domain code. The handler gets the Principal (its subject is the only actor a
// command may record) and a Finish to call exactly once, from any thread.

#include <functional>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "crm/runtime/auth.h"
#include "grpcpp/grpcpp.h"

namespace crm::runtime {

// One RPC's policy.
struct Method {
  const char* name;   // "crm.contact.v1.ContactService/CreateContact", for logs
  const char* scope;  // "contacts:write"
};

using Finish = std::function<void(absl::Status)>;
using UnaryHandler = std::function<void(const Principal&, Finish)>;

grpc::ServerUnaryReactor* StartUnary(grpc::CallbackServerContext* context,
                                     const TokenVerifier& verifier, const Method& method,
                                     std::string request_id, UnaryHandler handler);

// The caller's bearer token (without "Bearer "), for calls made on its behalf; "" when none.
std::string BearerToken(const grpc::CallbackServerContext& context);

// Typed front door: picks up the request's request_id (when it has one) for the request log.
template <typename Request>
grpc::ServerUnaryReactor* Unary(grpc::CallbackServerContext* context, const TokenVerifier& verifier,
                                const Method& method, const Request& request,
                                UnaryHandler handler) {
  std::string request_id;
  if constexpr (requires { request.request_id(); }) request_id = request.request_id();
  return StartUnary(context, verifier, method, std::move(request_id), std::move(handler));
}

}  // namespace crm::runtime
