#pragma once

// The activity-service's gRPC handlers: request checks, references to contact-service and
// pipeline-service, then the domain through the generic repository. No business rule lives
// here.

#include <memory>
#include <string>

#include "crm/activity/v1/activity_service.grpc.pb.h"
#include "crm/clients/contact_client.h"
#include "crm/clients/pipeline_client.h"
#include "crm/clients/ttl_cache.h"
#include "crm/eventsourcing/repository.h"
#include "crm/runtime/auth.h"
#include "crm/runtime/call.h"
#include "crm/runtime/executor.h"
#include "domain/activity.h"
#include "domain/case.h"
#include "domain/task.h"

namespace crm::activity {

// The records a command links to, as the request names them and then as resolved.
struct Links {
  std::string contact_id;  // resolved: a merged contact's winner
  std::string lead_id;
  std::string account_id;  // resolved: defaults to the contact's (or opportunity's) account
  std::string opportunity_id;
  std::string case_id;
};

class ActivityService final : public v1::ActivityService::CallbackService {
 public:
  ActivityService(eventstore::EventStore& store,
                  std::shared_ptr<const runtime::TokenVerifier> verifier,
                  std::shared_ptr<const clients::ContactClient> contacts,
                  std::shared_ptr<const clients::PipelineClient> pipeline,
                  ActivityLimits limits = {}, eventsourcing::BusinessTimeBounds bounds = {},
                  absl::Duration contact_cache_ttl = absl::ZeroDuration());

  grpc::ServerUnaryReactor* LogActivity(grpc::CallbackServerContext* context,
                                        const v1::LogActivityRequest* request,
                                        v1::Activity* response) override;
  grpc::ServerUnaryReactor* GetActivity(grpc::CallbackServerContext* context,
                                        const v1::GetActivityRequest* request,
                                        v1::Activity* response) override;
  grpc::ServerUnaryReactor* UpdateActivity(grpc::CallbackServerContext* context,
                                           const v1::UpdateActivityRequest* request,
                                           v1::Activity* response) override;
  grpc::ServerUnaryReactor* CompleteActivity(grpc::CallbackServerContext* context,
                                             const v1::CompleteActivityRequest* request,
                                             v1::Activity* response) override;
  grpc::ServerUnaryReactor* CancelActivity(grpc::CallbackServerContext* context,
                                           const v1::CancelActivityRequest* request,
                                           v1::Activity* response) override;
  grpc::ServerUnaryReactor* ListTimeline(grpc::CallbackServerContext* context,
                                         const v1::ListTimelineRequest* request,
                                         v1::ListTimelineResponse* response) override;
  grpc::ServerUnaryReactor* ListActivities(grpc::CallbackServerContext* context,
                                           const v1::ListActivitiesRequest* request,
                                           v1::ListActivitiesResponse* response) override;
  grpc::ServerUnaryReactor* ScheduleTask(grpc::CallbackServerContext* context,
                                         const v1::ScheduleTaskRequest* request,
                                         v1::Task* response) override;
  grpc::ServerUnaryReactor* GetTask(grpc::CallbackServerContext* context,
                                    const v1::GetTaskRequest* request, v1::Task* response) override;
  grpc::ServerUnaryReactor* CompleteTask(grpc::CallbackServerContext* context,
                                         const v1::CompleteTaskRequest* request,
                                         v1::Task* response) override;
  grpc::ServerUnaryReactor* CancelTask(grpc::CallbackServerContext* context,
                                       const v1::CancelTaskRequest* request,
                                       v1::Task* response) override;
  grpc::ServerUnaryReactor* ReassignTask(grpc::CallbackServerContext* context,
                                         const v1::ReassignTaskRequest* request,
                                         v1::Task* response) override;
  grpc::ServerUnaryReactor* ListTasks(grpc::CallbackServerContext* context,
                                      const v1::ListTasksRequest* request,
                                      v1::ListTasksResponse* response) override;
  grpc::ServerUnaryReactor* OpenCase(grpc::CallbackServerContext* context,
                                     const v1::OpenCaseRequest* request,
                                     v1::Case* response) override;
  grpc::ServerUnaryReactor* GetCase(grpc::CallbackServerContext* context,
                                    const v1::GetCaseRequest* request, v1::Case* response) override;
  grpc::ServerUnaryReactor* AssignCase(grpc::CallbackServerContext* context,
                                       const v1::AssignCaseRequest* request,
                                       v1::Case* response) override;
  grpc::ServerUnaryReactor* AddCaseNote(grpc::CallbackServerContext* context,
                                        const v1::AddCaseNoteRequest* request,
                                        v1::Case* response) override;
  grpc::ServerUnaryReactor* ResolveCase(grpc::CallbackServerContext* context,
                                        const v1::ResolveCaseRequest* request,
                                        v1::Case* response) override;
  grpc::ServerUnaryReactor* ReopenCase(grpc::CallbackServerContext* context,
                                       const v1::ReopenCaseRequest* request,
                                       v1::Case* response) override;
  grpc::ServerUnaryReactor* ListCases(grpc::CallbackServerContext* context,
                                      const v1::ListCasesRequest* request,
                                      v1::ListCasesResponse* response) override;
  grpc::ServerUnaryReactor* ListCaseNotes(grpc::CallbackServerContext* context,
                                          const v1::ListCaseNotesRequest* request,
                                          v1::ListCaseNotesResponse* response) override;

