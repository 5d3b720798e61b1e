// activity-service as users meet it: the real binary beside the real contact-service and
// pipeline-service binaries (references are checked over gRPC; contact-service behind a
// fault-injection proxy that counts calls), RocksDB in temp dirs, the Kafka protocol
// (in-process mock cluster), tokens from the dev secret.

#include <csignal>

#include "absl/strings/str_cat.h"
#include "crm/activity/v1/activity_service.grpc.pb.h"
#include "crm/activity/v1/events.pb.h"
#include "crm/common/status_macros.h"
#include "crm/common/time.h"
#include "crm/contact/v1/contact_service.grpc.pb.h"
#include "crm/events/v1/envelope.pb.h"
#include "crm/kafka/consumer.h"
#include "crm/kafka/mock_cluster.h"
#include "crm/pipeline/v1/pipeline_service.grpc.pb.h"
#include "crm/runtime/auth.h"
#include "crm/testing/fault_proxy.h"
#include "crm/testing/grpc_call.h"
#include "crm/testing/service_process.h"
#include "crm/testing/testing.h"
#include "gmock/gmock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"

namespace crm::activity {
namespace {

using ::crm::testing::Fields;
using ::crm::testing::IsOk;
using ::crm::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::testing::UnorderedElementsAre;
using namespace crm::activity::v1;  // NOLINT: the service's messages
using Stub = ActivityService::Stub;
using ContactStub = crm::contact::v1::ContactService::Stub;
using PipelineStub = crm::pipeline::v1::PipelineService::Stub;

constexpr char kSecret[] = "activity-service-test-secret-xxxx";
constexpr char kValidateContacts[] = "/crm.contact.v1.ContactService/ValidateReferences";
const absl::Time kNow = absl::Now();

class ActivityServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto cluster = crm::kafka::MockCluster::Start(1);
    ASSERT_THAT(cluster, IsOk());
    cluster_ = *std::move(cluster);
    for (const char* topic :
         {"crm.contact.events.v1", "crm.pipeline.events.v1", "crm.activity.events.v1"}) {
      ASSERT_THAT(cluster_->CreateTopic(topic, 3, 1), IsOk());
    }
    contact_service_ = Start(CRM_CONTACT_SERVICE, "contact", {});
    ASSERT_TRUE(contact_service_->serving()) << contact_service_->process().DrainStderr();
    auto proxy = crm::testing::FaultProxy::Start(contact_service_->address());
    ASSERT_THAT(proxy, IsOk());
    proxy_ = *std::move(proxy);
    pipeline_service_ =
        Start(CRM_PIPELINE_SERVICE, "pipeline",
              {"--contact-service", contact_service_->address(), "--contact-service-plaintext"});
    ASSERT_TRUE(pipeline_service_->serving()) << pipeline_service_->process().DrainStderr();
    activity_service_ =
        Start(CRM_ACTIVITY_SERVICE, "activity",
              {"--contact-service", proxy_->address(), "--contact-service-plaintext",
               "--pipeline-service", pipeline_service_->address(), "--pipeline-service-plaintext"});
    ASSERT_TRUE(activity_service_->serving()) << activity_service_->process().DrainStderr();
    stub_ = ActivityService::NewStub(
        grpc::CreateChannel(activity_service_->address(), grpc::InsecureChannelCredentials()));
    token_ = *runtime::SignHs256({.subject = "rep-1",
                                  .scopes = {"activities:read", "activities:write", "contacts:read",
                                             "contacts:write", "pipeline:read", "pipeline:write"}},
                                 kSecret);
    ASSERT_THAT(Seed(), IsOk());
  }

  std::unique_ptr<crm::testing::ServiceProcess> Start(const std::string& binary,
                                                      const std::string& name,
                                                      std::vector<std::string> peers) {
    std::vector<std::string> args = {
        binary,          "--plaintext",  "--jwt-hs256-secret", kSecret,
        "--grpc-listen", "127.0.0.1:0",  "--metrics-listen",   "127.0.0.1:0",
        "--data-dir",    dir_.Sub(name), "--kafka-bootstrap",  cluster_->bootstrap_servers()};
    args.insert(args.end(), peers.begin(), peers.end());
    return std::make_unique<crm::testing::ServiceProcess>(std::move(args));
  }

  template <typename Request, typename Response>
  absl::Status Call(grpc::Status (Stub::*method)(grpc::ClientContext*, const Request&, Response*),
                    const Request& request, Response* response) {
    return crm::testing::CallWithToken(*stub_, method, request, response, token_);
  }

