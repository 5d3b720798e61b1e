#pragma once

// The pipeline aggregate: ordered stages with win probabilities, versioned by revision (one
// stream version per revision, so revision N is the stream folded to version N).

#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "crm/eventsourcing/repository.h"
#include "crm/pipeline/v1/pipeline.pb.h"

namespace crm::pipeline {

using crm::pipeline::v1::Lead;
using crm::pipeline::v1::Opportunity;
using crm::pipeline::v1::Pipeline;
using crm::pipeline::v1::Stage;

// Size limits of the pipeline-service's records.
struct PipelineLimits {
  size_t max_name = 200;     // display names, person names
  size_t max_text = 128;     // owner, region, source, campaign, email, phone, domain
  size_t max_reason = 1000;  // disqualify and close reasons
  int max_stages = 50;
  int max_lines = 100;
};

using CurrentPipeline = std::optional<eventsourcing::Versioned<Pipeline>>;

struct PipelineAggregate {
  using State = Pipeline;
  static constexpr char kStreamType[] = "pipeline";
  static void Evolve(Pipeline& state, const eventstore::EventEnvelope& event);
  static std::vector<std::string> IndexKeys(const std::string& id, const Pipeline& state);
};

// The stage of a revision, nullptr when it has none of that id.
const Stage* FindStage(const Pipeline& pipeline, const std::string& stage_id);

// A new revision when the definition differs from the current one; no events when equal.
absl::StatusOr<eventsourcing::Events> DecideDefinePipeline(const CurrentPipeline& current,
                                                           absl::Time occurred_at,
                                                           const std::string& pipeline_id,
                                                           const std::string& display_name,
                                                           const std::vector<Stage>& stages,
                                                           const PipelineLimits& limits);

}  // namespace crm::pipeline
