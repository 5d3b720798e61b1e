// metrics-service as users meet it: the real binary consuming the three topics from the Kafka
// protocol (in-process mock cluster, 3 partitions per topic), RocksDB in a temp dir, queried
// over gRPC with tokens from the dev secret. The expected figures of the generated history come
// from the domain evaluated in this process over the same events (the domain itself is checked
// against hand-worked scenarios in kpis_test).

#include <sys/wait.h>

#include <csignal>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "crm/activity/v1/events.pb.h"
#include "crm/common/time.h"
#include "crm/kafka/mock_cluster.h"
#include "crm/kafka/producer.h"
#include "crm/metrics/v1/metrics_service.grpc.pb.h"
#include "crm/runtime/auth.h"
#include "crm/testing/grpc_call.h"
#include "crm/testing/service_process.h"
#include "crm/testing/testing.h"
#include "domain/kpis.h"
#include "domain/projection.h"
#include "gmock/gmock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "testing/events.h"

namespace crm::metrics {
namespace {

using ::crm::testing::Fields;
using ::crm::testing::IsOk;
using ::crm::testing::StatusIs;
using events::v1::EventEnvelope;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using Stub = v1::MetricsService::Stub;

constexpr char kSecret[] = "metrics-service-test-secret-xxxxx";
const std::vector<std::string> kTopics = {"crm.contact.events.v1", "crm.activity.events.v1",
                                          "crm.pipeline.events.v1"};
// The generated history lies well in the past, so every figure is final (no "now" in it).
const absl::Time kHistoryStart = absl::FromCivil(absl::CivilDay(2025, 1, 6), absl::UTCTimeZone());

class MetricsServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto cluster = kafka::MockCluster::Start(1);
    ASSERT_THAT(cluster, IsOk());
    cluster_ = *std::move(cluster);
    for (const std::string& topic : kTopics) {
      ASSERT_THAT(cluster_->CreateTopic(topic, 3, 1), IsOk());
    }
    auto producer = kafka::Producer::Create(
        {.bootstrap_servers = cluster_->bootstrap_servers(), .settings = {{"linger.ms", "5"}}},
        [this](const kafka::DeliveryReport& report) {
          if (!report.status.ok()) ++failed_deliveries_;
        });
    ASSERT_THAT(producer, IsOk());
    producer_ = *std::move(producer);
    StartService();
    reader_ = *runtime::SignHs256({.subject = "manager", .scopes = {"metrics:read"}}, kSecret);
    admin_ = *runtime::SignHs256({.subject = "ops", .scopes = {"metrics:read", "admin"}}, kSecret);
  }

  void StartService() {
    service_ = std::make_unique<crm::testing::ServiceProcess>(std::vector<std::string>{
        CRM_METRICS_SERVICE, "--plaintext", "--jwt-hs256-secret", kSecret, "--grpc-listen",
        "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0", "--data-dir", dir_.Sub("metrics"),
        "--kafka-bootstrap", cluster_->bootstrap_servers(), "--consumer-session-timeout-ms",
        "4000"});
    ASSERT_TRUE(service_->serving()) << service_->process().DrainStderr();
    // It logs every request: keep its stderr pipe from filling up.
    drain_ = std::thread([process = &service_->process()] {
      while (process->ReadStderrLine(std::chrono::hours(1))) {
      }
    });
    stub_ = v1::MetricsService::NewStub(
        grpc::CreateChannel(service_->address(), grpc::InsecureChannelCredentials()));
  }

  void TearDown() override { StopService(SIGTERM); }

  // Returns the raw wait status.
  int StopService(int signal) {
    if (service_ == nullptr) return 0;
    service_->process().Signal(signal);
    const int status = service_->process().Wait();
    if (drain_.joinable()) drain_.join();
    service_.reset();
    return status;
  }

  void Publish(const std::vector<EventEnvelope>& events) {
    for (size_t i = 0; i < events.size(); ++i) {
      for (;;) {
        absl::Status queued = producer_->ProduceEvent(testing::TopicOf(events[i]), events[i], i);
        if (!absl::IsResourceExhausted(queued)) {
          ASSERT_THAT(queued, IsOk());
          break;
        }
        producer_->Poll(absl::Milliseconds(10));
      }
    }
    ASSERT_THAT(producer_->Flush(absl::Seconds(60)), IsOk());
    ASSERT_EQ(failed_deliveries_, 0);
  }

