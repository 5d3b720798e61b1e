#include "domain/activity.h"

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
using ::testing::IsEmpty;
using ::testing::UnorderedElementsAre;

const ActivityLimits kLimits;

Activity Call() {
  Activity call;
  call.set_type(v1::ACTIVITY_TYPE_CALL);
  call.set_channel("phone");
  call.set_owner_id("rep-1");
  call.set_contact_id(" c1 ");
  call.set_opportunity_id("o1");
  call.set_subject("Pricing question");
  call.set_outcome("connected");
  call.set_duration_seconds(300);
  return call;
}

CurrentActivity Logged(const Activity& fields, std::optional<absl::Time> scheduled = {}) {
  return Then<ActivityAggregate>(
      std::nullopt, DecideLogActivity(std::nullopt, kMonday, "a1", fields, scheduled, kLimits));
}

TEST(ActivityTest, LogRecordsWhatHappenedAndIndexesTheTimelines) {
  Activity fields = Call();
  fields.set_lead_id("l1");
  const CurrentActivity call = Logged(fields);
  ASSERT_TRUE(call);
  EXPECT_EQ(call->state.name(), "activities/a1");
  EXPECT_EQ(call->state.status(), v1::ACTIVITY_STATUS_DONE);
  EXPECT_EQ(call->state.contact_id(), "c1");
  EXPECT_EQ(FromProto(call->state.occurred_at()), kMonday);
  EXPECT_EQ(call->version, 1);
  const std::string at = TimeKey(kMonday);
  const std::string newest_first = InvertedTimeKey(kMonday);
  EXPECT_THAT(ActivityAggregate::IndexKeys("a1", call->state),
              UnorderedElementsAre("activity/rep/rep-1/" + at + "/a1",
                                   "activity/contact/c1/" + newest_first + "/a1",
                                   "activity/lead/l1/" + newest_first + "/a1"));
  EXPECT_THAT(DecideLogActivity(call, kMonday, "a1", Call(), std::nullopt, kLimits),
              StatusIs(absl::StatusCode::kAlreadyExists));
}

TEST(ActivityTest, TimeKeysSortLikeTimes) {
  const absl::Time earlier = kMonday - absl::Hours(24 * 365 * 30);
  EXPECT_LT(TimeKey(earlier), TimeKey(kMonday));
  EXPECT_GT(InvertedTimeKey(earlier), InvertedTimeKey(kMonday));
  // The first and last valid timestamps (years 1 and 9999) keep the width and the order.
  const absl::Time first = absl::FromUnixSeconds(-62135596800);
  const absl::Time last = absl::FromUnixSeconds(253402300799);
  EXPECT_LT(TimeKey(first), TimeKey(earlier));
  EXPECT_LT(TimeKey(kMonday), TimeKey(last));
  EXPECT_EQ(TimeKey(first).size(), TimeKey(last).size());
  EXPECT_EQ(InvertedTimeKey(first).size(), InvertedTimeKey(last).size());
  EXPECT_GT(InvertedTimeKey(kMonday), InvertedTimeKey(last));
}

TEST(ActivityTest, LogNamesEveryBadField) {
  Activity bad;
  bad.set_type(static_cast<v1::ActivityType>(42));
  bad.set_account_id("has space");
  bad.set_duration_seconds(-1);
  bad.set_owner_id("team/rep");
  EXPECT_THAT(Fields(DecideLogActivity(std::nullopt, kMonday, "a1", bad, std::nullopt, kLimits)),
              UnorderedElementsAre("activity.type", "activity.channel", "activity.owner_id",
                                   "activity.contact_id", "activity.account_id",
                                   "activity.duration_seconds"));
  Activity huge = Call();
  huge.set_body(std::string(kLimits.max_body + 1, 'x'));
  EXPECT_THAT(DecideLogActivity(std::nullopt, kMonday, "a1", huge, std::nullopt, kLimits),
              StatusIs(absl::StatusCode::kResourceExhausted));
  EXPECT_THAT(CheckActivityFields(huge, kLimits), StatusIs(absl::StatusCode::kResourceExhausted));
  EXPECT_TRUE(CheckActivityFields(Call(), kLimits).ok());
}

TEST(ActivityTest, ALeadAloneIsEnough) {
  Activity call = Call();
  call.clear_contact_id();
  call.set_lead_id("l1");
  EXPECT_TRUE(Logged(call));
}