 private:
  using Activities = eventsourcing::Repository<ActivityAggregate>;
  using Tasks = eventsourcing::Repository<TaskAggregate>;
  using Cases = eventsourcing::Repository<CaseAggregate>;

  // Checks every named link where it lives: contacts and accounts in contact-service, leads and
  // opportunities in pipeline-service (one call each, only when something is named there),
  // cases here. Unknown: NOT_FOUND on `field_prefix` + the field; archived: FAILED_PRECONDITION;
  // a dependency that does not answer: UNAVAILABLE. Blocking: on the executor. Live contacts
  // may come from contact_cache_ (off by default) for callers who may read contacts.
  absl::StatusOr<Links> ResolveLinks(const runtime::Principal& principal,
                                     const std::string& bearer_token, Links links,
                                     const std::string& field_prefix) const;

  // A new record that links to others (LogActivity, ScheduleTask, OpenCase): on the executor,
  // the links are resolved and answered inside the decision, so that a retry gets its first
  // answer even when a reference changed (or its service went down) since.
  template <typename Aggregate, typename Request>
  void CreateLinked(const runtime::Principal& principal, std::string bearer_token,
                    const Request& request, std::string id, Links links, std::string field_prefix,
                    eventsourcing::Repository<Aggregate>& repository,
                    std::function<absl::StatusOr<eventsourcing::Events>(
                        const std::optional<eventsourcing::Versioned<typename Aggregate::State>>&,
                        absl::Time, const Links&)>
                        decide,
                    typename Aggregate::State* response, runtime::Finish finish);

  // Runs `work` on the executor (it calls other services); RESOURCE_EXHAUSTED when full.
  void OnExecutor(runtime::Finish finish, std::function<void(runtime::Finish)> work);

  eventstore::EventStore& store_;
  std::shared_ptr<const runtime::TokenVerifier> verifier_;
  std::shared_ptr<const clients::ContactClient> contacts_;
  std::shared_ptr<const clients::PipelineClient> pipeline_;
  const ActivityLimits limits_;
  Activities activities_;
  Tasks tasks_;
  Cases cases_;
  // What contact-service said of a live contact: its resolved id and account.
  struct KnownContact {
    std::string resolved_contact_id;
    std::string account_id;
  };
  mutable clients::TtlCache<KnownContact> contact_cache_;
  // Blocking work (calls to other services); last member: it drains before the rest goes.
  runtime::Executor executor_{16, 1024};
};

}  // namespace crm::activity
