#include "domain/task.h"

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "crm/activity/v1/events.pb.h"
#include "crm/common/time.h"
#include "crm/eventsourcing/full_state.h"

namespace crm::activity {
namespace {

template <typename Event>
std::unique_ptr<Event> TaskEvent(Task task) {
  auto event = std::make_unique<Event>();
  *event->mutable_task() = std::move(task);
  return event;
}

Task Normalize(FieldChecker& check, const Task& in, const ActivityLimits& limits) {
  Task out;
  out.set_title(check.Text("task.title", in.title(), limits.max_subject));
  if (out.title().empty()) check.Invalid("task.title", "is required (what is to be done)");
  out.set_description(check.Text("task.description", in.description(), limits.max_body));
  out.set_assignee_id(PersonId(check, "task.assignee_id", in.assignee_id(), limits));
  if (out.assignee_id().empty()) check.Invalid("task.assignee_id", "is required");
  if (!in.has_due_time()) {
    check.Invalid("task.due_time", "is required");
  } else if (!IsValidTimestamp(in.due_time())) {
    check.Invalid("task.due_time", "not a valid time");
  } else {
    *out.mutable_due_time() = in.due_time();
  }
  out.set_contact_id(check.Id("task.contact_id", in.contact_id()));
  out.set_lead_id(check.Id("task.lead_id", in.lead_id()));
  out.set_account_id(check.Id("task.account_id", in.account_id()));
  out.set_opportunity_id(check.Id("task.opportunity_id", in.opportunity_id()));
  out.set_case_id(check.Id("task.case_id", in.case_id()));
  out.set_channel(check.Text("task.channel", in.channel(), limits.max_channel));
  return out;
}

// OK for an open task; NOT_FOUND or FAILED_PRECONDITION naming what it is.
absl::Status CheckOpen(const CurrentTask& current, const std::string& what) {
  if (!current) return absl::NotFoundError("task not found");
  if (current->state.status() == v1::TASK_STATUS_OPEN) return absl::OkStatus();
  return absl::FailedPreconditionError(absl::StrCat("task ", current->state.task_id(), " is ",
                                                    StatusKey(current->state.status()),
                                                    ": only open tasks can be ", what));
}

}  // namespace

std::string StatusKey(v1::TaskStatus status) {
  return absl::AsciiStrToLower(v1::TaskStatus_Name(status).substr(strlen("TASK_STATUS_")));
}

void TaskAggregate::Evolve(Task& state, const eventstore::EventEnvelope& event) {
  eventsourcing::EvolveFromFullState<v1::TaskScheduled, v1::TaskCompleted, v1::TaskCancelled,
                                     v1::TaskReassigned>(state, event,
                                                         [](const auto& e) { return e.task(); });
}

std::vector<std::string> TaskAggregate::IndexKeys(const std::string& id, const Task& state) {
  const std::string status = StatusKey(state.status());
  const std::string due = TimeKey(FromProto(state.due_time()));
  return {absl::StrCat("task/", status, "/all/", due, "/", id),
          absl::StrCat("task/", status, "/assignee/", state.assignee_id(), "/", due, "/", id)};
}

absl::Status CheckTaskFields(const Task& fields, const ActivityLimits& limits) {
  FieldChecker check;
  Normalize(check, fields, limits);
  return check.Result();
}

absl::StatusOr<eventsourcing::Events> DecideScheduleTask(const CurrentTask& current,
                                                         absl::Time occurred_at,
                                                         const std::string& task_id,
                                                         const Task& fields,
                                                         const ActivityLimits& limits) {
  if (absl::Status id = ValidateId(task_id, "task_id"); !id.ok()) return id;
  if (current) return absl::AlreadyExistsError(absl::StrCat("task ", task_id, " exists"));
  FieldChecker check;
  Task task = Normalize(check, fields, limits);
  if (task.has_due_time() &&
      absl::AbsDuration(FromProto(task.due_time()) - occurred_at) > limits.max_ahead) {
    check.Invalid("task.due_time", "must be within 400 days of occurred_at (default now)");
  }
  if (absl::Status checked = check.Result(); !checked.ok()) return checked;
  task.set_name(absl::StrCat("tasks/", task_id));
  task.set_task_id(task_id);
  task.set_status(v1::TASK_STATUS_OPEN);
  *task.mutable_create_time() = ToProto(occurred_at);
  *task.mutable_update_time() = ToProto(occurred_at);
  return eventsourcing::Emit(TaskEvent<v1::TaskScheduled>(std::move(task)));
}

absl::StatusOr<eventsourcing::Events> DecideCompleteTask(const CurrentTask& current,
                                                         absl::Time occurred_at) {
  if (absl::Status open = CheckOpen(current, "completed"); !open.ok()) return open;
  Task task = current->state;
  task.set_status(v1::TASK_STATUS_COMPLETED);
  *task.mutable_complete_time() = ToProto(occurred_at);
  return eventsourcing::Emit(TaskEvent<v1::TaskCompleted>(std::move(task)));
}

absl::StatusOr<eventsourcing::Events> DecideCancelTask(const CurrentTask& current,
                                                       const std::string& reason,
                                                       const ActivityLimits& limits) {
  FieldChecker check;
  const std::string why = check.Text("reason", reason, limits.max_reason);
  if (absl::Status checked = check.Result(); !checked.ok()) return checked;
  if (absl::Status open = CheckOpen(current, "cancelled"); !open.ok()) return open;
  Task task = current->state;
  task.set_status(v1::TASK_STATUS_CANCELLED);
  task.set_cancel_reason(why);
  return eventsourcing::Emit(TaskEvent<v1::TaskCancelled>(std::move(task)));
}

absl::StatusOr<eventsourcing::Events> DecideReassignTask(const CurrentTask& current,
                                                         const std::string& assignee_id,
                                                         const ActivityLimits& limits) {
  FieldChecker check;
  const std::string assignee = PersonId(check, "assignee_id", assignee_id, limits);
  if (assignee.empty()) check.Invalid("assignee_id", "is required");
  if (absl::Status checked = check.Result(); !checked.ok()) return checked;
  if (absl::Status open = CheckOpen(current, "reassigned"); !open.ok()) return open;
  if (current->state.assignee_id() == assignee) {
    return absl::FailedPreconditionError(
        absl::StrCat("task ", current->state.task_id(), " is already assigned to ", assignee));
  }
  Task task = current->state;
  auto event = TaskEvent<v1::TaskReassigned>(task);
  event->set_previous_assignee_id(task.assignee_id());
  event->mutable_task()->set_assignee_id(assignee);
  return eventsourcing::Emit(std::move(event));
}

}  // namespace crm::activity
