#pragma once

// contact-service as other services call it: on behalf of their caller (the caller's bearer
// token is forwarded, so contact-service records the real actor and checks its scopes), with
// a deadline per attempt and retries of UNAVAILABLE. Blocking: call from an executor.

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "crm/contact/v1/contact_service.grpc.pb.h"
#include "crm/runtime/client.h"

namespace crm::clients {

class ContactClient {
 public:
  // `options.bearer_token` is ignored: each call names whose token it forwards.
  ContactClient(std::shared_ptr<grpc::Channel> channel, runtime::CallOptions options = {});

  absl::StatusOr<contact::v1::ValidateReferencesResponse> ValidateReferences(
      const std::string& bearer_token, const std::vector<std::string>& contact_ids,
      const std::vector<std::string>& account_ids) const;

  // Creates the record, or finds it made by an earlier attempt: the request must name the id
  // and carry a request_id, and ALREADY_EXISTS (the id or the request id seen before) counts
  // as done. Other errors are contact-service's, with its field violations.
  absl::Status EnsureAccount(const std::string& bearer_token,
                             const contact::v1::CreateAccountRequest& request) const;
  absl::Status EnsureContact(const std::string& bearer_token,
                             const contact::v1::CreateContactRequest& request) const;

 private:
  runtime::CallOptions Options(const std::string& bearer_token, bool idempotent) const;
  // A create whose ALREADY_EXISTS means done.
  template <typename Response, typename Request>
  absl::Status Ensure(const std::string& method, const std::string& bearer_token,
                      const Request& request,
                      grpc::Status (contact::v1::ContactService::Stub::*create)(
                          grpc::ClientContext*, const Request&, Response*)) const;

  std::unique_ptr<contact::v1::ContactService::Stub> stub_;
  runtime::CallOptions options_;
};

}  // namespace crm::clients
