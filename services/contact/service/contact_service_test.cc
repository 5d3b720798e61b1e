// contact-service as users meet it: the real binary, a real channel, RocksDB in a temp dir,
// the Kafka protocol (in-process mock cluster), tokens from the dev secret.

#include <csignal>

#include "absl/strings/str_cat.h"
#include "crm/common/time.h"
#include "crm/contact/v1/contact_service.grpc.pb.h"
#include "crm/contact/v1/events.pb.h"
#include "crm/kafka/consumer.h"
#include "crm/kafka/mock_cluster.h"
#include "crm/runtime/auth.h"
#include "crm/runtime/status.h"
#include "crm/testing/grpc_call.h"
#include "crm/testing/service_process.h"
#include "crm/testing/testing.h"
#include "gmock/gmock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"

namespace crm::contact {
namespace {

using ::crm::testing::Fields;
using ::crm::testing::IsOk;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::UnorderedElementsAre;
using namespace crm::contact::v1;  // NOLINT: the service's messages

constexpr char kSecret[] = "contact-service-test-secret-xxxxx";
constexpr char kTopic[] = "crm.contact.events.v1";

class ContactServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto cluster = crm::kafka::MockCluster::Start(1);
    ASSERT_THAT(cluster, IsOk());
    cluster_ = *std::move(cluster);
    ASSERT_THAT(cluster_->CreateTopic(kTopic, 3, 1), IsOk());
    StartService();
  }

  void StartService() {
    service_ = std::make_unique<crm::testing::ServiceProcess>(std::vector<std::string>{
        CRM_CONTACT_SERVICE, "--plaintext", "--jwt-hs256-secret", kSecret, "--grpc-listen",
        "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0", "--data-dir", dir_.Sub("contact"),
        "--kafka-bootstrap", cluster_->bootstrap_servers()});
    ASSERT_TRUE(service_->serving()) << service_->process().DrainStderr();
    stub_ = ContactService::NewStub(
        grpc::CreateChannel(service_->address(), grpc::InsecureChannelCredentials()));
  }

  void StopService() {
    service_->process().Signal(SIGTERM);
    ASSERT_EQ(service_->process().WaitForExitCode(), 0);
  }

  // Calls one method with a token for `scopes`; returns the status with its violations.
  template <typename Request, typename Response>
  absl::Status Call(grpc::Status (ContactService::Stub::*method)(grpc::ClientContext*,
                                                                 const Request&, Response*),
                    const Request& request, Response* response,
                    std::vector<std::string> scopes = {"contacts:read", "contacts:write"}) {
    const std::string token =
        scopes.empty() ? "" : *runtime::SignHs256({.subject = "rep-1", .scopes = scopes}, kSecret);
    return crm::testing::CallWithToken(*stub_, method, request, response, token);
  }

  absl::StatusOr<Contact> Create(const std::string& id, const std::string& given,
                                 const std::string& owner, const std::string& email = "") {
    CreateContactRequest request;
    request.set_contact_id(id);
    request.set_channel("web_form");
    request.mutable_contact()->set_given_name(given);
    request.mutable_contact()->set_family_name("Tester");
    request.mutable_contact()->set_owner_id(owner);
    if (!email.empty()) request.mutable_contact()->add_emails(email);
    Contact response;
    absl::Status status = Call(&ContactService::Stub::CreateContact, request, &response);
    if (!status.ok()) return status;
    return response;
  }

  absl::StatusOr<Contact> Get(const std::string& id, int64_t version = 0) {
    GetContactRequest request;
    request.set_contact_id(id);
    request.set_as_of_version(version);
    Contact response;
    absl::Status status = Call(&ContactService::Stub::GetContact, request, &response);
    if (!status.ok()) return status;
    return response;
  }

  crm::testing::TempDir dir_;
  std::unique_ptr<crm::kafka::MockCluster> cluster_;
  std::unique_ptr<crm::testing::ServiceProcess> service_;
  std::unique_ptr<ContactService::Stub> stub_;
};