  // Account a-1 with contacts c-1 and c-2 (c-2 merged into c-1), lead l-1, opportunity o-1.
  absl::Status Seed() {
    auto contacts = ContactStub(
        grpc::CreateChannel(contact_service_->address(), grpc::InsecureChannelCredentials()));
    crm::contact::v1::CreateAccountRequest account;
    account.set_account_id("a-1");
    account.mutable_account()->set_display_name("Acme");
    crm::contact::v1::Account created_account;
    CRM_RETURN_IF_ERROR(crm::testing::CallWithToken(contacts, &ContactStub::CreateAccount, account,
                                                    &created_account, token_));
    for (const char* id : {"c-1", "c-2"}) {
      crm::contact::v1::CreateContactRequest contact;
      contact.set_contact_id(id);
      contact.mutable_contact()->set_given_name("Grace");
      contact.mutable_contact()->set_family_name(id);
      contact.mutable_contact()->set_account_id("a-1");
      crm::contact::v1::Contact created;
      CRM_RETURN_IF_ERROR(crm::testing::CallWithToken(contacts, &ContactStub::CreateContact,
                                                      contact, &created, token_));
    }
    crm::contact::v1::MergeContactsRequest merge;
    merge.set_winner_contact_id("c-1");
    merge.set_loser_contact_id("c-2");
    crm::contact::v1::Contact merged;
    CRM_RETURN_IF_ERROR(
        crm::testing::CallWithToken(contacts, &ContactStub::MergeContacts, merge, &merged, token_));

    auto pipeline = PipelineStub(
        grpc::CreateChannel(pipeline_service_->address(), grpc::InsecureChannelCredentials()));
    crm::pipeline::v1::DefinePipelineRequest define;
    define.set_pipeline_id("sales");
    define.set_display_name("Sales");
    define.add_stages()->set_stage_id("discovery");
    crm::pipeline::v1::Pipeline defined;
    CRM_RETURN_IF_ERROR(crm::testing::CallWithToken(pipeline, &PipelineStub::DefinePipeline, define,
                                                    &defined, token_));
    crm::pipeline::v1::CaptureLeadRequest capture;
    capture.set_lead_id("l-1");
    capture.mutable_lead()->set_source("webinar");
    capture.mutable_lead()->mutable_person()->set_email("new@example.com");
    crm::pipeline::v1::Lead lead;
    CRM_RETURN_IF_ERROR(
        crm::testing::CallWithToken(pipeline, &PipelineStub::CaptureLead, capture, &lead, token_));
    crm::pipeline::v1::OpenOpportunityRequest open;
    open.set_opportunity_id("o-1");
    open.mutable_opportunity()->set_display_name("Acme renewal");
    open.mutable_opportunity()->set_pipeline_id("sales");
    open.mutable_opportunity()->set_currency_code("EUR");
    open.mutable_opportunity()->set_account_id("a-1");
    crm::pipeline::v1::Opportunity opportunity;
    return crm::testing::CallWithToken(pipeline, &PipelineStub::OpenOpportunity, open, &opportunity,
                                       token_);
  }

  static Activity Interaction(ActivityType type, const std::string& channel,
                              const std::string& contact_id) {
    Activity activity;
    activity.set_type(type);
    activity.set_channel(channel);
    activity.set_contact_id(contact_id);
    activity.set_subject("Follow-up");
    return activity;
  }

  absl::StatusOr<Activity> Log(const std::string& id, Activity fields,
                               absl::Time occurred_at = kNow, const std::string& request_id = "") {
    LogActivityRequest request;
    request.set_activity_id(id);
    *request.mutable_activity() = std::move(fields);
    *request.mutable_occurred_at() = ToProto(occurred_at);
    request.set_request_id(request_id);
    Activity response;
    CRM_RETURN_IF_ERROR(Call(&Stub::LogActivity, request, &response));
    return response;
  }

  absl::Status Exists(const std::string& activity_id) {
    GetActivityRequest get;
    get.set_activity_id(activity_id);
    Activity found;
    return Call(&Stub::GetActivity, get, &found);
  }

  // The ids of a timeline page and the token after it.
  std::pair<std::vector<std::string>, std::string> Timeline(ListTimelineRequest request) {
    ListTimelineResponse response;
    EXPECT_THAT(Call(&Stub::ListTimeline, request, &response), IsOk());
    std::vector<std::string> ids;
    for (const Activity& a : response.activities()) ids.push_back(a.activity_id());
    return {ids, response.next_page_token()};
  }

  // The activity-service's events on its topic (read after it stopped, so all are there).
  std::vector<crm::events::v1::EventEnvelope> PublishedEvents() {
    activity_service_->process().Signal(SIGTERM);
    EXPECT_EQ(activity_service_->process().WaitForExitCode(), 0);
    auto published = crm::kafka::ReadTopic(cluster_->bootstrap_servers(), "crm.activity.events.v1",
                                           absl::Seconds(30));
    EXPECT_THAT(published, IsOk());
    std::vector<crm::events::v1::EventEnvelope> events;
    if (!published.ok()) return events;
    for (const auto& message : *published) {
      events.emplace_back();
      EXPECT_TRUE(events.back().ParseFromString(message.value));
      EXPECT_EQ(message.Header("event_type").value_or(""),
                events.back().payload().type_url().substr(
                    events.back().payload().type_url().rfind('/') + 1));
    }
    return events;
  }

