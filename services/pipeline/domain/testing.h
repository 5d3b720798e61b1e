#pragma once

// Shared fixtures of the pipeline-service domain tests.

#include "crm/eventsourcing/testing.h"
#include "crm/pipeline/v1/events.pb.h"
#include "domain/pipeline.h"

namespace crm::pipeline::testing {

using eventsourcing::testing::Apply;
using eventsourcing::testing::Fields;
using eventsourcing::testing::Given;
using eventsourcing::testing::kMonday;
using eventsourcing::testing::Then;

inline Stage MakeStage(const std::string& id, int probability_bps) {
  Stage stage;
  stage.set_stage_id(id);
  stage.set_display_name(id);
  stage.set_probability_bps(probability_bps);
  return stage;
}

// "sales" revision 1: discovery 10%, proposal 40%, negotiation 70%.
inline Pipeline Sales() {
  auto decided = DecideDefinePipeline(
      std::nullopt, kMonday, "sales", "Sales",
      {MakeStage("discovery", 1000), MakeStage("proposal", 4000), MakeStage("negotiation", 7000)},
      PipelineLimits{});
  EXPECT_TRUE(decided.ok()) << decided.status();
  auto current = Given<PipelineAggregate>({decided->front().get()});
  return current->state;
}

}  // namespace crm::pipeline::testing
