#include "domain/pipeline.h"

#include "absl/container/flat_hash_set.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "crm/common/field_violations.h"
#include "crm/common/ids.h"
#include "crm/common/time.h"
#include "crm/pipeline/v1/events.pb.h"
#include "google/protobuf/util/message_differencer.h"

namespace crm::pipeline {

void PipelineAggregate::Evolve(Pipeline& state, const eventstore::EventEnvelope& event) {
  if (v1::PipelineDefined defined; event.payload().UnpackTo(&defined)) {
    state = defined.pipeline();
  }
  state.set_revision(event.stream_version());
  *state.mutable_update_time() = event.occurred_at();
}

std::vector<std::string> PipelineAggregate::IndexKeys(const std::string& id, const Pipeline&) {
  return {absl::StrCat("pipeline/all/", id)};
}

const Stage* FindStage(const Pipeline& pipeline, const std::string& stage_id) {
  for (const Stage& stage : pipeline.stages()) {
    if (stage.stage_id() == stage_id) return &stage;
  }
  return nullptr;
}

absl::StatusOr<eventsourcing::Events> DecideDefinePipeline(const CurrentPipeline& current,
                                                           absl::Time occurred_at,
                                                           const std::string& pipeline_id,
                                                           const std::string& display_name,
                                                           const std::vector<Stage>& stages,
                                                           const PipelineLimits& limits) {
  std::vector<FieldViolation> violations;
  Append(violations, ValidateId(pipeline_id, "pipeline_id"));
  Pipeline defined;
  defined.set_display_name(std::string(absl::StripAsciiWhitespace(display_name)));
  if (defined.display_name().empty()) violations.push_back({"display_name", "is required"});
  if (defined.display_name().size() > limits.max_name) {
    violations.push_back({"display_name", absl::StrCat("longer than ", limits.max_name, " bytes")});
  }
  if (stages.empty()) violations.push_back({"stages", "a pipeline needs at least one stage"});
  if (stages.size() > static_cast<size_t>(limits.max_stages)) {
    violations.push_back({"stages", absl::StrCat("at most ", limits.max_stages)});
  }
  absl::flat_hash_set<std::string> seen;
  for (size_t i = 0; i < stages.size(); ++i) {
    const std::string field = absl::StrCat("stages[", i, "]");
    Stage stage = stages[i];
    stage.set_display_name(std::string(absl::StripAsciiWhitespace(stage.display_name())));
    if (absl::Status id = ValidateId(stage.stage_id(), field + ".stage_id"); !id.ok()) {
      Append(violations, id);
    } else if (!seen.insert(stage.stage_id()).second) {
      violations.push_back({field + ".stage_id", "appears twice"});
    }
    if (stage.display_name().empty()) stage.set_display_name(stage.stage_id());
    if (stage.display_name().size() > limits.max_name) {
      violations.push_back(
          {field + ".display_name", absl::StrCat("longer than ", limits.max_name, " bytes")});
    }
    if (stage.probability_bps() < 0 || stage.probability_bps() > 10000) {
      violations.push_back({field + ".probability_bps", "must be 0 to 10000 basis points"});
    }
    *defined.add_stages() = std::move(stage);
  }
  if (!violations.empty()) return InvalidArgument(std::move(violations));

  defined.set_name(absl::StrCat("pipelines/", pipeline_id));
  defined.set_pipeline_id(pipeline_id);
  if (current) {
    const Pipeline& now = current->state;
    if (now.display_name() == defined.display_name() &&
        now.stages_size() == defined.stages_size() &&
        std::equal(now.stages().begin(), now.stages().end(), defined.stages().begin(),
                   [](const Stage& a, const Stage& b) {
                     return google::protobuf::util::MessageDifferencer::Equals(a, b);
                   })) {
      return eventsourcing::Events();  // the same definition: no new revision
    }
    *defined.mutable_create_time() = now.create_time();
    defined.set_revision(current->version + 1);
  } else {
    *defined.mutable_create_time() = ToProto(occurred_at);
    defined.set_revision(1);
  }
  *defined.mutable_update_time() = ToProto(occurred_at);
  auto event = std::make_unique<v1::PipelineDefined>();
  *event->mutable_pipeline() = std::move(defined);
  return eventsourcing::Emit(std::move(event));
}

}  // namespace crm::pipeline
