#include "service/metrics_service.h"

#include <algorithm>
#include <iterator>
#include <map>
#include <string_view>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "crm/common/field_violations.h"
#include "crm/common/status_macros.h"
#include "crm/common/time.h"
#include "domain/kpis.h"
#include "domain/projection.h"

namespace crm::metrics {
namespace {

using runtime::Finish;
using runtime::Method;
using runtime::Principal;

constexpr Method kListKpiDefinitions{"crm.metrics.v1.MetricsService/ListKpiDefinitions",
                                     "metrics:read"};
constexpr Method kQueryKpi{"crm.metrics.v1.MetricsService/QueryKpi", "metrics:read"};
constexpr Method kGetAdoptionScorecard{"crm.metrics.v1.MetricsService/GetAdoptionScorecard",
                                       "metrics:read"};
constexpr Method kGetBusinessDashboard{"crm.metrics.v1.MetricsService/GetBusinessDashboard",
                                       "metrics:read"};
constexpr Method kRebuildProjections{"crm.metrics.v1.MetricsService/RebuildProjections", "admin"};
constexpr Method kGetProjectionStatus{"crm.metrics.v1.MetricsService/GetProjectionStatus",
                                      "metrics:read"};

constexpr absl::Duration kDefaultWait = absl::Seconds(5);
constexpr absl::Duration kMaxWait = absl::Seconds(60);

// The per-rep KPIs of the scorecard and the dimension holding the rep.
const std::vector<std::pair<std::string, std::string>> kRepKpis = {
    {"activities_logged", "rep"},           {"visit_report_compliance", "rep"},
    {"logging_delay_seconds", "rep"},       {"tasks_on_time_ratio", "rep"},
    {"open_deal_coverage", "owner"},        {"stale_opportunities", "owner"},
    {"contact_completeness_ratio", "owner"}};

// Business KPIs by their headline dimension ("product sales per region").
const std::vector<std::pair<std::string, std::vector<std::string>>> kDashboard = {
    {"leads_captured", {"source"}},
    {"lead_qualification_rate", {"source"}},
    {"lead_conversion_rate", {"source"}},
    {"stage_conversion_rate", {"pipeline", "stage"}},
    {"win_rate", {}},
    {"won_revenue", {"region"}},
    {"pipeline_value", {"stage"}},
    {"sales_cycle_days", {"region"}},
    {"average_deal_size", {"region"}},
    {"case_resolution_seconds", {"priority"}},
    {"open_cases", {"priority"}}};

absl::StatusOr<std::vector<std::pair<std::string, int64_t>>> CheckConsistency(
    const v1::Consistency& consistency) {
  std::vector<FieldViolation> violations;
  std::vector<std::pair<std::string, int64_t>> versions;
  for (int i = 0; i < consistency.min_versions_size(); ++i) {
    const v1::StreamVersion& wanted = consistency.min_versions(i);
    const std::string field = absl::StrCat("consistency.min_versions[", i, "]");
    const size_t slash = wanted.stream().find('/');
    if (slash == std::string::npos || slash == 0 || slash + 1 == wanted.stream().size() ||
        wanted.stream().size() > 256) {
      violations.push_back({field + ".stream", "must be \"<type>/<id>\", e.g. \"contact/<id>\""});
    } else if (std::find(std::begin(kStreamTypes), std::end(kStreamTypes),
                         std::string_view(wanted.stream()).substr(0, slash)) ==
               std::end(kStreamTypes)) {
      violations.push_back({field + ".stream", absl::StrCat("type must be one of ",
                                                            absl::StrJoin(kStreamTypes, ", "))});
    }
    if (wanted.version() < 1) violations.push_back({field + ".version", "must be at least 1"});
    versions.emplace_back(wanted.stream(), wanted.version());
  }
  if (consistency.has_max_wait()) {
    const auto& wait = consistency.max_wait();
    if (wait.seconds() < 0 || wait.nanos() < 0 || wait.nanos() >= 1'000'000'000 ||
        absl::Seconds(wait.seconds()) > kMaxWait) {
      violations.push_back({"consistency.max_wait", "must be between 0 and 60s"});
    }
  }
  if (!violations.empty()) return InvalidArgument(std::move(violations));
  return versions;
}

// The request's time, or now when it has none.
template <typename Request>
absl::Time PeriodTime(const Request& request, absl::Time now) {
  return request.has_time() ? FromProto(request.time()) : now;
}

absl::Status CheckPeriod(PeriodKind kind, const google::protobuf::Timestamp& time) {
  if (kind != v1::PERIOD_KIND_ISO_WEEK && kind != v1::PERIOD_KIND_MONTH) {
    return InvalidField("period_kind", "must be PERIOD_KIND_ISO_WEEK or PERIOD_KIND_MONTH");
  }
  if (!IsValidTimestamp(time)) return InvalidField("time", "not a valid time");
  return absl::OkStatus();
}

absl::StatusOr<v1::KpiResult> Evaluate(const Projection& projection, const std::string& kpi,
                                       const Period& period, std::vector<std::string> group_by,
                                       absl::Time now) {
  v1::QueryKpiRequest request;
  request.set_kpi(kpi);
  request.set_period_kind(period.kind);
  *request.mutable_start_time() = ToProto(period.start);
  *request.mutable_end_time() = ToProto(period.end);
  for (std::string& dimension : group_by) request.add_group_by(std::move(dimension));
  return EvaluateKpi(projection, request, now);
}

}  // namespace

v1::Receipt MakeReceipt(const ProjectorStats& stats, absl::Time now) {
  v1::Receipt receipt;
  receipt.set_definition_version(kDefinitionVersion);
  for (const auto& [partition, next] : stats.next_offsets) {
    v1::TopicPosition& position = *receipt.add_positions();
    position.set_topic(partition.first);
    position.set_partition(partition.second);
    position.set_next_offset(next);
  }
  *receipt.mutable_compute_time() = ToProto(now);
  *receipt.mutable_applied_through_time() = ToProto(stats.applied_through);
  receipt.set_lag_events(stats.lag_events);
  const absl::Duration lag = stats.lag_events > 0
                                 ? std::max(absl::ZeroDuration(), now - stats.applied_through)
                                 : absl::ZeroDuration();
  receipt.mutable_lag()->set_seconds(absl::ToInt64Seconds(lag));
  receipt.mutable_lag()->set_nanos(
      static_cast<int32_t>(absl::ToInt64Nanoseconds(lag % absl::Seconds(1))));
  receipt.set_generation(stats.generation);
  return receipt;
}

MetricsService::MetricsService(Projector& projector,
                               std::shared_ptr<const runtime::TokenVerifier> verifier)
    : projector_(projector), verifier_(std::move(verifier)) {}

void MetricsService::AfterWait(grpc::CallbackServerContext* context,
                               const v1::Consistency& consistency, Finish finish,
                               std::function<absl::Status()> work) {
  absl::StatusOr<std::vector<std::pair<std::string, int64_t>>> versions =
      CheckConsistency(consistency);
  if (!versions.ok()) return finish(versions.status());
  const absl::Duration wait = consistency.has_max_wait()
                                  ? absl::Seconds(consistency.max_wait().seconds()) +
                                        absl::Nanoseconds(consistency.max_wait().nanos())
                                  : kDefaultWait;
  // Answer before the caller gives up, so it learns which stream was behind.
  const absl::Time call_deadline = absl::FromChrono(context->deadline()) - absl::Milliseconds(50);
  const absl::Time deadline = std::min(absl::Now() + wait, call_deadline);
  projector_.WhenReached(
      *std::move(versions), deadline,
      [this, finish = std::move(finish), work = std::move(work)](absl::Status reached) {
        if (!reached.ok()) return finish(reached);
        absl::Status queued = executor_.Submit([finish, work] { finish(work()); });
        if (!queued.ok()) finish(queued);
      });
}

grpc::ServerUnaryReactor* MetricsService::ListKpiDefinitions(
    grpc::CallbackServerContext* context, const v1::ListKpiDefinitionsRequest* request,
    v1::ListKpiDefinitionsResponse* response) {
  return runtime::Unary(context, *verifier_, kListKpiDefinitions, *request,
                        [response](const Principal&, Finish finish) {
                          for (const v1::KpiDefinition& definition : KpiDefinitions()) {
                            *response->add_definitions() = definition;
                          }
                          finish(absl::OkStatus());
                        });
}

grpc::ServerUnaryReactor* MetricsService::QueryKpi(grpc::CallbackServerContext* context,
                                                   const v1::QueryKpiRequest* request,
                                                   v1::QueryKpiResponse* response) {
  return runtime::Unary(context, *verifier_, kQueryKpi, *request,
                        [this, context, request, response](const Principal&, Finish finish) {
                          AfterWait(context, request->consistency(), std::move(finish),
                                    [this, request, response]() -> absl::Status {
                                      return projector_.Read([&](const Projection& projection,
                                                                 const ProjectorStats& stats) {
                                        const absl::Time now = absl::Now();
                                        absl::StatusOr<v1::KpiResult> result =
                                            EvaluateKpi(projection, *request, now);
                                        if (!result.ok()) return result.status();
                                        *response->mutable_result() = *std::move(result);
                                        *response->mutable_receipt() = MakeReceipt(stats, now);
                                        return absl::OkStatus();
                                      });
                                    });
                        });
}

grpc::ServerUnaryReactor* MetricsService::GetAdoptionScorecard(
    grpc::CallbackServerContext* context, const v1::GetAdoptionScorecardRequest* request,
    v1::GetAdoptionScorecardResponse* response) {
  return runtime::Unary(
      context, *verifier_, kGetAdoptionScorecard, *request,
      [this, context, request, response](const Principal&, Finish finish) {
        if (absl::Status valid = CheckPeriod(request->period_kind(), request->time());
            !valid.ok()) {
          return finish(valid);
        }
        AfterWait(
            context, request->consistency(), std::move(finish),
            [this, request, response]() -> absl::Status {
              return projector_.Read([&](const Projection& projection,
                                         const ProjectorStats& stats) -> absl::Status {
                const absl::Time now = absl::Now();
                const Period period = PeriodOf(request->period_kind(), PeriodTime(*request, now));
                *response->mutable_period() = period.ToProto();
                std::map<std::string, v1::RepScorecard> reps;
                for (const auto& [kpi, rep_dimension] : kRepKpis) {
                  CRM_ASSIGN_OR_RETURN(v1::KpiResult by_rep,
                                       Evaluate(projection, kpi, period, {rep_dimension}, now));
                  for (const v1::KpiRow& row : by_rep.rows()) {
                    v1::RepScorecard& card = reps[row.dimensions(0).value()];
                    card.set_rep_id(row.dimensions(0).value());
                    for (v1::Measure measure : row.measures()) {
                      measure.set_name(absl::StrCat(kpi, ".", measure.name()));
                      *card.add_measures() = std::move(measure);
                    }
                  }
                }
                for (auto& [rep, card] : reps) *response->add_reps() = std::move(card);
                for (const v1::KpiDefinition& definition : KpiDefinitions()) {
                  if (definition.category() != v1::KPI_CATEGORY_BEHAVIOUR) continue;
                  CRM_ASSIGN_OR_RETURN(*response->add_team(),
                                       Evaluate(projection, definition.name(), period, {}, now));
                }
                *response->mutable_receipt() = MakeReceipt(stats, now);
                return absl::OkStatus();
              });
            });
      });
}

grpc::ServerUnaryReactor* MetricsService::GetBusinessDashboard(
    grpc::CallbackServerContext* context, const v1::GetBusinessDashboardRequest* request,
    v1::GetBusinessDashboardResponse* response) {
  return runtime::Unary(
      context, *verifier_, kGetBusinessDashboard, *request,
      [this, context, request, response](const Principal&, Finish finish) {
        if (absl::Status valid = CheckPeriod(request->period_kind(), request->time());
            !valid.ok()) {
          return finish(valid);
        }
        AfterWait(context, request->consistency(), std::move(finish),
                  [this, request, response]() -> absl::Status {
                    return projector_.Read([&](const Projection& projection,
                                               const ProjectorStats& stats) -> absl::Status {
                      const absl::Time now = absl::Now();
                      const Period period =
                          PeriodOf(request->period_kind(), PeriodTime(*request, now));
                      *response->mutable_period() = period.ToProto();
                      for (const auto& [kpi, group_by] : kDashboard) {
                        CRM_ASSIGN_OR_RETURN(*response->add_kpis(),
                                             Evaluate(projection, kpi, period, group_by, now));
                      }
                      *response->mutable_receipt() = MakeReceipt(stats, now);
                      return absl::OkStatus();
                    });
                  });
      });
}

grpc::ServerUnaryReactor* MetricsService::RebuildProjections(
    grpc::CallbackServerContext* context, const v1::RebuildProjectionsRequest* request,
    v1::RebuildProjectionsResponse* response) {
  return runtime::Unary(context, *verifier_, kRebuildProjections, *request,
                        [this, response](const Principal&, Finish finish) {
                          response->set_generation(projector_.RequestRebuild());
                          finish(absl::OkStatus());
                        });
}

grpc::ServerUnaryReactor* MetricsService::GetProjectionStatus(
    grpc::CallbackServerContext* context, const v1::GetProjectionStatusRequest* request,
    v1::GetProjectionStatusResponse* response) {
  return runtime::Unary(context, *verifier_, kGetProjectionStatus, *request,
                        [this, response](const Principal&, Finish finish) {
                          if (absl::Status health = projector_.health(); !health.ok()) {
                            return finish(absl::UnavailableError(health.message()));
                          }
                          const ProjectorStats stats = projector_.Stats();
                          *response->mutable_receipt() = MakeReceipt(stats, absl::Now());
                          response->set_applied_events(stats.applied_events);
                          response->set_skipped_duplicates(stats.skipped_duplicates);
                          response->set_rebuilding_generation(stats.rebuilding_generation);
                          response->set_rebuild_applied_events(stats.rebuild_applied_events);
                          finish(absl::OkStatus());
                        });
}

}  // namespace crm::metrics
