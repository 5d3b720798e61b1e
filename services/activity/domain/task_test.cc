#include "domain/task.h"

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
const absl::Time kFriday = kMonday + absl::Hours(24 * 4);

Task CallBack() {
  Task task;
  task.set_title(" Call back about the quote ");
  task.set_assignee_id("rep-1");
  *task.mutable_due_time() = ToProto(kFriday);
  task.set_contact_id("c1");
  task.set_channel("phone");
  return task;
}

CurrentTask Scheduled() {
  return Then<TaskAggregate>(std::nullopt,
                             DecideScheduleTask(std::nullopt, kMonday, "t1", CallBack(), kLimits));
}

TEST(TaskTest, ScheduleIndexesByStatusAssigneeAndDueTime) {
  const CurrentTask task = Scheduled();
  ASSERT_TRUE(task);
  EXPECT_EQ(task->state.name(), "tasks/t1");
  EXPECT_EQ(task->state.title(), "Call back about the quote");
  EXPECT_EQ(task->state.status(), v1::TASK_STATUS_OPEN);
  const std::string due = TimeKey(kFriday);
  EXPECT_THAT(TaskAggregate::IndexKeys("t1", task->state),
              UnorderedElementsAre("task/open/all/" + due + "/t1",
                                   "task/open/assignee/rep-1/" + due + "/t1"));
  EXPECT_THAT(DecideScheduleTask(task, kMonday, "t1", CallBack(), kLimits),
              StatusIs(absl::StatusCode::kAlreadyExists));
}

TEST(TaskTest, ScheduleNamesEveryBadField) {
  Task bad;
  bad.set_lead_id("no/slash");
  EXPECT_THAT(
      Fields(DecideScheduleTask(std::nullopt, kMonday, "t1", bad, kLimits)),
      UnorderedElementsAre("task.title", "task.assignee_id", "task.due_time", "task.lead_id"));
  Task far = CallBack();
  *far.mutable_due_time() = ToProto(kMonday + absl::Hours(24 * 401));
  EXPECT_THAT(Fields(DecideScheduleTask(std::nullopt, kMonday, "t1", far, kLimits)),
              ElementsAre("task.due_time"));
  Task overdue = CallBack();  // an import may bring tasks already overdue
  *overdue.mutable_due_time() = ToProto(kMonday - absl::Hours(24));
  EXPECT_TRUE(DecideScheduleTask(std::nullopt, kMonday, "t1", overdue, kLimits).ok());
  EXPECT_THAT(DecideScheduleTask(std::nullopt, kMonday, "bad id", CallBack(), kLimits),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(TaskTest, CompletingTwiceIsRefused) {
  const CurrentTask task = Scheduled();
  const CurrentTask done =
      Then<TaskAggregate>(task, DecideCompleteTask(task, kFriday - absl::Hours(1)));
  ASSERT_TRUE(done);
  EXPECT_EQ(done->state.status(), v1::TASK_STATUS_COMPLETED);
  EXPECT_EQ(FromProto(done->state.complete_time()), kFriday - absl::Hours(1));
  EXPECT_THAT(TaskAggregate::IndexKeys("t1", done->state),
              ElementsAre("task/completed/all/" + TimeKey(kFriday) + "/t1",
                          "task/completed/assignee/rep-1/" + TimeKey(kFriday) + "/t1"));
  EXPECT_THAT(DecideCompleteTask(done, kFriday), StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_THAT(DecideCancelTask(done, "", kLimits), StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_THAT(DecideReassignTask(done, "rep-2", kLimits),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_THAT(DecideCompleteTask(std::nullopt, kFriday), StatusIs(absl::StatusCode::kNotFound));
}

TEST(TaskTest, CancelIsFinal) {
  const CurrentTask task = Scheduled();
  const CurrentTask cancelled =
      Then<TaskAggregate>(task, DecideCancelTask(task, "deal lost", kLimits));
  ASSERT_TRUE(cancelled);
  EXPECT_EQ(cancelled->state.status(), v1::TASK_STATUS_CANCELLED);
  EXPECT_EQ(cancelled->state.cancel_reason(), "deal lost");
  EXPECT_THAT(DecideCompleteTask(cancelled, kFriday),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_THAT(Fields(DecideCancelTask(task, std::string(kLimits.max_reason + 1, 'x'), kLimits)),
              ElementsAre("reason"));
}

TEST(TaskTest, ReassignRecordsWhoHadIt) {
  const CurrentTask task = Scheduled();
  auto decided = DecideReassignTask(task, "rep-2", kLimits);
  ASSERT_TRUE(decided.ok()) << decided.status();
  const auto& event = static_cast<const v1::TaskReassigned&>(*decided->front());
  EXPECT_EQ(event.previous_assignee_id(), "rep-1");
  EXPECT_EQ(event.task().assignee_id(), "rep-2");
  const CurrentTask reassigned = Then<TaskAggregate>(task, decided);
  EXPECT_THAT(DecideReassignTask(reassigned, "rep-2", kLimits),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_THAT(Fields(DecideReassignTask(task, "", kLimits)), ElementsAre("assignee_id"));
}

}  // namespace
}  // namespace crm::activity
