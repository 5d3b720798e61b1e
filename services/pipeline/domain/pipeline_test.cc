#include "domain/pipeline.h"

#include "crm/common/time.h"
#include "crm/testing/testing.h"
#include "domain/testing.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace crm::pipeline {
namespace {

using ::crm::testing::StatusIs;
using ::testing::ElementsAre;
using testing::Fields;
using testing::Given;
using ::testing::IsEmpty;
using testing::kMonday;
using testing::MakeStage;
using testing::Then;
using ::testing::UnorderedElementsAre;

const PipelineLimits kLimits;

TEST(PipelineTest, FirstDefinitionIsRevisionOne) {
  const Pipeline sales = testing::Sales();
  EXPECT_EQ(sales.name(), "pipelines/sales");
  EXPECT_EQ(sales.revision(), 1);
  ASSERT_EQ(sales.stages_size(), 3);
  EXPECT_EQ(sales.stages(1).stage_id(), "proposal");
  EXPECT_EQ(sales.stages(1).probability_bps(), 4000);
  EXPECT_EQ(FindStage(sales, "negotiation")->probability_bps(), 7000);
  EXPECT_EQ(FindStage(sales, "won"), nullptr);
}

TEST(PipelineTest, EveryFaultOfADefinitionIsNamed) {
  auto decided =
      DecideDefinePipeline(std::nullopt, kMonday, "sales/eu", " ",
                           {MakeStage("a", 10001), MakeStage("a", 50), MakeStage("", -1)}, kLimits);
  EXPECT_THAT(decided, StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(Fields(decided.status()),
              UnorderedElementsAre("pipeline_id", "display_name", "stages[0].probability_bps",
                                   "stages[1].stage_id", "stages[2].stage_id",
                                   "stages[2].probability_bps"));
  EXPECT_THAT(Fields(DecideDefinePipeline(std::nullopt, kMonday, "p", "P", {}, kLimits).status()),
              ElementsAre("stages"));
}

TEST(PipelineTest, RedefiningAddsARevisionOnlyWhenSomethingChanges) {
  auto current = Given<PipelineAggregate>({});
  current = Then<PipelineAggregate>(
      current, DecideDefinePipeline(current, kMonday, "p", "P", {MakeStage("a", 100)}, kLimits));
  auto same = DecideDefinePipeline(current, kMonday + absl::Hours(1), "p", "P",
                                   {MakeStage("a", 100)}, kLimits);
  ASSERT_TRUE(same.ok());
  EXPECT_THAT(*same, IsEmpty());

  const absl::Time later = kMonday + absl::Hours(2);
  current = Then<PipelineAggregate>(
      current,
      DecideDefinePipeline(current, later, "p", "P", {MakeStage("a", 200), MakeStage("b", 900)},
                           kLimits),
      later);
  EXPECT_EQ(current->state.revision(), 2);
  EXPECT_EQ(current->state.stages(0).probability_bps(), 200);
  EXPECT_EQ(FromProto(current->state.create_time()), kMonday);
  EXPECT_EQ(FromProto(current->state.update_time()), later);
}

}  // namespace
}  // namespace crm::pipeline
