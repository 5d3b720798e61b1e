#pragma once

// One unary call as a test makes it: a bearer token (none when empty), a deadline, and the
// answer as an absl::Status with the server's field violations. Link crm_runtime.

#include <chrono>
#include <string>

#include "absl/status/status.h"
#include "crm/runtime/status.h"
#include "grpcpp/grpcpp.h"

namespace crm::testing {

template <typename Stub, typename Request, typename Response>
absl::Status CallWithToken(Stub& stub,
                           grpc::Status (Stub::*method)(grpc::ClientContext*, const Request&,
                                                        Response*),
                           const Request& request, Response* response, const std::string& token,
                           std::chrono::seconds deadline = std::chrono::seconds(20)) {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + deadline);
  if (!token.empty()) context.AddMetadata("authorization", "Bearer " + token);
  return runtime::FromGrpcStatus((stub.*method)(&context, request, response));
}

}  // namespace crm::testing
