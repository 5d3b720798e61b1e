#include "domain/facts.h"

#include "absl/container/flat_hash_map.h"
#include "absl/strings/ascii.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"
#include "absl/strings/str_cat.h"
#include "crm/activity/v1/activity.pb.h"
#include "crm/pipeline/v1/pipeline.pb.h"

namespace crm::metrics {
namespace {

constexpr int64_t kMicrosPerHour = int64_t{3'600'000'000};
constexpr double kMicrosPerSecond = 1e6;

// Every value of the enum by number: "ACTIVITY_TYPE_VISIT" -> "visit". Built once, since
// KPIs label a dimension for every record they visit.
absl::flat_hash_map<int, std::string> Labels(const google::protobuf::EnumDescriptor* descriptor,
                                             absl::string_view prefix) {
  absl::flat_hash_map<int, std::string> labels;
  for (int i = 0; i < descriptor->value_count(); ++i) {
    absl::string_view name = descriptor->value(i)->name();
    absl::ConsumePrefix(&name, prefix);
    labels.emplace(descriptor->value(i)->number(), absl::AsciiStrToLower(name));
  }
  return labels;
}

std::string Label(const absl::flat_hash_map<int, std::string>& labels, int value) {
  auto it = labels.find(value);
  return it != labels.end() ? it->second : absl::StrCat(value);
}

// The task's assignee at `time_us`: the latest assignment at or before it, else the earliest
// (a task scheduled after its due time).
const std::string& AssigneeAt(const pv::TaskView& task, int64_t time_us) {
  const pv::Assignment* found = nullptr;
  const pv::Assignment* earliest = nullptr;
  for (const pv::Assignment& assignment : task.assignments()) {
    if (earliest == nullptr || assignment.time_us() < earliest->time_us()) earliest = &assignment;
    if (assignment.time_us() <= time_us &&
        (found == nullptr || assignment.time_us() >= found->time_us())) {
      found = &assignment;
    }
  }
  if (found == nullptr) found = earliest;
  return found != nullptr ? found->assignee_id() : task.assignee_id();
}

Fact& Add(KpiFacts& facts, const char* kpi, int64_t time_us, DimValues dims) {
  Fact& fact = facts.emplace_back(kpi, Fact{.time_us = time_us, .dims = std::move(dims)}).second;
  fact.cell.facts = 1;
  return fact;
}

}  // namespace

std::string TypeLabel(int type) {
  static const auto* labels = new absl::flat_hash_map<int, std::string>(
      Labels(activity::v1::ActivityType_descriptor(), "ACTIVITY_TYPE_"));
  return Label(*labels, type);
}

std::string PriorityLabel(int priority) {
  static const auto* labels = new absl::flat_hash_map<int, std::string>(
      Labels(activity::v1::CasePriority_descriptor(), "CASE_PRIORITY_"));
  return Label(*labels, priority);
}

KpiFacts ActivityFacts(const pv::ActivityView& activity) {
  KpiFacts facts;
  if (activity.status() != activity::v1::ACTIVITY_STATUS_DONE) return facts;
  const int64_t at = activity.time_us();
  Add(facts, "activities_logged", at,
      {activity.owner_id(), activity.channel(), TypeLabel(activity.type())})
      .cell.Count("count");
  if (activity.type() == activity::v1::ACTIVITY_TYPE_MEETING ||
      activity.type() == activity::v1::ACTIVITY_TYPE_VISIT) {
    Cell& visit = Add(facts, "visit_report_compliance", at, {activity.owner_id()}).cell;
    visit.Count("visits");
    if (activity.has_report_recorded_us() &&
        activity.report_recorded_us() <= at + 48 * kMicrosPerHour) {
      visit.Count("compliant");
    }
  }
  if (const int64_t delay = activity.first_recorded_us() - at; delay >= 0) {
    Cell& logged = Add(facts, "logging_delay_seconds", at, {activity.owner_id()}).cell;
    logged.Count("logged");
    logged.Sample("delay", static_cast<double>(delay) / kMicrosPerSecond);
    if (delay <= 24 * kMicrosPerHour) logged.Count("within_24h");
  }
  return facts;
}

KpiFacts LeadFacts(const pv::LeadView& lead) {
  KpiFacts facts;
  if (!lead.captured()) return facts;
  const int64_t at = lead.captured_us();
  Add(facts, "leads_captured", at, {lead.source(), lead.channel()}).cell.Count("count");
  Cell& decided = Add(facts, "lead_qualification_rate", at, {lead.source()}).cell;
  if (lead.status() == pipeline::v1::LEAD_STATUS_QUALIFIED ||
      lead.status() == pipeline::v1::LEAD_STATUS_CONVERTED) {
    decided.Count("qualified");
    decided.Count("decided");
  } else if (lead.status() == pipeline::v1::LEAD_STATUS_DISQUALIFIED) {
    decided.Count("disqualified");
    decided.Count("decided");
  }
  Cell& converted = Add(facts, "lead_conversion_rate", at, {lead.source()}).cell;
  converted.Count("captured");
  if (lead.status() == pipeline::v1::LEAD_STATUS_CONVERTED) converted.Count("converted");
  return facts;
}

KpiFacts TaskFacts(const pv::TaskView& task) {
  KpiFacts facts;
  if (task.status() == activity::v1::TASK_STATUS_CANCELLED) return facts;
  Cell& due = Add(facts, "tasks_on_time_ratio", task.due_us(), {AssigneeAt(task, task.due_us())})
                  .cell;
  due.Count("due");
  if (task.status() == activity::v1::TASK_STATUS_COMPLETED && task.has_completed_us() &&
      task.completed_us() <= task.due_us()) {
    due.Count("on_time");
  }
  return facts;
}

}  // namespace crm::metrics
