#include "domain/facts.h"

#include <algorithm>
#include <optional>

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

constexpr char kCompleteness[] = "contact_completeness_ratio";
constexpr char kPipelineValue[] = "pipeline_value";
constexpr char kOpenCases[] = "open_cases";

// The changes of a state KPI along a timeline (in time order, distinct times) at its points
// from `from` on: at each point the state before it leaves and its own enters, as one fact of
// their difference when both are under the same dimension values.
template <typename Points, typename StateOf>
void AddChanges(KpiFacts& facts, const char* kpi, const Points& points, int from,
                StateOf state_of) {
  from = std::max(from, 0);
  std::optional<Fact> before;
  if (from > 0 && from <= points.size()) before = state_of(points[from - 1]);
  for (int i = from; i < points.size(); ++i) {
    const auto& point = points[i];
    std::optional<Fact> state = state_of(point);
    auto add = [&](const DimValues& dims, Cell cell) {
      if (!cell.empty()) facts.emplace_back(kpi, Fact{point.time_us(), dims, std::move(cell)});
    };
    if (before && state && before->dims == state->dims) {
      Cell change = state->cell;
      change.Add(before->cell, -1);
      add(state->dims, std::move(change));
    } else {
      if (before) {
        Cell gone;
        gone.Add(before->cell, -1);
        add(before->dims, std::move(gone));
      }
      if (state) add(state->dims, state->cell);
    }
    before = std::move(state);
  }
}

std::optional<Fact> State(DimValues dims) {
  Fact fact{.dims = std::move(dims)};
  fact.cell.facts = 1;
  return fact;
}

