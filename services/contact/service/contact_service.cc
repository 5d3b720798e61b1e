#include "service/contact_service.h"

#include <map>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "crm/common/field_violations.h"
#include "crm/common/status_macros.h"
#include "crm/common/time.h"
#include "crm/runtime/call.h"
#include "crm/service/commands.h"

namespace crm::contact {
namespace {

using runtime::Finish;
using runtime::Method;
using runtime::Principal;

constexpr Method kCreate{"crm.contact.v1.ContactService/CreateContact", "contacts:write"};
constexpr Method kGet{"crm.contact.v1.ContactService/GetContact", "contacts:read"};
constexpr Method kUpdate{"crm.contact.v1.ContactService/UpdateContact", "contacts:write"};
constexpr Method kArchive{"crm.contact.v1.ContactService/ArchiveContact", "contacts:write"};
constexpr Method kRestore{"crm.contact.v1.ContactService/RestoreContact", "contacts:write"};
constexpr Method kList{"crm.contact.v1.ContactService/ListContacts", "contacts:read"};
constexpr Method kDuplicates{"crm.contact.v1.ContactService/FindDuplicates", "contacts:read"};
constexpr Method kMerge{"crm.contact.v1.ContactService/MergeContacts", "contacts:write"};
constexpr Method kEvents{"crm.contact.v1.ContactService/ListContactEvents", "contacts:read"};
constexpr Method kCreateAccount{"crm.contact.v1.ContactService/CreateAccount", "contacts:write"};
constexpr Method kGetAccount{"crm.contact.v1.ContactService/GetAccount", "contacts:read"};
constexpr Method kUpdateAccount{"crm.contact.v1.ContactService/UpdateAccount", "contacts:write"};
constexpr Method kArchiveAccount{"crm.contact.v1.ContactService/ArchiveAccount", "contacts:write"};
constexpr Method kRestoreAccount{"crm.contact.v1.ContactService/RestoreAccount", "contacts:write"};
constexpr Method kListAccounts{"crm.contact.v1.ContactService/ListAccounts", "contacts:read"};
constexpr Method kValidate{"crm.contact.v1.ContactService/ValidateReferences", "contacts:read"};

constexpr int kMaxMergeHops = 8;

std::string Trim(const std::string& text) { return std::string(absl::StripAsciiWhitespace(text)); }

}  // namespace

ContactService::ContactService(eventstore::EventStore& store,
                               std::shared_ptr<const runtime::TokenVerifier> verifier,
                               ContactLimits limits, eventsourcing::BusinessTimeBounds bounds)
    : store_(store),
      verifier_(std::move(verifier)),
      limits_(limits),
      bounds_(bounds),
      contacts_(store, bounds),
      accounts_(store, bounds) {}

absl::StatusOr<Contact> ContactService::Resolve(const std::string& contact_id) const {
  std::string id = contact_id;
  for (int hop = 0; hop <= kMaxMergeHops; ++hop) {
    absl::StatusOr<Current> current = contacts_.Load(id);
    if (!current.ok()) return current.status();
    if (!*current) return absl::NotFoundError(absl::StrCat("contact ", contact_id, " not found"));
    if ((*current)->state.merged_into_contact_id().empty()) return (*current)->state;
    id = (*current)->state.merged_into_contact_id();
  }
  return absl::InternalError(absl::StrCat("merge chain of ", contact_id, " is too long"));
}

absl::Status ContactService::CheckAccount(const std::string& account_id,
                                          const std::string& field) const {
  if (account_id.empty()) return absl::OkStatus();
  CRM_RETURN_IF_ERROR(ValidateId(account_id, field));
  CRM_ASSIGN_OR_RETURN(CurrentAccount account, accounts_.Load(account_id));
  if (!account || account->state.archived()) {
    return FailedField(field, absl::StrCat("no live account ", account_id));
  }
  return absl::OkStatus();
}

grpc::ServerUnaryReactor* ContactService::CreateContact(grpc::CallbackServerContext* context,
                                                        const v1::CreateContactRequest* request,
                                                        v1::Contact* response) {
  return runtime::Unary(
      context, *verifier_, kCreate, *request,
      [this, request, response](const Principal& principal, Finish finish) {
        const std::string id = request->contact_id().empty()
                                   ? service::IdForCreate("c-", "contact", request->request_id())
                                   : request->contact_id();
        Contact fields = request->contact();
        if (fields.source_channel().empty()) fields.set_source_channel(request->channel());
        fields.set_owner_id(service::OwnerOrCaller(fields.owner_id(), principal));
        // Answered from inside the decision, so that a retry gets its first answer even if the
        // account has changed since.
        const absl::Status account = CheckAccount(Trim(fields.account_id()), "contact.account_id");
        // No expected version: the domain answers ALREADY_EXISTS, and a lost race between two
        // creates is decided again into that answer.
        service::Execute(
            contacts_, principal, *request, id, 0,
            [this, id, fields, account](const Current& current, absl::Time occurred_at)
                -> absl::StatusOr<eventsourcing::Events> {
              if (!account.ok()) return account;
              return DecideCreate(current, occurred_at, id, fields, limits_);
            },
            response, std::move(finish));
      });
}

grpc::ServerUnaryReactor* ContactService::GetContact(grpc::CallbackServerContext* context,
                                                     const v1::GetContactRequest* request,
                                                     v1::Contact* response) {
  return runtime::Unary(
      context, *verifier_, kGet, *request,
      [this, request, response](const Principal&, Finish finish) {
        if (absl::Status id = ValidateId(request->contact_id(), "contact_id"); !id.ok()) {
          return finish(id);
        }
        if (request->as_of_version() < 0)
          return finish(InvalidField("as_of_version", "must not be negative"));
        if (request->has_as_of_time() && !IsValidTimestamp(request->as_of_time())) {
          return finish(InvalidField("as_of_time", "not a valid time"));
        }
        absl::StatusOr<Current> found;
        if (request->as_of_version() > 0) {
          found = contacts_.LoadVersion(request->contact_id(), request->as_of_version());
        } else if (request->has_as_of_time()) {
          found = contacts_.LoadAsOf(request->contact_id(), FromProto(request->as_of_time()));
        } else if (!request->has_resolve_merged() || request->resolve_merged()) {
          absl::StatusOr<Contact> resolved = Resolve(request->contact_id());
          if (resolved.ok()) *response = *std::move(resolved);
          return finish(resolved.status());
        } else {
          found = contacts_.Load(request->contact_id());
        }
        if (!found.ok()) return finish(found.status());
        if (!*found)
          return finish(
              absl::NotFoundError(absl::StrCat("contact ", request->contact_id(), " not found")));
        if (request->as_of_version() > (*found)->version) {
          return finish(NotFoundField(
              "as_of_version",
              absl::StrCat("contact ", request->contact_id(), " has no version ",
                           request->as_of_version(), " (it is at ", (*found)->version, ")")));
        }
        *response = (*found)->state;
        finish(absl::OkStatus());
      });
}

grpc::ServerUnaryReactor* ContactService::UpdateContact(grpc::CallbackServerContext* context,
                                                        const v1::UpdateContactRequest* request,
                                                        v1::Contact* response) {
  return runtime::Unary(
      context, *verifier_, kUpdate, *request,
      [this, request, response](const Principal& principal, Finish finish) {
        const std::string& id = request->contact().contact_id();
        if (absl::Status valid = ValidateId(id, "contact.contact_id"); !valid.ok()) {
          return finish(valid);
        }
        absl::Status account;  // answered from inside the decision, as in CreateContact
        for (const std::string& path : request->update_mask().paths()) {
          if (path == "account_id") {
            account = CheckAccount(Trim(request->contact().account_id()), "contact.account_id");
          }
        }
        service::Execute(
            contacts_, principal, *request, id, request->expected_version(),
            [this, request, account](const Current& current,
                                     absl::Time) -> absl::StatusOr<eventsourcing::Events> {
              if (!account.ok()) return account;
              return DecideUpdate(current, request->contact(), request->update_mask(), limits_);
            },
            response, std::move(finish));
      });
}

grpc::ServerUnaryReactor* ContactService::ArchiveContact(grpc::CallbackServerContext* context,
                                                         const v1::ArchiveContactRequest* request,
                                                         v1::Contact* response) {
  return service::Transition(context, *verifier_, kArchive, request, request->contact_id(),
                             "contact_id", contacts_, &DecideArchive, response);
}

grpc::ServerUnaryReactor* ContactService::RestoreContact(grpc::CallbackServerContext* context,
                                                         const v1::RestoreContactRequest* request,
                                                         v1::Contact* response) {
  return service::Transition(context, *verifier_, kRestore, request, request->contact_id(),
                             "contact_id", contacts_, &DecideRestore, response);
}

grpc::ServerUnaryReactor* ContactService::ListContacts(grpc::CallbackServerContext* context,
                                                       const v1::ListContactsRequest* request,
                                                       v1::ListContactsResponse* response) {
  return runtime::Unary(
      context, *verifier_, kList, *request,
      [this, request, response](const Principal&, Finish finish) {
        absl::StatusOr<int> page_size = service::PageSize(request->page_size(), 50, 500);
        if (!page_size.ok()) return finish(page_size.status());
        if (!v1::LifecycleStage_IsValid(request->lifecycle_stage())) {
          return finish(InvalidField("lifecycle_stage", "unknown lifecycle stage"));
        }
        if (request->has_updated_since() && !IsValidTimestamp(request->updated_since())) {
          return finish(InvalidField("updated_since", "not a valid time"));
        }
        // Scan the most selective index given; check the other filters on the loaded contact.
        std::string dimension = "all/";
        if (!request->owner_id().empty()) {
          dimension = absl::StrCat("owner/", request->owner_id(), "/");
        } else if (!request->account_id().empty()) {
          dimension = absl::StrCat("account/", request->account_id(), "/");
        } else if (!request->region().empty()) {
          dimension = absl::StrCat("region/", request->region(), "/");
        } else if (request->lifecycle_stage() != v1::LIFECYCLE_STAGE_UNSPECIFIED) {
          dimension =
              absl::StrCat("stage/", v1::LifecycleStage_Name(request->lifecycle_stage()), "/");
        }
        std::vector<std::string> prefixes;  // key order: archived < live
        if (request->include_archived()) prefixes.push_back("contact/archived/" + dimension);
        prefixes.push_back("contact/live/" + dimension);
        auto matches = [request](const Contact& c) {
          return (request->owner_id().empty() || c.owner_id() == request->owner_id()) &&
                 (request->account_id().empty() || c.account_id() == request->account_id()) &&
                 (request->region().empty() || c.region() == request->region()) &&
                 (request->lifecycle_stage() == v1::LIFECYCLE_STAGE_UNSPECIFIED ||
                  c.lifecycle_stage() == request->lifecycle_stage()) &&
                 (!request->has_updated_since() ||
                  FromProto(c.update_time()) >= FromProto(request->updated_since()));
        };
        absl::StatusOr<std::string> next =
            service::PageOfRecords(store_, contacts_, prefixes, request->page_token(), *page_size,
                                   response->mutable_contacts(), matches);
        if (!next.ok()) return finish(next.status());
        response->set_next_page_token(*next);
        finish(absl::OkStatus());
      });
}

grpc::ServerUnaryReactor* ContactService::FindDuplicates(grpc::CallbackServerContext* context,
                                                         const v1::FindDuplicatesRequest* request,
                                                         v1::FindDuplicatesResponse* response) {
  return runtime::Unary(
      context, *verifier_, kDuplicates, *request,
      [this, request, response](const Principal&, Finish finish) {
        absl::StatusOr<int> page_size = service::PageSize(request->page_size(), 20, 100);
        if (!page_size.ok()) return finish(page_size.status());
        Contact candidate;
        std::string self;
        if (!request->contact_id().empty()) {
          if (absl::Status id = ValidateId(request->contact_id(), "contact_id"); !id.ok()) {
            return finish(id);
          }
          absl::StatusOr<Current> found = contacts_.Load(request->contact_id());
          if (!found.ok()) return finish(found.status());
          if (!*found)
            return finish(
                absl::NotFoundError(absl::StrCat("contact ", request->contact_id(), " not found")));
          candidate = (*found)->state;
          self = request->contact_id();
        } else {
          if (!request->has_candidate()) {
            return finish(InvalidField("contact_id", "set contact_id or candidate"));
          }
          absl::StatusOr<Contact> normalized = NormalizeContactFields(
              request->candidate(), {"given_name", "family_name", "emails", "phones", "account_id"},
              limits_, "candidate.");
          if (!normalized.ok()) return finish(normalized.status());
          candidate = *std::move(normalized);
        }
        std::map<std::string, std::vector<std::string>> reasons;  // id -> why
        auto collect = [&](const std::string& prefix, const char* reason) -> absl::Status {
          auto rows = store_.Scan(eventstore::Table::kIndex, {.prefix = prefix}, 100);
          if (!rows.ok()) return rows.status();
          for (const auto& [key, value] : *rows) {
            const std::string id = key.substr(prefix.size());
            if (id != self) reasons[id].push_back(reason);
          }
          return absl::OkStatus();
        };
        for (const std::string& email : candidate.emails()) {
          if (auto s = collect(absl::StrCat("contact/email/", email, "/"), "email"); !s.ok())
            return finish(s);
        }
        for (const std::string& phone : candidate.phones()) {
          if (auto s = collect(absl::StrCat("contact/phone/", phone, "/"), "phone"); !s.ok())
            return finish(s);
        }
        if (!candidate.account_id().empty()) {
          const std::string name = absl::StrCat(absl::AsciiStrToLower(candidate.given_name()), " ",
                                                absl::AsciiStrToLower(candidate.family_name()));
          if (auto s =
                  collect(absl::StrCat("contact/name/", candidate.account_id(), "/", name, "/"),
                          "name_in_account");
              !s.ok()) {
            return finish(s);
          }
        }
        for (auto& [id, why] : reasons) {
          if (response->matches_size() == *page_size) break;
          absl::StatusOr<Current> found = contacts_.Load(id);
          if (!found.ok()) return finish(found.status());
          if (!*found) continue;
          auto* match = response->add_matches();
          *match->mutable_contact() = (*found)->state;
          std::sort(why.begin(), why.end());
          why.erase(std::unique(why.begin(), why.end()), why.end());
          for (std::string& reason : why) match->add_reasons(std::move(reason));
        }
        finish(absl::OkStatus());
      });
}

grpc::ServerUnaryReactor* ContactService::MergeContacts(grpc::CallbackServerContext* context,
                                                        const v1::MergeContactsRequest* request,
                                                        v1::Contact* response) {
  return runtime::Unary(
      context, *verifier_, kMerge, *request,
      [this, request, response](const Principal& principal, Finish finish) {
        std::vector<FieldViolation> violations;
        for (const auto& [field, id] :
             {std::pair{"winner_contact_id", request->winner_contact_id()},
              std::pair{"loser_contact_id", request->loser_contact_id()}}) {
          Append(violations, ValidateId(id, field));
        }
        if (violations.empty() && request->winner_contact_id() == request->loser_contact_id()) {
          violations.push_back({"loser_contact_id", "a contact cannot be merged into itself"});
        }
        if (!violations.empty()) return finish(InvalidArgument(std::move(violations)));
        auto winner_meta =
            service::CommandMetaFor(principal, *request, request->winner_contact_id(),
                                    request->winner_expected_version(), "winner_expected_version");
        auto loser_meta =
            service::CommandMetaFor(principal, *request, request->loser_contact_id(),
                                    request->loser_expected_version(), "loser_expected_version");
        if (!winner_meta.ok()) return finish(winner_meta.status());
        if (!loser_meta.ok()) return finish(loser_meta.status());
        // Two streams, two appends, each idempotent under its own derived request id: a retry
        // after a failure between them completes the merge.
        if (!request->request_id().empty()) {
          winner_meta->request_id = request->request_id() + "/winner";
          loser_meta->request_id = request->request_id() + "/loser";
        }
        absl::StatusOr<Current> loser = contacts_.Load(request->loser_contact_id());
        if (!loser.ok()) return finish(loser.status());
        if (!*loser)
          return finish(absl::NotFoundError(
              absl::StrCat("contact ", request->loser_contact_id(), " not found")));
        // Checked before the winner absorbs anything, so a stale loser leaves no half merge.
        if (loser_meta->expected_version != eventstore::kAnyVersion &&
            loser_meta->expected_version != (*loser)->version &&
            (*loser)->state.merged_into_contact_id() != request->winner_contact_id()) {
          return finish(absl::AbortedError(absl::StrCat(
              "contact ", request->loser_contact_id(), " is at version ", (*loser)->version,
              ", the request expected ", loser_meta->expected_version)));
        }
        // Likewise business time: the loser's append must not be refused after the winner's.
        if (loser_meta->occurred_at) {
          absl::Status bounded =
              eventsourcing::CheckBusinessTime(*loser_meta->occurred_at, absl::Now(), bounds_);
          if (!bounded.ok()) return finish(bounded);
        }
        if (loser_meta->occurred_at &&
            *loser_meta->occurred_at < FromProto((*loser)->state.update_time())) {
          return finish(absl::FailedPreconditionError(absl::StrCat(
              "occurred_at: ", absl::FormatTime(*loser_meta->occurred_at),
              " is earlier than the last event of contact ", request->loser_contact_id(), " (",
              absl::FormatTime(FromProto((*loser)->state.update_time())), ")")));
        }
        const Contact loser_state = (*loser)->state;
        const std::string winner_id = request->winner_contact_id();
        contacts_.Handle(
            *std::move(winner_meta),
            [this, loser_state](const Current& winner, absl::Time) {
              if (!loser_state.merged_into_contact_id().empty() &&
                  loser_state.merged_into_contact_id() !=
                      (winner ? winner->state.contact_id() : "")) {
                return absl::StatusOr<eventsourcing::Events>(absl::FailedPreconditionError(
                    absl::StrCat("contact ", loser_state.contact_id(), " was merged into ",
                                 loser_state.merged_into_contact_id())));
              }
              return DecideAbsorb(winner, loser_state, limits_);
            },
            [this, loser_meta = *std::move(loser_meta), winner_id, response,
             finish](absl::StatusOr<eventsourcing::CommandResult<Contact>> absorbed) mutable {
              if (!absorbed.ok()) return finish(absorbed.status());
              *response = absorbed->after.state;
              contacts_.Handle(
                  std::move(loser_meta),
                  [winner_id](const Current& loser, absl::Time) {
                    if (loser && loser->state.merged_into_contact_id() == winner_id) {
                      return absl::StatusOr<eventsourcing::Events>(
                          eventsourcing::Events());  // done
                    }
                    return DecideMergeInto(loser, winner_id);
                  },
                  [finish](absl::StatusOr<eventsourcing::CommandResult<Contact>> merged) {
                    finish(merged.status());
                  });
            });
      });
}

grpc::ServerUnaryReactor* ContactService::ListContactEvents(
    grpc::CallbackServerContext* context, const v1::ListContactEventsRequest* request,
    v1::ListContactEventsResponse* response) {
  return runtime::Unary(
      context, *verifier_, kEvents, *request,
      [this, request, response](const Principal&, Finish finish) {
        if (absl::Status id = ValidateId(request->contact_id(), "contact_id"); !id.ok()) {
          return finish(id);
        }
        absl::StatusOr<int> page_size = service::PageSize(request->page_size(), 100, 1000);
        if (!page_size.ok()) return finish(page_size.status());
        absl::StatusOr<std::string> token = service::DecodePageToken(request->page_token());
        if (!token.ok()) return finish(token.status());
        int64_t from = 1;
        if (!token->empty() && (!absl::SimpleAtoi(*token, &from) || from < 1)) {
          return finish(InvalidField("page_token", "not a token this service issued"));
        }
        const std::string stream = Repository::StreamId(request->contact_id());
        auto head = store_.GetStreamHead(stream);
        if (!head.ok()) return finish(head.status());
        if (!*head)
          return finish(
              absl::NotFoundError(absl::StrCat("contact ", request->contact_id(), " not found")));
        auto events = store_.ReadStream(stream, from, static_cast<size_t>(*page_size));
        if (!events.ok()) return finish(events.status());
        for (auto& event : *events) *response->add_events() = std::move(event);
        const int64_t next = from + response->events_size();
        if (next <= (*head)->version)
          response->set_next_page_token(service::EncodePageToken(absl::StrCat(next)));
        finish(absl::OkStatus());
      });
}

grpc::ServerUnaryReactor* ContactService::CreateAccount(grpc::CallbackServerContext* context,
                                                        const v1::CreateAccountRequest* request,
                                                        v1::Account* response) {
  return runtime::Unary(
      context, *verifier_, kCreateAccount, *request,
      [this, request, response](const Principal& principal, Finish finish) {
        const std::string id = request->account_id().empty()
                                   ? service::IdForCreate("a-", "account", request->request_id())
                                   : request->account_id();
        Account fields = request->account();
        fields.set_owner_id(service::OwnerOrCaller(fields.owner_id(), principal));
        service::Execute(
            accounts_, principal, *request, id, 0,
            [this, id, fields](const CurrentAccount& current, absl::Time occurred_at) {
              return DecideCreateAccount(current, occurred_at, id, fields, limits_);
            },
            response, std::move(finish));
      });
}

grpc::ServerUnaryReactor* ContactService::GetAccount(grpc::CallbackServerContext* context,
                                                     const v1::GetAccountRequest* request,
                                                     v1::Account* response) {
  return runtime::Unary(
      context, *verifier_, kGetAccount, *request,
      [this, request, response](const Principal&, Finish finish) {
        if (absl::Status id = ValidateId(request->account_id(), "account_id"); !id.ok()) {
          return finish(id);
        }
        absl::StatusOr<CurrentAccount> found = accounts_.Load(request->account_id());
        if (!found.ok()) return finish(found.status());
        if (!*found)
          return finish(
              absl::NotFoundError(absl::StrCat("account ", request->account_id(), " not found")));
        *response = (*found)->state;
        finish(absl::OkStatus());
      });
}

grpc::ServerUnaryReactor* ContactService::UpdateAccount(grpc::CallbackServerContext* context,
                                                        const v1::UpdateAccountRequest* request,
                                                        v1::Account* response) {
  return runtime::Unary(context, *verifier_, kUpdateAccount, *request,
                        [this, request, response](const Principal& principal, Finish finish) {
                          const std::string& id = request->account().account_id();
                          if (absl::Status valid = ValidateId(id, "account.account_id");
                              !valid.ok()) {
                            return finish(valid);
                          }
                          service::Execute(
                              accounts_, principal, *request, id, request->expected_version(),
                              [this, request](const CurrentAccount& current, absl::Time) {
                                return DecideUpdateAccount(current, request->account(),
                                                           request->update_mask(), limits_);
                              },
                              response, std::move(finish));
                        });
}

grpc::ServerUnaryReactor* ContactService::ArchiveAccount(grpc::CallbackServerContext* context,
                                                         const v1::ArchiveAccountRequest* request,
                                                         v1::Account* response) {
  return service::Transition(context, *verifier_, kArchiveAccount, request, request->account_id(),
                             "account_id", accounts_, &DecideArchiveAccount, response);
}

grpc::ServerUnaryReactor* ContactService::RestoreAccount(grpc::CallbackServerContext* context,
                                                         const v1::RestoreAccountRequest* request,
                                                         v1::Account* response) {
  return service::Transition(context, *verifier_, kRestoreAccount, request, request->account_id(),
                             "account_id", accounts_, &DecideRestoreAccount, response);
}

grpc::ServerUnaryReactor* ContactService::ListAccounts(grpc::CallbackServerContext* context,
                                                       const v1::ListAccountsRequest* request,
                                                       v1::ListAccountsResponse* response) {
  return runtime::Unary(
      context, *verifier_, kListAccounts, *request,
      [this, request, response](const Principal&, Finish finish) {
        absl::StatusOr<int> page_size = service::PageSize(request->page_size(), 50, 500);
        if (!page_size.ok()) return finish(page_size.status());
        std::string dimension = "all/";
        if (!request->owner_id().empty()) {
          dimension = absl::StrCat("owner/", request->owner_id(), "/");
        } else if (!request->region().empty()) {
          dimension = absl::StrCat("region/", request->region(), "/");
        }
        std::vector<std::string> prefixes;
        if (request->include_archived()) prefixes.push_back("account/archived/" + dimension);
        prefixes.push_back("account/live/" + dimension);
        auto in_region = [request](const Account& account) {
          return request->region().empty() || account.region() == request->region();
        };
        absl::StatusOr<std::string> next =
            service::PageOfRecords(store_, accounts_, prefixes, request->page_token(), *page_size,
                                   response->mutable_accounts(), in_region);
        if (!next.ok()) return finish(next.status());
        response->set_next_page_token(*next);
        finish(absl::OkStatus());
      });
}

grpc::ServerUnaryReactor* ContactService::ValidateReferences(
    grpc::CallbackServerContext* context, const v1::ValidateReferencesRequest* request,
    v1::ValidateReferencesResponse* response) {
  return runtime::Unary(
      context, *verifier_, kValidate, *request,
      [this, request, response](const Principal&, Finish finish) {
        constexpr int kMaxIds = 500;
        if (request->contact_ids_size() > kMaxIds) {
          return finish(WithViolations(absl::ResourceExhaustedError("too many ids"),
                                       {{"contact_ids", absl::StrCat("at most ", kMaxIds)}}));
        }
        if (request->account_ids_size() > kMaxIds) {
          return finish(WithViolations(absl::ResourceExhaustedError("too many ids"),
                                       {{"account_ids", absl::StrCat("at most ", kMaxIds)}}));
        }
        for (const std::string& id : request->account_ids()) {
          auto* reference = response->add_accounts();
          reference->set_account_id(id);
          if (!ValidateId(id, "account_ids").ok()) continue;  // malformed
          absl::StatusOr<CurrentAccount> account = accounts_.Load(id);
          if (!account.ok()) return finish(account.status());
          if (!*account) continue;
          reference->set_exists(true);
          reference->set_archived((*account)->state.archived());
          reference->set_region((*account)->state.region());
        }
        for (const std::string& id : request->contact_ids()) {
          auto* reference = response->add_contacts();
          reference->set_contact_id(id);
          if (!ValidateId(id, "contact_ids").ok()) continue;  // malformed: not found
          absl::StatusOr<Contact> resolved = Resolve(id);
          if (resolved.status().code() == absl::StatusCode::kNotFound) continue;
          if (!resolved.ok()) return finish(resolved.status());
          reference->set_exists(true);
          reference->set_resolved_contact_id(resolved->contact_id());
          reference->set_archived(resolved->archived());
          reference->set_owner_id(resolved->owner_id());
          reference->set_region(resolved->region());
          reference->set_account_id(resolved->account_id());
        }
        finish(absl::OkStatus());
      });
}

}  // namespace crm::contact