  crm::testing::TempDir dir_;
  std::unique_ptr<crm::kafka::MockCluster> cluster_;
  std::unique_ptr<crm::testing::ServiceProcess> contact_service_;
  std::unique_ptr<crm::testing::FaultProxy> proxy_;
  std::unique_ptr<crm::testing::ServiceProcess> pipeline_service_;
  std::unique_ptr<crm::testing::ServiceProcess> activity_service_;
  std::unique_ptr<Stub> stub_;
  std::string token_;
};

TEST_F(ActivityServiceTest, ActivitiesAreLinkedAndShownOnTheTimelineNewestFirst) {
  Activity call = Interaction(ACTIVITY_TYPE_CALL, "phone", "c-1");
  call.set_opportunity_id("o-1");
  call.set_outcome("connected");
  auto logged = Log("act-1", call, kNow - absl::Hours(3));
  ASSERT_THAT(logged, IsOk());
  EXPECT_EQ(logged->owner_id(), "rep-1") << "the rep defaults to the caller";
  EXPECT_EQ(logged->account_id(), "a-1") << "the account defaults to the contact's";
  EXPECT_EQ(logged->status(), ACTIVITY_STATUS_DONE);
  ASSERT_THAT(Log("act-2", Interaction(ACTIVITY_TYPE_EMAIL, "email", "c-1"), kNow - absl::Hours(5)),
              IsOk());
  ASSERT_THAT(Log("act-3", Interaction(ACTIVITY_TYPE_CHAT, "chat", "c-1"), kNow - absl::Hours(1)),
              IsOk());
  Activity lead_call = Interaction(ACTIVITY_TYPE_CALL, "phone", "");
  lead_call.set_lead_id("l-1");  // a call to a fresh lead has no contact yet
  ASSERT_THAT(Log("act-4", lead_call, kNow - absl::Hours(2)), IsOk());

  ListTimelineRequest timeline;
  timeline.set_contact_id("c-1");
  EXPECT_THAT(Timeline(timeline).first, ElementsAre("act-3", "act-1", "act-2"));
  timeline.add_types(ACTIVITY_TYPE_CALL);
  timeline.add_types(ACTIVITY_TYPE_EMAIL);
  EXPECT_THAT(Timeline(timeline).first, ElementsAre("act-1", "act-2"));
  timeline.add_channels("email");
  EXPECT_THAT(Timeline(timeline).first, ElementsAre("act-2"));

  ListTimelineRequest paged;
  paged.set_contact_id("c-1");
  paged.set_page_size(2);
  auto [first, token] = Timeline(paged);
  EXPECT_THAT(first, ElementsAre("act-3", "act-1"));
  ASSERT_FALSE(token.empty());
  paged.set_page_token(token);
  auto [second, end] = Timeline(paged);
  EXPECT_THAT(second, ElementsAre("act-2"));
  EXPECT_TRUE(end.empty());

  ListTimelineRequest by_lead;
  by_lead.set_lead_id("l-1");
  EXPECT_THAT(Timeline(by_lead).first, ElementsAre("act-4"));
  ListTimelineRequest both;
  both.set_contact_id("c-1");
  both.set_lead_id("l-1");
  ListTimelineResponse ignored;
  EXPECT_THAT(Fields(Call(&Stub::ListTimeline, both, &ignored)), ElementsAre("contact_id"));

  // The rep's activities in a period, oldest first; the period is half-open.
  ListActivitiesRequest by_rep;
  by_rep.set_owner_id("rep-1");
  *by_rep.mutable_period()->mutable_start_time() = ToProto(kNow - absl::Hours(3));
  *by_rep.mutable_period()->mutable_end_time() = ToProto(kNow - absl::Hours(1));
  ListActivitiesResponse in_period;
  ASSERT_THAT(Call(&Stub::ListActivities, by_rep, &in_period), IsOk());
  std::vector<std::string> ids;
  for (const Activity& a : in_period.activities()) ids.push_back(a.activity_id());
  EXPECT_THAT(ids, ElementsAre("act-1", "act-4"));
  by_rep.set_owner_id("rep-2");
  ListActivitiesResponse other_rep;
  ASSERT_THAT(Call(&Stub::ListActivities, by_rep, &other_rep), IsOk());
  EXPECT_EQ(other_rep.activities_size(), 0);
}

