// pipeline-service as users meet it: the real binary beside the real contact-service binary
// (conversion and references go over gRPC, through a fault-injection proxy), RocksDB in temp
// dirs, the Kafka protocol (in-process mock cluster), tokens from the dev secret.

#include <csignal>
#include <limits>
#include <map>

#include "absl/strings/str_cat.h"
#include "crm/common/status_macros.h"
#include "crm/common/time.h"
#include "crm/contact/v1/contact_service.grpc.pb.h"
#include "crm/events/v1/envelope.pb.h"
#include "crm/kafka/consumer.h"
#include "crm/kafka/mock_cluster.h"
#include "crm/pipeline/v1/events.pb.h"
#include "crm/pipeline/v1/pipeline_service.grpc.pb.h"
#include "crm/runtime/auth.h"
#include "crm/runtime/client.h"
#include "crm/runtime/status.h"
#include "crm/testing/fault_proxy.h"
#include "crm/testing/grpc_call.h"
#include "crm/testing/service_process.h"
#include "crm/testing/testing.h"
#include "gmock/gmock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"

namespace crm::pipeline {
namespace {

using ::crm::testing::Fields;
using ::crm::testing::IsOk;
using ::crm::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::UnorderedElementsAre;
using namespace crm::pipeline::v1;  // NOLINT: the service's messages
using Stub = PipelineService::Stub;
using ContactStub = crm::contact::v1::ContactService::Stub;

constexpr char kSecret[] = "pipeline-service-test-secret-xxxx";
constexpr char kCreateContact[] = "/crm.contact.v1.ContactService/CreateContact";
constexpr char kCreateAccount[] = "/crm.contact.v1.ContactService/CreateAccount";

class PipelineServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto cluster = crm::kafka::MockCluster::Start(1);
    ASSERT_THAT(cluster, IsOk());
    cluster_ = *std::move(cluster);
    ASSERT_THAT(cluster_->CreateTopic("crm.contact.events.v1", 3, 1), IsOk());
    ASSERT_THAT(cluster_->CreateTopic("crm.pipeline.events.v1", 3, 1), IsOk());
    contact_service_ = std::make_unique<crm::testing::ServiceProcess>(std::vector<std::string>{
        CRM_CONTACT_SERVICE, "--plaintext", "--jwt-hs256-secret", kSecret, "--grpc-listen",
        "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0", "--data-dir", dir_.Sub("contact"),
        "--kafka-bootstrap", cluster_->bootstrap_servers()});
    ASSERT_TRUE(contact_service_->serving()) << contact_service_->process().DrainStderr();
    auto proxy = crm::testing::FaultProxy::Start(contact_service_->address());
    ASSERT_THAT(proxy, IsOk());
    proxy_ = *std::move(proxy);
    pipeline_service_ = std::make_unique<crm::testing::ServiceProcess>(std::vector<std::string>{
        CRM_PIPELINE_SERVICE, "--plaintext", "--jwt-hs256-secret", kSecret, "--grpc-listen",
        "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0", "--data-dir", dir_.Sub("pipeline"),
        "--kafka-bootstrap", cluster_->bootstrap_servers(), "--contact-service", proxy_->address(),
        "--contact-service-plaintext"});
    ASSERT_TRUE(pipeline_service_->serving()) << pipeline_service_->process().DrainStderr();
    stub_ = PipelineService::NewStub(
        grpc::CreateChannel(pipeline_service_->address(), grpc::InsecureChannelCredentials()));
    contacts_ = crm::contact::v1::ContactService::NewStub(
        grpc::CreateChannel(contact_service_->address(), grpc::InsecureChannelCredentials()));
    token_ = *runtime::SignHs256(
        {.subject = "rep-1",
         .scopes = {"pipeline:read", "pipeline:write", "contacts:read", "contacts:write"}},
        kSecret);
    ASSERT_THAT(DefineSales(), IsOk());
  }

