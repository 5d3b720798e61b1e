#include "service/activity_service.h"

#include "absl/strings/str_cat.h"
#include "crm/activity/v1/events.pb.h"
#include "crm/common/field_violations.h"
#include "crm/common/ids.h"
#include "crm/common/status_macros.h"
#include "crm/common/time.h"
#include "crm/service/commands.h"

namespace crm::activity {
namespace {

using runtime::Finish;
using runtime::Method;
using runtime::Principal;
using service::LoadExisting;

#define CRM_ACTIVITY_METHOD(name, scope) \
  constexpr Method k##name { "crm.activity.v1.ActivityService/" #name, scope }
CRM_ACTIVITY_METHOD(LogActivity, "activities:write");
CRM_ACTIVITY_METHOD(GetActivity, "activities:read");
CRM_ACTIVITY_METHOD(UpdateActivity, "activities:write");
CRM_ACTIVITY_METHOD(CompleteActivity, "activities:write");
CRM_ACTIVITY_METHOD(CancelActivity, "activities:write");
CRM_ACTIVITY_METHOD(ListTimeline, "activities:read");
CRM_ACTIVITY_METHOD(ListActivities, "activities:read");
CRM_ACTIVITY_METHOD(ScheduleTask, "activities:write");
CRM_ACTIVITY_METHOD(GetTask, "activities:read");
CRM_ACTIVITY_METHOD(CompleteTask, "activities:write");
CRM_ACTIVITY_METHOD(CancelTask, "activities:write");
CRM_ACTIVITY_METHOD(ReassignTask, "activities:write");
CRM_ACTIVITY_METHOD(ListTasks, "activities:read");
CRM_ACTIVITY_METHOD(OpenCase, "activities:write");
CRM_ACTIVITY_METHOD(GetCase, "activities:read");
CRM_ACTIVITY_METHOD(AssignCase, "activities:write");
CRM_ACTIVITY_METHOD(AddCaseNote, "activities:write");
CRM_ACTIVITY_METHOD(ResolveCase, "activities:write");
CRM_ACTIVITY_METHOD(ReopenCase, "activities:write");
CRM_ACTIVITY_METHOD(ListCases, "activities:read");
CRM_ACTIVITY_METHOD(ListCaseNotes, "activities:read");
#undef CRM_ACTIVITY_METHOD

// The answer of a Get: the record, or why not.
template <typename State>
void Answer(absl::StatusOr<State> found, State* response, const Finish& finish) {
  if (found.ok()) *response = *std::move(found);
  finish(found.status());
}

}  // namespace

ActivityService::ActivityService(eventstore::EventStore& store,
                                 std::shared_ptr<const runtime::TokenVerifier> verifier,
                                 std::shared_ptr<const clients::ContactClient> contacts,
                                 std::shared_ptr<const clients::PipelineClient> pipeline,
                                 ActivityLimits limits, eventsourcing::BusinessTimeBounds bounds,
                                 absl::Duration contact_cache_ttl)
    : store_(store),
      verifier_(std::move(verifier)),
      contacts_(std::move(contacts)),
      pipeline_(std::move(pipeline)),
      limits_(limits),
      activities_(store, bounds),
      tasks_(store, bounds),
      cases_(store, bounds),
      contact_cache_(contact_cache_ttl) {}

void ActivityService::OnExecutor(Finish finish, std::function<void(Finish)> work) {
  absl::Status queued = executor_.Submit([finish, work = std::move(work)] { work(finish); });
  if (!queued.ok()) finish(queued);
}

absl::StatusOr<Links> ActivityService::ResolveLinks(const Principal& principal,
                                                    const std::string& bearer_token, Links links,
                                                    const std::string& field_prefix) const {
  const std::string& p = field_prefix;
  // What to ask contact-service about: the account only when the command names it.
  const std::string account_id = links.account_id;
  std::string contact_id = links.contact_id;
  if (!contact_id.empty() && contact_cache_.enabled() &&
      runtime::Authorize(principal, "contacts:read").ok()) {
    if (std::optional<KnownContact> known = contact_cache_.Get(contact_id)) {
      links.contact_id = known->resolved_contact_id;
      if (links.account_id.empty()) links.account_id = known->account_id;
      contact_id.clear();
    }
  }
  if (!contact_id.empty() || !account_id.empty()) {
    std::vector<std::string> contact_ids, account_ids;
    if (!contact_id.empty()) contact_ids.push_back(contact_id);
    if (!account_id.empty()) account_ids.push_back(account_id);
    CRM_ASSIGN_OR_RETURN(auto found,
                         contacts_->ValidateReferences(bearer_token, contact_ids, account_ids));
    if (!contact_id.empty()) {
      if (found.contacts_size() != 1 || !found.contacts(0).exists()) {
        return NotFoundField(p + "contact_id", absl::StrCat("no contact ", contact_id));
      }
      const auto& contact = found.contacts(0);
      if (contact.archived()) {
        return FailedField(p + "contact_id", absl::StrCat("contact ", contact_id, " is archived"));
      }
      contact_cache_.Put(contact_id, {contact.resolved_contact_id(), contact.account_id()});
      links.contact_id = contact.resolved_contact_id();
      if (links.account_id.empty()) links.account_id = contact.account_id();
    }
    if (!account_id.empty()) {
      if (found.accounts_size() != 1 || !found.accounts(0).exists()) {
        return NotFoundField(p + "account_id", absl::StrCat("no account ", account_id));
      }
      if (found.accounts(0).archived()) {
        return FailedField(p + "account_id", absl::StrCat("account ", account_id, " is archived"));
      }
    }
  }
  if (!links.lead_id.empty() || !links.opportunity_id.empty()) {
    std::vector<std::string> lead_ids, opportunity_ids;
    if (!links.lead_id.empty()) lead_ids.push_back(links.lead_id);
    if (!links.opportunity_id.empty()) opportunity_ids.push_back(links.opportunity_id);
    CRM_ASSIGN_OR_RETURN(auto found,
                         pipeline_->ValidateReferences(bearer_token, lead_ids, opportunity_ids));
    if (!lead_ids.empty() && (found.leads_size() != 1 || !found.leads(0).exists())) {
      return NotFoundField(p + "lead_id", absl::StrCat("no lead ", links.lead_id));
    }
    if (!opportunity_ids.empty()) {
      if (found.opportunities_size() != 1 || !found.opportunities(0).exists()) {
        return NotFoundField(p + "opportunity_id",
                             absl::StrCat("no opportunity ", links.opportunity_id));
      }
      if (links.account_id.empty()) links.account_id = found.opportunities(0).account_id();
    }
  }
  if (!links.case_id.empty()) {
    CRM_ASSIGN_OR_RETURN(CurrentCase found, cases_.Load(links.case_id));
    if (!found) return NotFoundField(p + "case_id", absl::StrCat("no case ", links.case_id));
  }
  return links;
}

namespace {

// The links a record names (activities and tasks name all five, cases a contact and account).
template <typename Record>
Links LinksOf(const Record& record) {
  Links links{.contact_id = record.contact_id(), .account_id = record.account_id()};
  if constexpr (requires { record.lead_id(); }) {
    links.lead_id = record.lead_id();
    links.opportunity_id = record.opportunity_id();
    links.case_id = record.case_id();
  }
  return links;
}

// The record with its links as resolved: a merged contact's winner, the account defaulted.
template <typename Record>
Record Linked(Record record, const Links& links) {
  record.set_contact_id(links.contact_id);
  record.set_account_id(links.account_id);
  return record;
}

}  // namespace

template <typename Aggregate, typename Request>
void ActivityService::CreateLinked(
    const Principal& principal, std::string bearer_token, const Request& request, std::string id,
    Links links, std::string field_prefix, eventsourcing::Repository<Aggregate>& repository,
    std::function<absl::StatusOr<eventsourcing::Events>(
        const std::optional<eventsourcing::Versioned<typename Aggregate::State>>&, absl::Time,
        const Links&)>
        decide,
    typename Aggregate::State* response, Finish finish) {
  OnExecutor(std::move(finish), [this, principal, token = std::move(bearer_token), &request,
                                 id = std::move(id), links = std::move(links),
                                 prefix = std::move(field_prefix), &repository,
                                 decide = std::move(decide), response](Finish finish) {
    absl::StatusOr<Links> resolved = ResolveLinks(principal, token, links, prefix);
    service::Execute(
        repository, principal, request, id, 0,
        // Copied: the repository may decide again (a lost race) after this task returned.
        [decide, resolved](const auto& current,
                           absl::Time occurred_at) -> absl::StatusOr<eventsourcing::Events> {
          if (!resolved.ok()) return resolved.status();
          return decide(current, occurred_at, *resolved);
        },
        response, std::move(finish));
  });
}

// ---- activities ----

grpc::ServerUnaryReactor* ActivityService::LogActivity(grpc::CallbackServerContext* context,
                                                       const v1::LogActivityRequest* request,
                                                       v1::Activity* response) {
  return runtime::Unary(
      context, *verifier_, kLogActivity, *request,
      [this, context, request, response](const Principal& principal, Finish finish) {
        Activity fields = request->activity();
        if (fields.channel().empty()) fields.set_channel(request->channel());
        fields.set_owner_id(service::OwnerOrCaller(fields.owner_id(), principal));
        std::optional<absl::Time> scheduled;
        if (request->has_scheduled_time()) {
          if (!IsValidTimestamp(request->scheduled_time())) {
            return finish(InvalidField("scheduled_time", "not a valid time"));
          }
          scheduled = FromProto(request->scheduled_time());
        }
        // Bad input is answered before anyone else is asked about the references.
        if (absl::Status checked = CheckActivityFields(fields, limits_); !checked.ok()) {
          return finish(checked);
        }
        const std::string id = request->activity_id().empty()
                                   ? service::IdForCreate("act-", "activity", request->request_id())
                                   : request->activity_id();
        CreateLinked(
            principal, runtime::BearerToken(*context), *request, id, LinksOf(fields), "activity.",
            activities_,
            [this, id, fields, scheduled](const CurrentActivity& current, absl::Time occurred_at,
                                          const Links& links) {
              return DecideLogActivity(current, occurred_at, id, Linked(fields, links), scheduled,
                                       limits_);
            },
            response, std::move(finish));
      });
}

grpc::ServerUnaryReactor* ActivityService::GetActivity(grpc::CallbackServerContext* context,
                                                       const v1::GetActivityRequest* request,
                                                       v1::Activity* response) {
  return runtime::Unary(
      context, *verifier_, kGetActivity, *request,
      [this, request, response](const Principal&, Finish finish) {
        Answer(LoadExisting(activities_, request->activity_id(), "activity_id", "activity"),
               response, finish);
      });
}

grpc::ServerUnaryReactor* ActivityService::UpdateActivity(grpc::CallbackServerContext* context,
                                                          const v1::UpdateActivityRequest* request,
                                                          v1::Activity* response) {
  return service::TransitionAt(
      context, *verifier_, kUpdateActivity, request, request->activity().activity_id(),
      "activity.activity_id", activities_,
      [this, request](const CurrentActivity& current, absl::Time) {
        return DecideUpdateActivity(current, request->activity(), request->update_mask(), limits_);
      },
      response);
}

grpc::ServerUnaryReactor* ActivityService::CompleteActivity(
    grpc::CallbackServerContext* context, const v1::CompleteActivityRequest* request,
    v1::Activity* response) {
  return service::TransitionAt(
      context, *verifier_, kCompleteActivity, request, request->activity_id(), "activity_id",
      activities_,
      [this, request](const CurrentActivity& current, absl::Time occurred_at) {
        return DecideCompleteActivity(current, occurred_at, request->outcome(), request->body(),
                                      request->duration_seconds(), limits_);
      },
      response);
}

grpc::ServerUnaryReactor* ActivityService::CancelActivity(grpc::CallbackServerContext* context,
                                                          const v1::CancelActivityRequest* request,
                                                          v1::Activity* response) {
  return service::Transition(
      context, *verifier_, kCancelActivity, request, request->activity_id(), "activity_id",
      activities_,
      [this, request](const CurrentActivity& current) {
        return DecideCancelActivity(current, request->reason(), limits_);
      },
      response);
}

namespace {

// The type filter of a listing: INVALID_ARGUMENT on `types` for values that are no type.
absl::Status CheckTypes(const google::protobuf::RepeatedField<int>& types) {
  for (int type : types) {
    if (type == v1::ACTIVITY_TYPE_UNSPECIFIED || !v1::ActivityType_IsValid(type)) {
      return InvalidField("types", absl::StrCat(type, " is not an ActivityType"));
    }
  }
  return absl::OkStatus();
}

template <typename Values, typename Value>
bool Admits(const Values& filter, const Value& value) {
  return filter.empty() || std::find(filter.begin(), filter.end(), value) != filter.end();
}

}  // namespace

grpc::ServerUnaryReactor* ActivityService::ListTimeline(grpc::CallbackServerContext* context,
                                                        const v1::ListTimelineRequest* request,
                                                        v1::ListTimelineResponse* response) {
  return runtime::Unary(
      context, *verifier_, kListTimeline, *request,
      [this, request, response](const Principal&, Finish finish) {
        absl::StatusOr<int> page_size = service::PageSize(request->page_size(), 50, 500);
        if (!page_size.ok()) return finish(page_size.status());
        const bool by_contact = !request->contact_id().empty();
        if (by_contact == !request->lead_id().empty()) {
          return finish(InvalidField("contact_id", "give exactly one of contact_id and lead_id"));
        }
        const std::string& id = by_contact ? request->contact_id() : request->lead_id();
        if (absl::Status valid = ValidateId(id, by_contact ? "contact_id" : "lead_id");
            !valid.ok()) {
          return finish(valid);
        }
        if (absl::Status types = CheckTypes(request->types()); !types.ok()) return finish(types);
        const std::string prefix =
            absl::StrCat("activity/", by_contact ? "contact/" : "lead/", id, "/");
        absl::StatusOr<std::string> next =
            service::PageOfRecords(store_, activities_, {prefix}, request->page_token(), *page_size,
                                   response->mutable_activities(), [request](const Activity& a) {
                                     return Admits(request->types(), static_cast<int>(a.type())) &&
                                            Admits(request->channels(), a.channel());
                                   });
        if (next.ok()) response->set_next_page_token(*next);
        finish(next.status());
      });
}

grpc::ServerUnaryReactor* ActivityService::ListActivities(grpc::CallbackServerContext* context,
                                                          const v1::ListActivitiesRequest* request,
                                                          v1::ListActivitiesResponse* response) {
  return runtime::Unary(
      context, *verifier_, kListActivities, *request,
      [this, request, response](const Principal&, Finish finish) {
        absl::StatusOr<int> page_size = service::PageSize(request->page_size(), 50, 500);
        if (!page_size.ok()) return finish(page_size.status());
        std::vector<FieldViolation> violations;
        if (request->owner_id().empty() || request->owner_id().find('/') != std::string::npos) {
          violations.push_back({"owner_id", "is required (the rep), without '/'"});
        }
        const auto& period = request->period();
        if (period.has_start_time() && !IsValidTimestamp(period.start_time())) {
          violations.push_back({"period.start_time", "not a valid time"});
        }
        if (period.has_end_time() && !IsValidTimestamp(period.end_time())) {
          violations.push_back({"period.end_time", "not a valid time"});
        }
        Append(violations, CheckTypes(request->types()));
        if (!violations.empty()) return finish(InvalidArgument(std::move(violations)));
        // The rep's index is in time order: start after the period's start, stop at its end.
        const std::string prefix = absl::StrCat("activity/rep/", request->owner_id(), "/");
        const std::string start_after =
            period.has_start_time() ? prefix + TimeKey(FromProto(period.start_time())) : "";
        const std::string end = period.has_end_time() ? TimeKey(FromProto(period.end_time())) : "";
        absl::StatusOr<std::string> next = service::PageOfRecords(
            store_, activities_, {prefix}, request->page_token(), *page_size,
            response->mutable_activities(),
            [request](const Activity& a) {
              return Admits(request->types(), static_cast<int>(a.type()));
            },
            start_after,
            [&](const std::string& key) {
              return !end.empty() && key.compare(prefix.size(), end.size(), end) >= 0;
            });
        if (next.ok()) response->set_next_page_token(*next);
        finish(next.status());
      });
}

// ---- tasks ----

grpc::ServerUnaryReactor* ActivityService::ScheduleTask(grpc::CallbackServerContext* context,
                                                        const v1::ScheduleTaskRequest* request,
                                                        v1::Task* response) {
  return runtime::Unary(
      context, *verifier_, kScheduleTask, *request,
      [this, context, request, response](const Principal& principal, Finish finish) {
        Task fields = request->task();
        if (fields.channel().empty()) fields.set_channel(request->channel());
        fields.set_assignee_id(service::OwnerOrCaller(fields.assignee_id(), principal));
        if (absl::Status checked = CheckTaskFields(fields, limits_); !checked.ok()) {
          return finish(checked);
        }
        const std::string id = request->task_id().empty()
                                   ? service::IdForCreate("task-", "task", request->request_id())
                                   : request->task_id();
        CreateLinked(
            principal, runtime::BearerToken(*context), *request, id, LinksOf(fields), "task.",
            tasks_,
            [this, id, fields](const CurrentTask& current, absl::Time occurred_at,
                               const Links& links) {
              return DecideScheduleTask(current, occurred_at, id, Linked(fields, links), limits_);
            },
            response, std::move(finish));
      });
}

grpc::ServerUnaryReactor* ActivityService::GetTask(grpc::CallbackServerContext* context,
                                                   const v1::GetTaskRequest* request,
                                                   v1::Task* response) {
  return runtime::Unary(context, *verifier_, kGetTask, *request,
                        [this, request, response](const Principal&, Finish finish) {
                          Answer(LoadExisting(tasks_, request->task_id(), "task_id", "task"),
                                 response, finish);
                        });
}

grpc::ServerUnaryReactor* ActivityService::CompleteTask(grpc::CallbackServerContext* context,
                                                        const v1::CompleteTaskRequest* request,
                                                        v1::Task* response) {
  return service::TransitionAt(context, *verifier_, kCompleteTask, request, request->task_id(),
                               "task_id", tasks_, &DecideCompleteTask, response);
}

grpc::ServerUnaryReactor* ActivityService::CancelTask(grpc::CallbackServerContext* context,
                                                      const v1::CancelTaskRequest* request,
                                                      v1::Task* response) {
  return service::Transition(
      context, *verifier_, kCancelTask, request, request->task_id(), "task_id", tasks_,
      [this, request](const CurrentTask& current) {
        return DecideCancelTask(current, request->reason(), limits_);
      },
      response);
}

grpc::ServerUnaryReactor* ActivityService::ReassignTask(grpc::CallbackServerContext* context,
                                                        const v1::ReassignTaskRequest* request,
                                                        v1::Task* response) {
  return service::Transition(
      context, *verifier_, kReassignTask, request, request->task_id(), "task_id", tasks_,
      [this, request](const CurrentTask& current) {
        return DecideReassignTask(current, request->assignee_id(), limits_);
      },
      response);
}

grpc::ServerUnaryReactor* ActivityService::ListTasks(grpc::CallbackServerContext* context,
                                                     const v1::ListTasksRequest* request,
                                                     v1::ListTasksResponse* response) {
  return runtime::Unary(
      context, *verifier_, kListTasks, *request,
      [this, request, response](const Principal&, Finish finish) {
        absl::StatusOr<int> page_size = service::PageSize(request->page_size(), 50, 500);
        if (!page_size.ok()) return finish(page_size.status());
        if (!v1::TaskStatus_IsValid(request->status())) {
          return finish(InvalidField("status", "not a TaskStatus"));
        }
        if (request->assignee_id().find('/') != std::string::npos) {
          return finish(InvalidField("assignee_id", "must not contain '/'"));
        }
        const std::string status =
            StatusKey(request->status() == v1::TASK_STATUS_UNSPECIFIED ? v1::TASK_STATUS_OPEN
                                                                       : request->status());
        // Both indexes are in due-time order: overdue tasks come first.
        const std::string prefix =
            request->assignee_id().empty()
                ? absl::StrCat("task/", status, "/all/")
                : absl::StrCat("task/", status, "/assignee/", request->assignee_id(), "/");
        absl::StatusOr<std::string> next = service::PageOfRecords(
            store_, tasks_, {prefix}, request->page_token(), *page_size, response->mutable_tasks());
        if (next.ok()) response->set_next_page_token(*next);
        finish(next.status());
      });
}

// ---- cases ----

grpc::ServerUnaryReactor* ActivityService::OpenCase(grpc::CallbackServerContext* context,
                                                    const v1::OpenCaseRequest* request,
                                                    v1::Case* response) {
  return runtime::Unary(
      context, *verifier_, kOpenCase, *request,
      [this, context, request, response](const Principal& principal, Finish finish) {
        Case fields = request->case_();
        if (fields.channel().empty()) fields.set_channel(request->channel());
        if (absl::Status checked = CheckCaseFields(fields, limits_); !checked.ok()) {
          return finish(checked);
        }
        const std::string id = request->case_id().empty()
                                   ? service::IdForCreate("case-", "case", request->request_id())
                                   : request->case_id();
        CreateLinked(
            principal, runtime::BearerToken(*context), *request, id, LinksOf(fields), "case.",
            cases_,
            [this, id, fields](const CurrentCase& current, absl::Time occurred_at,
                               const Links& links) {
              return DecideOpenCase(current, occurred_at, id, Linked(fields, links), limits_);
            },
            response, std::move(finish));
      });
}

grpc::ServerUnaryReactor* ActivityService::GetCase(grpc::CallbackServerContext* context,
                                                   const v1::GetCaseRequest* request,
                                                   v1::Case* response) {
  return runtime::Unary(context, *verifier_, kGetCase, *request,
                        [this, request, response](const Principal&, Finish finish) {
                          Answer(LoadExisting(cases_, request->case_id(), "case_id", "case"),
                                 response, finish);
                        });
}

grpc::ServerUnaryReactor* ActivityService::AssignCase(grpc::CallbackServerContext* context,
                                                      const v1::AssignCaseRequest* request,
                                                      v1::Case* response) {
  return service::Transition(
      context, *verifier_, kAssignCase, request, request->case_id(), "case_id", cases_,
      [this, request](const CurrentCase& current) {
        return DecideAssignCase(current, request->assignee_id(), limits_);
      },
      response);
}

grpc::ServerUnaryReactor* ActivityService::AddCaseNote(grpc::CallbackServerContext* context,
                                                       const v1::AddCaseNoteRequest* request,
                                                       v1::Case* response) {
  return service::Transition(
      context, *verifier_, kAddCaseNote, request, request->case_id(), "case_id", cases_,
      [this, request](const CurrentCase& current) {
        return DecideAddCaseNote(current, request->text(), limits_);
      },
      response);
}

grpc::ServerUnaryReactor* ActivityService::ResolveCase(grpc::CallbackServerContext* context,
                                                       const v1::ResolveCaseRequest* request,
                                                       v1::Case* response) {
  return service::TransitionAt(
      context, *verifier_, kResolveCase, request, request->case_id(), "case_id", cases_,
      [this, request](const CurrentCase& current, absl::Time occurred_at) {
        return DecideResolveCase(current, occurred_at, request->resolution(), limits_);
      },
      response);
}

grpc::ServerUnaryReactor* ActivityService::ReopenCase(grpc::CallbackServerContext* context,
                                                      const v1::ReopenCaseRequest* request,
                                                      v1::Case* response) {
  return service::Transition(
      context, *verifier_, kReopenCase, request, request->case_id(), "case_id", cases_,
      [this, request](const CurrentCase& current) {
        return DecideReopenCase(current, request->reason(), limits_);
      },
      response);
}

grpc::ServerUnaryReactor* ActivityService::ListCases(grpc::CallbackServerContext* context,
                                                     const v1::ListCasesRequest* request,
                                                     v1::ListCasesResponse* response) {
  return runtime::Unary(
      context, *verifier_, kListCases, *request,
      [this, request, response](const Principal&, Finish finish) {
        absl::StatusOr<int> page_size = service::PageSize(request->page_size(), 50, 500);
        if (!page_size.ok()) return finish(page_size.status());
        std::vector<FieldViolation> violations;
        if (!v1::CaseStatus_IsValid(request->status())) {
          violations.push_back({"status", "not a CaseStatus"});
        }
        if (!v1::CasePriority_IsValid(request->priority())) {
          violations.push_back({"priority", "not a CasePriority"});
        }
        if (request->assignee_id().find('/') != std::string::npos) {
          violations.push_back({"assignee_id", "must not contain '/'"});
        }
        if (!violations.empty()) return finish(InvalidArgument(std::move(violations)));
        const std::string status =
            StatusKey(request->status() == v1::CASE_STATUS_UNSPECIFIED ? v1::CASE_STATUS_OPEN
                                                                       : request->status());
        const v1::CasePriority priority = request->priority();
        // The most selective index; the assignee's is in urgency order like the "all" one.
        std::string prefix = absl::StrCat("case/", status, "/all/");
        if (!request->assignee_id().empty()) {
          prefix = absl::StrCat("case/", status, "/assignee/", request->assignee_id(), "/");
        } else if (priority != v1::CASE_PRIORITY_UNSPECIFIED) {
          prefix = absl::StrCat("case/", status, "/priority/", PriorityKey(priority), "/");
        }
        absl::StatusOr<std::string> next = service::PageOfRecords(
            store_, cases_, {prefix}, request->page_token(), *page_size, response->mutable_cases(),
            [priority](const Case& c) {
              return priority == v1::CASE_PRIORITY_UNSPECIFIED || c.priority() == priority;
            });
        if (next.ok()) response->set_next_page_token(*next);
        finish(next.status());
      });
}

grpc::ServerUnaryReactor* ActivityService::ListCaseNotes(grpc::CallbackServerContext* context,
                                                         const v1::ListCaseNotesRequest* request,
                                                         v1::ListCaseNotesResponse* response) {
  return runtime::Unary(
      context, *verifier_, kListCaseNotes, *request,
      [this, request, response](const Principal&, Finish finish) {
        absl::StatusOr<int> page_size = service::PageSize(request->page_size(), 50, 500);
        if (!page_size.ok()) return finish(page_size.status());
        absl::StatusOr<Case> found = LoadExisting(cases_, request->case_id(), "case_id", "case");
        if (!found.ok()) return finish(found.status());
        // The token is the stream version to read on from.
        int64_t from = 1;
        if (!request->page_token().empty()) {
          absl::StatusOr<std::string> resume = service::DecodePageToken(request->page_token());
          if (!resume.ok()) return finish(resume.status());
          if (!absl::SimpleAtoi(*resume, &from) || from < 1) {
            return finish(InvalidField("page_token", "not a token this method gave"));
          }
        }
        const std::string stream = Cases::StreamId(request->case_id());
        while (from <= found->version() && response->notes_size() < *page_size) {
          absl::StatusOr<std::vector<eventstore::EventEnvelope>> events =
              store_.ReadStream(stream, from, 256);
          if (!events.ok()) return finish(events.status());
          if (events->empty()) break;
          for (const eventstore::EventEnvelope& event : *events) {
            from = event.stream_version() + 1;
            if (v1::CaseNoteAdded added; event.payload().UnpackTo(&added)) {
              v1::CaseNote& note = *response->add_notes();
              note.set_note_number(added.case_().note_count());
              note.set_text(added.text());
              note.set_author_id(event.actor_id());
              *note.mutable_create_time() = event.occurred_at();
              if (response->notes_size() == *page_size) break;
            }
          }
        }
        if (from <= found->version() && response->notes_size() == *page_size) {
          response->set_next_page_token(service::EncodePageToken(absl::StrCat(from)));
        }
        finish(absl::OkStatus());
      });
}

}  // namespace crm::activity
