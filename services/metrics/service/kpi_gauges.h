#pragma once

// Prometheus view of the KPIs and of the projection, computed at scrape time: every KPI's
// measures for the current ISO week and month without grouping (labels kpi, measure, period,
// currency: bounded), the per-rep behaviour KPIs only when enabled (one series per rep), and
// consumer lag in events and projection lag in seconds.

#include <vector>

#include "prometheus/collectable.h"
#include "prometheus/metric_family.h"
#include "service/projector.h"

namespace crm::metrics {

class KpiGauges : public prometheus::Collectable {
 public:
  KpiGauges(const Projector& projector, bool per_rep) : projector_(projector), per_rep_(per_rep) {}
  std::vector<prometheus::MetricFamily> Collect() const override;

 private:
  const Projector& projector_;
  bool per_rep_;
};

}  // namespace crm::metrics