TEST_F(ActivityServiceTest, UnknownReferencesAreNotFoundOnTheFieldAndNothingIsStored) {
  struct Unknown {
    std::string field;
    Activity activity;
  };
  std::vector<Unknown> cases;
  cases.push_back({"activity.contact_id", Interaction(ACTIVITY_TYPE_CALL, "phone", "c-404")});
  Activity lead = Interaction(ACTIVITY_TYPE_CALL, "phone", "");
  lead.set_lead_id("l-404");
  cases.push_back({"activity.lead_id", lead});
  Activity opportunity = Interaction(ACTIVITY_TYPE_CALL, "phone", "c-1");
  opportunity.set_opportunity_id("o-404");
  cases.push_back({"activity.opportunity_id", opportunity});
  Activity account = Interaction(ACTIVITY_TYPE_CALL, "phone", "c-1");
  account.set_account_id("a-404");
  cases.push_back({"activity.account_id", account});
  Activity service_case = Interaction(ACTIVITY_TYPE_CALL, "phone", "c-1");
  service_case.set_case_id("case-404");
  cases.push_back({"activity.case_id", service_case});
  for (const Unknown& c : cases) {
    absl::StatusOr<Activity> logged = Log("act-x", c.activity);
    EXPECT_THAT(logged, StatusIs(absl::StatusCode::kNotFound)) << c.field;
    EXPECT_THAT(Fields(logged.status()), ElementsAre(c.field));
    EXPECT_THAT(Exists("act-x"), StatusIs(absl::StatusCode::kNotFound)) << c.field;
  }

  // Malformed input is answered without asking contact-service.
  const int asked = proxy_->calls(kValidateContacts);
  Activity bad = Interaction(ACTIVITY_TYPE_UNSPECIFIED, "", "not an id");
  bad.set_body(std::string(64 * 1024 + 1, 'x'));
  absl::StatusOr<Activity> refused = Log("act-y", bad);
  EXPECT_THAT(refused, StatusIs(absl::StatusCode::kResourceExhausted));
  EXPECT_THAT(Fields(refused.status()),
              UnorderedElementsAre("activity.body", "activity.type", "activity.channel",
                                   "activity.contact_id"));
  EXPECT_EQ(proxy_->calls(kValidateContacts), asked);
  EXPECT_THAT(
      Log("act-y", Interaction(ACTIVITY_TYPE_CALL, "phone", "c-1"), kNow + absl::Hours(1)).status(),
      StatusIs(absl::StatusCode::kInvalidArgument))
      << "only scheduled activities may lie in the future";
}

TEST_F(ActivityServiceTest, AMergedContactResolvesToItsWinner) {
  auto logged = Log("act-1", Interaction(ACTIVITY_TYPE_MEETING, "field_sales", "c-2"));
  ASSERT_THAT(logged, IsOk());
  EXPECT_EQ(logged->contact_id(), "c-1");
  ListTimelineRequest winner;
  winner.set_contact_id("c-1");
  EXPECT_THAT(Timeline(winner).first, ElementsAre("act-1"));
}

TEST_F(ActivityServiceTest, ADependencyThatIsDownIsUnavailableAndNothingIsStored) {
  ASSERT_THAT(Log("act-1", Interaction(ACTIVITY_TYPE_CALL, "phone", "c-1"), kNow, "req-1"), IsOk());

  // contact-service hangs: the deadline turns it into UNAVAILABLE, not a hang.
  ASSERT_TRUE(contact_service_->process().Pause());
  EXPECT_THAT(Log("act-2", Interaction(ACTIVITY_TYPE_CALL, "phone", "c-1")),
              StatusIs(absl::StatusCode::kUnavailable));
  contact_service_->process().Resume();

  // contact-service stopped.
  contact_service_->process().Signal(SIGTERM);
  ASSERT_EQ(contact_service_->process().WaitForExitCode(), 0);
  EXPECT_THAT(Log("act-3", Interaction(ACTIVITY_TYPE_CALL, "phone", "c-1")),
              StatusIs(absl::StatusCode::kUnavailable));
  OpenCaseRequest open;
  open.mutable_case_()->set_subject("Broken");
  open.mutable_case_()->set_channel("chat");
  open.mutable_case_()->set_priority(CASE_PRIORITY_HIGH);
  open.mutable_case_()->set_contact_id("c-1");
  Case opened;
  EXPECT_THAT(Call(&Stub::OpenCase, open, &opened), StatusIs(absl::StatusCode::kUnavailable));
  // A retry of a request that was answered before still gets its answer.
  auto retried = Log("act-1", Interaction(ACTIVITY_TYPE_CALL, "phone", "c-1"), kNow, "req-1");
  ASSERT_THAT(retried, IsOk());
  EXPECT_EQ(retried->version(), 1);

  // pipeline-service stopped: a call about a lead cannot be checked.
  pipeline_service_->process().Signal(SIGTERM);
  ASSERT_EQ(pipeline_service_->process().WaitForExitCode(), 0);
  Activity lead_call = Interaction(ACTIVITY_TYPE_CALL, "phone", "");
  lead_call.set_lead_id("l-1");
  EXPECT_THAT(Log("act-4", lead_call), StatusIs(absl::StatusCode::kUnavailable));

  for (const char* id : {"act-2", "act-3", "act-4"}) {
    EXPECT_THAT(Exists(id), StatusIs(absl::StatusCode::kNotFound)) << id;
  }
  std::vector<std::string> streams;
  for (const auto& event : PublishedEvents()) streams.push_back(event.stream_id());
  EXPECT_THAT(streams, ElementsAre("activity/act-1")) << "no event for what was refused";
}