  template <typename Request, typename Response>
  absl::Status Call(grpc::Status (Stub::*method)(grpc::ClientContext*, const Request&, Response*),
                    const Request& request, Response* response) {
    return crm::testing::CallWithToken(*stub_, method, request, response, token_);
  }
  template <typename Request, typename Response>
  absl::Status CallContacts(grpc::Status (ContactStub::*method)(grpc::ClientContext*,
                                                                const Request&, Response*),
                            const Request& request, Response* response) {
    return crm::testing::CallWithToken(*contacts_, method, request, response, token_);
  }

  absl::Status DefineSales() {
    DefinePipelineRequest request;
    request.set_pipeline_id("sales");
    request.set_display_name("Sales");
    for (auto [id, bps] : std::vector<std::pair<std::string, int>>{
             {"discovery", 1000}, {"proposal", 4000}, {"negotiation", 7000}}) {
      Stage* stage = request.add_stages();
      stage->set_stage_id(id);
      stage->set_probability_bps(bps);
    }
    Pipeline response;
    return Call(&Stub::DefinePipeline, request, &response);
  }

  absl::StatusOr<Lead> Capture(const std::string& id, const std::string& source,
                               const std::string& company = "Acme") {
    CaptureLeadRequest request;
    request.set_lead_id(id);
    request.set_channel("web_form");
    request.mutable_lead()->set_source(source);
    request.mutable_lead()->set_region("emea");
    request.mutable_lead()->mutable_person()->set_given_name("Ada");
    request.mutable_lead()->mutable_person()->set_family_name("Lovelace");
    request.mutable_lead()->mutable_person()->set_email("ada@example.com");
    request.mutable_lead()->mutable_company()->set_display_name(company);
    Lead response;
    CRM_RETURN_IF_ERROR(Call(&Stub::CaptureLead, request, &response));
    return response;
  }

  static Opportunity Deal(int64_t quantity = 3, int64_t unit_price = 125000) {
    Opportunity deal;
    deal.set_pipeline_id("sales");
    deal.set_currency_code("EUR");
    ProductLine* line = deal.add_lines();
    line->set_product_id("engine");
    line->set_quantity(quantity);
    line->set_unit_price_minor(unit_price);
    return deal;
  }

  absl::StatusOr<Opportunity> Open(const std::string& id, Opportunity fields) {
    OpenOpportunityRequest request;
    request.set_opportunity_id(id);
    if (fields.display_name().empty()) fields.set_display_name("Deal " + id);
    *request.mutable_opportunity() = std::move(fields);
    Opportunity response;
    CRM_RETURN_IF_ERROR(Call(&Stub::OpenOpportunity, request, &response));
    return response;
  }

  absl::StatusOr<Opportunity> Move(const std::string& id, const std::string& stage) {
    MoveOpportunityStageRequest request;
    request.set_opportunity_id(id);
    request.set_stage_id(stage);
    Opportunity response;
    CRM_RETURN_IF_ERROR(Call(&Stub::MoveOpportunityStage, request, &response));
    return response;
  }

  absl::StatusOr<ConvertLeadResponse> Convert(const std::string& lead_id,
                                              const std::string& request_id) {
    ConvertLeadRequest request;
    request.set_lead_id(lead_id);
    request.set_request_id(request_id);
    *request.mutable_opportunity() = Deal();
    ConvertLeadResponse response;
    CRM_RETURN_IF_ERROR(Call(&Stub::ConvertLead, request, &response));
    return response;
  }

  // What contact-service holds: every account and contact id.
  std::pair<std::vector<std::string>, std::vector<std::string>> ContactServiceRecords() {
    crm::contact::v1::ListAccountsRequest accounts_request;
    crm::contact::v1::ListAccountsResponse accounts;
    EXPECT_THAT(CallContacts(&ContactStub::ListAccounts, accounts_request, &accounts), IsOk());
    crm::contact::v1::ListContactsRequest contacts_request;
    crm::contact::v1::ListContactsResponse contacts;
    EXPECT_THAT(CallContacts(&ContactStub::ListContacts, contacts_request, &contacts), IsOk());
    std::pair<std::vector<std::string>, std::vector<std::string>> records;
    for (const auto& a : accounts.accounts()) records.first.push_back(a.account_id());
    for (const auto& c : contacts.contacts()) records.second.push_back(c.contact_id());
    return records;
  }