  template <typename Request, typename Response>
  absl::Status Call(grpc::Status (Stub::*method)(grpc::ClientContext*, const Request&, Response*),
                    const Request& request, Response* response, const std::string& token) {
    return crm::testing::CallWithToken(*stub_, method, request, response, token);
  }

  v1::GetProjectionStatusResponse Status() {
    v1::GetProjectionStatusResponse status;
    EXPECT_THAT(Call(&Stub::GetProjectionStatus, {}, &status, reader_), IsOk());
    return status;
  }

  // Waits until the live generation has read every record published so far.
  bool WaitUntilCaughtUp(int64_t generation, int64_t records) {
    return crm::testing::WaitFor(
        [&] {
          const v1::GetProjectionStatusResponse status = Status();
          int64_t read = 0;
          for (const auto& position : status.receipt().positions()) read += position.next_offset();
          return status.receipt().generation() == generation && read >= records;
        },
        std::chrono::seconds(120));
  }

  v1::QueryKpiRequest Request(const v1::KpiDefinition& definition, v1::PeriodKind kind) {
    v1::QueryKpiRequest request;
    request.set_kpi(definition.name());
    request.set_period_kind(kind);
    *request.mutable_start_time() = ToProto(kHistoryStart - absl::Hours(24 * 14));
    *request.mutable_end_time() = ToProto(kHistoryStart + absl::Hours(24 * 7 * 14));
    for (const std::string& dimension : definition.dimensions()) request.add_group_by(dimension);
    return request;
  }

  // Every KPI, weekly and monthly, grouped by all its dimensions: from the service, or from
  // the domain over `events` in this process.
  std::vector<std::string> ServedAnswers() {
    std::vector<std::string> answers;
    for (const v1::KpiDefinition& definition : KpiDefinitions()) {
      for (auto kind : {v1::PERIOD_KIND_ISO_WEEK, v1::PERIOD_KIND_MONTH}) {
        v1::QueryKpiResponse response;
        EXPECT_THAT(Call(&Stub::QueryKpi, Request(definition, kind), &response, reader_), IsOk());
        answers.push_back(response.result().SerializeAsString());
      }
    }
    return answers;
  }
  std::vector<std::string> ExpectedAnswers(const std::vector<EventEnvelope>& events) {
    Projection projection;
    for (const EventEnvelope& event : events) projection.Apply(event);
    std::vector<std::string> answers;
    for (const v1::KpiDefinition& definition : KpiDefinitions()) {
      for (auto kind : {v1::PERIOD_KIND_ISO_WEEK, v1::PERIOD_KIND_MONTH}) {
        answers.push_back(
            EvaluateKpi(projection, Request(definition, kind), absl::Now())->SerializeAsString());
      }
    }
    return answers;
  }

  crm::testing::TempDir dir_;
  std::unique_ptr<kafka::MockCluster> cluster_;
  std::unique_ptr<kafka::Producer> producer_;
  std::atomic<int> failed_deliveries_{0};
  std::unique_ptr<crm::testing::ServiceProcess> service_;
  std::thread drain_;
  std::unique_ptr<Stub> stub_;
  std::string reader_;
  std::string admin_;
};

// Due one second into the current ISO week, so it is due in this week whenever the test runs.
const absl::Time kDue = PeriodOf(v1::PERIOD_KIND_ISO_WEEK, absl::Now()).start + absl::Seconds(1);

// A task of rep-a due at kDue, scheduled, or completed on time, as activity-service writes it.
EventEnvelope TaskEvent(testing::EventLog& log, const std::string& id, bool complete) {
  activity::v1::Task task;
  task.set_task_id(id);
  task.set_assignee_id("rep-a");
  *task.mutable_due_time() = ToProto(kDue);
  task.set_status(activity::v1::TASK_STATUS_OPEN);
  activity::v1::TaskScheduled scheduled;
  *scheduled.mutable_task() = task;
  if (!complete) return log.Add("task/" + id, scheduled, kDue - absl::Hours(2));
  task.set_status(activity::v1::TASK_STATUS_COMPLETED);
  activity::v1::TaskCompleted completed;
  *completed.mutable_task() = task;
  return log.Add("task/" + id, completed, kDue - absl::Hours(1));
}