TEST_F(ContactServiceTest, CreateGetAndIdempotentRetry) {
  CreateContactRequest request;
  request.set_request_id("form-submission-17");
  request.set_channel("web_form");
  request.mutable_contact()->set_given_name("Ada");
  request.mutable_contact()->add_emails("ADA@Example.com");
  Contact first;
  ASSERT_THAT(Call(&ContactService::Stub::CreateContact, request, &first), IsOk());
  EXPECT_THAT(first.contact_id(), ::testing::StartsWith("c-")) << "derived from the request id";
  EXPECT_EQ(first.name(), "contacts/" + first.contact_id());
  EXPECT_THAT(first.emails(), ElementsAre("ada@example.com"));
  EXPECT_EQ(first.source_channel(), "web_form");
  EXPECT_EQ(first.owner_id(), "rep-1") << "the owner defaults to the acting user";
  EXPECT_EQ(first.version(), 1);

  Contact retried;
  ASSERT_THAT(Call(&ContactService::Stub::CreateContact, request, &retried), IsOk());
  EXPECT_EQ(retried.contact_id(), first.contact_id());
  ListContactEventsRequest history;
  history.set_contact_id(first.contact_id());
  ListContactEventsResponse events;
  ASSERT_THAT(Call(&ContactService::Stub::ListContactEvents, history, &events), IsOk());
  EXPECT_EQ(events.events_size(), 1) << "the retry wrote nothing";

  request.mutable_contact()->set_given_name("Someone else");
  EXPECT_EQ(Call(&ContactService::Stub::CreateContact, request, &retried).code(),
            absl::StatusCode::kAlreadyExists)
      << "a request id reused for a different request";

  auto got = Get(first.contact_id());
  ASSERT_THAT(got, IsOk());
  EXPECT_EQ(got->given_name(), "Ada");
  EXPECT_EQ(Create(first.contact_id(), "Again", "rep-1").status().code(),
            absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(Get("nobody").status().code(), absl::StatusCode::kNotFound);
}

TEST_F(ContactServiceTest, BadInputIsRefusedWithTheFieldNamedAndNothingStored) {
  CreateContactRequest request;
  request.set_contact_id("c-1");
  request.mutable_contact()->add_emails("nope");
  *request.mutable_occurred_at() = ToProto(absl::Now() + absl::Hours(1));
  Contact response;
  absl::Status refused = Call(&ContactService::Stub::CreateContact, request, &response);
  EXPECT_EQ(refused.code(), absl::StatusCode::kInvalidArgument);
  request.clear_occurred_at();
  refused = Call(&ContactService::Stub::CreateContact, request, &response);
  EXPECT_THAT(Fields(refused), UnorderedElementsAre("contact.emails[0]", "contact.given_name",
                                                    "contact.family_name"));
  EXPECT_EQ(Get("c-1").status().code(), absl::StatusCode::kNotFound);

  *request.mutable_occurred_at() = ToProto(absl::Now() + absl::Hours(1));
  request.mutable_contact()->set_given_name("Ada");
  request.mutable_contact()->clear_emails();
  refused = Call(&ContactService::Stub::CreateContact, request, &response);
  EXPECT_THAT(refused.message(), HasSubstr("occurred_at"));

  EXPECT_EQ(Call(&ContactService::Stub::CreateContact, request, &response, {}).code(),
            absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(
      Call(&ContactService::Stub::CreateContact, request, &response, {"contacts:read"}).code(),
      absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(Get("c-1").status().code(), absl::StatusCode::kNotFound);
}

TEST_F(ContactServiceTest, UpdateWithMaskAndVersionThenReadTheOldVersion) {
  ASSERT_THAT(Create("c-1", "Ada", "rep-1"), IsOk());
  UpdateContactRequest update;
  update.mutable_contact()->set_contact_id("c-1");
  update.mutable_contact()->set_owner_id("rep-2");
  update.mutable_contact()->set_given_name("ignored: not in the mask");
  update.mutable_update_mask()->add_paths("owner_id");
  update.set_expected_version(1);
  Contact updated;
  ASSERT_THAT(Call(&ContactService::Stub::UpdateContact, update, &updated), IsOk());
  EXPECT_EQ(updated.owner_id(), "rep-2");
  EXPECT_EQ(updated.given_name(), "Ada");
  EXPECT_EQ(updated.version(), 2);

  EXPECT_EQ(Call(&ContactService::Stub::UpdateContact, update, &updated).code(),
            absl::StatusCode::kAborted)
      << "expected_version 1 is stale now";
  auto then = Get("c-1", 1);
  ASSERT_THAT(then, IsOk());
  EXPECT_EQ(then->owner_id(), "rep-1") << "the contact as it was at version 1";
}

TEST_F(ContactServiceTest, TheContactAsItWasAtABusinessTime) {
  const absl::Time last_week = absl::Now() - absl::Hours(24 * 7);
  CreateContactRequest create;
  create.set_contact_id("c-1");
  create.mutable_contact()->set_given_name("Ada");
  create.mutable_contact()->set_region("south");
  *create.mutable_occurred_at() = ToProto(last_week);  // a late-delivered field-sales record
  Contact contact;
  ASSERT_THAT(Call(&ContactService::Stub::CreateContact, create, &contact), IsOk());
  UpdateContactRequest move;
  move.mutable_contact()->set_contact_id("c-1");
  move.mutable_contact()->set_region("north");
  move.mutable_update_mask()->add_paths("region");
  ASSERT_THAT(Call(&ContactService::Stub::UpdateContact, move, &contact), IsOk());

  GetContactRequest get;
  get.set_contact_id("c-1");
  *get.mutable_as_of_time() = ToProto(last_week + absl::Hours(1));
  Contact then;
  ASSERT_THAT(Call(&ContactService::Stub::GetContact, get, &then), IsOk());
  EXPECT_EQ(then.region(), "south");
  *get.mutable_as_of_time() = ToProto(last_week - absl::Hours(1));
  EXPECT_EQ(Call(&ContactService::Stub::GetContact, get, &then).code(), absl::StatusCode::kNotFound)
      << "it did not exist yet";
  get.clear_as_of_time();
  ASSERT_THAT(Call(&ContactService::Stub::GetContact, get, &then), IsOk());
  EXPECT_EQ(then.region(), "north");

  UpdateContactRequest backdated = move;
  backdated.mutable_contact()->set_region("west");
  *backdated.mutable_occurred_at() = ToProto(last_week - absl::Hours(2));
  EXPECT_EQ(Call(&ContactService::Stub::UpdateContact, backdated, &contact).code(),
            absl::StatusCode::kFailedPrecondition)
      << "business time never goes backwards within a contact";
}

TEST_F(ContactServiceTest, ListsPageThroughAFilterInStableOrder) {
  for (int i = 0; i < 7; ++i) ASSERT_THAT(Create(absl::StrCat("a-", i), "A", "rep-1"), IsOk());
  for (int i = 0; i < 3; ++i) ASSERT_THAT(Create(absl::StrCat("b-", i), "B", "rep-2"), IsOk());
  ArchiveContactRequest archive;
  archive.set_contact_id("a-6");
  Contact archived;
  ASSERT_THAT(Call(&ContactService::Stub::ArchiveContact, archive, &archived), IsOk());
  EXPECT_TRUE(archived.archived());
  EXPECT_EQ(Call(&ContactService::Stub::ArchiveContact, archive, &archived).code(),
            absl::StatusCode::kFailedPrecondition);

  std::vector<std::string> ids;
  ListContactsRequest list;
  list.set_owner_id("rep-1");
  list.set_page_size(4);
  int pages = 0;
  do {
    ListContactsResponse page;
    ASSERT_THAT(Call(&ContactService::Stub::ListContacts, list, &page), IsOk());
    for (const auto& c : page.contacts()) ids.push_back(c.contact_id());
    list.set_page_token(page.next_page_token());
    ++pages;
  } while (!list.page_token().empty() && pages < 10);
  EXPECT_THAT(ids, ElementsAre("a-0", "a-1", "a-2", "a-3", "a-4", "a-5"))
      << "archived ones left out";

  ListContactsRequest everything;
  everything.set_include_archived(true);
  everything.set_page_size(100);
  ListContactsResponse all;
  ASSERT_THAT(Call(&ContactService::Stub::ListContacts, everything, &all), IsOk());
  EXPECT_EQ(all.contacts_size(), 10);

  ListContactsRequest bad;
  bad.set_page_token("%%%");
  EXPECT_THAT(Fields(Call(&ContactService::Stub::ListContacts, bad, &all)),
              ElementsAre("page_token"));
  bad.set_page_token("");
  bad.set_page_size(501);
  EXPECT_THAT(Fields(Call(&ContactService::Stub::ListContacts, bad, &all)),
              ElementsAre("page_size"));
}

TEST_F(ContactServiceTest, ListFiltersByAccountRegionStageAndUpdateTime) {
  CreateAccountRequest account;
  account.set_account_id("acme");
  account.mutable_account()->set_display_name("Acme");
  Account created_account;
  ASSERT_THAT(Call(&ContactService::Stub::CreateAccount, account, &created_account), IsOk());
  const absl::Time long_ago = absl::Now() - absl::Hours(24 * 30);
  auto create = [&](const std::string& id, const std::string& account_id, const std::string& region,
                    LifecycleStage stage, absl::Time when) {
    CreateContactRequest request;
    request.set_contact_id(id);
    request.mutable_contact()->set_given_name(id);
    request.mutable_contact()->set_account_id(account_id);
    request.mutable_contact()->set_region(region);
    request.mutable_contact()->set_lifecycle_stage(stage);
    *request.mutable_occurred_at() = ToProto(when);
    Contact contact;
    return Call(&ContactService::Stub::CreateContact, request, &contact);
  };
  ASSERT_THAT(create("c-1", "acme", "south", LIFECYCLE_STAGE_CUSTOMER, long_ago), IsOk());
  ASSERT_THAT(create("c-2", "", "south", LIFECYCLE_STAGE_LEAD, absl::Now()), IsOk());
  ASSERT_THAT(create("c-3", "acme", "north", LIFECYCLE_STAGE_LEAD, absl::Now()), IsOk());
  auto ids = [&](const ListContactsRequest& request) {
    ListContactsResponse response;
    EXPECT_THAT(Call(&ContactService::Stub::ListContacts, request, &response), IsOk());
    std::vector<std::string> found;
    for (const auto& c : response.contacts()) found.push_back(c.contact_id());
    return found;
  };
  ListContactsRequest by_account;
  by_account.set_account_id("acme");
  EXPECT_THAT(ids(by_account), ElementsAre("c-1", "c-3"));
  ListContactsRequest by_region_and_stage;
  by_region_and_stage.set_region("south");
  by_region_and_stage.set_lifecycle_stage(LIFECYCLE_STAGE_LEAD);
  EXPECT_THAT(ids(by_region_and_stage), ElementsAre("c-2"));
  ListContactsRequest recent;
  *recent.mutable_updated_since() = ToProto(absl::Now() - absl::Hours(24));
  EXPECT_THAT(ids(recent), ElementsAre("c-2", "c-3"));
  ListContactsRequest bad_stage;
  bad_stage.set_lifecycle_stage(static_cast<LifecycleStage>(42));
  ListContactsResponse response;
  EXPECT_THAT(Fields(Call(&ContactService::Stub::ListContacts, bad_stage, &response)),
              ElementsAre("lifecycle_stage"));
}

TEST_F(ContactServiceTest, AVersionNotYetWrittenAndAnEmptyDuplicateSearchAreRefused) {
  ASSERT_THAT(Create("c-1", "Ada", "rep-1", "ada@example.com"), IsOk());
  absl::StatusOr<Contact> future = Get("c-1", 99);
  EXPECT_THAT(future.status(), ::crm::testing::StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(Fields(future.status()), ElementsAre("as_of_version"));
  FindDuplicatesRequest nothing;
  FindDuplicatesResponse found;
  absl::Status refused = Call(&ContactService::Stub::FindDuplicates, nothing, &found);
  EXPECT_THAT(refused, ::crm::testing::StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(Fields(refused), ElementsAre("contact_id"));
}

TEST_F(ContactServiceTest, AMergeTheLoserCannotTakeLeavesNoHalfMerge) {
  CreateContactRequest early;  // the winner, last changed two hours ago
  early.set_contact_id("c-1");
  early.set_channel("web_form");
  early.mutable_contact()->set_given_name("Ada");
  early.mutable_contact()->add_emails("ada@example.com");
  *early.mutable_occurred_at() = ToProto(absl::Now() - absl::Hours(2));
  Contact created;
  ASSERT_THAT(Call(&ContactService::Stub::CreateContact, early, &created), IsOk());
  ASSERT_THAT(Create("c-2", "Augusta", "", "ada@example.com"), IsOk());  // the loser, now
  MergeContactsRequest merge;
  merge.set_winner_contact_id("c-1");
  merge.set_loser_contact_id("c-2");
  // After the winner's last event but before the loser's: the loser would refuse it, so the
  // winner must not absorb it first.
  *merge.mutable_occurred_at() = ToProto(absl::Now() - absl::Hours(1));
  Contact winner;
  absl::Status refused = Call(&ContactService::Stub::MergeContacts, merge, &winner);
  EXPECT_EQ(refused.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(refused.message(), HasSubstr("occurred_at"));
  auto unchanged = Get("c-1");
  ASSERT_THAT(unchanged, IsOk());
  EXPECT_EQ(unchanged->version(), 1) << "the winner absorbed half a merge";
}

TEST_F(ContactServiceTest, DuplicatesMergeAndReferencesResolveToTheWinner) {
  ASSERT_THAT(Create("c-1", "Ada", "rep-1", "ada@example.com"), IsOk());
  ASSERT_THAT(Create("c-2", "Augusta", "", "ADA@example.com"), IsOk());
  FindDuplicatesRequest find;
  find.set_contact_id("c-1");
  FindDuplicatesResponse found;
  ASSERT_THAT(Call(&ContactService::Stub::FindDuplicates, find, &found), IsOk());
  ASSERT_EQ(found.matches_size(), 1);
  EXPECT_EQ(found.matches(0).contact().contact_id(), "c-2");
  EXPECT_THAT(found.matches(0).reasons(), ElementsAre("email"));

  MergeContactsRequest merge;
  merge.set_winner_contact_id("c-1");
  merge.set_loser_contact_id("c-2");
  merge.set_request_id("merge-1");
  Contact winner;
  ASSERT_THAT(Call(&ContactService::Stub::MergeContacts, merge, &winner), IsOk());
  EXPECT_EQ(winner.contact_id(), "c-1");
  ASSERT_THAT(Call(&ContactService::Stub::MergeContacts, merge, &winner), IsOk())
      << "a retry is harmless";

  auto resolved = Get("c-2");
  ASSERT_THAT(resolved, IsOk());
  EXPECT_EQ(resolved->contact_id(), "c-1") << "a merged id resolves to the winner";
  ListContactEventsRequest history;
  history.set_contact_id("c-2");
  ListContactEventsResponse events;
  ASSERT_THAT(Call(&ContactService::Stub::ListContactEvents, history, &events), IsOk());
  ASSERT_EQ(events.events_size(), 2) << "the loser's history stays readable";
  EXPECT_TRUE(events.events(1).payload().Is<ContactMergedInto>());

  ValidateReferencesRequest validate;
  validate.add_contact_ids("c-2");
  validate.add_contact_ids("ghost");
  ValidateReferencesResponse references;
  ASSERT_THAT(Call(&ContactService::Stub::ValidateReferences, validate, &references), IsOk());
  EXPECT_TRUE(references.contacts(0).exists());
  EXPECT_EQ(references.contacts(0).resolved_contact_id(), "c-1");
  EXPECT_EQ(references.contacts(0).owner_id(), "rep-1");
  EXPECT_FALSE(references.contacts(1).exists());
}

TEST_F(ContactServiceTest, AMergeWithAStaleOrBadLoserVersionChangesNothing) {
  ASSERT_THAT(Create("c-1", "Ada", "rep-1", "ada@example.com"), IsOk());
  ASSERT_THAT(Create("c-2", "Ada", "rep-1", "ada@work.example"), IsOk());
  MergeContactsRequest merge;
  merge.set_winner_contact_id("c-1");
  merge.set_loser_contact_id("c-2");
  merge.set_loser_expected_version(-1);
  Contact winner;
  absl::Status refused = Call(&ContactService::Stub::MergeContacts, merge, &winner);
  EXPECT_THAT(refused, ::crm::testing::StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(Fields(refused), ElementsAre("loser_expected_version"));
  merge.set_loser_expected_version(0);
  merge.set_winner_expected_version(-1);
  refused = Call(&ContactService::Stub::MergeContacts, merge, &winner);
  EXPECT_THAT(Fields(refused), ElementsAre("winner_expected_version"));
  merge.set_winner_expected_version(0);
  // Oversized request metadata is RESOURCE_EXHAUSTED, naming each field.
  merge.set_request_id(std::string(129, 'r'));
  merge.set_channel(std::string(65, 'c'));
  refused = Call(&ContactService::Stub::MergeContacts, merge, &winner);
  EXPECT_THAT(refused, ::crm::testing::StatusIs(absl::StatusCode::kResourceExhausted));
  EXPECT_THAT(Fields(refused), UnorderedElementsAre("request_id", "channel"));
  merge.clear_request_id();
  merge.clear_channel();
  merge.set_loser_expected_version(7);  // c-2 is at version 1
  EXPECT_THAT(Call(&ContactService::Stub::MergeContacts, merge, &winner),
              ::crm::testing::StatusIs(absl::StatusCode::kAborted));
  auto untouched = Get("c-1");
  ASSERT_THAT(untouched, IsOk());
  EXPECT_EQ(untouched->version(), 1) << "the winner absorbed nothing";
  EXPECT_THAT(untouched->emails(), ElementsAre("ada@example.com"));
  merge.set_loser_expected_version(1);
  ASSERT_THAT(Call(&ContactService::Stub::MergeContacts, merge, &winner), IsOk());
  EXPECT_THAT(winner.emails(), ElementsAre("ada@example.com", "ada@work.example"));
}

TEST_F(ContactServiceTest, MalformedIdsAndTimesInQueriesAreInvalidArguments) {
  FindDuplicatesRequest duplicates;
  duplicates.set_contact_id("not/an/id");
  FindDuplicatesResponse found;
  EXPECT_THAT(Fields(Call(&ContactService::Stub::FindDuplicates, duplicates, &found)),
              ElementsAre("contact_id"));
  ListContactsRequest list;
  list.mutable_updated_since()->set_seconds(-1'000'000'000'000);
  ListContactsResponse listed;
  EXPECT_THAT(Fields(Call(&ContactService::Stub::ListContacts, list, &listed)),
              ElementsAre("updated_since"));
  CreateContactRequest create;
  create.set_contact_id("c-1");
  create.mutable_contact()->set_given_name("Ada");
  create.mutable_contact()->set_account_id("acme/emea");
  Contact contact;
  absl::Status refused = Call(&ContactService::Stub::CreateContact, create, &contact);
  EXPECT_THAT(refused, ::crm::testing::StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(Fields(refused), ElementsAre("contact.account_id"));
}

TEST_F(ContactServiceTest, AccountsAndTheContactsThatReferenceThem) {
  CreateAccountRequest create;
  create.set_account_id("acme");
  create.mutable_account()->set_display_name("Acme");
  create.mutable_account()->set_region("south");
  Account acme;
  ASSERT_THAT(Call(&ContactService::Stub::CreateAccount, create, &acme), IsOk());
  EXPECT_EQ(acme.name(), "accounts/acme");
  EXPECT_EQ(acme.owner_id(), "rep-1");
  CreateAccountRequest unnamed;
  unnamed.set_request_id("import-7");
  unnamed.mutable_account()->set_display_name("Globex");
  Account globex;
  ASSERT_THAT(Call(&ContactService::Stub::CreateAccount, unnamed, &globex), IsOk());
  EXPECT_THAT(globex.account_id(), ::testing::StartsWith("a-")) << "derived from the request id";

  CreateContactRequest contact;
  contact.set_contact_id("c-1");
  contact.mutable_contact()->set_given_name("Ada");
  contact.mutable_contact()->set_account_id("nope");
  Contact created;
  absl::Status unknown = Call(&ContactService::Stub::CreateContact, contact, &created);
  EXPECT_EQ(unknown.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(Fields(unknown), ElementsAre("contact.account_id"));
  contact.mutable_contact()->set_account_id("acme");
  contact.set_request_id("form-1");
  ASSERT_THAT(Call(&ContactService::Stub::CreateContact, contact, &created), IsOk());
  EXPECT_EQ(created.account_id(), "acme");

  ArchiveAccountRequest archive;
  archive.set_account_id("acme");
  ASSERT_THAT(Call(&ContactService::Stub::ArchiveAccount, archive, &acme), IsOk());
  Contact retried;
  ASSERT_THAT(Call(&ContactService::Stub::CreateContact, contact, &retried), IsOk())
      << "a retry gets its first answer, even though the account is archived now";
  EXPECT_EQ(retried.version(), created.version());
  contact.set_contact_id("c-2");
  contact.clear_request_id();
  EXPECT_EQ(Call(&ContactService::Stub::CreateContact, contact, &created).code(),
            absl::StatusCode::kFailedPrecondition)
      << "an archived account takes no new contacts";

  ListAccountsRequest list;
  list.set_include_archived(true);
  ListAccountsResponse accounts;
  ASSERT_THAT(Call(&ContactService::Stub::ListAccounts, list, &accounts), IsOk());
  ASSERT_EQ(accounts.accounts_size(), 2);
  EXPECT_TRUE(accounts.accounts(0).archived());
  EXPECT_EQ(accounts.accounts(0).account_id(), "acme") << "archived ones first";

  RestoreAccountRequest restore;
  restore.set_account_id("acme");
  Account restored;
  ASSERT_THAT(Call(&ContactService::Stub::RestoreAccount, restore, &restored), IsOk());
  EXPECT_FALSE(restored.archived());
  EXPECT_EQ(Call(&ContactService::Stub::RestoreAccount, restore, &restored).code(),
            absl::StatusCode::kFailedPrecondition);
  ASSERT_THAT(Call(&ContactService::Stub::ArchiveAccount, archive, &acme), IsOk());

  ValidateReferencesRequest validate;
  validate.add_account_ids("acme");
  validate.add_account_ids("ghost");
  ValidateReferencesResponse references;
  ASSERT_THAT(Call(&ContactService::Stub::ValidateReferences, validate, &references), IsOk());
  EXPECT_TRUE(references.accounts(0).exists());
  EXPECT_TRUE(references.accounts(0).archived());
  EXPECT_FALSE(references.accounts(1).exists());
}

TEST(ContactServiceSettingsTest, AnUnknownPhoneRegionStopsTheServiceWithOneLine) {
  crm::testing::Subprocess service({CRM_CONTACT_SERVICE, "--plaintext", "--jwt-hs256-secret",
                                    kSecret, "--kafka-bootstrap", "127.0.0.1:1",
                                    "--default-phone-region", "XX"});
  EXPECT_EQ(service.WaitForExitCode(), 2);
  EXPECT_THAT(service.DrainStderr(), HasSubstr("--default-phone-region"));
}

TEST_F(ContactServiceTest, EventsReachTheTopicAndEverythingSurvivesARestart) {
  ASSERT_THAT(Create("c-1", "Ada", "rep-1"), IsOk());
  ASSERT_THAT(Create("c-2", "Bob", "rep-2"), IsOk());
  StopService();  // drains and publishes before exiting

  auto published = crm::kafka::ReadTopic(cluster_->bootstrap_servers(), kTopic, absl::Seconds(30));
  ASSERT_THAT(published, IsOk());
  ASSERT_EQ(published->size(), 2u);
  std::map<std::string, ContactCreated> created;
  for (const auto& message : *published) {
    crm::events::v1::EventEnvelope envelope;
    ASSERT_TRUE(envelope.ParseFromString(message.value));
    EXPECT_EQ(message.key, envelope.stream_id());
    EXPECT_EQ(*message.Header("event_type"), "crm.contact.v1.ContactCreated");
    EXPECT_EQ(envelope.actor_id(), "rep-1") << "the token's subject";
    EXPECT_EQ(envelope.stream_type(), "contact");
    ContactCreated event;
    ASSERT_TRUE(envelope.payload().UnpackTo(&event));
    created[envelope.stream_id()] = event;
  }
  EXPECT_EQ(created["contact/c-2"].contact().owner_id(), "rep-2");
  EXPECT_EQ(created["contact/c-2"].contact().family_name(), "Tester");

  StartService();
  auto after_restart = Get("c-2");
  ASSERT_THAT(after_restart, IsOk());
  EXPECT_EQ(after_restart->given_name(), "Bob");
  ASSERT_THAT(Create("c-3", "Cy", "rep-1"), IsOk());
}

}  // namespace
}  // namespace crm::contact