  crm::testing::TempDir dir_;
  std::unique_ptr<crm::kafka::MockCluster> cluster_;
  std::unique_ptr<crm::testing::ServiceProcess> contact_service_;
  std::unique_ptr<crm::testing::FaultProxy> proxy_;
  std::unique_ptr<crm::testing::ServiceProcess> pipeline_service_;
  std::unique_ptr<Stub> stub_;
  std::unique_ptr<ContactStub> contacts_;
  std::string token_;
};

TEST_F(PipelineServiceTest, PipelinesAreVersionedAndOpportunitiesKeepTheirRevision) {
  ASSERT_THAT(Open("o-1", Deal()), IsOk());
  DefinePipelineRequest redefine;
  redefine.set_pipeline_id("sales");
  redefine.set_display_name("Sales");
  redefine.set_expected_revision(1);
  Stage* only = redefine.add_stages();
  only->set_stage_id("qualify");
  only->set_probability_bps(500);
  Pipeline revised;
  ASSERT_THAT(Call(&Stub::DefinePipeline, redefine, &revised), IsOk());
  EXPECT_EQ(revised.revision(), 2);
  EXPECT_THAT(Call(&Stub::DefinePipeline, redefine, &revised),
              StatusIs(absl::StatusCode::kAborted));  // expected revision 1 is stale
  redefine.set_expected_revision(-1);
  absl::Status negative = Call(&Stub::DefinePipeline, redefine, &revised);
  EXPECT_THAT(negative, StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(Fields(negative), ElementsAre("expected_revision"));

  GetPipelineRequest get;
  get.set_pipeline_id("sales");
  get.set_revision(1);
  Pipeline first;
  ASSERT_THAT(Call(&Stub::GetPipeline, get, &first), IsOk());
  EXPECT_EQ(first.stages_size(), 3);
  get.set_revision(3);
  EXPECT_THAT(Call(&Stub::GetPipeline, get, &first), StatusIs(absl::StatusCode::kNotFound));

  // o-1 still moves through revision 1's stages; new opportunities get revision 2's.
  auto moved = Move("o-1", "proposal");
  ASSERT_THAT(moved, IsOk());
  EXPECT_EQ(moved->pipeline_revision(), 1);
  EXPECT_EQ(moved->stage_probability_bps(), 4000);
  auto fresh = Open("o-2", Deal());
  ASSERT_THAT(fresh, IsOk());
  EXPECT_EQ(fresh->pipeline_revision(), 2);
  EXPECT_EQ(fresh->stage_id(), "qualify");

  DefinePipelineRequest bad;
  bad.set_pipeline_id("x");
  Pipeline none;
  absl::Status refused = Call(&Stub::DefinePipeline, bad, &none);
  EXPECT_THAT(refused, StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(Fields(refused), UnorderedElementsAre("display_name", "stages"));
}

TEST_F(PipelineServiceTest, LeadsAreCapturedQualifiedAndListedBySourceAndStatus) {
  ASSERT_THAT(Capture("l-1", "webinar"), IsOk());
  ASSERT_THAT(Capture("l-2", "webinar"), IsOk());
  auto partner = Capture("l-3", "partner");
  ASSERT_THAT(partner, IsOk());
  EXPECT_EQ(partner->owner_id(), "rep-1") << "defaults to the capturing user";
  EXPECT_EQ(partner->channel(), "web_form") << "defaults to the request's channel";

  QualifyLeadRequest qualify;
  qualify.set_lead_id("l-1");
  Lead lead;
  ASSERT_THAT(Call(&Stub::QualifyLead, qualify, &lead), IsOk());
  EXPECT_EQ(lead.status(), LEAD_STATUS_QUALIFIED);
  EXPECT_THAT(Call(&Stub::QualifyLead, qualify, &lead),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  DisqualifyLeadRequest disqualify;
  disqualify.set_lead_id("l-2");
  EXPECT_THAT(Fields(Call(&Stub::DisqualifyLead, disqualify, &lead)), ElementsAre("reason"));
  disqualify.set_reason("student, no budget");
  ASSERT_THAT(Call(&Stub::DisqualifyLead, disqualify, &lead), IsOk());

  ListLeadsRequest list;
  list.set_source("webinar");
  list.set_page_size(1);
  std::vector<std::string> webinar;
  for (int page = 0; page < 5; ++page) {
    ListLeadsResponse response;
    ASSERT_THAT(Call(&Stub::ListLeads, list, &response), IsOk());
    for (const auto& l : response.leads()) webinar.push_back(l.lead_id());
    if (response.next_page_token().empty()) break;
    list.set_page_token(response.next_page_token());
  }
  EXPECT_THAT(webinar, ElementsAre("l-1", "l-2"));
  ListLeadsRequest disqualified;
  disqualified.set_status(LEAD_STATUS_DISQUALIFIED);
  ListLeadsResponse response;
  ASSERT_THAT(Call(&Stub::ListLeads, disqualified, &response), IsOk());
  ASSERT_EQ(response.leads_size(), 1);
  EXPECT_EQ(response.leads(0).disqualify_reason(), "student, no budget");

  CaptureLeadRequest nobody;
  nobody.set_lead_id("l-4");
  EXPECT_THAT(Fields(Call(&Stub::CaptureLead, nobody, &lead)),
              UnorderedElementsAre("lead.source", "lead.person"));
  GetLeadRequest get;
  get.set_lead_id("l-4");
  EXPECT_THAT(Call(&Stub::GetLead, get, &lead), StatusIs(absl::StatusCode::kNotFound))
      << "nothing stored for bad input";
}

TEST_F(PipelineServiceTest, OpportunitiesMoveCloseReopenAndAreListed) {
  crm::contact::v1::CreateAccountRequest account;
  account.set_account_id("acme");
  account.mutable_account()->set_display_name("Acme");
  account.mutable_account()->set_region("emea");
  crm::contact::v1::Account created;
  ASSERT_THAT(CallContacts(&ContactStub::CreateAccount, account, &created), IsOk());

  Opportunity with_account = Deal();
  with_account.set_account_id("acme");
  with_account.mutable_expected_close_date()->set_year(2027);
  with_account.mutable_expected_close_date()->set_month(3);
  with_account.mutable_expected_close_date()->set_day(31);
  auto opened = Open("o-1", with_account);
  ASSERT_THAT(opened, IsOk());
  EXPECT_EQ(opened->region(), "emea") << "from the account";
  EXPECT_EQ(opened->amount_minor(), 375000);
  EXPECT_EQ(opened->owner_id(), "rep-1");

  Opportunity missing_account = Deal();
  missing_account.set_account_id("nobody");
  absl::Status refused = Open("o-x", missing_account).status();
  EXPECT_THAT(refused, StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_THAT(Fields(refused), ElementsAre("opportunity.account_id"));
  Opportunity malformed = Deal();
  malformed.set_contact_id("not/an/id");
  refused = Open("o-w", malformed).status();
  EXPECT_THAT(refused, StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(Fields(refused), ElementsAre("opportunity.contact_id"));
  Opportunity elsewhere = Deal();
  elsewhere.set_pipeline_id("no-such-pipeline");
  refused = Open("o-z", elsewhere).status();
  EXPECT_THAT(refused, StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_THAT(Fields(refused), ElementsAre("opportunity.pipeline_id"));
  EXPECT_THAT(Open("o-y", Deal(2, std::numeric_limits<int64_t>::max())).status(),
              StatusIs(absl::StatusCode::kInvalidArgument));
  ASSERT_THAT(Open("o-2", Deal()), IsOk());

  ASSERT_THAT(Move("o-1", "negotiation"), IsOk());
  auto back = Move("o-1", "proposal");
  ASSERT_THAT(back, IsOk());
  EXPECT_EQ(back->stage_probability_bps(), 4000);
  EXPECT_THAT(Move("o-1", "proposal").status(), StatusIs(absl::StatusCode::kFailedPrecondition));

  CloseOpportunityRequest close;
  close.set_opportunity_id("o-1");
  close.set_outcome(OPPORTUNITY_STATUS_LOST);
  Opportunity closed;
  EXPECT_THAT(Fields(Call(&Stub::CloseOpportunity, close, &closed)), ElementsAre("reason"));
  close.set_reason("went with a competitor");
  ASSERT_THAT(Call(&Stub::CloseOpportunity, close, &closed), IsOk());
  EXPECT_THAT(Move("o-1", "discovery").status(), StatusIs(absl::StatusCode::kFailedPrecondition));
  ReopenOpportunityRequest reopen;
  reopen.set_opportunity_id("o-1");
  Opportunity reopened;
  ASSERT_THAT(Call(&Stub::ReopenOpportunity, reopen, &reopened), IsOk());
  EXPECT_EQ(reopened.status(), OPPORTUNITY_STATUS_OPEN);
  EXPECT_EQ(reopened.stage_id(), "proposal");
  close.set_outcome(OPPORTUNITY_STATUS_WON);
  ASSERT_THAT(Call(&Stub::CloseOpportunity, close, &closed), IsOk());

  // As it was before the close (business time travel).
  GetOpportunityRequest as_of;
  as_of.set_opportunity_id("o-1");
  *as_of.mutable_as_of_time() = opened->create_time();
  Opportunity then;
  ASSERT_THAT(Call(&Stub::GetOpportunity, as_of, &then), IsOk());
  EXPECT_EQ(then.status(), OPPORTUNITY_STATUS_OPEN);
  EXPECT_EQ(then.stage_id(), "discovery");

  auto ids = [&](ListOpportunitiesRequest request) {
    ListOpportunitiesResponse response;
    EXPECT_THAT(Call(&Stub::ListOpportunities, request, &response), IsOk());
    std::vector<std::string> found;
    for (const auto& o : response.opportunities()) found.push_back(o.opportunity_id());
    return found;
  };
  ListOpportunitiesRequest won;
  won.set_status(OPPORTUNITY_STATUS_WON);
  EXPECT_THAT(ids(won), ElementsAre("o-1"));
  ListOpportunitiesRequest in_discovery;
  in_discovery.set_stage_id("discovery");
  EXPECT_THAT(ids(in_discovery), ElementsAre("o-2"));
  ListOpportunitiesRequest q1;
  q1.mutable_expected_close_from()->set_year(2027);
  q1.mutable_expected_close_from()->set_month(1);
  q1.mutable_expected_close_from()->set_day(1);
  q1.mutable_expected_close_to()->set_year(2027);
  q1.mutable_expected_close_to()->set_month(3);
  q1.mutable_expected_close_to()->set_day(31);
  EXPECT_THAT(ids(q1), ElementsAre("o-1"));
  q1.mutable_expected_close_to()->set_day(30);
  EXPECT_THAT(ids(q1), IsEmpty());
  ListOpportunitiesRequest by_region;
  by_region.set_region("emea");
  by_region.set_owner_id("rep-1");
  EXPECT_THAT(ids(by_region), ElementsAre("o-1"));
  ListOpportunitiesRequest all;
  EXPECT_THAT(ids(all), ElementsAre("o-1", "o-2"));

  // Every event carries what the KPIs need, so consumers never look anything up.
  pipeline_service_->process().Signal(SIGTERM);
  ASSERT_EQ(pipeline_service_->process().WaitForExitCode(), 0);
  auto published = crm::kafka::ReadTopic(cluster_->bootstrap_servers(), "crm.pipeline.events.v1",
                                         absl::Seconds(30));
  ASSERT_THAT(published, IsOk());
  std::vector<std::string> types;
  for (const auto& message : *published) {
    crm::events::v1::EventEnvelope envelope;
    ASSERT_TRUE(envelope.ParseFromString(message.value));
    if (envelope.stream_id() != "opportunity/o-1") continue;
    types.emplace_back(message.Header("event_type").value_or(""));
    EXPECT_EQ(envelope.actor_id(), "rep-1");
    EXPECT_TRUE(envelope.has_recorded_at() && envelope.has_occurred_at());
    OpportunityWon event;
    if (envelope.payload().UnpackTo(&event)) {
      EXPECT_EQ(event.opportunity().region(), "emea");
      EXPECT_EQ(event.opportunity().currency_code(), "EUR");
      EXPECT_EQ(event.opportunity().amount_minor(), 375000);
      EXPECT_EQ(event.opportunity().lines(0).product_id(), "engine");
      EXPECT_EQ(event.opportunity().stage_probability_bps(), 4000);
      EXPECT_EQ(event.opportunity().owner_id(), "rep-1");
    }
  }
  EXPECT_THAT(
      types,
      ElementsAre("crm.pipeline.v1.OpportunityOpened", "crm.pipeline.v1.OpportunityStageMoved",
                  "crm.pipeline.v1.OpportunityStageMoved", "crm.pipeline.v1.OpportunityLost",
                  "crm.pipeline.v1.OpportunityReopened", "crm.pipeline.v1.OpportunityWon"));
}

TEST_F(PipelineServiceTest, ConversionCreatesTheAccountContactAndOpportunityOnce) {
  ASSERT_THAT(Capture("l-1", "webinar"), IsOk());
  auto converted = Convert("l-1", "convert-l-1");
  ASSERT_THAT(converted, IsOk());
  const Lead& lead = converted->lead();
  EXPECT_EQ(lead.status(), LEAD_STATUS_CONVERTED);
  EXPECT_EQ(converted->opportunity().opportunity_id(), lead.opportunity_id());
  EXPECT_EQ(converted->opportunity().lead_id(), "l-1");
  EXPECT_EQ(converted->opportunity().account_id(), lead.account_id());
  EXPECT_EQ(converted->opportunity().contact_id(), lead.contact_id());
  EXPECT_EQ(converted->opportunity().display_name(), "Acme");
  EXPECT_EQ(converted->opportunity().region(), "emea");

  crm::contact::v1::GetContactRequest get;
  get.set_contact_id(lead.contact_id());
  crm::contact::v1::Contact contact;
  ASSERT_THAT(CallContacts(&ContactStub::GetContact, get, &contact), IsOk());
  EXPECT_EQ(contact.given_name(), "Ada");
  EXPECT_THAT(contact.emails(), ElementsAre("ada@example.com"));
  EXPECT_EQ(contact.account_id(), lead.account_id());
  EXPECT_EQ(contact.source_channel(), "web_form");

  // The same request again, after the deal moved on: the first answer, not today's deal.
  // Another conversion: refused.
  ASSERT_THAT(Move(lead.opportunity_id(), "proposal"), IsOk());
  auto retried = Convert("l-1", "convert-l-1");
  ASSERT_THAT(retried, IsOk());
  EXPECT_EQ(retried->opportunity().opportunity_id(), lead.opportunity_id());
  EXPECT_EQ(retried->opportunity().version(), converted->opportunity().version());
  EXPECT_EQ(retried->opportunity().stage_id(), converted->opportunity().stage_id());
  EXPECT_EQ(retried->lead().version(), lead.version());
  EXPECT_THAT(Convert("l-1", "convert-again").status(),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  auto [accounts, contacts] = ContactServiceRecords();
  EXPECT_THAT(accounts, ElementsAre(lead.account_id()));
  EXPECT_THAT(contacts, ElementsAre(lead.contact_id()));

  // A disqualified lead does not convert, and nothing is created for it.
  ASSERT_THAT(Capture("l-2", "webinar", "Globex"), IsOk());
  DisqualifyLeadRequest disqualify;
  disqualify.set_lead_id("l-2");
  disqualify.set_reason("competitor");
  Lead ignored;
  ASSERT_THAT(Call(&Stub::DisqualifyLead, disqualify, &ignored), IsOk());
  EXPECT_THAT(Convert("l-2", "convert-l-2").status(),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_EQ(proxy_->calls(kCreateAccount), 1);
}

TEST_F(PipelineServiceTest, AConversionRetriedAfterContactServiceFailedHalfWayCreatesNothingTwice) {
  ASSERT_THAT(Capture("l-1", "webinar"), IsOk());
  // The account is created; every attempt at the contact then fails.
  const int attempts = runtime::CallOptions{}.max_attempts;
  proxy_->FailCalls(kCreateContact, 0, attempts,
                    grpc::Status(grpc::StatusCode::UNAVAILABLE, "contact-service is restarting"));
  EXPECT_THAT(Convert("l-1", "convert-1").status(), StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_EQ(proxy_->calls(kCreateContact), attempts);
  auto [accounts_between, contacts_between] = ContactServiceRecords();
  EXPECT_EQ(accounts_between.size(), 1u) << "the first step happened";
  EXPECT_THAT(contacts_between, IsEmpty()) << "the second did not";
  GetLeadRequest get;
  get.set_lead_id("l-1");
  Lead lead;
  ASSERT_THAT(Call(&Stub::GetLead, get, &lead), IsOk());
  EXPECT_EQ(lead.status(), LEAD_STATUS_NEW) << "the lead is converted last";
  ListOpportunitiesResponse none;
  ASSERT_THAT(Call(&Stub::ListOpportunities, ListOpportunitiesRequest(), &none), IsOk());
  EXPECT_EQ(none.opportunities_size(), 0);

  // The client retries (a new request id, as a user clicking again would send).
  auto converted = Convert("l-1", "convert-2");
  ASSERT_THAT(converted, IsOk());
  auto [accounts, contacts] = ContactServiceRecords();
  EXPECT_THAT(accounts, ElementsAre(converted->lead().account_id()));
  EXPECT_EQ(accounts, accounts_between) << "the account made before the failure is linked";
  EXPECT_THAT(contacts, ElementsAre(converted->lead().contact_id()));
  ListOpportunitiesResponse one;
  ASSERT_THAT(Call(&Stub::ListOpportunities, ListOpportunitiesRequest(), &one), IsOk());
  ASSERT_EQ(one.opportunities_size(), 1);
  EXPECT_EQ(one.opportunities(0).contact_id(), converted->lead().contact_id());
}

TEST_F(PipelineServiceTest, AMergedContactResolvesToItsWinner) {
  for (const char* id : {"c-winner", "c-loser"}) {
    crm::contact::v1::CreateContactRequest create;
    create.set_contact_id(id);
    create.mutable_contact()->set_given_name("Ada");
    crm::contact::v1::Contact created;
    ASSERT_THAT(CallContacts(&ContactStub::CreateContact, create, &created), IsOk());
  }
  crm::contact::v1::MergeContactsRequest merge;
  merge.set_winner_contact_id("c-winner");
  merge.set_loser_contact_id("c-loser");
  crm::contact::v1::Contact merged;
  ASSERT_THAT(CallContacts(&ContactStub::MergeContacts, merge, &merged), IsOk());

  Opportunity deal = Deal();
  deal.set_contact_id("c-loser");
  auto opened = Open("o-1", deal);
  ASSERT_THAT(opened, IsOk());
  EXPECT_EQ(opened->contact_id(), "c-winner");

  UpdateOpportunityRequest update;
  update.mutable_opportunity()->set_opportunity_id("o-1");
  update.mutable_opportunity()->set_contact_id("c-nobody");
  update.mutable_update_mask()->add_paths("contact_id");
  Opportunity updated;
  absl::Status refused = Call(&Stub::UpdateOpportunity, update, &updated);
  EXPECT_THAT(refused, StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_THAT(Fields(refused), ElementsAre("opportunity.contact_id"));
  update.mutable_opportunity()->set_contact_id("c-loser");
  update.mutable_update_mask()->add_paths("display_name");
  update.mutable_opportunity()->set_display_name("Renamed");
  ASSERT_THAT(Call(&Stub::UpdateOpportunity, update, &updated), IsOk());
  EXPECT_EQ(updated.contact_id(), "c-winner");
  EXPECT_EQ(updated.display_name(), "Renamed");

  // A retried open gets its first answer even after its contact was archived since.
  OpenOpportunityRequest open;
  open.set_request_id("open-2");
  *open.mutable_opportunity() = Deal();
  open.mutable_opportunity()->set_display_name("Second deal");
  open.mutable_opportunity()->set_contact_id("c-winner");
  Opportunity first;
  ASSERT_THAT(Call(&Stub::OpenOpportunity, open, &first), IsOk());
  crm::contact::v1::ArchiveContactRequest archive;
  archive.set_contact_id("c-winner");
  crm::contact::v1::Contact archived;
  ASSERT_THAT(CallContacts(&ContactStub::ArchiveContact, archive, &archived), IsOk());
  Opportunity again;
  ASSERT_THAT(Call(&Stub::OpenOpportunity, open, &again), IsOk());
  EXPECT_EQ(again.opportunity_id(), first.opportunity_id());
  open.set_request_id("open-3");
  EXPECT_THAT(Call(&Stub::OpenOpportunity, open, &again),
              StatusIs(absl::StatusCode::kFailedPrecondition))
      << "a new request names an archived contact";
}

TEST_F(PipelineServiceTest, ValidateReferencesChecksManyIdsInOneCall) {
  ASSERT_THAT(Capture("l-1", "webinar"), IsOk());
  ASSERT_THAT(Open("o-1", Deal()), IsOk());
  ValidateReferencesRequest request;
  for (const char* id : {"l-1", "l-missing", "not/an/id"}) request.add_lead_ids(id);
  for (const char* id : {"o-missing", "o-1"}) request.add_opportunity_ids(id);
  ValidateReferencesResponse response;
  ASSERT_THAT(Call(&Stub::ValidateReferences, request, &response), IsOk());
  ASSERT_EQ(response.leads_size(), 3);
  EXPECT_TRUE(response.leads(0).exists());
  EXPECT_EQ(response.leads(0).source(), "webinar");
  EXPECT_EQ(response.leads(0).status(), LEAD_STATUS_NEW);
  EXPECT_FALSE(response.leads(1).exists());
  EXPECT_FALSE(response.leads(2).exists());
  ASSERT_EQ(response.opportunities_size(), 2);
  EXPECT_FALSE(response.opportunities(0).exists());
  EXPECT_TRUE(response.opportunities(1).exists());
  EXPECT_EQ(response.opportunities(1).stage_id(), "discovery");
  EXPECT_EQ(response.opportunities(1).status(), OPPORTUNITY_STATUS_OPEN);

  ValidateReferencesRequest too_many;
  for (int i = 0; i < 501; ++i) too_many.add_lead_ids(absl::StrCat("l-", i));
  absl::Status refused = Call(&Stub::ValidateReferences, too_many, &response);
  EXPECT_THAT(refused, StatusIs(absl::StatusCode::kResourceExhausted));
  EXPECT_THAT(Fields(refused), ElementsAre("lead_ids"));
}

TEST_F(PipelineServiceTest, TokensAndScopesAreChecked) {
  GetLeadRequest get;
  get.set_lead_id("l-1");
  Lead lead;
  EXPECT_THAT(crm::testing::CallWithToken(*stub_, &Stub::GetLead, get, &lead, ""),
              StatusIs(absl::StatusCode::kUnauthenticated));
  const std::string reader =
      *runtime::SignHs256({.subject = "viewer", .scopes = {"pipeline:read"}}, kSecret);
  CaptureLeadRequest capture;
  EXPECT_THAT(crm::testing::CallWithToken(*stub_, &Stub::CaptureLead, capture, &lead, reader),
              StatusIs(absl::StatusCode::kPermissionDenied));
  // Conversion creates contacts with the caller's own rights: without contacts:write it fails
  // in contact-service, before anything is created.
  ASSERT_THAT(Capture("l-1", "webinar"), IsOk());
  const std::string seller = *runtime::SignHs256(
      {.subject = "rep-2", .scopes = {"pipeline:read", "pipeline:write", "contacts:read"}},
      kSecret);
  ConvertLeadRequest convert;
  convert.set_lead_id("l-1");
  *convert.mutable_opportunity() = Deal();
  ConvertLeadResponse converted;
  EXPECT_THAT(crm::testing::CallWithToken(*stub_, &Stub::ConvertLead, convert, &converted, seller),
              StatusIs(absl::StatusCode::kPermissionDenied));
  EXPECT_EQ(ContactServiceRecords().first.size(), 0u);
}

}  // namespace
}  // namespace crm::pipeline