// tasks_on_time_ratio for the week of kDue, once `stream` has reached version 1.
v1::QueryKpiRequest TasksDueWaitingFor(const std::string& stream) {
  v1::QueryKpiRequest request;
  request.set_kpi("tasks_on_time_ratio");
  request.set_period_kind(v1::PERIOD_KIND_ISO_WEEK);
  *request.mutable_start_time() = ToProto(kDue);
  *request.mutable_end_time() = ToProto(kDue + absl::Seconds(1));
  v1::StreamVersion& wanted = *request.mutable_consistency()->add_min_versions();
  wanted.set_stream(stream);
  wanted.set_version(1);
  return request;
}

TEST_F(MetricsServiceTest, AnswersAreReceiptsAndCanWaitForAWrite) {
  testing::EventLog log;
  const EventEnvelope scheduled = TaskEvent(log, "t1", false);
  Publish({scheduled});

  v1::QueryKpiRequest request = TasksDueWaitingFor("task/t1");
  v1::StreamVersion& wanted = *request.mutable_consistency()->mutable_min_versions(0);
  v1::QueryKpiResponse response;
  ASSERT_THAT(Call(&Stub::QueryKpi, request, &response, reader_), IsOk());
  // One task due, not completed: 0 / 1.
  const v1::Ratio& ratio = response.result().rows(0).measures(2).ratio();
  EXPECT_EQ(ratio.numerator(), 0);
  EXPECT_EQ(ratio.denominator(), 1);
  EXPECT_EQ(response.receipt().definition_version(), kDefinitionVersion);
  EXPECT_EQ(response.receipt().generation(), 1);
  int64_t read = 0;
  for (const auto& position : response.receipt().positions()) read += position.next_offset();
  EXPECT_EQ(read, 1);
  EXPECT_EQ(FromProto(response.receipt().applied_through_time()),
            FromProto(scheduled.recorded_at()));

  // Version 2 does not exist yet: the wait ends at max_wait and names the stream.
  wanted.set_version(2);
  request.mutable_consistency()->mutable_max_wait()->set_nanos(300'000'000);
  EXPECT_THAT(Call(&Stub::QueryKpi, request, &response, reader_),
              StatusIs(absl::StatusCode::kDeadlineExceeded, HasSubstr("task/t1")));

  // Published while a reader waits: the answer includes it.
  request.mutable_consistency()->mutable_max_wait()->set_seconds(20);
  std::thread later([&] { Publish({TaskEvent(log, "t1", true)}); });
  ASSERT_THAT(Call(&Stub::QueryKpi, request, &response, reader_), IsOk());
  later.join();
  EXPECT_EQ(response.result().rows(0).measures(2).ratio().numerator(), 1);
}

TEST_F(MetricsServiceTest, ReadersWaitingForAWriteDoNotHoldUpOtherQueries) {
  // More waiting readers than the service has threads for queries, on a stream not yet
  // written. A wait that held a thread would leave the plain query below queued until its
  // deadline.
  constexpr int kWaiting = 12;
  testing::EventLog log;
  v1::QueryKpiRequest waiting = TasksDueWaitingFor("task/later");
  waiting.mutable_consistency()->mutable_max_wait()->set_seconds(60);
  std::vector<absl::Status> answers(kWaiting);
  std::vector<int64_t> numerators(kWaiting, -1);
  std::vector<std::thread> readers;
  for (int i = 0; i < kWaiting; ++i) {
    readers.emplace_back([&, i] {
      v1::QueryKpiResponse response;
      answers[i] = crm::testing::CallWithToken(*stub_, &Stub::QueryKpi, waiting, &response,
                                               reader_, std::chrono::seconds(90));
      if (answers[i].ok()) numerators[i] = response.result().rows(0).measures(1).count();
    });
  }
  const std::string all_waiting = absl::StrCat("crm_metrics_consistency_waits ", kWaiting);
  EXPECT_TRUE(crm::testing::WaitFor(
      [&] {
        auto metrics = crm::testing::HttpGet(service_->metrics_port(), "/metrics");
        return metrics.has_value() && absl::StrContains(*metrics, all_waiting);
      },
      std::chrono::seconds(30)));

  v1::QueryKpiRequest plain = waiting;
  plain.clear_consistency();
  v1::QueryKpiResponse response;
  EXPECT_THAT(crm::testing::CallWithToken(*stub_, &Stub::QueryKpi, plain, &response, reader_,
                                          std::chrono::seconds(10)),
              IsOk());

  // The write arrives: every waiting reader answers, and its answer includes it.
  Publish({TaskEvent(log, "later", false)});
  for (std::thread& reader : readers) reader.join();
  for (int i = 0; i < kWaiting; ++i) {
    EXPECT_THAT(answers[i], IsOk()) << i;
    EXPECT_EQ(numerators[i], 1) << i;  // one task due
  }
}

