#include "service/kpi_gauges.h"

#include "crm/common/time.h"
#include "domain/kpis.h"
#include "service/metrics_service.h"

namespace crm::metrics {
namespace {

prometheus::MetricFamily Gauge(std::string name, std::string help) {
  prometheus::MetricFamily family;
  family.name = std::move(name);
  family.help = std::move(help);
  family.type = prometheus::MetricType::Gauge;
  return family;
}

void AddSample(prometheus::MetricFamily& family,
               std::vector<prometheus::ClientMetric::Label> labels, double value) {
  prometheus::ClientMetric& metric = family.metric.emplace_back();
  metric.label = std::move(labels);
  metric.gauge.value = value;
}

// The figure of a measure as a number; false when it has none (no data).
bool ValueOf(const v1::Measure& measure, double& value) {
  switch (measure.value_case()) {
    case v1::Measure::kCount:
      value = static_cast<double>(measure.count());
      return true;
    case v1::Measure::kRatio:
      value = measure.ratio().value();
      return measure.ratio().has_value();
    case v1::Measure::kQuantile:
      value = measure.quantile().value();
      return true;
    case v1::Measure::kAmountMinor:
      value = static_cast<double>(measure.amount_minor());
      return true;
    case v1::Measure::VALUE_NOT_SET:
      return false;
  }
  return false;
}

}  // namespace

std::vector<prometheus::MetricFamily> KpiGauges::Collect() const {
  prometheus::MetricFamily kpis =
      Gauge("crm_kpi", "KPI measures for the current ISO week and month (shared/KPIS.md)");
  prometheus::MetricFamily per_rep =
      Gauge("crm_kpi_per_rep", "Behaviour KPI measures per rep for the current ISO week");
  prometheus::MetricFamily lag_events =
      Gauge("crm_metrics_consumer_lag_events", "Records in the topics not yet applied");
  prometheus::MetricFamily lag_seconds =
      Gauge("crm_metrics_projection_lag_seconds",
            "Age of the newest applied event while records wait, else 0");
  prometheus::MetricFamily generation =
      Gauge("crm_metrics_projection_generation", "Live projection generation");
  prometheus::MetricFamily applied =
      Gauge("crm_metrics_applied_events", "Events applied by the live generation");
  prometheus::MetricFamily waits = Gauge("crm_metrics_consistency_waits",
                                         "Read-your-writes queries waiting for their streams");

  projector_.Read([&](const Projection& projection, const ProjectorStats& stats) {
    const absl::Time now = absl::Now();
    const v1::Receipt receipt = MakeReceipt(stats, now);
    AddSample(lag_events, {}, static_cast<double>(stats.lag_events));
    AddSample(lag_seconds, {},
              static_cast<double>(receipt.lag().seconds()) + receipt.lag().nanos() / 1e9);
    AddSample(generation, {}, static_cast<double>(stats.generation));
    AddSample(applied, {}, static_cast<double>(stats.applied_events));
    AddSample(waits, {}, static_cast<double>(stats.consistency_waits));
    for (const auto& [kind, label] :
         {std::pair{v1::PERIOD_KIND_ISO_WEEK, "week"}, std::pair{v1::PERIOD_KIND_MONTH, "month"}}) {
      const Period period = PeriodOf(kind, now);
      for (const v1::KpiDefinition& definition : KpiDefinitions()) {
        const bool by_rep =
            per_rep_ && kind == v1::PERIOD_KIND_ISO_WEEK &&
            definition.category() == v1::KPI_CATEGORY_BEHAVIOUR &&
            !definition.dimensions().empty() &&
            (definition.dimensions(0) == "rep" || definition.dimensions(0) == "owner");
        for (bool grouped : {false, true}) {
          if (grouped && !by_rep) continue;
          v1::QueryKpiRequest request;
          request.set_kpi(definition.name());
          request.set_period_kind(kind);
          *request.mutable_start_time() = ToProto(period.start);
          *request.mutable_end_time() = ToProto(period.end);
          if (grouped) request.add_group_by(definition.dimensions(0));
          absl::StatusOr<v1::KpiResult> result = EvaluateKpi(projection, request, now);
          if (!result.ok()) continue;
          for (const v1::KpiRow& row : result->rows()) {
            for (const v1::Measure& measure : row.measures()) {
              double value = 0;
              if (!ValueOf(measure, value)) continue;
              std::vector<prometheus::ClientMetric::Label> labels = {
                  {"kpi", definition.name()}, {"measure", measure.name()}, {"period", label}};
              if (!measure.currency_code().empty()) {
                labels.push_back({"currency", measure.currency_code()});
              }
              if (grouped) {
                labels.push_back({"rep", row.dimensions(0).value()});
                AddSample(per_rep, std::move(labels), value);
              } else {
                AddSample(kpis, std::move(labels), value);
              }
            }
          }
        }
      }
    }
    return 0;
  });
  std::vector<prometheus::MetricFamily> families = {kpis,       lag_events, lag_seconds,
                                                    generation, applied,    waits};
  if (per_rep_) families.push_back(per_rep);
  return families;
}

}  // namespace crm::metrics