TEST(ActivityTest, ScheduledOnlyAheadAndNeverANote) {
  const absl::Time tuesday = kMonday + absl::Hours(24);
  Activity meeting = Call();
  meeting.set_type(v1::ACTIVITY_TYPE_MEETING);
  const CurrentActivity planned = Logged(meeting, tuesday);
  ASSERT_TRUE(planned);
  EXPECT_EQ(planned->state.status(), v1::ACTIVITY_STATUS_SCHEDULED);
  EXPECT_EQ(FromProto(planned->state.occurred_at()), tuesday);
  EXPECT_EQ(FromProto(planned->state.create_time()), kMonday);

  EXPECT_THAT(Fields(DecideLogActivity(std::nullopt, kMonday, "a1", meeting,
                                       kMonday - absl::Seconds(1), kLimits)),
              ElementsAre("scheduled_time"));
  EXPECT_THAT(Fields(DecideLogActivity(std::nullopt, kMonday, "a1", meeting,
                                       kMonday + absl::Hours(24 * 401), kLimits)),
              ElementsAre("scheduled_time"));
  Activity note = Call();
  note.set_type(v1::ACTIVITY_TYPE_NOTE);
  EXPECT_THAT(Fields(DecideLogActivity(std::nullopt, kMonday, "a1", note, tuesday, kLimits)),
              ElementsAre("scheduled_time"));
}

TEST(ActivityTest, CompleteAScheduledActivityOnce) {
  Activity visit = Call();
  visit.set_type(v1::ACTIVITY_TYPE_VISIT);
  const CurrentActivity planned = Logged(visit, kMonday + absl::Hours(48));
  const absl::Time held = kMonday + absl::Hours(50);
  const CurrentActivity done = Then<ActivityAggregate>(
      planned, DecideCompleteActivity(planned, held, "order_placed", "Met the buyer", 0, kLimits));
  ASSERT_TRUE(done);
  EXPECT_EQ(done->state.status(), v1::ACTIVITY_STATUS_DONE);
  EXPECT_EQ(FromProto(done->state.occurred_at()), held);
  EXPECT_EQ(done->state.outcome(), "order_placed");
  EXPECT_EQ(done->state.body(), "Met the buyer");
  EXPECT_EQ(done->state.duration_seconds(), 300);  // the planned one kept
  EXPECT_THAT(DecideCompleteActivity(done, held, "", "", 0, kLimits),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_THAT(DecideCompleteActivity(std::nullopt, held, "", "", 0, kLimits),
              StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(Fields(DecideCompleteActivity(planned, held, "", "", -5, kLimits)),
              ElementsAre("duration_seconds"));
}

TEST(ActivityTest, CancelOnlyWhatIsScheduled) {
  const CurrentActivity planned = Logged(Call(), kMonday + absl::Hours(1));
  const CurrentActivity cancelled =
      Then<ActivityAggregate>(planned, DecideCancelActivity(planned, " customer ill ", kLimits));
  ASSERT_TRUE(cancelled);
  EXPECT_EQ(cancelled->state.status(), v1::ACTIVITY_STATUS_CANCELLED);
  EXPECT_EQ(cancelled->state.cancel_reason(), "customer ill");
  EXPECT_THAT(DecideCancelActivity(cancelled, "", kLimits),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_THAT(DecideCancelActivity(Logged(Call()), "", kLimits),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_THAT(DecideCompleteActivity(cancelled, kMonday, "", "", 0, kLimits),
              StatusIs(absl::StatusCode::kFailedPrecondition));
}

TEST(ActivityTest, UpdateSetsTheMaskedFieldsAndNamesWhatChanged) {
  Activity meeting = Call();
  meeting.set_type(v1::ACTIVITY_TYPE_MEETING);
  const CurrentActivity logged = Logged(meeting);
  Activity patch;
  patch.set_body("Report: they want a pilot");
  patch.set_subject("Pricing question");  // unchanged
  google::protobuf::FieldMask mask;
  mask.add_paths("body");
  mask.add_paths("subject");
  auto decided = DecideUpdateActivity(logged, patch, mask, kLimits);
  ASSERT_TRUE(decided.ok()) << decided.status();
  ASSERT_EQ(decided->size(), 1u);
  const auto& updated = static_cast<const v1::ActivityUpdated&>(*decided->front());
  EXPECT_THAT(updated.changed_fields(), ElementsAre("body"));
  EXPECT_EQ(updated.activity().body(), "Report: they want a pilot");

  const CurrentActivity reported = Then<ActivityAggregate>(logged, decided);
  auto again = DecideUpdateActivity(reported, patch, mask, kLimits);
  ASSERT_TRUE(again.ok());
  EXPECT_THAT(*again, IsEmpty());  // nothing changed: no event

  google::protobuf::FieldMask bad;
  bad.add_paths("owner_id");
  EXPECT_THAT(Fields(DecideUpdateActivity(logged, patch, bad, kLimits)),
              ElementsAre("update_mask"));
  EXPECT_THAT(Fields(DecideUpdateActivity(logged, patch, {}, kLimits)), ElementsAre("update_mask"));
  EXPECT_THAT(DecideUpdateActivity(std::nullopt, patch, mask, kLimits),
              StatusIs(absl::StatusCode::kNotFound));
  const CurrentActivity planned = Logged(Call(), kMonday + absl::Hours(1));
  const CurrentActivity cancelled =
      Then<ActivityAggregate>(planned, DecideCancelActivity(planned, "", kLimits));
  EXPECT_THAT(DecideUpdateActivity(cancelled, patch, mask, kLimits),
              StatusIs(absl::StatusCode::kFailedPrecondition));
}

}  // namespace
}  // namespace crm::activity
