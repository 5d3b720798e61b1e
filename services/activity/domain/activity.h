#pragma once

// The activity aggregate: one interaction with a customer, from any channel.
//   logged DONE, or SCHEDULED -> DONE | CANCELLED.
// References (contact, lead, account, opportunity, case) are checked by the service before
// deciding; the domain checks their form and that the activity is about someone.

#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "crm/activity/v1/activity.pb.h"
#include "crm/eventsourcing/repository.h"
#include "domain/common.h"
#include "google/protobuf/field_mask.pb.h"

namespace crm::activity {

using v1::Activity;
using CurrentActivity = std::optional<eventsourcing::Versioned<Activity>>;

// As they appear in index keys and messages ("visit", "scheduled").
std::string TypeKey(v1::ActivityType type);
std::string StatusKey(v1::ActivityStatus status);

struct ActivityAggregate {
  using State = Activity;
  static constexpr char kStreamType[] = "activity";
  static void Evolve(Activity& state, const eventstore::EventEnvelope& event);
  // Timelines (contact, lead; newest first) and the rep's activities by time.
  static std::vector<std::string> IndexKeys(const std::string& id, const Activity& state);
};

// Checks the fields a log request sets (ids' form, sizes, type, someone it is about): the
// service calls it before asking other services about the references.
absl::Status CheckActivityFields(const Activity& fields, const ActivityLimits& limits);

// `fields`: type, channel, owner_id, contact_id and/or lead_id, account_id, opportunity_id,
// case_id, subject, body, outcome, duration_seconds. Without `scheduled_time` it happened at
// `occurred_at` (DONE); with it, it is planned for then (SCHEDULED, at or after `occurred_at`).
absl::StatusOr<eventsourcing::Events> DecideLogActivity(
    const CurrentActivity& current, absl::Time occurred_at, const std::string& activity_id,
    const Activity& fields, std::optional<absl::Time> scheduled_time, const ActivityLimits& limits);

// The masked fields among subject, body, outcome, duration_seconds. Nothing changed: no event.
absl::StatusOr<eventsourcing::Events> DecideUpdateActivity(const CurrentActivity& current,
                                                           const Activity& patch,
                                                           const google::protobuf::FieldMask& mask,
                                                           const ActivityLimits& limits);

// SCHEDULED -> DONE at `occurred_at`; non-empty outcome and body and a non-zero duration
// replace the planned ones.
absl::StatusOr<eventsourcing::Events> DecideCompleteActivity(
    const CurrentActivity& current, absl::Time occurred_at, const std::string& outcome,
    const std::string& body, int64_t duration_seconds, const ActivityLimits& limits);

absl::StatusOr<eventsourcing::Events> DecideCancelActivity(const CurrentActivity& current,
                                                           const std::string& reason,
                                                           const ActivityLimits& limits);

}  // namespace crm::activity