// Position of a stage in the pipeline revision an entry was made under (the latest revision
// when that one is unknown); nullopt when the stage is not in it.
std::optional<int> StageIndex(const Pipelines& pipelines, const pv::StageEntry& entry,
                              const std::string& stage_id) {
  auto pipeline = pipelines.find(entry.pipeline_id());
  if (pipeline == pipelines.end() || pipeline->second.revisions().empty()) return std::nullopt;
  const pv::PipelineRevision* revision = nullptr;
  for (const pv::PipelineRevision& candidate : pipeline->second.revisions()) {
    if (candidate.revision() == entry.pipeline_revision()) {
      revision = &candidate;
      break;
    }
    if (revision == nullptr || candidate.revision() > revision->revision()) revision = &candidate;
  }
  for (int i = 0; i < revision->stage_ids_size(); ++i) {
    if (revision->stage_ids(i) == stage_id) return i;
  }
  return std::nullopt;
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

KpiFacts LeadFacts(const pv::LeadView& lead, std::optional<int64_t> first_activity_us) {
  KpiFacts facts;
  if (!lead.captured()) return facts;
  const int64_t at = lead.captured_us();
  Add(facts, "leads_captured", at, {lead.source(), lead.channel()}).cell.Count("count");
  std::optional<int64_t> response = first_activity_us;
  auto consider = [&](int64_t t) { response = response ? std::min(*response, t) : t; };
  if (lead.has_qualified_us()) consider(lead.qualified_us());
  if (lead.has_disqualified_us()) consider(lead.disqualified_us());
  Cell& speed = Add(facts, "speed_to_lead_seconds", at, {lead.source(), lead.channel()}).cell;
  if (response) {
    speed.Count("responded");
    speed.Sample("response",
                 static_cast<double>(std::max<int64_t>(0, *response - at)) / kMicrosPerSecond);
  } else {
    speed.Count("unanswered");
  }
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

bool IsStateKpi(const std::string& kpi) {
  return kpi == kCompleteness || kpi == kPipelineValue || kpi == kOpenCases;
}

std::optional<Fact> ContactState(const pv::ContactPoint& point) {
  if (!point.live()) return std::nullopt;
  std::optional<Fact> state = State({point.owner_id(), point.region()});
  state->cell.Count("contacts");
  if (point.complete()) state->cell.Count("complete");
  return state;
}

std::optional<Fact> OpportunityState(const pv::OpportunityPoint& point) {
  if (point.status() != pipeline::v1::OPPORTUNITY_STATUS_OPEN) return std::nullopt;
  std::optional<Fact> state = State({point.stage_id(), point.owner_id()});
  state->cell.Money("amount", point.currency_code(), point.amount_minor());
  state->cell.Money("weighted", point.currency_code(),
                    static_cast<__int128>(point.amount_minor()) * point.probability_bps());
  return state;
}

std::optional<Fact> CaseState(const pv::CasePoint& point) {
  if (!point.open()) return std::nullopt;
  std::optional<Fact> state = State({PriorityLabel(point.priority())});
  state->cell.Count("count");
  return state;
}

KpiFacts ContactFacts(const pv::ContactView& contact, int from_point) {
  KpiFacts facts;
  if (contact.created()) {
    Add(facts, "duplicate_rate", contact.created_us(), {contact.created_channel()})
        .cell.Count("created");
    if (contact.merged()) {
      Add(facts, "duplicate_rate", contact.merged_us(), {contact.created_channel()})
          .cell.Count("merged");
    }
  }
  AddChanges(facts, kCompleteness, contact.points(), from_point, ContactState);
  return facts;
}

KpiFacts OpportunityFacts(const pv::OpportunityView& opportunity, int from_point) {
  KpiFacts facts;
  if (opportunity.has_close()) {
    const pv::Close& close = opportunity.close();
    const int64_t at = close.time_us();
    Cell& closed = Add(facts, "win_rate", at, {close.owner_id(), close.region()}).cell;
    closed.Count(close.won() ? "won" : "lost");
    closed.Count("closed");
    closed.Money("closed_amount", close.currency_code(), close.amount_minor());
    closed.Money("won_amount", close.currency_code(), close.won() ? close.amount_minor() : 0);
    if (close.won()) {
      if (close.lines().empty()) {
        Add(facts, "won_revenue", at, {"-", close.region()})
            .cell.Money("revenue", close.currency_code(), close.amount_minor());
      }
      for (const pv::ProductAmount& line : close.lines()) {
        Add(facts, "won_revenue", at, {line.product_id(), close.region()})
            .cell.Money("revenue", close.currency_code(), line.amount_minor());
      }
      Cell& cycle = Add(facts, "sales_cycle_days", at, {close.region()}).cell;
      cycle.Count("won");
      cycle.Sample("days",
                   static_cast<double>((at - opportunity.opened_us()) / (24 * kMicrosPerHour)),
                   /*exact=*/true);
      Cell& size = Add(facts, "average_deal_size", at, {close.region()}).cell;
      size.Money("won_amount", close.currency_code(), close.amount_minor());
      size.Money("won_count", close.currency_code(), 1);
    }
  }
  AddChanges(facts, kPipelineValue, opportunity.points(), from_point, OpportunityState);
  return facts;
}

KpiFacts StageFacts(const pv::OpportunityView& opportunity, const Pipelines& pipelines) {
  KpiFacts facts;
  const auto& entries = opportunity.entries();
  for (int i = 0; i < entries.size(); ++i) {
    const pv::StageEntry& entry = entries[i];
    Cell& cell =
        Add(facts, "stage_conversion_rate", entry.time_us(), {entry.pipeline_id(), entry.stage_id()})
            .cell;
    cell.Count("entered");
    bool progressed = false;
    for (int64_t won : opportunity.won_us()) progressed |= won >= entry.time_us();
    const std::optional<int> from = StageIndex(pipelines, entry, entry.stage_id());
    for (int j = i + 1; j < entries.size() && !progressed && from; ++j) {
      const std::optional<int> to = StageIndex(pipelines, entry, entries[j].stage_id());
      progressed = to && *to > *from;
    }
    if (progressed) cell.Count("progressed");
  }
  return facts;
}

bool EnteredStageOf(const pv::OpportunityView& opportunity, const std::string& pipeline_id) {
  for (const pv::StageEntry& entry : opportunity.entries()) {
    if (entry.pipeline_id() == pipeline_id) return true;
  }
  return false;
}

KpiFacts CaseFacts(const pv::CaseView& record, int from_point) {
  KpiFacts facts;
  // Priority at the fact: the case's latest point at or before it.
  auto add = [&](int64_t t) -> Cell& {
    auto it = std::upper_bound(record.points().begin(), record.points().end(), t,
                               [](int64_t t, const pv::CasePoint& p) { return t < p.time_us(); });
    const int priority = it == record.points().begin() ? 0 : (it - 1)->priority();
    return Add(facts, "case_resolution_seconds", t, {PriorityLabel(priority), record.channel()})
        .cell;
  };
  for (int64_t t : record.resolved_us()) add(t).Count("resolutions");
  for (int64_t t : record.reopened_us()) add(t).Count("reopenings");
  if (!record.points().empty() && !record.points().rbegin()->open() &&
      !record.resolved_us().empty()) {
    const int64_t resolved = *record.resolved_us().rbegin();
    Cell& cell = add(resolved);
    cell.Count("resolved");
    cell.Sample("resolution",
                static_cast<double>(resolved - record.first_opened_us()) / kMicrosPerSecond);
  }
  AddChanges(facts, kOpenCases, record.points(), from_point, CaseState);
  return facts;
}

}  // namespace crm::metrics
