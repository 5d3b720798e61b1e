#include "crm/clients/pipeline_client.h"

#include "callee_status.h"

namespace crm::clients {

PipelineClient::PipelineClient(std::shared_ptr<grpc::Channel> channel, runtime::CallOptions options)
    : stub_(pipeline::v1::PipelineService::NewStub(channel)), options_(std::move(options)) {}

absl::StatusOr<pipeline::v1::ValidateReferencesResponse> PipelineClient::ValidateReferences(
    const std::string& bearer_token, const std::vector<std::string>& lead_ids,
    const std::vector<std::string>& opportunity_ids) const {
  pipeline::v1::ValidateReferencesRequest request;
  for (const std::string& id : lead_ids) request.add_lead_ids(id);
  for (const std::string& id : opportunity_ids) request.add_opportunity_ids(id);
  runtime::CallOptions options = options_;
  options.bearer_token = bearer_token;
  options.idempotent = true;
  pipeline::v1::ValidateReferencesResponse response;
  absl::Status status = runtime::CallWithRetry(options, [&](grpc::ClientContext& context) {
    return stub_->ValidateReferences(&context, request, &response);
  });
  if (!status.ok()) {
    return internal::CalleeStatus("pipeline-service", "ValidateReferences", std::move(status));
  }
  return response;
}

}  // namespace crm::clients
