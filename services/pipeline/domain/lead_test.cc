#include "domain/lead.h"

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
using testing::Then;
using ::testing::UnorderedElementsAre;

const PipelineLimits kLimits;

Lead WebinarLead() {
  Lead lead;
  lead.set_source(" webinar ");
  lead.set_channel("web_form");
  lead.set_campaign("spring-2026");
  lead.mutable_person()->set_given_name("Ada");
  lead.mutable_person()->set_family_name("Lovelace");
  lead.mutable_person()->set_email("Ada@Example.COM");
  lead.mutable_person()->set_phone("+44 (20) 7946-0958");
  lead.mutable_company()->set_display_name("Analytical Engines");
  lead.set_owner_id("rep-1");
  lead.set_region("emea");
  return lead;
}

CurrentLead Captured() {
  return Then<LeadAggregate>(
      std::nullopt, DecideCaptureLead(std::nullopt, kMonday, "l1", WebinarLead(), kLimits));
}

TEST(LeadTest, CaptureNormalisesWhatTheSourceGave) {
  const CurrentLead lead = Captured();
  ASSERT_TRUE(lead);
  EXPECT_EQ(lead->state.name(), "leads/l1");
  EXPECT_EQ(lead->state.status(), v1::LEAD_STATUS_NEW);
  EXPECT_EQ(lead->state.source(), "webinar");
  EXPECT_EQ(lead->state.person().email(), "ada@example.com");
  EXPECT_EQ(lead->state.person().phone(), "+442079460958");
  EXPECT_EQ(lead->version, 1);
  EXPECT_THAT(LeadAggregate::IndexKeys("l1", lead->state),
              UnorderedElementsAre("lead/all/l1", "lead/status/new/l1", "lead/source/webinar/l1",
                                   "lead/owner/rep-1/l1", "lead/channel/web_form/l1"));
  EXPECT_THAT(DecideCaptureLead(lead, kMonday, "l1", WebinarLead(), kLimits),
              StatusIs(absl::StatusCode::kAlreadyExists));
}

TEST(LeadTest, CaptureNamesEveryBadField) {
  Lead bad;
  bad.mutable_person()->set_email("not-an-address");
  bad.mutable_person()->set_phone("call me");
  bad.mutable_company()->set_domain("no spaces.com");
  auto decided = DecideCaptureLead(std::nullopt, kMonday, "l1", bad, kLimits);
  EXPECT_THAT(decided, StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(Fields(decided.status()),
              UnorderedElementsAre("lead.source", "lead.person.email", "lead.person.phone",
                                   "lead.company.domain"));

  Lead nobody;
  nobody.set_source("webinar");
  EXPECT_THAT(Fields(DecideCaptureLead(std::nullopt, kMonday, "l1", nobody, kLimits).status()),
              ElementsAre("lead.person"));

  Lead huge = WebinarLead();
  huge.set_campaign(std::string(kLimits.max_text + 1, 'x'));
  auto too_large = DecideCaptureLead(std::nullopt, kMonday, "l1", huge, kLimits);
  EXPECT_THAT(too_large, StatusIs(absl::StatusCode::kResourceExhausted));
  EXPECT_THAT(Fields(too_large.status()), ElementsAre("lead.campaign"));
  EXPECT_THAT(DecideCaptureLead(std::nullopt, kMonday, "l/1", WebinarLead(), kLimits),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(LeadTest, QualifyAndDisqualifyFollowTheLifecycle) {
  CurrentLead lead = Captured();
  EXPECT_THAT(Fields(DecideDisqualifyLead(lead, "  ", kLimits).status()), ElementsAre("reason"));
  lead = Then<LeadAggregate>(lead, DecideDisqualifyLead(lead, "no budget", kLimits));
  EXPECT_EQ(lead->state.status(), v1::LEAD_STATUS_DISQUALIFIED);
  EXPECT_EQ(lead->state.disqualify_reason(), "no budget");
  EXPECT_THAT(DecideDisqualifyLead(lead, "again", kLimits),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_THAT(CheckConvertible(lead), StatusIs(absl::StatusCode::kFailedPrecondition));

  lead = Then<LeadAggregate>(lead, DecideQualifyLead(lead));  // budget found after all
  EXPECT_EQ(lead->state.status(), v1::LEAD_STATUS_QUALIFIED);
  EXPECT_THAT(lead->state.disqualify_reason(), IsEmpty());
  EXPECT_THAT(DecideQualifyLead(lead), StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_THAT(LeadAggregate::IndexKeys("l1", lead->state), Contains("lead/status/qualified/l1"));
  EXPECT_THAT(DecideQualifyLead(std::nullopt), StatusIs(absl::StatusCode::kNotFound));
}

TEST(LeadTest, ConversionIsFinalAndRepeatable) {
  CurrentLead lead = Captured();
  EXPECT_THAT(CheckConvertible(lead), IsOk());  // a new lead converts without qualifying
  lead = Then<LeadAggregate>(lead, DecideConvertLead(lead, "c1", "a1", "o1"));
  EXPECT_EQ(lead->state.status(), v1::LEAD_STATUS_CONVERTED);
  EXPECT_EQ(lead->state.contact_id(), "c1");
  EXPECT_EQ(lead->state.account_id(), "a1");
  EXPECT_EQ(lead->state.opportunity_id(), "o1");

  auto again = DecideConvertLead(lead, "c1", "a1", "o1");
  ASSERT_THAT(again, IsOk());
  EXPECT_THAT(*again, IsEmpty());
  EXPECT_THAT(DecideConvertLead(lead, "c2", "a2", "o2"),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_THAT(CheckConvertible(lead), StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_THAT(DecideQualifyLead(lead), StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_THAT(DecideDisqualifyLead(lead, "late", kLimits),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_THAT(DecideConvertLead(std::nullopt, "c1", "a1", "o1"),
              StatusIs(absl::StatusCode::kNotFound));
}

}  // namespace
}  // namespace crm::pipeline
