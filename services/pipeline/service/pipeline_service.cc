#include "service/pipeline_service.h"

#include "absl/strings/str_cat.h"
#include "crm/common/field_violations.h"
#include "crm/common/ids.h"
#include "crm/common/status_macros.h"
#include "crm/common/time.h"
#include "crm/service/commands.h"

namespace crm::pipeline {
namespace {

using runtime::Finish;
using runtime::Method;
using runtime::Principal;
using service::LoadExisting;

constexpr Method kDefinePipeline{"crm.pipeline.v1.PipelineService/DefinePipeline",
                                 "pipeline:write"};
constexpr Method kGetPipeline{"crm.pipeline.v1.PipelineService/GetPipeline", "pipeline:read"};
constexpr Method kListPipelines{"crm.pipeline.v1.PipelineService/ListPipelines", "pipeline:read"};
constexpr Method kCaptureLead{"crm.pipeline.v1.PipelineService/CaptureLead", "pipeline:write"};
constexpr Method kGetLead{"crm.pipeline.v1.PipelineService/GetLead", "pipeline:read"};
constexpr Method kListLeads{"crm.pipeline.v1.PipelineService/ListLeads", "pipeline:read"};
constexpr Method kQualifyLead{"crm.pipeline.v1.PipelineService/QualifyLead", "pipeline:write"};
constexpr Method kDisqualifyLead{"crm.pipeline.v1.PipelineService/DisqualifyLead",
                                 "pipeline:write"};
constexpr Method kConvertLead{"crm.pipeline.v1.PipelineService/ConvertLead", "pipeline:write"};
constexpr Method kOpen{"crm.pipeline.v1.PipelineService/OpenOpportunity", "pipeline:write"};
constexpr Method kGet{"crm.pipeline.v1.PipelineService/GetOpportunity", "pipeline:read"};
constexpr Method kUpdate{"crm.pipeline.v1.PipelineService/UpdateOpportunity", "pipeline:write"};
constexpr Method kMove{"crm.pipeline.v1.PipelineService/MoveOpportunityStage", "pipeline:write"};
constexpr Method kClose{"crm.pipeline.v1.PipelineService/CloseOpportunity", "pipeline:write"};
constexpr Method kReopen{"crm.pipeline.v1.PipelineService/ReopenOpportunity", "pipeline:write"};
constexpr Method kList{"crm.pipeline.v1.PipelineService/ListOpportunities", "pipeline:read"};
constexpr Method kValidate{"crm.pipeline.v1.PipelineService/ValidateReferences", "pipeline:read"};

constexpr int kMaxReferenceIds = 500;

absl::Status NotFound(const std::string& what, const std::string& id) {
  return absl::NotFoundError(absl::StrCat(what, " ", id, " not found"));
}

}  // namespace

PipelineService::PipelineService(eventstore::EventStore& store,
                                 std::shared_ptr<const runtime::TokenVerifier> verifier,
                                 std::shared_ptr<const clients::ContactClient> contacts,
                                 PipelineLimits limits, eventsourcing::BusinessTimeBounds bounds)
    : store_(store),
      verifier_(std::move(verifier)),
      contacts_(std::move(contacts)),
      limits_(limits),
      bounds_(bounds),
      pipelines_(store, bounds),
      leads_(store, bounds),
      opportunities_(store, bounds) {}

absl::StatusOr<Pipeline> PipelineService::PipelineRevision(const std::string& pipeline_id,
                                                           int64_t revision,
                                                           const std::string& field) {
  CRM_RETURN_IF_ERROR(ValidateId(pipeline_id, field));
  if (revision > 0) {
    absl::MutexLock lock(&cache_mu_);
    if (auto cached = revisions_.find({pipeline_id, revision}); cached != revisions_.end()) {
      return cached->second;
    }
  }
  CRM_ASSIGN_OR_RETURN(CurrentPipeline found, revision > 0
                                                  ? pipelines_.LoadVersion(pipeline_id, revision)
                                                  : pipelines_.Load(pipeline_id));
  if (!found || (revision > 0 && found->version != revision)) {
    return absl::NotFoundError(
        revision > 0 ? absl::StrCat("pipeline ", pipeline_id, " has no revision ", revision)
                     : absl::StrCat("pipeline ", pipeline_id, " not found"));
  }
  absl::MutexLock lock(&cache_mu_);
  revisions_.emplace(std::make_pair(pipeline_id, found->version), found->state);
  return found->state;
}

absl::StatusOr<Pipeline> PipelineService::ReferencedPipeline(const std::string& pipeline_id,
                                                             const std::string& field) {
  absl::StatusOr<Pipeline> pipeline = PipelineRevision(pipeline_id, 0, field);
  if (pipeline.status().code() == absl::StatusCode::kNotFound) {
    return FailedField(field, absl::StrCat("no pipeline ", pipeline_id));
  }
  return pipeline;
}

absl::StatusOr<PipelineService::Parties> PipelineService::CheckParties(
    const std::string& bearer_token, const std::string& account_id, const std::string& contact_id,
    const std::string& field_prefix) const {
  Parties parties{.contact_id = contact_id};
  if (account_id.empty() && contact_id.empty()) return parties;
  std::vector<FieldViolation> malformed;
  if (!account_id.empty()) Append(malformed, ValidateId(account_id, field_prefix + "account_id"));
  if (!contact_id.empty()) Append(malformed, ValidateId(contact_id, field_prefix + "contact_id"));
  if (!malformed.empty()) return InvalidArgument(std::move(malformed));
  std::vector<std::string> contact_ids, account_ids;
  if (!contact_id.empty()) contact_ids.push_back(contact_id);
  if (!account_id.empty()) account_ids.push_back(account_id);
  CRM_ASSIGN_OR_RETURN(auto references,
                       contacts_->ValidateReferences(bearer_token, contact_ids, account_ids));
  if (!account_id.empty()) {
    if (references.accounts_size() != 1 || !references.accounts(0).exists() ||
        references.accounts(0).archived()) {
      return FailedField(field_prefix + "account_id",
                         absl::StrCat("no live account ", account_id, " in contact-service"));
    }
    parties.account_region = references.accounts(0).region();
  }
  if (!contact_id.empty()) {
    if (references.contacts_size() != 1 || !references.contacts(0).exists() ||
        references.contacts(0).archived()) {
      return FailedField(field_prefix + "contact_id",
                         absl::StrCat("no live contact ", contact_id, " in contact-service"));
    }
    parties.contact_id = references.contacts(0).resolved_contact_id();
  }
  return parties;
}

grpc::ServerUnaryReactor* PipelineService::DefinePipeline(grpc::CallbackServerContext* context,
                                                          const v1::DefinePipelineRequest* request,
                                                          v1::Pipeline* response) {
  return runtime::Unary(
      context, *verifier_, kDefinePipeline, *request,
      [this, request, response](const Principal& principal, Finish finish) {
        if (absl::Status id = ValidateId(request->pipeline_id(), "pipeline_id"); !id.ok()) {
          return finish(id);
        }
        if (request->expected_revision() < 0) {
          return finish(InvalidField("expected_revision", "must not be negative"));
        }
        service::Execute(
            pipelines_, principal, *request, request->pipeline_id(), request->expected_revision(),
            [this, request](const CurrentPipeline& current, absl::Time occurred_at) {
              return DecideDefinePipeline(
                  current, occurred_at, request->pipeline_id(), request->display_name(),
                  std::vector<Stage>(request->stages().begin(), request->stages().end()), limits_);
            },
            response, std::move(finish));
      });
}

grpc::ServerUnaryReactor* PipelineService::GetPipeline(grpc::CallbackServerContext* context,
                                                       const v1::GetPipelineRequest* request,
                                                       v1::Pipeline* response) {
  return runtime::Unary(context, *verifier_, kGetPipeline, *request,
                        [this, request, response](const Principal&, Finish finish) {
                          if (request->revision() < 0) {
                            return finish(InvalidField("revision", "must not be negative"));
                          }
                          absl::StatusOr<Pipeline> found = PipelineRevision(
                              request->pipeline_id(), request->revision(), "pipeline_id");
                          if (found.ok()) *response = *std::move(found);
                          finish(found.status());
                        });
}

grpc::ServerUnaryReactor* PipelineService::ListPipelines(grpc::CallbackServerContext* context,
                                                         const v1::ListPipelinesRequest* request,
                                                         v1::ListPipelinesResponse* response) {
  return runtime::Unary(context, *verifier_, kListPipelines, *request,
                        [this, request, response](const Principal&, Finish finish) {
                          absl::StatusOr<int> page_size =
                              service::PageSize(request->page_size(), 50, 500);
                          if (!page_size.ok()) return finish(page_size.status());
                          absl::StatusOr<std::string> next = service::PageOfRecords(
                              store_, pipelines_, {"pipeline/all/"}, request->page_token(),
                              *page_size, response->mutable_pipelines());
                          if (next.ok()) response->set_next_page_token(*next);
                          finish(next.status());
                        });
}

grpc::ServerUnaryReactor* PipelineService::CaptureLead(grpc::CallbackServerContext* context,
                                                       const v1::CaptureLeadRequest* request,
                                                       v1::Lead* response) {
  return runtime::Unary(
      context, *verifier_, kCaptureLead, *request,
      [this, request, response](const Principal& principal, Finish finish) {
        const std::string id = request->lead_id().empty()
                                   ? service::IdForCreate("l-", "lead", request->request_id())
                                   : request->lead_id();
        Lead fields = request->lead();
        if (fields.channel().empty()) fields.set_channel(request->channel());
        fields.set_owner_id(service::OwnerOrCaller(fields.owner_id(), principal));
        service::Execute(
            leads_, principal, *request, id, 0,
            [this, id, fields](const CurrentLead& current, absl::Time occurred_at) {
              return DecideCaptureLead(current, occurred_at, id, fields, limits_);
            },
            response, std::move(finish));
      });
}

grpc::ServerUnaryReactor* PipelineService::GetLead(grpc::CallbackServerContext* context,
                                                   const v1::GetLeadRequest* request,
                                                   v1::Lead* response) {
  return runtime::Unary(context, *verifier_, kGetLead, *request,
                        [this, request, response](const Principal&, Finish finish) {
                          auto lead = LoadExisting(leads_, request->lead_id(), "lead_id", "lead");
                          if (lead.ok()) *response = *std::move(lead);
                          finish(lead.status());
                        });
}

grpc::ServerUnaryReactor* PipelineService::ListLeads(grpc::CallbackServerContext* context,
                                                     const v1::ListLeadsRequest* request,
                                                     v1::ListLeadsResponse* response) {
  return runtime::Unary(
      context, *verifier_, kListLeads, *request,
      [this, request, response](const Principal&, Finish finish) {
        absl::StatusOr<int> page_size = service::PageSize(request->page_size(), 50, 500);
        if (!page_size.ok()) return finish(page_size.status());
        const v1::LeadStatus status = request->status();
        if (!v1::LeadStatus_IsValid(status)) {
          return finish(InvalidField("status", "not a LeadStatus"));
        }
        // The most selective index the filters allow; the other filters are checked per lead.
        std::string prefix = "lead/all/";
        if (!request->source().empty()) {
          prefix = absl::StrCat("lead/source/", request->source(), "/");
        } else if (!request->owner_id().empty()) {
          prefix = absl::StrCat("lead/owner/", request->owner_id(), "/");
        } else if (status != v1::LEAD_STATUS_UNSPECIFIED) {
          prefix = absl::StrCat("lead/status/", StatusKey(status), "/");
        } else if (!request->channel().empty()) {
          prefix = absl::StrCat("lead/channel/", request->channel(), "/");
        }
        absl::StatusOr<std::string> next = service::PageOfRecords(
            store_, leads_, {prefix}, request->page_token(), *page_size, response->mutable_leads(),
            [request, status](const Lead& l) {
              return (request->source().empty() || l.source() == request->source()) &&
                     (request->owner_id().empty() || l.owner_id() == request->owner_id()) &&
                     (request->channel().empty() || l.channel() == request->channel()) &&
                     (status == v1::LEAD_STATUS_UNSPECIFIED || l.status() == status);
            });
        if (next.ok()) response->set_next_page_token(*next);
        finish(next.status());
      });
}

grpc::ServerUnaryReactor* PipelineService::QualifyLead(grpc::CallbackServerContext* context,
                                                       const v1::QualifyLeadRequest* request,
                                                       v1::Lead* response) {
  return service::Transition(context, *verifier_, kQualifyLead, request, request->lead_id(),
                             "lead_id", leads_, &DecideQualifyLead, response);
}

grpc::ServerUnaryReactor* PipelineService::DisqualifyLead(grpc::CallbackServerContext* context,
                                                          const v1::DisqualifyLeadRequest* request,
                                                          v1::Lead* response) {
  return service::Transition(
      context, *verifier_, kDisqualifyLead, request, request->lead_id(), "lead_id", leads_,
      [this, request](const CurrentLead& current) {
        return DecideDisqualifyLead(current, request->reason(), limits_);
      },
      response);
}

grpc::ServerUnaryReactor* PipelineService::ConvertLead(grpc::CallbackServerContext* context,
                                                       const v1::ConvertLeadRequest* request,
                                                       v1::ConvertLeadResponse* response) {
  return runtime::Unary(
      context, *verifier_, kConvertLead, *request,
      [this, context, request, response](const Principal& principal, Finish finish) {
        absl::Status queued = executor_.Submit(
            [this, principal, token = runtime::BearerToken(*context), request, response, finish] {
              absl::StatusOr<v1::ConvertLeadResponse> converted =
                  Convert(principal, token, *request);
              if (converted.ok()) *response = *std::move(converted);
              finish(converted.status());
            });
        if (!queued.ok()) finish(queued);
      });
}

absl::StatusOr<v1::ConvertLeadResponse> PipelineService::Convert(
    const Principal& principal, const std::string& bearer_token,
    const v1::ConvertLeadRequest& request) {
  const std::string& lead_id = request.lead_id();
  CRM_RETURN_IF_ERROR(ValidateId(lead_id, "lead_id"));
  CRM_ASSIGN_OR_RETURN(
      eventsourcing::CommandMeta lead_meta,
      service::CommandMetaFor(principal, request, lead_id, request.expected_version()));
  // Every id the conversion creates is derived from the lead, so any retry (with this
  // request_id or another) finds what an earlier, interrupted attempt made.
  const std::string opportunity_id = service::DerivedId("o-", "lead-opportunity/" + lead_id);
  // The answer, first or replayed: the lead as the conversion left it and the opportunity as
  // the conversion opened it (its version 1), whatever happened to either since.
  auto respond = [this](const Lead& lead) -> absl::StatusOr<v1::ConvertLeadResponse> {
    v1::ConvertLeadResponse response;
    *response.mutable_lead() = lead;
    if (lead.opportunity_id().empty()) return response;
    CRM_ASSIGN_OR_RETURN(CurrentOpportunity opportunity,
                         opportunities_.LoadVersion(lead.opportunity_id(), 1));
    if (opportunity) *response.mutable_opportunity() = opportunity->state;
    return response;
  };

  CRM_ASSIGN_OR_RETURN(CurrentLead lead, leads_.Load(lead_id));
  if (!lead) return NotFound("lead", lead_id);
  if (lead->state.status() == v1::LEAD_STATUS_CONVERTED) {
    // Done before: the same request gets its first answer, any other FAILED_PRECONDITION.
    CRM_ASSIGN_OR_RETURN(
        auto replayed, leads_.HandleAndWait(lead_meta, [](const CurrentLead& current, absl::Time) {
          return absl::StatusOr<eventsourcing::Events>(CheckConvertible(current));
        }));
    return respond(replayed.after.state);
  }
  CRM_RETURN_IF_ERROR(CheckConvertible(lead));
  if (lead_meta.expected_version != eventstore::kAnyVersion &&
      lead_meta.expected_version != lead->version) {
    return absl::AbortedError(absl::StrCat("lead ", lead_id, " is at version ", lead->version,
                                           ", the request expected ", lead_meta.expected_version));
  }
  // Everything that can be checked is checked before anything is created anywhere.
  const absl::Time now = absl::Now();
  const absl::Time occurred_at = lead_meta.occurred_at.value_or(now);
  CRM_RETURN_IF_ERROR(eventsourcing::CheckBusinessTime(occurred_at, now, bounds_));
  if (occurred_at < FromProto(lead->state.update_time())) {
    return absl::FailedPreconditionError(
        "occurred_at is before the lead's last change (business time never goes backwards)");
  }
  const Lead& from = lead->state;
  Opportunity fields = request.opportunity();
  if (fields.display_name().empty()) {
    fields.set_display_name(!from.company().display_name().empty()
                                ? from.company().display_name()
                                : absl::StrCat(from.person().given_name(),
                                               from.person().given_name().empty() ? "" : " ",
                                               from.person().family_name()));
  }
  if (fields.owner_id().empty())
    fields.set_owner_id(service::OwnerOrCaller(from.owner_id(), principal));
  if (fields.region().empty()) fields.set_region(from.region());
  CRM_ASSIGN_OR_RETURN(Pipeline pipeline,
                       ReferencedPipeline(fields.pipeline_id(), "opportunity.pipeline_id"));
  CRM_RETURN_IF_ERROR(DecideOpenOpportunity(std::nullopt, occurred_at, opportunity_id, fields,
                                            pipeline, lead_id, limits_)
                          .status());
  const bool create_contact = request.contact_id().empty();
  if (create_contact && from.person().given_name().empty() && from.person().family_name().empty()) {
    return InvalidField("contact_id",
                        "the lead names no person: give the contact_id of an existing contact");
  }
  CRM_ASSIGN_OR_RETURN(Parties named,
                       CheckParties(bearer_token, request.account_id(), request.contact_id(), ""));

  // contact-service: the account, then the contact (each idempotent on its derived id).
  std::string account_id = request.account_id();
  if (account_id.empty() && !from.company().display_name().empty()) {
    account_id = service::DerivedId("a-", "lead-account/" + lead_id);
    contact::v1::CreateAccountRequest create;
    create.set_account_id(account_id);
    create.mutable_account()->set_display_name(from.company().display_name());
    create.mutable_account()->set_domain(from.company().domain());
    create.mutable_account()->set_owner_id(fields.owner_id());
    create.mutable_account()->set_region(fields.region());
    create.set_request_id(absl::StrCat("pipeline/convert/", lead_id, "/account"));
    *create.mutable_occurred_at() = ToProto(occurred_at);
    create.set_channel(from.channel());
    CRM_RETURN_IF_ERROR(contacts_->EnsureAccount(bearer_token, create));
  }
  std::string contact_id = named.contact_id;
  if (create_contact) {
    contact_id = service::DerivedId("c-", "lead-contact/" + lead_id);
    contact::v1::CreateContactRequest create;
    create.set_contact_id(contact_id);
    contact::v1::Contact& person = *create.mutable_contact();
    person.set_given_name(from.person().given_name());
    person.set_family_name(from.person().family_name());
    if (!from.person().email().empty()) person.add_emails(from.person().email());
    if (!from.person().phone().empty()) person.add_phones(from.person().phone());
    if (!from.person().job_title().empty()) {
      (*person.mutable_attributes())["job_title"] = from.person().job_title();
    }
    person.set_account_id(account_id);
    person.set_owner_id(fields.owner_id());
    person.set_region(fields.region());
    person.set_source_channel(from.channel());
    person.set_lifecycle_stage(contact::v1::LIFECYCLE_STAGE_PROSPECT);
    create.set_request_id(absl::StrCat("pipeline/convert/", lead_id, "/contact"));
    *create.mutable_occurred_at() = ToProto(occurred_at);
    create.set_channel(from.channel());
    CRM_RETURN_IF_ERROR(contacts_->EnsureContact(bearer_token, create));
  }
  fields.set_account_id(account_id);
  fields.set_contact_id(contact_id);

  // Here: the opportunity, then the lead's conversion.
  eventsourcing::CommandMeta open_meta = lead_meta;
  open_meta.stream_id = opportunity_id;
  open_meta.expected_version = eventstore::kAnyVersion;
  open_meta.request_id.clear();  // idempotent by its derived id
  open_meta.request_fingerprint.clear();
  open_meta.occurred_at = occurred_at;
  CRM_RETURN_IF_ERROR(
      opportunities_
          .HandleAndWait(open_meta,
                         [&](const CurrentOpportunity& current, absl::Time at) {
                           if (current && current->state.lead_id() == lead_id) {
                             return absl::StatusOr<eventsourcing::Events>(
                                 eventsourcing::Events());  // opened by an earlier attempt
                           }
                           return DecideOpenOpportunity(current, at, opportunity_id, fields,
                                                        pipeline, lead_id, limits_);
                         })
          .status());
  lead_meta.occurred_at = occurred_at;
  CRM_ASSIGN_OR_RETURN(auto converted,
                       leads_.HandleAndWait(lead_meta, [&](const CurrentLead& current, absl::Time) {
                         return DecideConvertLead(current, contact_id, account_id, opportunity_id);
                       }));
  return respond(converted.after.state);
}

grpc::ServerUnaryReactor* PipelineService::OpenOpportunity(
    grpc::CallbackServerContext* context, const v1::OpenOpportunityRequest* request,
    v1::Opportunity* response) {
  return runtime::Unary(
      context, *verifier_, kOpen, *request,
      [this, context, request, response](const Principal& principal, Finish finish) {
        absl::Status queued =
            executor_.Submit([this, principal, token = runtime::BearerToken(*context), request,
                              response, finish]() mutable {
              const std::string id =
                  request->opportunity_id().empty()
                      ? service::IdForCreate("o-", "opportunity", request->request_id())
                      : request->opportunity_id();
              Opportunity fields = request->opportunity();
              fields.set_owner_id(service::OwnerOrCaller(fields.owner_id(), principal));
              // References are answered from inside the decision, so that a retry gets its first
              // answer even if a reference has changed since.
              absl::StatusOr<Pipeline> pipeline =
                  ReferencedPipeline(fields.pipeline_id(), "opportunity.pipeline_id");
              absl::StatusOr<Parties> parties =
                  CheckParties(token, fields.account_id(), fields.contact_id(), "opportunity.");
              if (parties.ok()) {
                if (fields.region().empty()) fields.set_region(parties->account_region);
                fields.set_contact_id(parties->contact_id);
              }
              service::Execute(
                  opportunities_, principal, *request, id, 0,
                  [this, id, fields, pipeline, parties](
                      const CurrentOpportunity& current,
                      absl::Time occurred_at) -> absl::StatusOr<eventsourcing::Events> {
                    if (!pipeline.ok()) return pipeline.status();
                    if (!parties.ok()) return parties.status();
                    return DecideOpenOpportunity(current, occurred_at, id, fields, *pipeline, "",
                                                 limits_);
                  },
                  response, std::move(finish));
            });
        if (!queued.ok()) finish(queued);
      });
}

grpc::ServerUnaryReactor* PipelineService::GetOpportunity(grpc::CallbackServerContext* context,
                                                          const v1::GetOpportunityRequest* request,
                                                          v1::Opportunity* response) {
  return runtime::Unary(context, *verifier_, kGet, *request,
                        [this, request, response](const Principal&, Finish finish) {
                          const std::string& id = request->opportunity_id();
                          if (!request->has_as_of_time()) {
                            auto found =
                                LoadExisting(opportunities_, id, "opportunity_id", "opportunity");
                            if (found.ok()) *response = *std::move(found);
                            return finish(found.status());
                          }
                          if (absl::Status valid = ValidateId(id, "opportunity_id"); !valid.ok()) {
                            return finish(valid);
                          }
                          if (!IsValidTimestamp(request->as_of_time())) {
                            return finish(InvalidField("as_of_time", "not a valid time"));
                          }
                          absl::StatusOr<CurrentOpportunity> found =
                              opportunities_.LoadAsOf(id, FromProto(request->as_of_time()));
                          if (!found.ok()) return finish(found.status());
                          if (!*found) return finish(NotFound("opportunity (at that time)", id));
                          *response = (*found)->state;
                          finish(absl::OkStatus());
                        });
}

grpc::ServerUnaryReactor* PipelineService::UpdateOpportunity(
    grpc::CallbackServerContext* context, const v1::UpdateOpportunityRequest* request,
    v1::Opportunity* response) {
  return runtime::Unary(
      context, *verifier_, kUpdate, *request,
      [this, context, request, response](const Principal& principal, Finish finish) {
        absl::Status queued = executor_.Submit([this, principal,
                                                token = runtime::BearerToken(*context), request,
                                                response, finish]() mutable {
          const std::string& id = request->opportunity().opportunity_id();
          if (absl::Status valid = ValidateId(id, "opportunity.opportunity_id"); !valid.ok()) {
            return finish(valid);
          }
          std::string account_id, contact_id;  // references the update sets
          for (const std::string& path : request->update_mask().paths()) {
            if (path == "account_id") account_id = request->opportunity().account_id();
            if (path == "contact_id") contact_id = request->opportunity().contact_id();
          }
          absl::StatusOr<Parties> parties =  // answered inside the decision, as in Open
              CheckParties(token, account_id, contact_id, "opportunity.");
          Opportunity patch = request->opportunity();
          if (parties.ok() && !contact_id.empty()) patch.set_contact_id(parties->contact_id);
          service::Execute(
              opportunities_, principal, *request, id, request->expected_version(),
              [this, request, patch, parties](const CurrentOpportunity& current,
                                              absl::Time) -> absl::StatusOr<eventsourcing::Events> {
                if (!parties.ok()) return parties.status();
                return DecideUpdateOpportunity(current, patch, request->update_mask(), limits_);
              },
              response, std::move(finish));
        });
        if (!queued.ok()) finish(queued);
      });
}

template <typename Request>
void PipelineService::ChangeStage(const Principal& principal, const Request& request,
                                  const std::string& opportunity_id,
                                  std::function<absl::StatusOr<eventsourcing::Events>(
                                      const CurrentOpportunity&, absl::Time, const Pipeline&)>
                                      decide,
                                  v1::Opportunity* response, Finish finish) {
  // An opportunity's pipeline and revision never change, so they may be read before deciding.
  auto opportunity = LoadExisting(opportunities_, opportunity_id, "opportunity_id", "opportunity");
  if (!opportunity.ok()) return finish(opportunity.status());
  absl::StatusOr<Pipeline> revision = PipelineRevision(
      opportunity->pipeline_id(), opportunity->pipeline_revision(), "opportunity_id");
  if (!revision.ok()) return finish(revision.status());
  service::Execute(
      opportunities_, principal, request, opportunity_id, request.expected_version(),
      [decide = std::move(decide), revision = *std::move(revision)](
          const CurrentOpportunity& current, absl::Time occurred_at) {
        return decide(current, occurred_at, revision);
      },
      response, std::move(finish));
}

grpc::ServerUnaryReactor* PipelineService::MoveOpportunityStage(
    grpc::CallbackServerContext* context, const v1::MoveOpportunityStageRequest* request,
    v1::Opportunity* response) {
  return runtime::Unary(context, *verifier_, kMove, *request,
                        [this, request, response](const Principal& principal, Finish finish) {
                          ChangeStage(
                              principal, *request, request->opportunity_id(),
                              [request](const CurrentOpportunity& current, absl::Time occurred_at,
                                        const Pipeline& revision) {
                                return DecideMoveStage(current, occurred_at, request->stage_id(),
                                                       revision);
                              },
                              response, std::move(finish));
                        });
}

grpc::ServerUnaryReactor* PipelineService::ReopenOpportunity(
    grpc::CallbackServerContext* context, const v1::ReopenOpportunityRequest* request,
    v1::Opportunity* response) {
  return runtime::Unary(context, *verifier_, kReopen, *request,
                        [this, request, response](const Principal& principal, Finish finish) {
                          ChangeStage(
                              principal, *request, request->opportunity_id(),
                              [request](const CurrentOpportunity& current, absl::Time occurred_at,
                                        const Pipeline& revision) {
                                return DecideReopenOpportunity(current, occurred_at,
                                                               request->stage_id(), revision);
                              },
                              response, std::move(finish));
                        });
}

grpc::ServerUnaryReactor* PipelineService::CloseOpportunity(
    grpc::CallbackServerContext* context, const v1::CloseOpportunityRequest* request,
    v1::Opportunity* response) {
  return runtime::Unary(
      context, *verifier_, kClose, *request,
      [this, request, response](const Principal& principal, Finish finish) {
        const std::string& id = request->opportunity_id();
        if (absl::Status valid = ValidateId(id, "opportunity_id"); !valid.ok()) {
          return finish(valid);
        }
        service::Execute(
            opportunities_, principal, *request, id, request->expected_version(),
            [this, request](const CurrentOpportunity& current, absl::Time occurred_at) {
              return DecideCloseOpportunity(current, occurred_at, request->outcome(),
                                            request->reason(), limits_);
            },
            response, std::move(finish));
      });
}

grpc::ServerUnaryReactor* PipelineService::ListOpportunities(
    grpc::CallbackServerContext* context, const v1::ListOpportunitiesRequest* request,
    v1::ListOpportunitiesResponse* response) {
  return runtime::Unary(
      context, *verifier_, kList, *request,
      [this, request, response](const Principal&, Finish finish) {
        absl::StatusOr<int> page_size = service::PageSize(request->page_size(), 50, 500);
        if (!page_size.ok()) return finish(page_size.status());
        std::vector<FieldViolation> violations;
        if (!v1::OpportunityStatus_IsValid(request->status())) {
          violations.push_back({"status", "not an OpportunityStatus"});
        }
        Append(violations, ValidateDate(request->expected_close_from(), "expected_close_from"));
        Append(violations, ValidateDate(request->expected_close_to(), "expected_close_to"));
        if (!violations.empty()) return finish(InvalidArgument(std::move(violations)));
        const std::string from = DateKey(request->expected_close_from());
        const std::string to = DateKey(request->expected_close_to());
        const v1::OpportunityStatus status = request->status();

        // The most selective index the filters allow; the other filters are checked per item.
        std::string prefix = "opportunity/all/";
        std::string start_after;
        bool by_close_date = false;
        if (!request->owner_id().empty()) {
          prefix = absl::StrCat("opportunity/owner/", request->owner_id(), "/");
        } else if (!request->stage_id().empty()) {
          prefix = absl::StrCat("opportunity/stage/", request->stage_id(), "/");
        } else if (!request->region().empty()) {
          prefix = absl::StrCat("opportunity/region/", request->region(), "/");
        } else if (!from.empty() || !to.empty()) {
          prefix = "opportunity/close/";
          if (!from.empty()) start_after = prefix + from;  // every key of that day sorts after
          by_close_date = true;
        } else if (!request->pipeline_id().empty()) {
          prefix = absl::StrCat("opportunity/pipeline/", request->pipeline_id(), "/");
        } else if (status != v1::OPPORTUNITY_STATUS_UNSPECIFIED) {
          prefix = absl::StrCat("opportunity/status/", StatusKey(status), "/");
        }
        absl::StatusOr<std::string> next = service::PageOfRecords(
            store_, opportunities_, {prefix}, request->page_token(), *page_size,
            response->mutable_opportunities(),
            [&](const Opportunity& o) {
              const std::string close = DateKey(o.expected_close_date());
              return (request->owner_id().empty() || o.owner_id() == request->owner_id()) &&
                     (request->stage_id().empty() || o.stage_id() == request->stage_id()) &&
                     (request->region().empty() || o.region() == request->region()) &&
                     (request->pipeline_id().empty() ||
                      o.pipeline_id() == request->pipeline_id()) &&
                     (status == v1::OPPORTUNITY_STATUS_UNSPECIFIED || o.status() == status) &&
                     ((from.empty() && to.empty()) || !close.empty()) &&
                     (from.empty() || close >= from) && (to.empty() || close <= to);
            },
            start_after,
            [&](const std::string& key) {  // the close-date index is in date order
              return by_close_date && !to.empty() && key.substr(prefix.size(), 10) > to;
            });
        if (next.ok()) response->set_next_page_token(*next);
        finish(next.status());
      });
}

grpc::ServerUnaryReactor* PipelineService::ValidateReferences(
    grpc::CallbackServerContext* context, const v1::ValidateReferencesRequest* request,
    v1::ValidateReferencesResponse* response) {
  return runtime::Unary(
      context, *verifier_, kValidate, *request,
      [this, request, response](const Principal&, Finish finish) {
        std::vector<FieldViolation> too_many;
        if (request->lead_ids_size() > kMaxReferenceIds) {
          too_many.push_back({"lead_ids", absl::StrCat("at most ", kMaxReferenceIds)});
        }
        if (request->opportunity_ids_size() > kMaxReferenceIds) {
          too_many.push_back({"opportunity_ids", absl::StrCat("at most ", kMaxReferenceIds)});
        }
        if (!too_many.empty()) {
          return finish(WithViolations(absl::ResourceExhaustedError("too many ids"), too_many));
        }
        for (const std::string& id : request->lead_ids()) {
          auto* reference = response->add_leads();
          reference->set_lead_id(id);
          if (!ValidateId(id, "lead_ids").ok()) continue;  // malformed: does not exist
          absl::StatusOr<CurrentLead> lead = leads_.Load(id);
          if (!lead.ok()) return finish(lead.status());
          if (!*lead) continue;
          const Lead& l = (*lead)->state;
          reference->set_exists(true);
          reference->set_status(l.status());
          reference->set_owner_id(l.owner_id());
          reference->set_region(l.region());
          reference->set_source(l.source());
          reference->set_channel(l.channel());
        }
        for (const std::string& id : request->opportunity_ids()) {
          auto* reference = response->add_opportunities();
          reference->set_opportunity_id(id);
          if (!ValidateId(id, "opportunity_ids").ok()) continue;
          absl::StatusOr<CurrentOpportunity> opportunity = opportunities_.Load(id);
          if (!opportunity.ok()) return finish(opportunity.status());
          if (!*opportunity) continue;
          const Opportunity& o = (*opportunity)->state;
          reference->set_exists(true);
          reference->set_status(o.status());
          reference->set_owner_id(o.owner_id());
          reference->set_region(o.region());
          reference->set_account_id(o.account_id());
          reference->set_contact_id(o.contact_id());
          reference->set_pipeline_id(o.pipeline_id());
          reference->set_stage_id(o.stage_id());
        }
        finish(absl::OkStatus());
      });
}

}  // namespace crm::pipeline
