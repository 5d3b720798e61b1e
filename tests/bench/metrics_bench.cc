// metrics-service: projection apply rate in process (Google Benchmark), then the real binary
// on the Kafka protocol (mock cluster): catch-up and rebuild rate over a generated history,
// event-to-KPI lag under a steady event stream, and KPI query latency over gRPC. The second
// part prints a markdown table (tests/bench/run.sh appends it to docs/benchmarks.md).

#include <sys/wait.h>

#include <algorithm>
#include <csignal>
#include <cstdio>
#include <map>
#include <string_view>
#include <thread>

#include "absl/strings/str_format.h"
#include "benchmark/benchmark.h"
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
#include "grpcpp/grpcpp.h"
#include "testing/events.h"

namespace crm::metrics {
namespace {

using events::v1::EventEnvelope;
using Stub = v1::MetricsService::Stub;

constexpr char kSecret[] = "metrics-bench-secret-xxxxxxxxxxxxx";
constexpr int kHistory = 200'000;
const absl::Time kStart = absl::Now() - absl::Hours(24 * 7 * 13);

const std::vector<EventEnvelope>& History() {
  static const auto* history =
      new std::vector<EventEnvelope>(testing::GenerateHistory(kHistory, 1, kStart));
  return *history;
}

// Parse, apply and take the changed rows every 2,000 events (the consumer's batch).
void BM_ProjectionApply(benchmark::State& state) {
  const std::vector<EventEnvelope>& history = History();
  std::vector<std::string> serialized;
  for (const EventEnvelope& event : history) serialized.push_back(event.SerializeAsString());
  for (auto _ : state) {
    Projection projection;
    size_t applied = 0;
    for (const std::string& bytes : serialized) {
      EventEnvelope event;
      event.ParseFromString(bytes);  // as the consumer does
      projection.Apply(event);
      if (++applied % 2000 == 0) benchmark::DoNotOptimize(projection.TakeChangedRows());
    }
    benchmark::DoNotOptimize(projection.TakeChangedRows());
  }
  state.SetItemsProcessed(state.iterations() * static_cast<int64_t>(serialized.size()));
}
BENCHMARK(BM_ProjectionApply)->Unit(benchmark::kMillisecond)->Iterations(3);

// What a rebuild does in process: apply with the sums off, then file every view's facts
// once (Projection::KeepSums), as the projector does when the rebuild catches up.
void BM_ProjectionRebuild(benchmark::State& state) {
  const std::vector<EventEnvelope>& history = History();
  for (auto _ : state) {
    Projection projection;
    projection.KeepSums(false);
    for (const EventEnvelope& event : history) projection.Apply(event);
    projection.KeepSums(true);
    benchmark::DoNotOptimize(projection.DailySums("activities_logged"));
  }
  state.SetItemsProcessed(state.iterations() * static_cast<int64_t>(history.size()));
}
BENCHMARK(BM_ProjectionRebuild)->Unit(benchmark::kMillisecond)->Iterations(3)->UseRealTime();

// The filing alone: every view's facts filed once over the whole history.
void BM_ProjectionFileSums(benchmark::State& state) {
  Projection projection;
  projection.KeepSums(false);
  for (const EventEnvelope& event : History()) projection.Apply(event);
  for (auto _ : state) {
    projection.KeepSums(true);
    state.PauseTiming();
    projection.KeepSums(false);
    state.ResumeTiming();
  }
  state.SetItemsProcessed(state.iterations() * static_cast<int64_t>(History().size()));
}
BENCHMARK(BM_ProjectionFileSums)->Unit(benchmark::kMillisecond)->Iterations(3)->UseRealTime();

// EvaluateKpi in process over the whole history: each KPI over one month (the 5th week of
// the history on), grouped by its first dimension, as the gRPC query latency below asks.
void BM_EvaluateKpi(benchmark::State& state) {
  static const Projection* projection = [] {
    auto* built = new Projection();
    for (const EventEnvelope& event : History()) built->Apply(event);
    return built;
  }();
  const v1::KpiDefinition& definition = KpiDefinitions()[state.range(0)];
  v1::QueryKpiRequest request;
  request.set_kpi(definition.name());
  request.set_period_kind(v1::PERIOD_KIND_MONTH);
  *request.mutable_start_time() = ToProto(kStart + absl::Hours(24 * 40));
  *request.mutable_end_time() = ToProto(kStart + absl::Hours(24 * 41));
  if (!definition.dimensions().empty()) request.add_group_by(definition.dimensions(0));
  const absl::Time now = kStart + absl::Hours(24 * 7 * 13);
  for (auto _ : state) benchmark::DoNotOptimize(EvaluateKpi(*projection, request, now));
  state.SetLabel(definition.name());
}
BENCHMARK(BM_EvaluateKpi)->DenseRange(0, 20)->Unit(benchmark::kMicrosecond);

double Percentile(std::vector<double> values, int percent) {
  std::sort(values.begin(), values.end());
  const size_t rank = std::max<size_t>(1, (percent * values.size() + 99) / 100);
  return values[rank - 1];
}

class System {
 public:
  int Run() {
    auto cluster = kafka::MockCluster::Start(1);
    if (!cluster.ok()) return Fail(cluster.status());
    cluster_ = *std::move(cluster);
    for (const char* topic :
         {"crm.contact.events.v1", "crm.activity.events.v1", "crm.pipeline.events.v1"}) {
      if (auto created = cluster_->CreateTopic(topic, 3, 1); !created.ok()) return Fail(created);
    }
    auto producer = kafka::Producer::Create(
        {.bootstrap_servers = cluster_->bootstrap_servers(), .settings = {{"linger.ms", "1"}}},
        [](const kafka::DeliveryReport&) {});
    if (!producer.ok()) return Fail(producer.status());
    producer_ = *std::move(producer);
    for (const EventEnvelope& event : History()) Produce(event);
    if (auto flushed = producer_->Flush(absl::Seconds(120)); !flushed.ok()) return Fail(flushed);

    service_ = std::make_unique<crm::testing::ServiceProcess>(std::vector<std::string>{
        CRM_METRICS_SERVICE, "--plaintext", "--jwt-hs256-secret", kSecret, "--grpc-listen",
        "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0", "--data-dir", dir_.Sub("metrics"),
        "--kafka-bootstrap", cluster_->bootstrap_servers(), "--consumer-session-timeout-ms",
        "4000"});
    if (!service_->serving()) return Fail(absl::InternalError(service_->process().DrainStderr()));
    drain_ = std::thread([process = &service_->process()] {
      while (process->ReadStderrLine(std::chrono::hours(1))) {
      }
    });
    stub_ = v1::MetricsService::NewStub(
        grpc::CreateChannel(service_->address(), grpc::InsecureChannelCredentials()));
    token_ =
        *runtime::SignHs256({.subject = "bench", .scopes = {"metrics:read", "admin"}}, kSecret);

    const double catch_up = ApplyRate(1);
    std::vector<double> rebuilds;  // three, since one run on a noisy machine says little
    for (int64_t generation = 2; generation <= 4; ++generation) {
      v1::RebuildProjectionsResponse rebuild;
      if (auto started = Call(&Stub::RebuildProjections, {}, &rebuild); !started.ok()) {
        return Fail(started);
      }
      rebuilds.push_back(ApplyRate(generation));
    }
    std::sort(rebuilds.begin(), rebuilds.end());
    const auto [lag_p50, lag_p99] = EventToKpiLag();
    const auto [query_p50, query_p99] = QueryLatency();

    std::printf("\n## metrics-service (`build/tests/bench/metrics_bench`)\n\n");
    std::printf("History: %d generated events (3 topics x 3 partitions, mock cluster).\n\n",
                kHistory);
    std::printf("| measure | value |\n|---|---|\n");
    std::printf("| catch-up apply rate at start (Kafka -> RocksDB projection) | %.0f events/s |\n",
                catch_up);
    std::printf(
        "| rebuild rate (fresh column family, from offset 0), 3 rebuilds: min / median / max | "
        "%.0f / %.0f / %.0f events/s |\n",
        rebuilds[0], rebuilds[1], rebuilds[2]);
    std::printf("| event-to-KPI lag at 1,000 events/s, p50 / p99 | %.1f / %.1f ms |\n", lag_p50,
                lag_p99);
    std::printf(
        "| QueryKpi (every KPI, one month, grouped by its first dimension), p50 / p99 | "
        "%.2f / %.2f ms |\n",
        query_p50, query_p99);
    std::printf("| the three KPIs with the slowest median query, p50 / max | %s ms |\n",
                SlowestKpis().c_str());
    service_->process().Signal(SIGTERM);
    service_->process().Wait();
    drain_.join();
    return 0;
  }

