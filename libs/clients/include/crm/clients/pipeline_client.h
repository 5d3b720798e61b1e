#pragma once

// pipeline-service as other services call it: on behalf of their caller (the bearer token is
// forwarded), with a deadline per attempt and retries of UNAVAILABLE. Blocking: call from an
// executor.

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "crm/pipeline/v1/pipeline_service.grpc.pb.h"
#include "crm/runtime/client.h"

namespace crm::clients {

class PipelineClient {
 public:
  // `options.bearer_token` is ignored: each call names whose token it forwards.
  PipelineClient(std::shared_ptr<grpc::Channel> channel, runtime::CallOptions options = {});

  absl::StatusOr<pipeline::v1::ValidateReferencesResponse> ValidateReferences(
      const std::string& bearer_token, const std::vector<std::string>& lead_ids,
      const std::vector<std::string>& opportunity_ids) const;

 private:
  std::unique_ptr<pipeline::v1::PipelineService::Stub> stub_;
  runtime::CallOptions options_;
};

}  // namespace crm::clients
