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

  // OK when `account_id` names a live account, else FAILED_PRECONDITION on `field`.
  absl::Status CheckAccount(const std::string& account_id, const std::string& field) const;

  // The live contact an id resolves to, following merges; NOT_FOUND when absent.
  absl::StatusOr<Contact> Resolve(const std::string& contact_id) const;

  eventstore::EventStore& store_;
  std::shared_ptr<const runtime::TokenVerifier> verifier_;
  const ContactLimits limits_;
  const eventsourcing::BusinessTimeBounds bounds_;
  Repository contacts_;
  AccountRepository accounts_;
};

}  // namespace crm::contact