TEST_F(ActivityServiceTest, ScheduledActivitiesAreCompletedOrCancelledAndReportsAddedLater) {
  LogActivityRequest plan;
  plan.set_activity_id("visit-1");
  *plan.mutable_activity() = Interaction(ACTIVITY_TYPE_VISIT, "field_sales", "c-1");
  *plan.mutable_scheduled_time() = ToProto(kNow + absl::Hours(24 * 7));
  Activity planned;
  ASSERT_THAT(Call(&Stub::LogActivity, plan, &planned), IsOk());
  EXPECT_EQ(planned.status(), ACTIVITY_STATUS_SCHEDULED);

  CompleteActivityRequest complete;
  complete.set_activity_id("visit-1");
  complete.set_outcome("order_placed");
  complete.set_expected_version(1);
  Activity done;
  ASSERT_THAT(Call(&Stub::CompleteActivity, complete, &done), IsOk());
  EXPECT_EQ(done.status(), ACTIVITY_STATUS_DONE);
  EXPECT_LE(FromProto(done.occurred_at()), absl::Now()) << "it happened when it was completed";
  EXPECT_THAT(Call(&Stub::CompleteActivity, complete, &done), StatusIs(absl::StatusCode::kAborted))
      << "version 1 is stale";
  complete.clear_expected_version();
  EXPECT_THAT(Call(&Stub::CompleteActivity, complete, &done),
              StatusIs(absl::StatusCode::kFailedPrecondition));

  UpdateActivityRequest report;
  report.mutable_activity()->set_activity_id("visit-1");
  report.mutable_activity()->set_body("Visit report: two new sites planned");
  report.mutable_update_mask()->add_paths("body");
  Activity reported;
  ASSERT_THAT(Call(&Stub::UpdateActivity, report, &reported), IsOk());
  EXPECT_EQ(reported.body(), "Visit report: two new sites planned");
  EXPECT_EQ(reported.version(), 3);

  plan.set_activity_id("visit-2");
  ASSERT_THAT(Call(&Stub::LogActivity, plan, &planned), IsOk());
  CancelActivityRequest cancel;
  cancel.set_activity_id("visit-2");
  cancel.set_reason("customer closed");
  Activity cancelled;
  ASSERT_THAT(Call(&Stub::CancelActivity, cancel, &cancelled), IsOk());
  EXPECT_EQ(cancelled.status(), ACTIVITY_STATUS_CANCELLED);
  EXPECT_THAT(Call(&Stub::CancelActivity, cancel, &cancelled),
              StatusIs(absl::StatusCode::kFailedPrecondition));
}

