#include "domain/activity.h"

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "crm/activity/v1/events.pb.h"
#include "crm/common/time.h"
#include "crm/eventsourcing/full_state.h"

namespace crm::activity {
namespace {

using v1::ActivityStatus;

template <typename Event>
eventsourcing::Events EmitActivity(Activity activity) {
  auto event = std::make_unique<Event>();
  *event->mutable_activity() = std::move(activity);
  return eventsourcing::Emit(std::move(event));
}

// Normalises the fields a log request sets; every fault named in `check`.
Activity Normalize(FieldChecker& check, const Activity& in, const ActivityLimits& limits) {
  Activity out;
  if (in.type() == v1::ACTIVITY_TYPE_UNSPECIFIED || !v1::ActivityType_IsValid(in.type())) {
    check.Invalid("activity.type", "is required: call, email, meeting, visit, note or chat");
  }
  out.set_type(in.type());
  out.set_channel(check.Text("activity.channel", in.channel(), limits.max_channel));
  if (out.channel().empty()) {
    check.Invalid("activity.channel", "is required (the channel it came through)");
  }
  out.set_owner_id(PersonId(check, "activity.owner_id", in.owner_id(), limits));
  if (out.owner_id().empty()) check.Invalid("activity.owner_id", "is required (the rep)");
  out.set_contact_id(check.Id("activity.contact_id", in.contact_id()));
  out.set_lead_id(check.Id("activity.lead_id", in.lead_id()));
  if (out.contact_id().empty() && out.lead_id().empty()) {
    check.Invalid("activity.contact_id", "name the contact or the lead the activity is about");
  }
  out.set_account_id(check.Id("activity.account_id", in.account_id()));
  out.set_opportunity_id(check.Id("activity.opportunity_id", in.opportunity_id()));
  out.set_case_id(check.Id("activity.case_id", in.case_id()));
  out.set_subject(check.Text("activity.subject", in.subject(), limits.max_subject));
  out.set_body(check.Text("activity.body", in.body(), limits.max_body));
  out.set_outcome(check.Text("activity.outcome", in.outcome(), limits.max_text));
  if (in.duration_seconds() < 0 || in.duration_seconds() > limits.max_duration_seconds) {
    check.Invalid("activity.duration_seconds",
                  absl::StrCat("must be 0 to ", limits.max_duration_seconds));
  }
  out.set_duration_seconds(in.duration_seconds());
  return out;
}

absl::Status NotScheduled(const Activity& activity, const std::string& what) {
  return absl::FailedPreconditionError(absl::StrCat("activity ", activity.activity_id(), " is ",
                                                    StatusKey(activity.status()),
                                                    ": only scheduled activities can be ", what));
}

}  // namespace

std::string TypeKey(v1::ActivityType type) {
  return absl::AsciiStrToLower(v1::ActivityType_Name(type).substr(strlen("ACTIVITY_TYPE_")));
}

std::string StatusKey(ActivityStatus status) {
  return absl::AsciiStrToLower(v1::ActivityStatus_Name(status).substr(strlen("ACTIVITY_STATUS_")));
}

void ActivityAggregate::Evolve(Activity& state, const eventstore::EventEnvelope& event) {
  eventsourcing::EvolveFromFullState<v1::ActivityLogged, v1::ActivityUpdated, v1::ActivityCompleted,
                                     v1::ActivityCancelled>(
      state, event, [](const auto& e) { return e.activity(); });
}

std::vector<std::string> ActivityAggregate::IndexKeys(const std::string& id,
                                                      const Activity& state) {
  const absl::Time at = FromProto(state.occurred_at());
  std::vector<std::string> keys = {
      absl::StrCat("activity/rep/", state.owner_id(), "/", TimeKey(at), "/", id)};
  if (!state.contact_id().empty()) {
    keys.push_back(
        absl::StrCat("activity/contact/", state.contact_id(), "/", InvertedTimeKey(at), "/", id));
  }
  if (!state.lead_id().empty()) {
    keys.push_back(
        absl::StrCat("activity/lead/", state.lead_id(), "/", InvertedTimeKey(at), "/", id));
  }
  return keys;
}

absl::Status CheckActivityFields(const Activity& fields, const ActivityLimits& limits) {
  FieldChecker check;
  Normalize(check, fields, limits);
  return check.Result();
}

absl::StatusOr<eventsourcing::Events> DecideLogActivity(const CurrentActivity& current,
                                                        absl::Time occurred_at,
                                                        const std::string& activity_id,
                                                        const Activity& fields,
                                                        std::optional<absl::Time> scheduled_time,
                                                        const ActivityLimits& limits) {
  if (absl::Status id = ValidateId(activity_id, "activity_id"); !id.ok()) return id;
  if (current) {
    return absl::AlreadyExistsError(absl::StrCat("activity ", activity_id, " exists"));
  }
  FieldChecker check;
  Activity activity = Normalize(check, fields, limits);
  if (scheduled_time) {
    if (*scheduled_time < occurred_at || *scheduled_time > occurred_at + limits.max_ahead) {
      check.Invalid("scheduled_time", "must be from occurred_at (default now) to 400 days later");
    }
    if (activity.type() == v1::ACTIVITY_TYPE_NOTE) {
      check.Invalid("scheduled_time", "a note cannot be scheduled");
    }
  }
  if (absl::Status checked = check.Result(); !checked.ok()) return checked;

  activity.set_name(absl::StrCat("activities/", activity_id));
  activity.set_activity_id(activity_id);
  activity.set_status(scheduled_time ? v1::ACTIVITY_STATUS_SCHEDULED : v1::ACTIVITY_STATUS_DONE);
  *activity.mutable_occurred_at() = ToProto(scheduled_time.value_or(occurred_at));
  *activity.mutable_create_time() = ToProto(occurred_at);
  *activity.mutable_update_time() = ToProto(occurred_at);
  return EmitActivity<v1::ActivityLogged>(std::move(activity));
}

absl::StatusOr<eventsourcing::Events> DecideUpdateActivity(const CurrentActivity& current,
                                                           const Activity& patch,
                                                           const google::protobuf::FieldMask& mask,
                                                           const ActivityLimits& limits) {
  FieldChecker check;
  if (mask.paths().empty()) check.Invalid("update_mask", "name the fields to set");
  Activity updated = current ? current->state : Activity();
  std::vector<std::string> changed;
  for (const std::string& path : mask.paths()) {
    const std::string field = "activity." + path;
    std::string before;
    if (path == "subject") {
      before = updated.subject();
      updated.set_subject(check.Text(field, patch.subject(), limits.max_subject));
      if (updated.subject() != before) changed.push_back(path);
    } else if (path == "body") {
      before = updated.body();
      updated.set_body(check.Text(field, patch.body(), limits.max_body));
      if (updated.body() != before) changed.push_back(path);
    } else if (path == "outcome") {
      before = updated.outcome();
      updated.set_outcome(check.Text(field, patch.outcome(), limits.max_text));
      if (updated.outcome() != before) changed.push_back(path);
    } else if (path == "duration_seconds") {
      if (patch.duration_seconds() < 0 || patch.duration_seconds() > limits.max_duration_seconds) {
        check.Invalid(field, absl::StrCat("must be 0 to ", limits.max_duration_seconds));
      }
      if (updated.duration_seconds() != patch.duration_seconds()) changed.push_back(path);
      updated.set_duration_seconds(patch.duration_seconds());
    } else {
      check.Invalid("update_mask", absl::StrCat("'", path, "' is not a field that can be set"));
    }
  }
  if (absl::Status checked = check.Result(); !checked.ok()) return checked;
  if (!current) return absl::NotFoundError("activity not found");
  if (current->state.status() == v1::ACTIVITY_STATUS_CANCELLED) {
    return absl::FailedPreconditionError(
        absl::StrCat("activity ", current->state.activity_id(), " was cancelled"));
  }
  if (changed.empty()) return eventsourcing::Events();
  auto event = std::make_unique<v1::ActivityUpdated>();
  *event->mutable_activity() = std::move(updated);
  for (std::string& path : changed) event->add_changed_fields(std::move(path));
  return eventsourcing::Emit(std::move(event));
}

absl::StatusOr<eventsourcing::Events> DecideCompleteActivity(
    const CurrentActivity& current, absl::Time occurred_at, const std::string& outcome,
    const std::string& body, int64_t duration_seconds, const ActivityLimits& limits) {
  FieldChecker check;
  const std::string how = check.Text("outcome", outcome, limits.max_text);
  const std::string report = check.Text("body", body, limits.max_body);
  if (duration_seconds < 0 || duration_seconds > limits.max_duration_seconds) {
    check.Invalid("duration_seconds", absl::StrCat("must be 0 to ", limits.max_duration_seconds));
  }
  if (absl::Status checked = check.Result(); !checked.ok()) return checked;
  if (!current) return absl::NotFoundError("activity not found");
  if (current->state.status() != v1::ACTIVITY_STATUS_SCHEDULED) {
    return NotScheduled(current->state, "completed");
  }
  Activity activity = current->state;
  activity.set_status(v1::ACTIVITY_STATUS_DONE);
  *activity.mutable_occurred_at() = ToProto(occurred_at);
  if (!how.empty()) activity.set_outcome(how);
  if (!report.empty()) activity.set_body(report);
  if (duration_seconds > 0) activity.set_duration_seconds(duration_seconds);
  return EmitActivity<v1::ActivityCompleted>(std::move(activity));
}

absl::StatusOr<eventsourcing::Events> DecideCancelActivity(const CurrentActivity& current,
                                                           const std::string& reason,
                                                           const ActivityLimits& limits) {
  FieldChecker check;
  const std::string why = check.Text("reason", reason, limits.max_reason);
  if (absl::Status checked = check.Result(); !checked.ok()) return checked;
  if (!current) return absl::NotFoundError("activity not found");
  if (current->state.status() != v1::ACTIVITY_STATUS_SCHEDULED) {
    return NotScheduled(current->state, "cancelled");
  }
  Activity activity = current->state;
  activity.set_status(v1::ACTIVITY_STATUS_CANCELLED);
  activity.set_cancel_reason(why);
  return EmitActivity<v1::ActivityCancelled>(std::move(activity));
}

}  // namespace crm::activity
