#pragma once

// The KPIs of shared/KPIS.md, evaluated over a Projection. Pure: same projection, same
// request, same `now` -> same answer.

#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "crm/metrics/v1/metrics_service.pb.h"
#include "domain/projection.h"

namespace crm::metrics {

// Bumped whenever a rule of KPIS.md or its implementation here changes.
inline constexpr int kDefinitionVersion = 3;
// At most this many periods per query.
inline constexpr size_t kMaxPeriods = 400;

const std::vector<v1::KpiDefinition>& KpiDefinitions();
const v1::KpiDefinition* FindKpi(absl::string_view name);

// One KPI over the periods of the request's range. INVALID_ARGUMENT naming the field for an
// unknown KPI, period kind, dimension or an empty range. State-at-a-point KPIs are evaluated
// at min(end of the period, now) and have no rows for periods that start after `now`.
absl::StatusOr<v1::KpiResult> EvaluateKpi(const Projection& projection,
                                          const v1::QueryKpiRequest& request, absl::Time now);

}  // namespace crm::metrics