TEST_F(MetricsServiceTest, AWaitingReaderIsAnsweredWhenTheServiceStops) {
  v1::QueryKpiRequest waiting = TasksDueWaitingFor("task/never");
  waiting.mutable_consistency()->mutable_max_wait()->set_seconds(60);
  absl::Status answer;
  std::thread reader([&] {
    v1::QueryKpiResponse response;
    answer = crm::testing::CallWithToken(*stub_, &Stub::QueryKpi, waiting, &response, reader_,
                                         std::chrono::seconds(90));
  });
  EXPECT_TRUE(crm::testing::WaitFor(
      [&] {
        auto metrics = crm::testing::HttpGet(service_->metrics_port(), "/metrics");
        return metrics.has_value() &&
               absl::StrContains(*metrics, "crm_metrics_consistency_waits 1");
      },
      std::chrono::seconds(30)));
  // Stopping answers the reader instead of holding the shutdown until its 60 s wait ends (gRPC
  // would cancel the call after the shutdown grace, and the process would still wait for it).
  const int exit = StopService(SIGTERM);
  reader.join();
  EXPECT_THAT(answer, StatusIs(absl::StatusCode::kUnavailable, HasSubstr("stopping")));
  EXPECT_TRUE(WIFEXITED(exit) && WEXITSTATUS(exit) == 0) << exit;
}

