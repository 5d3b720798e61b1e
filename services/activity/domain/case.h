#pragma once

// The customer case aggregate: a service request worked until it is resolved.
//   OPEN -> RESOLVED -> OPEN (reopened) ...; assigned while open; notes in any status.

#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "crm/activity/v1/activity.pb.h"
#include "crm/eventsourcing/repository.h"
#include "domain/common.h"

namespace crm::activity {

using v1::Case;
using CurrentCase = std::optional<eventsourcing::Versioned<Case>>;

std::string StatusKey(v1::CaseStatus status);        // "open"
std::string PriorityKey(v1::CasePriority priority);  // "urgent"

struct CaseAggregate {
  using State = Case;
  static constexpr char kStreamType[] = "case";
  static void Evolve(Case& state, const eventstore::EventEnvelope& event);
  // By status (most urgent first, then oldest), by status and priority, by status and assignee.
  static std::vector<std::string> IndexKeys(const std::string& id, const Case& state);
};

// Checks the fields an open request sets, before the service asks about references.
absl::Status CheckCaseFields(const Case& fields, const ActivityLimits& limits);

// `fields`: subject, channel, priority and contact_id (required), description, account_id,
// assignee_id.
absl::StatusOr<eventsourcing::Events> DecideOpenCase(const CurrentCase& current,
                                                     absl::Time occurred_at,
                                                     const std::string& case_id, const Case& fields,
                                                     const ActivityLimits& limits);
absl::StatusOr<eventsourcing::Events> DecideAssignCase(const CurrentCase& current,
                                                       const std::string& assignee_id,
                                                       const ActivityLimits& limits);
absl::StatusOr<eventsourcing::Events> DecideAddCaseNote(const CurrentCase& current,
                                                        const std::string& text,
                                                        const ActivityLimits& limits);
absl::StatusOr<eventsourcing::Events> DecideResolveCase(const CurrentCase& current,
                                                        absl::Time occurred_at,
                                                        const std::string& resolution,
                                                        const ActivityLimits& limits);
absl::StatusOr<eventsourcing::Events> DecideReopenCase(const CurrentCase& current,
                                                       const std::string& reason,
                                                       const ActivityLimits& limits);

}  // namespace crm::activity
