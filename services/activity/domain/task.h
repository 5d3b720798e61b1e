#pragma once

// The task aggregate: something a rep has to do by a due time.
//   OPEN -> COMPLETED | CANCELLED (both final); an open task may be reassigned.

#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "crm/activity/v1/activity.pb.h"
#include "crm/eventsourcing/repository.h"
#include "domain/common.h"

namespace crm::activity {

using v1::Task;
using CurrentTask = std::optional<eventsourcing::Versioned<Task>>;

std::string StatusKey(v1::TaskStatus status);  // "open"

struct TaskAggregate {
  using State = Task;
  static constexpr char kStreamType[] = "task";
  static void Evolve(Task& state, const eventstore::EventEnvelope& event);
  // By status, and by status and assignee, in due-time order.
  static std::vector<std::string> IndexKeys(const std::string& id, const Task& state);
};

// Checks the fields a schedule request sets, before the service asks about references.
absl::Status CheckTaskFields(const Task& fields, const ActivityLimits& limits);

// `fields`: title (required), description, assignee_id (required), due_time (required, within
// 400 days of `occurred_at` either way), contact_id, lead_id, account_id, opportunity_id,
// case_id, channel.
absl::StatusOr<eventsourcing::Events> DecideScheduleTask(const CurrentTask& current,
                                                         absl::Time occurred_at,
                                                         const std::string& task_id,
                                                         const Task& fields,
                                                         const ActivityLimits& limits);
// Done at `occurred_at`: on time when at or before the due time.
absl::StatusOr<eventsourcing::Events> DecideCompleteTask(const CurrentTask& current,
                                                         absl::Time occurred_at);
absl::StatusOr<eventsourcing::Events> DecideCancelTask(const CurrentTask& current,
                                                       const std::string& reason,
                                                       const ActivityLimits& limits);
absl::StatusOr<eventsourcing::Events> DecideReassignTask(const CurrentTask& current,
                                                         const std::string& assignee_id,
                                                         const ActivityLimits& limits);

}  // namespace crm::activity
