// Outbox relay throughput and publish latency against an in-process mock Kafka cluster
// (librdkafka's mock: real protocol over loopback, no disk), idempotent producer, acks=all.
//
// BM_RelayThroughput: N 1 KiB events already in a fresh event store; the clock runs from
//   Relay::Start() until the checkpoint covers the last position (every event confirmed by
//   Kafka). items_per_second is the relay's catch-up rate.
// BM_RelayPublishLatency: the relay idles on an up-to-date log; each iteration appends one
//   event and waits until its delivery is confirmed and checkpointed (append -> checkpoint).
// BM_BrokerRoundTrip: the raw limit under both: one 1 KiB record produced (acks=all,
//   idempotent, as the relay produces) until a consumer (as metrics-service consumes) has it.

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "benchmark/benchmark.h"
#include "crm/common/time.h"
#include "crm/eventstore/event_store.h"
#include "crm/kafka/consumer.h"
#include "crm/kafka/mock_cluster.h"
#include "crm/kafka/producer.h"
#include "crm/kafka/relay.h"
#include "crm/testing/testing.h"
#include "spdlog/spdlog.h"

namespace crm::kafka {
namespace {

constexpr char kTopic[] = "crm.bench.events.v1";
constexpr size_t kEventBytes = 1024;
constexpr int kStreams = 200;
constexpr int kEventsPerAppend = 50;

// Incompressible filler, so lz4 does not flatter the numbers.
std::string Payload(uint64_t seed) {
  std::string bytes(kEventBytes, '\0');
  uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;
  for (char& c : bytes) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    c = static_cast<char>(x);
  }
  return bytes;
}

eventstore::AppendRequest Request(int stream, int events, uint64_t seed) {
  eventstore::AppendRequest request{.stream_id = absl::StrCat("bench-", stream),
                                    .stream_type = "bench"};
  for (int i = 0; i < events; ++i) {
    eventstore::EventEnvelope& event = request.events.emplace_back();
    event.mutable_payload()->set_type_url("type.googleapis.com/crm.bench.v1.Happened");
    event.mutable_payload()->set_value(Payload(seed + static_cast<uint64_t>(i)));
    *event.mutable_occurred_at() = ToProto(absl::FromUnixSeconds(1'790'000'000));
  }
  return request;
}

// A fresh store and cluster per run.
struct Setup {
  crm::testing::TempDir dir;
  std::unique_ptr<eventstore::EventStore> store;
  std::unique_ptr<MockCluster> cluster;

  bool Open(benchmark::State& state) {
    // Setup speed only: the relay reads the log, it never waits for fsyncs.
    absl::StatusOr<std::unique_ptr<eventstore::EventStore>> opened =
        eventstore::EventStore::Open(dir.Sub("store"), eventstore::Options{.sync = false});
    absl::StatusOr<std::unique_ptr<MockCluster>> started = MockCluster::Start(1);
    if (!opened.ok() || !started.ok()) {
      state.SkipWithError("cannot open store or start cluster");
      return false;
    }
    store = *std::move(opened);
    cluster = *std::move(started);
    if (!cluster->CreateTopic(kTopic, 3, 1).ok()) {
      state.SkipWithError("cannot create topic");
      return false;
    }
    return true;
  }

  RelayOptions Options() const {
    return RelayOptions{.topic = kTopic,
                        .producer = {.bootstrap_servers = cluster->bootstrap_servers()}};
  }
};

void BM_RelayThroughput(benchmark::State& state) {
  const int64_t events = state.range(0);
  for (auto _ : state) {
    Setup setup;
    if (!setup.Open(state)) return;
    int64_t last = 0;
    for (int64_t appended = 0; appended < events; appended += kEventsPerAppend) {
      const int count = static_cast<int>(std::min<int64_t>(kEventsPerAppend, events - appended));
      absl::StatusOr<eventstore::AppendResult> result =
          setup.store->Append(Request(static_cast<int>((appended / kEventsPerAppend) % kStreams),
                                      count, static_cast<uint64_t>(appended)));
      if (!result.ok()) {
        state.SkipWithError("append failed");
        return;
      }
      last = result->last_position;
    }

    const auto start = std::chrono::steady_clock::now();
    absl::StatusOr<std::unique_ptr<Relay>> relay = Relay::Start(setup.store.get(), setup.Options());
    if (!relay.ok() || !(*relay)->WaitForCheckpoint(last, absl::Seconds(120)).ok()) {
      state.SkipWithError("relay did not catch up");
      return;
    }
    state.SetIterationTime(
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    const RelayStats stats = (*relay)->Stats();
    state.counters["rewinds"] = static_cast<double>(stats.rewinds);
    (void)(*relay)->Stop();
  }
  state.SetItemsProcessed(state.iterations() * events);
  state.SetBytesProcessed(state.iterations() * events * static_cast<int64_t>(kEventBytes));
}
BENCHMARK(BM_RelayThroughput)
    ->Arg(20'000)
    ->Iterations(3)
    ->UseManualTime()
    ->Unit(benchmark::kMillisecond);

// Nearest-rank percentile of a sorted sample.
double NearestRank(const std::vector<double>& sorted, double q) {
  if (sorted.empty()) return 0.0;
  const auto rank = static_cast<size_t>(std::ceil(q * static_cast<double>(sorted.size())));
  return sorted[std::clamp<size_t>(rank, 1, sorted.size()) - 1];
}

// Times each call of `once` as one iteration (manual time) and reports p50 and p99 in µs;
// `once` returning false stops the benchmark with `error`.
template <typename Fn>
void TimeEach(benchmark::State& state, const char* error, Fn once) {
  std::vector<double> micros;
  for (auto _ : state) {
    const auto start = std::chrono::steady_clock::now();
    if (!once()) {
      state.SkipWithError(error);
      return;
    }
    const std::chrono::duration<double, std::micro> took = std::chrono::steady_clock::now() - start;
    micros.push_back(took.count());
    state.SetIterationTime(took.count() / 1e6);
  }
  std::sort(micros.begin(), micros.end());
  state.counters["p50_us"] = NearestRank(micros, 0.50);
  state.counters["p99_us"] = NearestRank(micros, 0.99);
}

void BM_RelayPublishLatency(benchmark::State& state) {
  Setup setup;
  if (!setup.Open(state)) return;
  absl::StatusOr<std::unique_ptr<Relay>> relay = Relay::Start(setup.store.get(), setup.Options());
  if (!relay.ok()) {
    state.SkipWithError("relay did not start");
    return;
  }
  uint64_t seed = 0;
  TimeEach(state, "event not published", [&] {
    absl::StatusOr<eventstore::AppendResult> result =
        setup.store->Append(Request(static_cast<int>(seed % kStreams), 1, seed));
    ++seed;
    return result.ok() &&
           (*relay)->WaitForCheckpoint(result->last_position, absl::Seconds(10)).ok();
  });
  (void)(*relay)->Stop();
}
BENCHMARK(BM_RelayPublishLatency)->Iterations(300)->UseManualTime()->Unit(benchmark::kMicrosecond);

void BM_BrokerRoundTrip(benchmark::State& state) {
  Setup setup;
  if (!setup.Open(state)) return;
  absl::StatusOr<std::unique_ptr<Producer>> producer = Producer::Create(
      {.bootstrap_servers = setup.cluster->bootstrap_servers(), .settings = {{"linger.ms", "0"}}},
      [](const DeliveryReport&) {});
  absl::StatusOr<std::unique_ptr<Consumer>> consumer =
      Consumer::Create({.bootstrap_servers = setup.cluster->bootstrap_servers(),
                        .group_id = "bench-round-trip",
                        .topics = {kTopic},
                        .offset_loader = [](std::string_view, int32_t) {
                          return absl::StatusOr<std::optional<int64_t>>(std::nullopt);
                        }});
  if (!producer.ok() || !consumer.ok()) {
    state.SkipWithError("cannot create producer or consumer");
    return;
  }
  // Until the group has joined and the first record comes through.
  auto round_trip = [&](uint64_t seed, absl::Duration timeout) {
    if (!(*producer)->Produce(kTopic, "k", Payload(seed), {}, seed).ok()) return false;
    const absl::Time deadline = absl::Now() + timeout;
    while (absl::Now() < deadline) {
      (*producer)->Poll(absl::ZeroDuration());
      absl::StatusOr<std::vector<Message>> got = (*consumer)->Poll(1, absl::Milliseconds(100));
      if (got.ok() && !got->empty()) return true;
    }
    return false;
  };
  if (!round_trip(0, absl::Seconds(30))) {
    state.SkipWithError("the first record did not come through");
    return;
  }
  uint64_t seed = 1;
  TimeEach(state, "record not consumed", [&] { return round_trip(seed++, absl::Seconds(10)); });
}
BENCHMARK(BM_BrokerRoundTrip)->Iterations(300)->UseManualTime()->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace crm::kafka

int main(int argc, char** argv) {
  spdlog::set_level(spdlog::level::warn);  // keep the relay's start/stop lines out of the table
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
