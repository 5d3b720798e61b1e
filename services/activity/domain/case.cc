#include "domain/case.h"

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "crm/activity/v1/events.pb.h"
#include "crm/common/time.h"
#include "crm/eventsourcing/full_state.h"

namespace crm::activity {
namespace {

template <typename Event>
std::unique_ptr<Event> CaseEvent(Case state) {
  auto event = std::make_unique<Event>();
  *event->mutable_case_() = std::move(state);
  return event;
}

Case Normalize(FieldChecker& check, const Case& in, const ActivityLimits& limits) {
  Case out;
  out.set_subject(check.Text("case.subject", in.subject(), limits.max_subject));
  if (out.subject().empty()) check.Invalid("case.subject", "is required");
  out.set_description(check.Text("case.description", in.description(), limits.max_body));
  out.set_channel(check.Text("case.channel", in.channel(), limits.max_channel));
  if (out.channel().empty()) {
    check.Invalid("case.channel", "is required (the channel it came through)");
  }
  if (in.priority() == v1::CASE_PRIORITY_UNSPECIFIED || !v1::CasePriority_IsValid(in.priority())) {
    check.Invalid("case.priority", "is required: low, normal, high or urgent");
  }
  out.set_priority(in.priority());
  out.set_contact_id(check.Id("case.contact_id", in.contact_id()));
  if (out.contact_id().empty()) check.Invalid("case.contact_id", "is required (the customer)");
  out.set_account_id(check.Id("case.account_id", in.account_id()));
  out.set_assignee_id(PersonId(check, "case.assignee_id", in.assignee_id(), limits));
  return out;
}

absl::Status CheckStatus(const CurrentCase& current, v1::CaseStatus required,
                         const std::string& what) {
  if (!current) return absl::NotFoundError("case not found");
  if (current->state.status() == required) return absl::OkStatus();
  return absl::FailedPreconditionError(absl::StrCat("case ", current->state.case_id(), " is ",
                                                    StatusKey(current->state.status()), ": only ",
                                                    StatusKey(required), " cases can be ", what));
}

}  // namespace

std::string StatusKey(v1::CaseStatus status) {
  return absl::AsciiStrToLower(v1::CaseStatus_Name(status).substr(strlen("CASE_STATUS_")));
}

std::string PriorityKey(v1::CasePriority priority) {
  return absl::AsciiStrToLower(v1::CasePriority_Name(priority).substr(strlen("CASE_PRIORITY_")));
}

void CaseAggregate::Evolve(Case& state, const eventstore::EventEnvelope& event) {
  eventsourcing::EvolveFromFullState<v1::CaseOpened, v1::CaseAssigned, v1::CaseNoteAdded,
                                     v1::CaseResolved, v1::CaseReopened>(
      state, event, [](const auto& e) { return e.case_(); });
}

std::vector<std::string> CaseAggregate::IndexKeys(const std::string& id, const Case& state) {
  const std::string status = StatusKey(state.status());
  // Most urgent first: URGENT sorts as 0, LOW as 3.
  const std::string urgency(1,
                            static_cast<char>('0' + v1::CASE_PRIORITY_URGENT - state.priority()));
  const std::string opened = TimeKey(FromProto(state.open_time()));
  std::vector<std::string> keys = {
      absl::StrCat("case/", status, "/all/", urgency, "/", opened, "/", id),
      absl::StrCat("case/", status, "/priority/", PriorityKey(state.priority()), "/", opened, "/",
                   id)};
  if (!state.assignee_id().empty()) {
    keys.push_back(absl::StrCat("case/", status, "/assignee/", state.assignee_id(), "/", urgency,
                                "/", opened, "/", id));
  }
  return keys;
}

absl::Status CheckCaseFields(const Case& fields, const ActivityLimits& limits) {
  FieldChecker check;
  Normalize(check, fields, limits);
  return check.Result();
}

absl::StatusOr<eventsourcing::Events> DecideOpenCase(const CurrentCase& current,
                                                     absl::Time occurred_at,
                                                     const std::string& case_id, const Case& fields,
                                                     const ActivityLimits& limits) {
  if (absl::Status id = ValidateId(case_id, "case_id"); !id.ok()) return id;
  if (current) return absl::AlreadyExistsError(absl::StrCat("case ", case_id, " exists"));
  FieldChecker check;
  Case opened = Normalize(check, fields, limits);
  if (absl::Status checked = check.Result(); !checked.ok()) return checked;
  opened.set_name(absl::StrCat("cases/", case_id));
  opened.set_case_id(case_id);
  opened.set_status(v1::CASE_STATUS_OPEN);
  *opened.mutable_open_time() = ToProto(occurred_at);
  *opened.mutable_create_time() = ToProto(occurred_at);
  *opened.mutable_update_time() = ToProto(occurred_at);
  return eventsourcing::Emit(CaseEvent<v1::CaseOpened>(std::move(opened)));
}

absl::StatusOr<eventsourcing::Events> DecideAssignCase(const CurrentCase& current,
                                                       const std::string& assignee_id,
                                                       const ActivityLimits& limits) {
  FieldChecker check;
  const std::string assignee = PersonId(check, "assignee_id", assignee_id, limits);
  if (assignee.empty()) check.Invalid("assignee_id", "is required");
  if (absl::Status checked = check.Result(); !checked.ok()) return checked;
  if (absl::Status open = CheckStatus(current, v1::CASE_STATUS_OPEN, "assigned"); !open.ok()) {
    return open;
  }
  if (current->state.assignee_id() == assignee) {
    return absl::FailedPreconditionError(
        absl::StrCat("case ", current->state.case_id(), " is already assigned to ", assignee));
  }
  auto event = CaseEvent<v1::CaseAssigned>(current->state);
  event->set_previous_assignee_id(current->state.assignee_id());
  event->mutable_case_()->set_assignee_id(assignee);
  return eventsourcing::Emit(std::move(event));
}

absl::StatusOr<eventsourcing::Events> DecideAddCaseNote(const CurrentCase& current,
                                                        const std::string& text,
                                                        const ActivityLimits& limits) {
  FieldChecker check;
  const std::string note = check.Text("text", text, limits.max_note);
  if (note.empty()) check.Invalid("text", "is required");
  if (absl::Status checked = check.Result(); !checked.ok()) return checked;
  if (!current) return absl::NotFoundError("case not found");
  if (current->state.note_count() >= limits.max_notes) {
    return absl::ResourceExhaustedError(
        absl::StrCat("case ", current->state.case_id(), " has ", limits.max_notes, " notes"));
  }
  auto event = CaseEvent<v1::CaseNoteAdded>(current->state);
  event->mutable_case_()->set_note_count(current->state.note_count() + 1);
  event->set_text(note);
  return eventsourcing::Emit(std::move(event));
}

absl::StatusOr<eventsourcing::Events> DecideResolveCase(const CurrentCase& current,
                                                        absl::Time occurred_at,
                                                        const std::string& resolution,
                                                        const ActivityLimits& limits) {
  FieldChecker check;
  const std::string how = check.Text("resolution", resolution, limits.max_note);
  if (how.empty()) check.Invalid("resolution", "say how the case was resolved");
  if (absl::Status checked = check.Result(); !checked.ok()) return checked;
  if (absl::Status open = CheckStatus(current, v1::CASE_STATUS_OPEN, "resolved"); !open.ok()) {
    return open;
  }
  Case resolved = current->state;
  resolved.set_status(v1::CASE_STATUS_RESOLVED);
  resolved.set_resolution(how);
  *resolved.mutable_resolve_time() = ToProto(occurred_at);
  return eventsourcing::Emit(CaseEvent<v1::CaseResolved>(std::move(resolved)));
}

absl::StatusOr<eventsourcing::Events> DecideReopenCase(const CurrentCase& current,
                                                       const std::string& reason,
                                                       const ActivityLimits& limits) {
  FieldChecker check;
  const std::string why = check.Text("reason", reason, limits.max_reason);
  if (absl::Status checked = check.Result(); !checked.ok()) return checked;
  if (absl::Status resolved = CheckStatus(current, v1::CASE_STATUS_RESOLVED, "reopened");
      !resolved.ok()) {
    return resolved;
  }
  auto event = CaseEvent<v1::CaseReopened>(current->state);
  Case& reopened = *event->mutable_case_();
  reopened.set_status(v1::CASE_STATUS_OPEN);
  reopened.clear_resolution();
  reopened.clear_resolve_time();
  reopened.set_reopen_count(current->state.reopen_count() + 1);
  event->set_reason(why);
  return eventsourcing::Emit(std::move(event));
}

}  // namespace crm::activity