TEST_F(MetricsServiceTest, RestartMidStreamDuplicatesAndRebuildGiveTheSameFigures) {
  const std::vector<EventEnvelope> history = testing::GenerateHistory(100'000, 5, kHistoryStart);
  const std::vector<EventEnvelope> first(history.begin(), history.begin() + 60'000);
  Publish(first);
  // Killed mid-stream (no clean shutdown), while it is still applying.
  ASSERT_TRUE(crm::testing::WaitFor([&] { return Status().applied_events() > 10'000; },
                                    std::chrono::seconds(60)));
  const int killed = StopService(SIGKILL);
  ASSERT_TRUE(WIFSIGNALED(killed) && WTERMSIG(killed) == SIGKILL);

  // The relay republished part of what it had sent (duplicates), then the rest.
  Publish(std::vector<EventEnvelope>(history.begin() + 55'000, history.end()));
  StartService();
  ASSERT_TRUE(WaitUntilCaughtUp(1, 105'000));
  EXPECT_GT(Status().skipped_duplicates(), 0);
  const std::vector<std::string> expected = ExpectedAnswers(history);
  EXPECT_EQ(ServedAnswers(), expected);

  // Rebuild from offset 0 into a fresh column family: identical answers.
  v1::RebuildProjectionsResponse rebuild;
  EXPECT_THAT(Call(&Stub::RebuildProjections, {}, &rebuild, reader_),
              StatusIs(absl::StatusCode::kPermissionDenied));
  ASSERT_THAT(Call(&Stub::RebuildProjections, {}, &rebuild, admin_), IsOk());
  EXPECT_EQ(rebuild.generation(), 2);
  ASSERT_TRUE(WaitUntilCaughtUp(2, 105'000));
  EXPECT_EQ(Status().applied_events(), 100'000);
  EXPECT_EQ(ServedAnswers(), expected);

  // And it is the generation a restart loads.
  const int stopped = StopService(SIGTERM);
  ASSERT_TRUE(WIFEXITED(stopped) && WEXITSTATUS(stopped) == 0);
  StartService();
  EXPECT_EQ(Status().receipt().generation(), 2);
  EXPECT_EQ(ServedAnswers(), expected);
}

TEST_F(MetricsServiceTest, ScorecardDashboardAndGauges) {
  testing::EventLog log;
  Publish({TaskEvent(log, "t1", false), TaskEvent(log, "t1", true)});
  v1::GetAdoptionScorecardRequest scorecard_request;
  scorecard_request.set_period_kind(v1::PERIOD_KIND_ISO_WEEK);
  *scorecard_request.mutable_time() = ToProto(kDue);
  v1::StreamVersion& wanted = *scorecard_request.mutable_consistency()->add_min_versions();
  wanted.set_stream("task/t1");
  wanted.set_version(2);
  v1::GetAdoptionScorecardResponse scorecard;
  ASSERT_THAT(Call(&Stub::GetAdoptionScorecard, scorecard_request, &scorecard, reader_), IsOk());
  ASSERT_EQ(scorecard.reps_size(), 1);
  EXPECT_EQ(scorecard.reps(0).rep_id(), "rep-a");
  bool on_time = false;
  for (const v1::Measure& measure : scorecard.reps(0).measures()) {
    if (measure.name() == "tasks_on_time_ratio.ratio") {
      on_time = measure.ratio().numerator() == 1 && measure.ratio().denominator() == 1;
    }
  }
  EXPECT_TRUE(on_time) << scorecard.DebugString();
  EXPECT_EQ(scorecard.team_size(), 10);  // every behaviour KPI

  v1::GetBusinessDashboardRequest dashboard_request;
  dashboard_request.set_period_kind(v1::PERIOD_KIND_MONTH);
  v1::GetBusinessDashboardResponse dashboard;
  ASSERT_THAT(Call(&Stub::GetBusinessDashboard, dashboard_request, &dashboard, reader_), IsOk());
  EXPECT_EQ(dashboard.kpis_size(), 11);  // every business KPI
  EXPECT_EQ(dashboard.receipt().definition_version(), kDefinitionVersion);

  auto metrics = crm::testing::HttpGet(service_->metrics_port(), "/metrics");
  ASSERT_TRUE(metrics.has_value());
  EXPECT_THAT(*metrics, HasSubstr("crm_kpi{kpi=\"tasks_on_time_ratio\",measure=\"ratio\","
                                  "period=\"week\"} 1"));
  EXPECT_THAT(*metrics, HasSubstr("crm_metrics_consumer_lag_events 0"));
  EXPECT_THAT(*metrics, HasSubstr("crm_metrics_projection_lag_seconds"));
  EXPECT_THAT(*metrics, ::testing::Not(HasSubstr("rep=\"rep-a\"")));  // per rep: opt-in
}

TEST_F(MetricsServiceTest, BadRequestsNameTheirFieldAndNeedAToken) {
  v1::QueryKpiRequest request;
  request.set_kpi("win_rate");
  request.set_period_kind(v1::PERIOD_KIND_MONTH);
  *request.mutable_start_time() = ToProto(absl::Now());
  *request.mutable_end_time() = ToProto(absl::Now() + absl::Hours(1));
  v1::QueryKpiResponse response;
  EXPECT_THAT(crm::testing::CallWithToken(*stub_, &Stub::QueryKpi, request, &response, ""),
              StatusIs(absl::StatusCode::kUnauthenticated));

  v1::QueryKpiRequest unknown = request;
  unknown.set_kpi("happiness");
  EXPECT_THAT(Fields(Call(&Stub::QueryKpi, unknown, &response, reader_)), ElementsAre("kpi"));
  v1::QueryKpiRequest bad_group = request;
  bad_group.add_group_by("rep");
  EXPECT_THAT(Fields(Call(&Stub::QueryKpi, bad_group, &response, reader_)),
              ElementsAre("group_by[0]"));
  v1::QueryKpiRequest bad_wait = request;
  bad_wait.mutable_consistency()->add_min_versions()->set_stream("no-slash");
  EXPECT_THAT(
      Fields(Call(&Stub::QueryKpi, bad_wait, &response, reader_)),
      ElementsAre("consistency.min_versions[0].stream", "consistency.min_versions[0].version"));
  v1::QueryKpiRequest unknown_type = request;  // well formed, but no topic has such a stream
  auto* widget = unknown_type.mutable_consistency()->add_min_versions();
  widget->set_stream("widget/w-1");
  widget->set_version(1);
  EXPECT_THAT(Fields(Call(&Stub::QueryKpi, unknown_type, &response, reader_)),
              ElementsAre("consistency.min_versions[0].stream"));
  v1::GetBusinessDashboardRequest no_kind;
  v1::GetBusinessDashboardResponse dashboard;
  EXPECT_THAT(Fields(Call(&Stub::GetBusinessDashboard, no_kind, &dashboard, reader_)),
              ElementsAre("period_kind"));
}

}  // namespace
}  // namespace crm::metrics
