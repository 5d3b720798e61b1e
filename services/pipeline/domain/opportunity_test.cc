#include "domain/opportunity.h"

#include <limits>

#include "crm/common/time.h"
#include "crm/testing/testing.h"
#include "domain/testing.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace crm::pipeline {
namespace {

using ::crm::testing::IsOk;
using ::crm::testing::StatusIs;
using ::testing::Contains;
using ::testing::ElementsAre;
using testing::Fields;
using ::testing::IsEmpty;
using testing::kMonday;
using ::testing::Not;
using testing::Then;

constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
const PipelineLimits kLimits;

v1::ProductLine Line(const std::string& product, int64_t quantity, int64_t unit_price) {
  v1::ProductLine line;
  line.set_product_id(product);
  line.set_quantity(quantity);
  line.set_unit_price_minor(unit_price);
  line.set_amount_minor(-1);  // derived by the domain, never taken from input
  return line;
}

Opportunity Deal() {
  Opportunity deal;
  deal.set_display_name("Engines for Acme");
  deal.set_owner_id("rep-1");
  deal.set_account_id("acme");
  deal.set_region("emea");
  deal.set_currency_code("eur");
  *deal.add_lines() = Line("engine", 3, 125000);
  *deal.add_lines() = Line("support", 1, 9999);
  deal.mutable_expected_close_date()->set_year(2027);
  deal.mutable_expected_close_date()->set_month(1);
  deal.mutable_expected_close_date()->set_day(31);
  return deal;
}

CurrentOpportunity Opened(const Opportunity& fields = Deal()) {
  return Then<OpportunityAggregate>(
      std::nullopt, DecideOpenOpportunity(std::nullopt, kMonday, "o1", fields, testing::Sales(),
                                          "lead-1", kLimits));
}

absl::StatusOr<eventsourcing::Events> OpenWithLines(std::vector<v1::ProductLine> lines) {
  Opportunity deal = Deal();
  deal.clear_lines();
  for (auto& line : lines) *deal.add_lines() = std::move(line);
  return DecideOpenOpportunity(std::nullopt, kMonday, "o1", deal, testing::Sales(), "", kLimits);
}

TEST(OpportunityTest, OpensInTheFirstStageWithExactAmounts) {
  const CurrentOpportunity deal = Opened();
  ASSERT_TRUE(deal);
  const Opportunity& o = deal->state;
  EXPECT_EQ(o.name(), "opportunities/o1");
  EXPECT_EQ(o.status(), v1::OPPORTUNITY_STATUS_OPEN);
  EXPECT_EQ(o.pipeline_id(), "sales");
  EXPECT_EQ(o.pipeline_revision(), 1);
  EXPECT_EQ(o.stage_id(), "discovery");
  EXPECT_EQ(o.stage_probability_bps(), 1000);
  EXPECT_EQ(o.currency_code(), "EUR");
  EXPECT_EQ(o.lines(0).amount_minor(), 375000);
  EXPECT_EQ(o.lines(1).amount_minor(), 9999);
  EXPECT_EQ(o.amount_minor(), 384999);
  EXPECT_EQ(o.lead_id(), "lead-1");
  EXPECT_EQ(FromProto(o.stage_enter_time()), kMonday);
  EXPECT_THAT(
      OpportunityAggregate::IndexKeys("o1", o),
      ::testing::IsSupersetOf({"opportunity/owner/rep-1/o1", "opportunity/stage/discovery/o1",
                               "opportunity/status/open/o1", "opportunity/close/2027-01-31/o1"}));
  EXPECT_THAT(DecideOpenOpportunity(deal, kMonday, "o1", Deal(), testing::Sales(), "", kLimits),
              StatusIs(absl::StatusCode::kAlreadyExists));
}

TEST(OpportunityTest, OpenNamesEveryBadField) {
  Opportunity bad = Deal();
  bad.clear_display_name();
  bad.set_currency_code("euro");
  bad.set_account_id("acme/emea");
  bad.mutable_expected_close_date()->set_month(2);
  bad.mutable_expected_close_date()->set_day(30);
  *bad.add_lines() = Line("", 0, -5);
  auto decided =
      DecideOpenOpportunity(std::nullopt, kMonday, "o1", bad, testing::Sales(), "", kLimits);
  EXPECT_THAT(decided, StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(Fields(decided.status()),
              ::testing::UnorderedElementsAre(
                  "opportunity.display_name", "opportunity.currency_code", "opportunity.account_id",
                  "opportunity.expected_close_date", "opportunity.lines[2].product_id",
                  "opportunity.lines[2].quantity", "opportunity.lines[2].unit_price_minor"));
  Opportunity unnamed = Deal();
  unnamed.clear_display_name();
  unnamed.clear_currency_code();
  EXPECT_THAT(Fields(DecideOpenOpportunity(std::nullopt, kMonday, "o1", unnamed, testing::Sales(),
                                           "", kLimits)
                         .status()),
              ElementsAre("opportunity.display_name", "opportunity.currency_code"));
  Opportunity elsewhere = Deal();
  elsewhere.set_stage_id("won");
  EXPECT_THAT(Fields(DecideOpenOpportunity(std::nullopt, kMonday, "o1", elsewhere, testing::Sales(),
                                           "", kLimits)
                         .status()),
              ElementsAre("opportunity.stage_id"));
}

TEST(OpportunityTest, MoneyAtTheLimitsIsExactOrAnError) {
  // The largest amount fits exactly.
  auto largest = OpenWithLines({Line("a", 1, kMax)});
  ASSERT_THAT(largest, IsOk());
  EXPECT_EQ(Then<OpportunityAggregate>(std::nullopt, largest)->state.amount_minor(), kMax);
  // A product one past it is an error naming the line, not a wrapped negative amount.
  auto product = OpenWithLines({Line("a", 2, kMax / 2 + 1)});
  EXPECT_THAT(product, StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(Fields(product.status()), ElementsAre("opportunity.lines[0]"));
  // Lines that fit alone but not together: the total is named.
  auto total = OpenWithLines({Line("a", 1, kMax), Line("b", 1, 1)});
  EXPECT_THAT(total, StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(Fields(total.status()), ElementsAre("opportunity.lines"));
  // Zero-priced lines (free items) are fine.
  EXPECT_THAT(OpenWithLines({Line("gift", 5, 0)}), IsOk());
}

TEST(OpportunityTest, StagesMoveForwardAndBackEachMoveRecorded) {
  const Pipeline sales = testing::Sales();
  CurrentOpportunity deal = Opened();
  const absl::Time tuesday = kMonday + absl::Hours(24);
  auto forward = DecideMoveStage(deal, tuesday, "negotiation", sales);
  ASSERT_THAT(forward, IsOk());
  const auto* moved = dynamic_cast<const v1::OpportunityStageMoved*>(forward->front().get());
  ASSERT_NE(moved, nullptr);
  EXPECT_EQ(moved->from_stage_id(), "discovery");
  EXPECT_EQ(moved->from_probability_bps(), 1000);
  deal = Then<OpportunityAggregate>(deal, forward, tuesday);
  EXPECT_EQ(deal->state.stage_id(), "negotiation");
  EXPECT_EQ(deal->state.stage_probability_bps(), 7000);
  EXPECT_EQ(FromProto(deal->state.stage_enter_time()), tuesday);

  deal = Then<OpportunityAggregate>(deal, DecideMoveStage(deal, tuesday, "proposal", sales));
  EXPECT_EQ(deal->state.stage_id(), "proposal");
  EXPECT_EQ(deal->version, 3);
  EXPECT_THAT(DecideMoveStage(deal, tuesday, "proposal", sales),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  auto unknown = DecideMoveStage(deal, tuesday, "won", sales);
  EXPECT_THAT(unknown, StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(Fields(unknown.status()), ElementsAre("stage_id"));
  EXPECT_THAT(DecideMoveStage(std::nullopt, tuesday, "proposal", sales),
              StatusIs(absl::StatusCode::kNotFound));
}

TEST(OpportunityTest, CloseWonOrLostThenReopen) {
  const Pipeline sales = testing::Sales();
  CurrentOpportunity deal = Opened();
  EXPECT_THAT(
      Fields(DecideCloseOpportunity(deal, kMonday, v1::OPPORTUNITY_STATUS_LOST, " ", kLimits)
                 .status()),
      ElementsAre("reason"));
  EXPECT_THAT(
      Fields(
          DecideCloseOpportunity(deal, kMonday, v1::OPPORTUNITY_STATUS_OPEN, "", kLimits).status()),
      ElementsAre("outcome"));
  deal = Then<OpportunityAggregate>(
      deal, DecideCloseOpportunity(deal, kMonday, v1::OPPORTUNITY_STATUS_LOST, "price", kLimits));
  EXPECT_EQ(deal->state.status(), v1::OPPORTUNITY_STATUS_LOST);
  EXPECT_EQ(deal->state.close_reason(), "price");
  EXPECT_EQ(FromProto(deal->state.close_time()), kMonday);
  // A closed deal neither moves, changes nor closes again.
  EXPECT_THAT(DecideMoveStage(deal, kMonday, "proposal", sales),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_THAT(DecideCloseOpportunity(deal, kMonday, v1::OPPORTUNITY_STATUS_WON, "", kLimits),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  google::protobuf::FieldMask mask;
  mask.add_paths("region");
  EXPECT_THAT(DecideUpdateOpportunity(deal, Deal(), mask, kLimits),
              StatusIs(absl::StatusCode::kFailedPrecondition));

  // Reopened in the stage it closed in, then won.
  deal = Then<OpportunityAggregate>(deal, DecideReopenOpportunity(deal, kMonday, "", sales));
  EXPECT_EQ(deal->state.status(), v1::OPPORTUNITY_STATUS_OPEN);
  EXPECT_EQ(deal->state.stage_id(), "discovery");
  EXPECT_FALSE(deal->state.has_close_time());
  EXPECT_THAT(DecideReopenOpportunity(deal, kMonday, "", sales),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  deal = Then<OpportunityAggregate>(
      deal, DecideCloseOpportunity(deal, kMonday, v1::OPPORTUNITY_STATUS_WON, "", kLimits));
  EXPECT_EQ(deal->state.status(), v1::OPPORTUNITY_STATUS_WON);
  EXPECT_THAT(OpportunityAggregate::IndexKeys("o1", deal->state),
              Contains("opportunity/status/won/o1"));
  // Reopening into another stage of its revision.
  deal = Then<OpportunityAggregate>(deal,
                                    DecideReopenOpportunity(deal, kMonday, "negotiation", sales));
  EXPECT_EQ(deal->state.stage_probability_bps(), 7000);
  EXPECT_THAT(DecideReopenOpportunity(deal, kMonday, "nowhere", sales), Not(IsOk()));
}

TEST(OpportunityTest, UpdateRecomputesAmountsAndSkipsNoOps) {
  CurrentOpportunity deal = Opened();
  Opportunity patch;
  *patch.add_lines() = Line("engine", 10, 125000);
  patch.set_region("ignored: not in the mask");
  google::protobuf::FieldMask mask;
  mask.add_paths("lines");
  deal = Then<OpportunityAggregate>(deal, DecideUpdateOpportunity(deal, patch, mask, kLimits));
  EXPECT_EQ(deal->state.amount_minor(), 1250000);
  EXPECT_EQ(deal->state.region(), "emea");
  auto again = DecideUpdateOpportunity(deal, patch, mask, kLimits);
  ASSERT_THAT(again, IsOk());
  EXPECT_THAT(*again, IsEmpty());

  google::protobuf::FieldMask bad;
  bad.add_paths("stage_id");  // stages move through MoveOpportunityStage only
  bad.add_paths("currency_code");  // cleared: a required field, named in the same answer
  Opportunity no_currency;
  EXPECT_THAT(Fields(DecideUpdateOpportunity(deal, no_currency, bad, kLimits).status()),
              ElementsAre("opportunity.stage_id", "opportunity.currency_code"));
  google::protobuf::FieldMask none;
  EXPECT_THAT(Fields(DecideUpdateOpportunity(deal, patch, none, kLimits).status()),
              ElementsAre("update_mask"));
}

TEST(OpportunityTest, DatesAreCalendarDates) {
  crm::common::v1::Date date;
  EXPECT_THAT(ValidateDate(date, "d"), IsOk());  // unset
  EXPECT_EQ(DateKey(date), "");
  date.set_year(2028);
  date.set_month(2);
  date.set_day(29);
  EXPECT_THAT(ValidateDate(date, "d"), IsOk());
  EXPECT_EQ(DateKey(date), "2028-02-29");
  date.set_year(2027);
  EXPECT_THAT(ValidateDate(date, "d"), StatusIs(absl::StatusCode::kInvalidArgument));
  date.set_month(13);
  EXPECT_THAT(ValidateDate(date, "d"), StatusIs(absl::StatusCode::kInvalidArgument));
}

}  // namespace
}  // namespace crm::pipeline
