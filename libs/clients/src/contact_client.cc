#include "crm/clients/contact_client.h"

#include "callee_status.h"

namespace crm::clients {
namespace {

absl::Status FromContactService(const std::string& method, absl::Status status) {
  return internal::CalleeStatus("contact-service", method, std::move(status));
}

}  // namespace

ContactClient::ContactClient(std::shared_ptr<grpc::Channel> channel, runtime::CallOptions options)
    : stub_(contact::v1::ContactService::NewStub(channel)), options_(std::move(options)) {}

runtime::CallOptions ContactClient::Options(const std::string& bearer_token,
                                            bool idempotent) const {
  runtime::CallOptions options = options_;
  options.bearer_token = bearer_token;
  options.idempotent = idempotent;
  return options;
}

absl::StatusOr<contact::v1::ValidateReferencesResponse> ContactClient::ValidateReferences(
    const std::string& bearer_token, const std::vector<std::string>& contact_ids,
    const std::vector<std::string>& account_ids) const {
  contact::v1::ValidateReferencesRequest request;
  for (const std::string& id : contact_ids) request.add_contact_ids(id);
  for (const std::string& id : account_ids) request.add_account_ids(id);
  contact::v1::ValidateReferencesResponse response;
  absl::Status status =
      runtime::CallWithRetry(Options(bearer_token, true), [&](grpc::ClientContext& context) {
        return stub_->ValidateReferences(&context, request, &response);
      });
  if (!status.ok()) return FromContactService("ValidateReferences", status);
  return response;
}

absl::Status ContactClient::EnsureAccount(const std::string& bearer_token,
                                          const contact::v1::CreateAccountRequest& request) const {
  return Ensure<contact::v1::Account>("CreateAccount", bearer_token, request,
                                      &contact::v1::ContactService::Stub::CreateAccount);
}

absl::Status ContactClient::EnsureContact(const std::string& bearer_token,
                                          const contact::v1::CreateContactRequest& request) const {
  return Ensure<contact::v1::Contact>("CreateContact", bearer_token, request,
                                      &contact::v1::ContactService::Stub::CreateContact);
}

template <typename Response, typename Request>
absl::Status ContactClient::Ensure(const std::string& method, const std::string& bearer_token,
                                   const Request& request,
                                   grpc::Status (contact::v1::ContactService::Stub::*create)(
                                       grpc::ClientContext*, const Request&, Response*)) const {
  Response response;
  absl::Status status = runtime::CallWithRetry(
      Options(bearer_token, !request.request_id().empty()), [&](grpc::ClientContext& context) {
        return (stub_.get()->*create)(&context, request, &response);
      });
  status = FromContactService(method, status);
  return status.code() == absl::StatusCode::kAlreadyExists ? absl::OkStatus() : status;
}

}  // namespace crm::clients
