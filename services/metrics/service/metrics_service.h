#pragma once

// crm.metrics.v1.MetricsService: KPI definitions, queries, the adoption scorecard, the
// business dashboard, rebuilds and the projection's status. Every answer carries a receipt.
// Handlers run on a small executor once their read-your-writes wait is over; a wait holds no
// thread (Projector::WhenReached), so queries never queue behind it.

#include <memory>

#include "crm/metrics/v1/metrics_service.grpc.pb.h"
#include "crm/runtime/auth.h"
#include "crm/runtime/call.h"
#include "crm/runtime/executor.h"
#include "service/projector.h"

namespace crm::metrics {

class MetricsService final : public v1::MetricsService::CallbackService {
 public:
  MetricsService(Projector& projector, std::shared_ptr<const runtime::TokenVerifier> verifier);

  grpc::ServerUnaryReactor* ListKpiDefinitions(grpc::CallbackServerContext* context,
                                               const v1::ListKpiDefinitionsRequest* request,
                                               v1::ListKpiDefinitionsResponse* response) override;
  grpc::ServerUnaryReactor* QueryKpi(grpc::CallbackServerContext* context,
                                     const v1::QueryKpiRequest* request,
                                     v1::QueryKpiResponse* response) override;
  grpc::ServerUnaryReactor* GetAdoptionScorecard(
      grpc::CallbackServerContext* context, const v1::GetAdoptionScorecardRequest* request,
      v1::GetAdoptionScorecardResponse* response) override;
  grpc::ServerUnaryReactor* GetBusinessDashboard(
      grpc::CallbackServerContext* context, const v1::GetBusinessDashboardRequest* request,
      v1::GetBusinessDashboardResponse* response) override;
  grpc::ServerUnaryReactor* RebuildProjections(grpc::CallbackServerContext* context,
                                               const v1::RebuildProjectionsRequest* request,
                                               v1::RebuildProjectionsResponse* response) override;
  grpc::ServerUnaryReactor* GetProjectionStatus(grpc::CallbackServerContext* context,
                                                const v1::GetProjectionStatusRequest* request,
                                                v1::GetProjectionStatusResponse* response) override;

 private:
  // Runs `work` on the executor once the request's consistency wait is over.
  void AfterWait(grpc::CallbackServerContext* context, const v1::Consistency& consistency,
                 runtime::Finish finish, std::function<absl::Status()> work);

  Projector& projector_;
  std::shared_ptr<const runtime::TokenVerifier> verifier_;
  runtime::Executor executor_{4, 1024};
};

// The receipt of an answer computed from `stats` at `now`.
v1::Receipt MakeReceipt(const ProjectorStats& stats, absl::Time now);

}  // namespace crm::metrics