 private:
  int Fail(const absl::Status& status) {
    std::fprintf(stderr, "metrics_bench: %s\n", status.ToString().c_str());
    return 1;
  }

  void Produce(const EventEnvelope& event) {
    while (absl::IsResourceExhausted(producer_->ProduceEvent(testing::TopicOf(event), event, 0))) {
      producer_->Poll(absl::Milliseconds(5));
    }
  }

  template <typename Request, typename Response>
  absl::Status Call(grpc::Status (Stub::*method)(grpc::ClientContext*, const Request&, Response*),
                    const Request& request, Response* response) {
    return crm::testing::CallWithToken(*stub_, method, request, response, token_);
  }

  // Events per second applied by `generation`, from its first applied event until every
  // published record is read (the consumer-group join before it is not counted).
  double ApplyRate(int64_t generation) {
    absl::Time first = absl::InfinitePast();
    int64_t applied_at_first = 0;
    for (;;) {
      v1::GetProjectionStatusResponse status;
      if (!Call(&Stub::GetProjectionStatus, {}, &status).ok()) continue;
      const bool live = status.receipt().generation() == generation;
      const int64_t applied = live ? status.applied_events() : status.rebuild_applied_events();
      if (first == absl::InfinitePast() && applied > 0) {
        first = absl::Now();
        applied_at_first = applied;
      }
      if (live && applied >= kHistory) {
        return static_cast<double>(applied - applied_at_first) /
               absl::ToDoubleSeconds(absl::Now() - first);
      }
      absl::SleepFor(absl::Milliseconds(20));
    }
  }

