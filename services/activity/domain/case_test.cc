#include "domain/case.h"

#include "crm/activity/v1/events.pb.h"
#include "crm/common/time.h"
#include "crm/eventsourcing/testing.h"
#include "crm/testing/testing.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace crm::activity {
namespace {

using ::crm::testing::StatusIs;
using eventsourcing::testing::Fields;
using eventsourcing::testing::kMonday;
using eventsourcing::testing::Then;
using ::testing::ElementsAre;
using ::testing::UnorderedElementsAre;

const ActivityLimits kLimits;

Case Outage() {
  Case c;
  c.set_subject("Portal down");
  c.set_channel("service_desk");
  c.set_priority(v1::CASE_PRIORITY_URGENT);
  c.set_contact_id("c1");
  return c;
}

CurrentCase Opened() {
  return Then<CaseAggregate>(std::nullopt,
                             DecideOpenCase(std::nullopt, kMonday, "k1", Outage(), kLimits));
}

TEST(CaseTest, OpenIndexesUrgentFirst) {
  const CurrentCase opened = Opened();
  ASSERT_TRUE(opened);
  EXPECT_EQ(opened->state.name(), "cases/k1");
  EXPECT_EQ(opened->state.status(), v1::CASE_STATUS_OPEN);
  EXPECT_EQ(FromProto(opened->state.open_time()), kMonday);
  const std::string at = TimeKey(kMonday);
  EXPECT_THAT(CaseAggregate::IndexKeys("k1", opened->state),
              UnorderedElementsAre("case/open/all/0/" + at + "/k1",
                                   "case/open/priority/urgent/" + at + "/k1"));
  Case low = Outage();
  low.set_priority(v1::CASE_PRIORITY_LOW);
  low.set_assignee_id("agent-1");
  auto low_case =
      Then<CaseAggregate>(std::nullopt, DecideOpenCase(std::nullopt, kMonday, "k2", low, kLimits));
  EXPECT_THAT(
      CaseAggregate::IndexKeys("k2", low_case->state),
      UnorderedElementsAre("case/open/all/3/" + at + "/k2", "case/open/priority/low/" + at + "/k2",
                           "case/open/assignee/agent-1/3/" + at + "/k2"));
  EXPECT_THAT(DecideOpenCase(opened, kMonday, "k1", Outage(), kLimits),
              StatusIs(absl::StatusCode::kAlreadyExists));
}

TEST(CaseTest, OpenNamesEveryBadField) {
  Case bad;
  bad.set_priority(static_cast<v1::CasePriority>(9));
  EXPECT_THAT(
      Fields(DecideOpenCase(std::nullopt, kMonday, "k1", bad, kLimits)),
      UnorderedElementsAre("case.subject", "case.channel", "case.priority", "case.contact_id"));
  EXPECT_TRUE(CheckCaseFields(Outage(), kLimits).ok());
}

TEST(CaseTest, ResolveReopenResolve) {
  const CurrentCase opened = Opened();
  const absl::Time later = kMonday + absl::Hours(5);
  const CurrentCase resolved =
      Then<CaseAggregate>(opened, DecideResolveCase(opened, later, "restarted", kLimits));
  ASSERT_TRUE(resolved);
  EXPECT_EQ(resolved->state.status(), v1::CASE_STATUS_RESOLVED);
  EXPECT_EQ(FromProto(resolved->state.resolve_time()), later);
  EXPECT_THAT(DecideResolveCase(resolved, later, "again", kLimits),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_THAT(DecideAssignCase(resolved, "agent-2", kLimits),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_THAT(DecideReopenCase(opened, "", kLimits),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_THAT(Fields(DecideResolveCase(opened, later, " ", kLimits)), ElementsAre("resolution"));

  const CurrentCase reopened =
      Then<CaseAggregate>(resolved, DecideReopenCase(resolved, "still down", kLimits));
  ASSERT_TRUE(reopened);
  EXPECT_EQ(reopened->state.status(), v1::CASE_STATUS_OPEN);
  EXPECT_EQ(reopened->state.reopen_count(), 1);
  EXPECT_FALSE(reopened->state.has_resolve_time());
  EXPECT_EQ(FromProto(reopened->state.open_time()), kMonday);  // measured from the first opening
  EXPECT_TRUE(DecideResolveCase(reopened, later, "patched", kLimits).ok());
}

TEST(CaseTest, AssignAndNotes) {
  const CurrentCase opened = Opened();
  const CurrentCase assigned =
      Then<CaseAggregate>(opened, DecideAssignCase(opened, "agent-1", kLimits));
  ASSERT_TRUE(assigned);
  EXPECT_EQ(assigned->state.assignee_id(), "agent-1");
  EXPECT_THAT(DecideAssignCase(assigned, "agent-1", kLimits),
              StatusIs(absl::StatusCode::kFailedPrecondition));

  auto noted = DecideAddCaseNote(assigned, " Asked for logs ", kLimits);
  ASSERT_TRUE(noted.ok()) << noted.status();
  const auto& event = static_cast<const v1::CaseNoteAdded&>(*noted->front());
  EXPECT_EQ(event.text(), "Asked for logs");
  EXPECT_EQ(event.case_().note_count(), 1);
  EXPECT_THAT(Fields(DecideAddCaseNote(assigned, "", kLimits)), ElementsAre("text"));
  EXPECT_THAT(DecideAddCaseNote(assigned, std::string(kLimits.max_note + 1, 'x'), kLimits),
              StatusIs(absl::StatusCode::kResourceExhausted));

  const CurrentCase resolved =  // notes are welcome on a resolved case too
      Then<CaseAggregate>(assigned, DecideResolveCase(assigned, kMonday, "fixed", kLimits));
  EXPECT_TRUE(DecideAddCaseNote(resolved, "customer confirmed", kLimits).ok());
  ActivityLimits few = kLimits;
  few.max_notes = 1;
  const CurrentCase one_note = Then<CaseAggregate>(assigned, noted);
  EXPECT_THAT(DecideAddCaseNote(one_note, "another", few),
              StatusIs(absl::StatusCode::kResourceExhausted));
}

}  // namespace
}  // namespace crm::activity
