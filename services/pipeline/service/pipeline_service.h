#pragma once

// The pipeline-service's gRPC handlers: request checks, references to contact-service, then
// the domain through the generic repository. No business rule lives here.

#include <memory>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "crm/clients/contact_client.h"
#include "crm/eventsourcing/repository.h"
#include "crm/pipeline/v1/pipeline_service.grpc.pb.h"
#include "crm/runtime/auth.h"
#include "crm/runtime/call.h"
#include "crm/runtime/executor.h"
#include "domain/lead.h"
#include "domain/opportunity.h"
#include "domain/pipeline.h"

namespace crm::pipeline {

class PipelineService final : public v1::PipelineService::CallbackService {
 public:
  PipelineService(eventstore::EventStore& store,
                  std::shared_ptr<const runtime::TokenVerifier> verifier,
                  std::shared_ptr<const clients::ContactClient> contacts,
                  PipelineLimits limits = {}, eventsourcing::BusinessTimeBounds bounds = {});

  grpc::ServerUnaryReactor* DefinePipeline(grpc::CallbackServerContext* context,
                                           const v1::DefinePipelineRequest* request,
                                           v1::Pipeline* response) override;
  grpc::ServerUnaryReactor* GetPipeline(grpc::CallbackServerContext* context,
                                        const v1::GetPipelineRequest* request,
                                        v1::Pipeline* response) override;
  grpc::ServerUnaryReactor* ListPipelines(grpc::CallbackServerContext* context,
                                          const v1::ListPipelinesRequest* request,
                                          v1::ListPipelinesResponse* response) override;
  grpc::ServerUnaryReactor* CaptureLead(grpc::CallbackServerContext* context,
                                        const v1::CaptureLeadRequest* request,
                                        v1::Lead* response) override;
  grpc::ServerUnaryReactor* GetLead(grpc::CallbackServerContext* context,
                                    const v1::GetLeadRequest* request, v1::Lead* response) override;
  grpc::ServerUnaryReactor* ListLeads(grpc::CallbackServerContext* context,
                                      const v1::ListLeadsRequest* request,
                                      v1::ListLeadsResponse* response) override;
  grpc::ServerUnaryReactor* QualifyLead(grpc::CallbackServerContext* context,
                                        const v1::QualifyLeadRequest* request,
                                        v1::Lead* response) override;
  grpc::ServerUnaryReactor* DisqualifyLead(grpc::CallbackServerContext* context,
                                           const v1::DisqualifyLeadRequest* request,
                                           v1::Lead* response) override;
  grpc::ServerUnaryReactor* ConvertLead(grpc::CallbackServerContext* context,
                                        const v1::ConvertLeadRequest* request,
                                        v1::ConvertLeadResponse* response) override;
  grpc::ServerUnaryReactor* OpenOpportunity(grpc::CallbackServerContext* context,
                                            const v1::OpenOpportunityRequest* request,
                                            v1::Opportunity* response) override;
  grpc::ServerUnaryReactor* GetOpportunity(grpc::CallbackServerContext* context,
                                           const v1::GetOpportunityRequest* request,
                                           v1::Opportunity* response) override;
  grpc::ServerUnaryReactor* UpdateOpportunity(grpc::CallbackServerContext* context,
                                              const v1::UpdateOpportunityRequest* request,
                                              v1::Opportunity* response) override;
  grpc::ServerUnaryReactor* MoveOpportunityStage(grpc::CallbackServerContext* context,
                                                 const v1::MoveOpportunityStageRequest* request,
                                                 v1::Opportunity* response) override;
  grpc::ServerUnaryReactor* CloseOpportunity(grpc::CallbackServerContext* context,
                                             const v1::CloseOpportunityRequest* request,
                                             v1::Opportunity* response) override;
  grpc::ServerUnaryReactor* ReopenOpportunity(grpc::CallbackServerContext* context,
                                              const v1::ReopenOpportunityRequest* request,
                                              v1::Opportunity* response) override;
  grpc::ServerUnaryReactor* ListOpportunities(grpc::CallbackServerContext* context,
                                              const v1::ListOpportunitiesRequest* request,
                                              v1::ListOpportunitiesResponse* response) override;
  grpc::ServerUnaryReactor* ValidateReferences(grpc::CallbackServerContext* context,
                                               const v1::ValidateReferencesRequest* request,
                                               v1::ValidateReferencesResponse* response) override;

 private:
  using Pipelines = eventsourcing::Repository<PipelineAggregate>;
  using Leads = eventsourcing::Repository<LeadAggregate>;
  using Opportunities = eventsourcing::Repository<OpportunityAggregate>;

  // The pipeline at a revision (0 = latest); NOT_FOUND when absent, `field` names a malformed
  // id. Revisions never change, so they are cached.
  absl::StatusOr<Pipeline> PipelineRevision(const std::string& pipeline_id, int64_t revision,
                                            const std::string& field);
  // The latest revision of a pipeline a command names: FAILED_PRECONDITION on `field` when
  // there is none.
  absl::StatusOr<Pipeline> ReferencedPipeline(const std::string& pipeline_id,
                                              const std::string& field);

  // What contact-service says of the account and contact a command names.
  struct Parties {
    std::string account_region;
    std::string contact_id;  // the live contact: a merged one resolves to its winner
  };
  // Checks the account and contact (when named) in one call to contact-service:
  // FAILED_PRECONDITION on the field unless they exist and are live. Blocking.
  absl::StatusOr<Parties> CheckParties(const std::string& bearer_token,
                                       const std::string& account_id, const std::string& contact_id,
                                       const std::string& field_prefix) const;

  // A stage change of an opportunity, decided against its own pipeline revision.
  template <typename Request>
  void ChangeStage(const runtime::Principal& principal, const Request& request,
                   const std::string& opportunity_id,
                   std::function<absl::StatusOr<eventsourcing::Events>(const CurrentOpportunity&,
                                                                       absl::Time, const Pipeline&)>
                       decide,
                   v1::Opportunity* response, runtime::Finish finish);

  // ConvertLead's steps, on the executor (it calls contact-service).
  absl::StatusOr<v1::ConvertLeadResponse> Convert(const runtime::Principal& principal,
                                                  const std::string& bearer_token,
                                                  const v1::ConvertLeadRequest& request);

  eventstore::EventStore& store_;
  std::shared_ptr<const runtime::TokenVerifier> verifier_;
  std::shared_ptr<const clients::ContactClient> contacts_;
  const PipelineLimits limits_;
  const eventsourcing::BusinessTimeBounds bounds_;
  Pipelines pipelines_;
  Leads leads_;
  Opportunities opportunities_;
  absl::Mutex cache_mu_;
  absl::flat_hash_map<std::pair<std::string, int64_t>, Pipeline> revisions_
      ABSL_GUARDED_BY(cache_mu_);
  // Blocking work (calls to contact-service); last member: it drains before the rest goes.
  runtime::Executor executor_{16, 1024};
};

}  // namespace crm::pipeline