TEST_F(ActivityServiceTest, TasksAreCompletedOnceAndListedOverdueFirst) {
  auto schedule = [&](const std::string& id, absl::Time due, const std::string& assignee) {
    ScheduleTaskRequest request;
    request.set_task_id(id);
    request.mutable_task()->set_title("Call back " + id);
    request.mutable_task()->set_assignee_id(assignee);
    *request.mutable_task()->mutable_due_time() = ToProto(due);
    request.mutable_task()->set_opportunity_id("o-1");
    Task task;
    return Call(&Stub::ScheduleTask, request, &task);
  };
  ASSERT_THAT(schedule("t-later", kNow + absl::Hours(48), "rep-1"), IsOk());
  ASSERT_THAT(schedule("t-overdue", kNow - absl::Hours(24), "rep-1"), IsOk());
  ASSERT_THAT(schedule("t-soon", kNow + absl::Hours(2), "rep-1"), IsOk());
  ASSERT_THAT(schedule("t-other", kNow - absl::Hours(1), "rep-2"), IsOk());
  EXPECT_THAT(schedule("t-bad", kNow, "rep-1"), IsOk());
  ScheduleTaskRequest unknown;
  unknown.mutable_task()->set_title("x");
  *unknown.mutable_task()->mutable_due_time() = ToProto(kNow);
  unknown.mutable_task()->set_lead_id("l-404");
  Task task;
  EXPECT_THAT(Fields(Call(&Stub::ScheduleTask, unknown, &task)), ElementsAre("task.lead_id"));

  auto open_tasks = [&](const std::string& assignee) {
    ListTasksRequest list;
    list.set_assignee_id(assignee);
    ListTasksResponse listed;
    EXPECT_THAT(Call(&Stub::ListTasks, list, &listed), IsOk());
    std::vector<std::string> ids;
    for (const Task& t : listed.tasks()) ids.push_back(t.task_id());
    return ids;
  };
  EXPECT_THAT(open_tasks("rep-1"), ElementsAre("t-overdue", "t-bad", "t-soon", "t-later"));
  EXPECT_THAT(open_tasks(""), ElementsAre("t-overdue", "t-other", "t-bad", "t-soon", "t-later"));

  CompleteTaskRequest complete;
  complete.set_task_id("t-soon");
  ASSERT_THAT(Call(&Stub::CompleteTask, complete, &task), IsOk());
  EXPECT_EQ(task.status(), TASK_STATUS_COMPLETED);
  EXPECT_THAT(Call(&Stub::CompleteTask, complete, &task),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  CancelTaskRequest cancel;
  cancel.set_task_id("t-bad");
  ASSERT_THAT(Call(&Stub::CancelTask, cancel, &task), IsOk());
  ReassignTaskRequest reassign;
  reassign.set_task_id("t-later");
  reassign.set_assignee_id("rep-2");
  ASSERT_THAT(Call(&Stub::ReassignTask, reassign, &task), IsOk());
  EXPECT_THAT(open_tasks("rep-1"), ElementsAre("t-overdue"));
  EXPECT_THAT(open_tasks("rep-2"), ElementsAre("t-other", "t-later"));
  ListTasksRequest completed;
  completed.set_status(TASK_STATUS_COMPLETED);
  ListTasksResponse listed;
  ASSERT_THAT(Call(&Stub::ListTasks, completed, &listed), IsOk());
  ASSERT_EQ(listed.tasks_size(), 1);
  EXPECT_EQ(listed.tasks(0).task_id(), "t-soon");

  // Completing twice made one event.
  int completions = 0;
  for (const auto& event : PublishedEvents()) {
    completions += event.payload().Is<TaskCompleted>() ? 1 : 0;
  }
  EXPECT_EQ(completions, 1);
}

TEST_F(ActivityServiceTest, CasesAreWorkedToResolutionAndListedByStatusAndPriority) {
  auto open = [&](const std::string& id, CasePriority priority) {
    OpenCaseRequest request;
    request.set_case_id(id);
    request.set_channel("service_desk");
    request.mutable_case_()->set_subject("Case " + id);
    request.mutable_case_()->set_priority(priority);
    request.mutable_case_()->set_contact_id("c-2");  // merged: stored as c-1
    Case opened;
    EXPECT_THAT(Call(&Stub::OpenCase, request, &opened), IsOk());
    return opened;
  };
  const Case low = open("k-low", CASE_PRIORITY_LOW);
  EXPECT_EQ(low.contact_id(), "c-1");
  EXPECT_EQ(low.account_id(), "a-1");
  EXPECT_EQ(low.channel(), "service_desk");
  open("k-urgent", CASE_PRIORITY_URGENT);
  open("k-normal", CASE_PRIORITY_NORMAL);

  auto cases = [&](ListCasesRequest request) {
    ListCasesResponse listed;
    EXPECT_THAT(Call(&Stub::ListCases, request, &listed), IsOk());
    std::vector<std::string> ids;
    for (const Case& c : listed.cases()) ids.push_back(c.case_id());
    return ids;
  };
  EXPECT_THAT(cases({}), ElementsAre("k-urgent", "k-normal", "k-low"));
  ListCasesRequest urgent;
  urgent.set_priority(CASE_PRIORITY_URGENT);
  EXPECT_THAT(cases(urgent), ElementsAre("k-urgent"));

  Case answer;
  AssignCaseRequest assign;
  assign.set_case_id("k-urgent");
  assign.set_assignee_id("agent-1");
  ASSERT_THAT(Call(&Stub::AssignCase, assign, &answer), IsOk());
  ListCasesRequest mine;
  mine.set_assignee_id("agent-1");
  EXPECT_THAT(cases(mine), ElementsAre("k-urgent"));
  for (const char* text : {"Asked for logs", "Logs received"}) {
    AddCaseNoteRequest note;
    note.set_case_id("k-urgent");
    note.set_text(text);
    ASSERT_THAT(Call(&Stub::AddCaseNote, note, &answer), IsOk());
  }
  EXPECT_EQ(answer.note_count(), 2);

  ResolveCaseRequest resolve;
  resolve.set_case_id("k-urgent");
  EXPECT_THAT(Fields(Call(&Stub::ResolveCase, resolve, &answer)), ElementsAre("resolution"));
  resolve.set_resolution("Restarted the portal");
  ASSERT_THAT(Call(&Stub::ResolveCase, resolve, &answer), IsOk());
  EXPECT_EQ(answer.status(), CASE_STATUS_RESOLVED);
  EXPECT_THAT(Call(&Stub::ResolveCase, resolve, &answer),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_THAT(Call(&Stub::AssignCase, assign, &answer),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  ListCasesRequest resolved;
  resolved.set_status(CASE_STATUS_RESOLVED);
  EXPECT_THAT(cases(resolved), ElementsAre("k-urgent"));
  EXPECT_THAT(cases({}), ElementsAre("k-normal", "k-low"));

  ReopenCaseRequest reopen;
  reopen.set_case_id("k-urgent");
  reopen.set_reason("down again");
  ASSERT_THAT(Call(&Stub::ReopenCase, reopen, &answer), IsOk());
  EXPECT_EQ(answer.reopen_count(), 1);
  EXPECT_THAT(Call(&Stub::ReopenCase, reopen, &answer),
              StatusIs(absl::StatusCode::kFailedPrecondition));

  ListCaseNotesRequest notes;
  notes.set_case_id("k-urgent");
  notes.set_page_size(1);
  ListCaseNotesResponse page;
  ASSERT_THAT(Call(&Stub::ListCaseNotes, notes, &page), IsOk());
  ASSERT_EQ(page.notes_size(), 1);
  EXPECT_EQ(page.notes(0).text(), "Asked for logs");
  EXPECT_EQ(page.notes(0).author_id(), "rep-1");
  ASSERT_FALSE(page.next_page_token().empty());
  notes.set_page_token(page.next_page_token());
  ListCaseNotesResponse rest;
  ASSERT_THAT(Call(&Stub::ListCaseNotes, notes, &rest), IsOk());
  ASSERT_EQ(rest.notes_size(), 1);
  EXPECT_EQ(rest.notes(0).text(), "Logs received");
  EXPECT_EQ(rest.notes(0).note_number(), 2);
}

TEST_F(ActivityServiceTest, EventsCarryWhatTheMetricsNeed) {
  OpenCaseRequest open;
  open.set_case_id("k-1");
  open.mutable_case_()->set_subject("Invoice wrong");
  open.mutable_case_()->set_channel("email");
  open.mutable_case_()->set_priority(CASE_PRIORITY_NORMAL);
  open.mutable_case_()->set_contact_id("c-1");
  Case opened;
  ASSERT_THAT(Call(&Stub::OpenCase, open, &opened), IsOk());
  Activity call = Interaction(ACTIVITY_TYPE_CALL, "phone", "c-1");
  call.set_lead_id("l-1");
  call.set_opportunity_id("o-1");
  call.set_case_id("k-1");
  call.set_owner_id("rep-7");
  const absl::Time yesterday = kNow - absl::Hours(20);
  ASSERT_THAT(Log("act-1", call, yesterday), IsOk());

  const auto events = PublishedEvents();
  ASSERT_EQ(events.size(), 2u);
  const auto& logged = events[1];
  EXPECT_EQ(logged.stream_id(), "activity/act-1");
  EXPECT_EQ(logged.stream_type(), "activity");
  EXPECT_EQ(logged.actor_id(), "rep-1");
  EXPECT_EQ(FromProto(logged.occurred_at()), yesterday);
  EXPECT_GE(FromProto(logged.recorded_at()), kNow) << "logged late: the delay is visible";
  ActivityLogged payload;
  ASSERT_TRUE(logged.payload().UnpackTo(&payload));
  const Activity& a = payload.activity();
  EXPECT_EQ(a.owner_id(), "rep-7");
  EXPECT_EQ(a.channel(), "phone");
  EXPECT_EQ(a.type(), ACTIVITY_TYPE_CALL);
  EXPECT_EQ(a.lead_id(), "l-1");
  EXPECT_EQ(a.opportunity_id(), "o-1");
  EXPECT_EQ(a.case_id(), "k-1");
  EXPECT_EQ(a.account_id(), "a-1");
  EXPECT_EQ(FromProto(a.occurred_at()), yesterday);
  CaseOpened case_opened;
  ASSERT_TRUE(events[0].payload().UnpackTo(&case_opened));
  EXPECT_EQ(case_opened.case_().priority(), CASE_PRIORITY_NORMAL);
  EXPECT_EQ(case_opened.case_().channel(), "email");
}

TEST_F(ActivityServiceTest, TokensAndScopesAreChecked) {
  Activity found;
  GetActivityRequest get;
  get.set_activity_id("act-1");
  EXPECT_THAT(crm::testing::CallWithToken(*stub_, &Stub::GetActivity, get, &found, ""),
              StatusIs(absl::StatusCode::kUnauthenticated));
  const std::string reader =
      *runtime::SignHs256({.subject = "viewer", .scopes = {"activities:read"}}, kSecret);
  LogActivityRequest log;
  *log.mutable_activity() = Interaction(ACTIVITY_TYPE_NOTE, "web", "c-1");
  EXPECT_THAT(crm::testing::CallWithToken(*stub_, &Stub::LogActivity, log, &found, reader),
              StatusIs(absl::StatusCode::kPermissionDenied));
  // References are checked with the caller's own rights.
  const std::string writer =
      *runtime::SignHs256({.subject = "rep-9", .scopes = {"activities:write"}}, kSecret);
  log.set_activity_id("act-1");
  EXPECT_THAT(crm::testing::CallWithToken(*stub_, &Stub::LogActivity, log, &found, writer),
              StatusIs(absl::StatusCode::kPermissionDenied));
  EXPECT_THAT(Exists("act-1"), StatusIs(absl::StatusCode::kNotFound));
}

TEST_F(ActivityServiceTest, BadQueriesNameTheirField) {
  ListTimelineRequest timeline;
  timeline.set_contact_id("c-1");
  timeline.add_types(static_cast<ActivityType>(99));
  ListTimelineResponse activities;
  EXPECT_THAT(Fields(Call(&Stub::ListTimeline, timeline, &activities)), ElementsAre("types"));
  ListActivitiesRequest by_rep;
  by_rep.mutable_period()->mutable_start_time()->set_nanos(-1);
  ListActivitiesResponse period;
  EXPECT_THAT(Fields(Call(&Stub::ListActivities, by_rep, &period)),
              ElementsAre("owner_id", "period.start_time"));
  ListTasksRequest tasks;
  tasks.set_status(static_cast<TaskStatus>(99));
  ListTasksResponse listed_tasks;
  EXPECT_THAT(Fields(Call(&Stub::ListTasks, tasks, &listed_tasks)), ElementsAre("status"));
  ListCasesRequest cases;
  cases.set_priority(static_cast<CasePriority>(99));
  cases.set_page_size(501);
  ListCasesResponse listed_cases;
  EXPECT_THAT(Call(&Stub::ListCases, cases, &listed_cases),
              StatusIs(absl::StatusCode::kInvalidArgument));
  ListCaseNotesRequest notes;
  notes.set_case_id("k-404");
  ListCaseNotesResponse listed_notes;
  EXPECT_THAT(Call(&Stub::ListCaseNotes, notes, &listed_notes),
              StatusIs(absl::StatusCode::kNotFound));
  LogActivityRequest log;
  *log.mutable_activity() = Interaction(ACTIVITY_TYPE_MEETING, "field_sales", "c-1");
  log.mutable_scheduled_time()->set_seconds(-62135596801);  // before year 1
  Activity logged;
  EXPECT_THAT(Fields(Call(&Stub::LogActivity, log, &logged)), ElementsAre("scheduled_time"));
}

TEST_F(ActivityServiceTest, ACachedContactIsAskedForOnceAndOnlyForThoseWhoMayReadIt) {
  auto cached = Start(CRM_ACTIVITY_SERVICE, "activity-cached",
                      {"--contact-service", proxy_->address(), "--contact-service-plaintext",
                       "--pipeline-service", pipeline_service_->address(),
                       "--pipeline-service-plaintext", "--contact-cache-ttl-ms", "60000"});
  ASSERT_TRUE(cached->serving()) << cached->process().DrainStderr();
  auto stub = ActivityService::NewStub(
      grpc::CreateChannel(cached->address(), grpc::InsecureChannelCredentials()));
  const int asked = proxy_->calls(kValidateContacts);
  for (const char* id : {"act-1", "act-2", "act-3"}) {
    LogActivityRequest log;
    log.set_activity_id(id);
    *log.mutable_activity() = Interaction(ACTIVITY_TYPE_CALL, "phone", "c-2");
    Activity logged;
    ASSERT_THAT(crm::testing::CallWithToken(*stub, &Stub::LogActivity, log, &logged, token_),
                IsOk());
    EXPECT_EQ(logged.contact_id(), "c-1") << "the cached answer keeps the merge";
    EXPECT_EQ(logged.account_id(), "a-1");
  }
  EXPECT_EQ(proxy_->calls(kValidateContacts), asked + 1);
  // Without contacts:read the cache does not answer: contact-service refuses.
  const std::string writer =
      *runtime::SignHs256({.subject = "rep-9", .scopes = {"activities:write"}}, kSecret);
  LogActivityRequest log;
  log.set_activity_id("act-4");
  *log.mutable_activity() = Interaction(ACTIVITY_TYPE_CALL, "phone", "c-2");
  Activity refused;
  EXPECT_THAT(crm::testing::CallWithToken(*stub, &Stub::LogActivity, log, &refused, writer),
              StatusIs(absl::StatusCode::kPermissionDenied));
}

}  // namespace
}  // namespace crm::activity
