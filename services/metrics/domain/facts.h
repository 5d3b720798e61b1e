#pragma once

// The facts of the KPIs that depend on one record alone, by the view they come from: the
// rules of shared/KPIS.md for these KPIs live here, and kpis.cc adds up their daily sums
// (domain/rollup.h). Pure functions of one view.
//
// State KPIs (IsStateKpi) get their facts from the record's timeline: each point's state
// (ContactState and the like) holds for the instants after the point up to and including the
// next point's time, which is how a KPI reads a timeline (the last point before the instant).
// Its facts are the changes between consecutive states.

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "crm/metrics/projection/v1/views.pb.h"
#include "domain/rollup.h"

namespace crm::metrics {

namespace pv = crm::metrics::projection::v1;

// (KPI name, fact) pairs.
using KpiFacts = std::vector<std::pair<const char*, Fact>>;

// activities_logged, visit_report_compliance, logging_delay_seconds.
KpiFacts ActivityFacts(const pv::ActivityView& activity);
// leads_captured, lead_qualification_rate, lead_conversion_rate, and speed_to_lead_seconds,
// which also needs the occurred_at of the lead's first linked DONE activity, if any.
KpiFacts LeadFacts(const pv::LeadView& lead, std::optional<int64_t> first_activity_us);
// tasks_on_time_ratio.
KpiFacts TaskFacts(const pv::TaskView& task);
// The next three give a timeline's changes at the points from `from_point` on: an event
// replaces or follows the last point of a timeline, so Projection::Apply compares only the
// changes from the last point on, before and after it, however long the timeline is.
//
// duplicate_rate, and the changes of contact_completeness_ratio.
KpiFacts ContactFacts(const pv::ContactView& contact, int from_point = 0);
// win_rate, won_revenue, sales_cycle_days, average_deal_size, and the changes of
// pipeline_value.
KpiFacts OpportunityFacts(const pv::OpportunityView& opportunity, int from_point = 0);
// Pipeline views by id.
using Pipelines = absl::flat_hash_map<std::string, pv::PipelineView>;
// stage_conversion_rate, which also needs the stage order of the pipelines the opportunity's
// stage entries were made under.
KpiFacts StageFacts(const pv::OpportunityView& opportunity, const Pipelines& pipelines);
// Whether an entry of the opportunity was made under this pipeline.
bool EnteredStageOf(const pv::OpportunityView& opportunity, const std::string& pipeline_id);
// case_resolution_seconds, and the changes of open_cases.
KpiFacts CaseFacts(const pv::CaseView& record, int from_point = 0);

// The KPIs whose facts are changes of a state (domain/rollup.h).
bool IsStateKpi(const std::string& kpi);
// What one point of a timeline adds to its state KPI then; nullopt when nothing (a contact
// not live, a closed opportunity or case).
std::optional<Fact> ContactState(const pv::ContactPoint& point);
std::optional<Fact> OpportunityState(const pv::OpportunityPoint& point);
std::optional<Fact> CaseState(const pv::CasePoint& point);

// Labels of enum values in KPI dimensions: "ACTIVITY_TYPE_VISIT" -> "visit".
std::string TypeLabel(int type);
std::string PriorityLabel(int priority);

}  // namespace crm::metrics