  // A steady 1,000 events/s for 10 s; every 20th event, a reader asks for a KPI that must
  // include it (read-your-writes wait) and the time from producing it to the answer counts.
  std::pair<double, double> EventToKpiLag() {
    testing::EventLog log;
    std::vector<double> lags;
    const absl::Time begin = absl::Now();
    for (int i = 0; i < 10'000; ++i) {
      absl::SleepFor(begin + absl::Milliseconds(i) - absl::Now());
      activity::v1::ActivityLogged logged;
      logged.mutable_activity()->set_status(activity::v1::ACTIVITY_STATUS_DONE);
      logged.mutable_activity()->set_owner_id("rep-1");
      *logged.mutable_activity()->mutable_occurred_at() = ToProto(absl::Now());
      const EventEnvelope& event = log.Add(absl::StrCat("activity/lag-", i), logged, absl::Now());
      const absl::Time produced = absl::Now();
      Produce(event);
      if (i % 20 != 0) continue;
      v1::QueryKpiRequest request;
      request.set_kpi("activities_logged");
      request.set_period_kind(v1::PERIOD_KIND_ISO_WEEK);
      *request.mutable_start_time() = ToProto(produced);
      *request.mutable_end_time() = ToProto(produced + absl::Seconds(1));
      v1::StreamVersion& wanted = *request.mutable_consistency()->add_min_versions();
      wanted.set_stream(event.stream_id());
      wanted.set_version(1);
      v1::QueryKpiResponse response;
      if (Call(&Stub::QueryKpi, request, &response).ok()) {
        lags.push_back(absl::ToDoubleMilliseconds(absl::Now() - produced));
      }
    }
    (void)producer_->Flush(absl::Seconds(30));  // nothing left for librdkafka to warn about
    return {Percentile(lags, 50), Percentile(lags, 99)};
  }

  std::pair<double, double> QueryLatency() {
    std::vector<double> latencies;
    for (int round = 0; round < 20; ++round) {
      for (const v1::KpiDefinition& definition : KpiDefinitions()) {
        v1::QueryKpiRequest request;
        request.set_kpi(definition.name());
        request.set_period_kind(v1::PERIOD_KIND_MONTH);
        *request.mutable_start_time() = ToProto(kStart + absl::Hours(24 * 40));
        *request.mutable_end_time() = ToProto(kStart + absl::Hours(24 * 41));
        if (!definition.dimensions().empty()) request.add_group_by(definition.dimensions(0));
        v1::QueryKpiResponse response;
        const absl::Time start = absl::Now();
        if (Call(&Stub::QueryKpi, request, &response).ok()) {
          latencies.push_back(absl::ToDoubleMilliseconds(absl::Now() - start));
          by_kpi_[definition.name()].push_back(latencies.back());
        }
      }
    }
    return {Percentile(latencies, 50), Percentile(latencies, 99)};
  }

  // The three KPIs with the slowest median query, "name p50 / max ms".
  std::string SlowestKpis() const {
    std::vector<std::pair<double, std::string>> medians;
    for (const auto& [name, latencies] : by_kpi_) {
      medians.emplace_back(Percentile(latencies, 50),
                           absl::StrFormat("%s %.2f / %.2f", name, Percentile(latencies, 50),
                                           Percentile(latencies, 100)));
    }
    std::sort(medians.rbegin(), medians.rend());
    std::string slowest;
    for (size_t i = 0; i < std::min<size_t>(3, medians.size()); ++i) {
      slowest += (i > 0 ? ", " : "") + medians[i].second;
    }
    return slowest;
  }

  crm::testing::TempDir dir_;
  std::map<std::string, std::vector<double>> by_kpi_;  // QueryKpi latencies, ms
  std::unique_ptr<kafka::MockCluster> cluster_;
  std::unique_ptr<kafka::Producer> producer_;
  std::unique_ptr<crm::testing::ServiceProcess> service_;
  std::thread drain_;
  std::unique_ptr<Stub> stub_;
  std::string token_;
};

}  // namespace
}  // namespace crm::metrics

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  // --in-process-only: only the Google Benchmark part, for iterating on the projection.
  const bool in_process_only = argc > 1 && std::string_view(argv[1]) == "--in-process-only";
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return in_process_only ? 0 : crm::metrics::System().Run();
}
