#pragma once

// The contact-service's gRPC handlers: request checks, then the domain through the generic
// repository. No business rule lives here.

#include "crm/contact/v1/contact_service.grpc.pb.h"
#include "crm/eventsourcing/repository.h"
#include "crm/runtime/auth.h"
#include "crm/runtime/call.h"
#include "domain/account.h"
#include "domain/contact.h"

namespace crm::contact {

class ContactService final : public crm::contact::v1::ContactService::CallbackService {
 public:
  ContactService(eventstore::EventStore& store,
                 std::shared_ptr<const runtime::TokenVerifier> verifier, ContactLimits limits = {},
                 eventsourcing::BusinessTimeBounds bounds = {});

  grpc::ServerUnaryReactor* CreateContact(grpc::CallbackServerContext* context,
                                          const v1::CreateContactRequest* request,
                                          v1::Contact* response) override;
  grpc::ServerUnaryReactor* GetContact(grpc::CallbackServerContext* context,
                                       const v1::GetContactRequest* request,
                                       v1::Contact* response) override;
  grpc::ServerUnaryReactor* UpdateContact(grpc::CallbackServerContext* context,
                                          const v1::UpdateContactRequest* request,
                                          v1::Contact* response) override;
  grpc::ServerUnaryReactor* ArchiveContact(grpc::CallbackServerContext* context,
                                           const v1::ArchiveContactRequest* request,
                                           v1::Contact* response) override;
  grpc::ServerUnaryReactor* RestoreContact(grpc::CallbackServerContext* context,
                                           const v1::RestoreContactRequest* request,
                                           v1::Contact* response) override;
  grpc::ServerUnaryReactor* ListContacts(grpc::CallbackServerContext* context,
                                         const v1::ListContactsRequest* request,
                                         v1::ListContactsResponse* response) override;
  grpc::ServerUnaryReactor* FindDuplicates(grpc::CallbackServerContext* context,
                                           const v1::FindDuplicatesRequest* request,
                                           v1::FindDuplicatesResponse* response) override;
  grpc::ServerUnaryReactor* MergeContacts(grpc::CallbackServerContext* context,
                                          const v1::MergeContactsRequest* request,
                                          v1::Contact* response) override;
  grpc::ServerUnaryReactor* ListContactEvents(grpc::CallbackServerContext* context,
                                              const v1::ListContactEventsRequest* request,
                                              v1::ListContactEventsResponse* response) override;
  grpc::ServerUnaryReactor* CreateAccount(grpc::CallbackServerContext* context,
                                          const v1::CreateAccountRequest* request,
                                          v1::Account* response) override;
  grpc::ServerUnaryReactor* GetAccount(grpc::CallbackServerContext* context,
                                       const v1::GetAccountRequest* request,
                                       v1::Account* response) override;
  grpc::ServerUnaryReactor* UpdateAccount(grpc::CallbackServerContext* context,
                                          const v1::UpdateAccountRequest* request,
                                          v1::Account* response) override;
  grpc::ServerUnaryReactor* ArchiveAccount(grpc::CallbackServerContext* context,
                                           const v1::ArchiveAccountRequest* request,
                                           v1::Account* response) override;
  grpc::ServerUnaryReactor* RestoreAccount(grpc::CallbackServerContext* context,
                                           const v1::RestoreAccountRequest* request,
                                           v1::Account* response) override;
  grpc::ServerUnaryReactor* ListAccounts(grpc::CallbackServerContext* context,
                                         const v1::ListAccountsRequest* request,
                                         v1::ListAccountsResponse* response) override;
  grpc::ServerUnaryReactor* ValidateReferences(grpc::CallbackServerContext* context,
                                               const v1::ValidateReferencesRequest* request,
                                               v1::ValidateReferencesResponse* response) override;

 private:
  using Repository = eventsourcing::Repository<ContactAggregate>;
  using AccountRepository = eventsourcing::Repository<AccountAggregate>;

  // The shared path of every single-stream command: checks the request's metadata, runs
  // `decide` through the repository and answers with the state it produced.
  template <typename Aggregate, typename Request>
  void Execute(eventsourcing::Repository<Aggregate>& repository,
               const runtime::Principal& principal, const Request& request, std::string id,
               int64_t expected_version,
               typename eventsourcing::Repository<Aggregate>::Decide decide,
               typename Aggregate::State* response, runtime::Finish finish);

  // Archive/restore-style commands: the request names one aggregate, and the decision needs
  // nothing but its state.
  template <typename Aggregate, typename Request>
  grpc::ServerUnaryReactor* Transition(
      grpc::CallbackServerContext* context, const runtime::Method& method, const Request* request,
      const std::string& id, const char* id_field, eventsourcing::Repository<Aggregate>& repository,
      absl::StatusOr<eventsourcing::Events> (*decide)(
          const std::optional<eventsourcing::Versioned<typename Aggregate::State>>&),
      typename Aggregate::State* response);

  // One page of a list: scans the index `prefixes` in order from the resume key, offering each
  // id to `take` (which loads, filters and adds it); at most 10 x page_size keys per page.
  // Returns the next page token ("" when done).
  absl::StatusOr<std::string> ScanPage(
      const std::vector<std::string>& prefixes, const std::string& page_token, int page_size,
      const std::function<absl::StatusOr<bool>(const std::string& id)>& take) const;

  // OK when `account_id` names a live account, else FAILED_PRECONDITION on `field`.
  absl::Status CheckAccount(const std::string& account_id, const std::string& field) const;

  // The live contact an id resolves to, following merges; NOT_FOUND when absent.
  absl::StatusOr<Contact> Resolve(const std::string& contact_id) const;

  eventstore::EventStore& store_;
  std::shared_ptr<const runtime::TokenVerifier> verifier_;
  const ContactLimits limits_;
  Repository contacts_;
  AccountRepository accounts_;
};

}  // namespace crm::contact
