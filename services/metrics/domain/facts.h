#pragma once

// The facts of the KPIs that depend on one record alone, by the view they come from: the
// rules of shared/KPIS.md for these KPIs live here, and kpis.cc adds up their daily sums
// (domain/rollup.h). Pure functions of one view.

#include <string>
#include <utility>
#include <vector>

#include "crm/metrics/projection/v1/views.pb.h"
#include "domain/rollup.h"

namespace crm::metrics {

namespace pv = crm::metrics::projection::v1;

// (KPI name, fact) pairs.
using KpiFacts = std::vector<std::pair<const char*, Fact>>;

// activities_logged, visit_report_compliance, logging_delay_seconds.
KpiFacts ActivityFacts(const pv::ActivityView& activity);
// leads_captured, lead_qualification_rate, lead_conversion_rate.
KpiFacts LeadFacts(const pv::LeadView& lead);
// tasks_on_time_ratio.
KpiFacts TaskFacts(const pv::TaskView& task);

// Labels of enum values in KPI dimensions: "ACTIVITY_TYPE_VISIT" -> "visit".
std::string TypeLabel(int type);
std::string PriorityLabel(int priority);

}  // namespace crm::metrics
