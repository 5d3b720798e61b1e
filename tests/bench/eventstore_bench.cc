// Event store throughput and commit latency with a synced WAL, beside this machine's raw
// limits measured in the same run: one synced RocksDB write, and synced RocksDB batches with no
// store logic on top. `make bench` renders the JSON output into docs/benchmarks.md.

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <functional>
#include <memory>
#include <vector>

#include "absl/strings/str_cat.h"
#include "benchmark/benchmark.h"
#include "crm/common/time.h"
#include "crm/eventstore/event_store.h"
#include "crm/testing/testing.h"
#include "rocksdb/db.h"
#include "rocksdb/write_batch.h"

namespace crm::eventstore {
namespace {

constexpr size_t kEventBytes = 1024;

std::string Payload() { return std::string(kEventBytes, 'x'); }

// Nearest-rank percentile of a sorted sample: the value at rank ceil(q * n).
double NearestRank(const std::vector<double>& sorted, double q) {
  if (sorted.empty()) return 0.0;
  const auto rank = static_cast<size_t>(std::ceil(q * static_cast<double>(sorted.size())));
  return sorted[std::clamp<size_t>(rank, 1, sorted.size()) - 1];
}

// A plain RocksDB with default options: the raw limit, no store logic on top.
std::unique_ptr<rocksdb::DB> OpenRawDb(const crm::testing::TempDir& dir) {
  rocksdb::Options options;
  options.create_if_missing = true;
  rocksdb::DB* raw = nullptr;
  if (!rocksdb::DB::Open(options, dir.Sub("db"), &raw).ok()) return nullptr;
  return std::unique_ptr<rocksdb::DB>(raw);
}

// Raw limit 1: one synced 1 KiB put per call, one writer.
void BM_RawSyncedWrite(benchmark::State& state) {
  crm::testing::TempDir dir;
  std::unique_ptr<rocksdb::DB> db = OpenRawDb(dir);
  if (db == nullptr) {
    state.SkipWithError("open failed");
    return;
  }
  rocksdb::WriteOptions sync;
  sync.sync = true;
  const std::string value = Payload();
  int64_t key = 0;
  for (auto _ : state) {
    if (!db->Put(sync, absl::StrCat(key++), value).ok()) state.SkipWithError("write failed");
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_RawSyncedWrite)->UseRealTime()->MinTime(2.0);

// Raw limit 2: synced WriteBatches of N 1 KiB puts (the best any group commit can do).
void BM_RawSyncedBatch(benchmark::State& state) {
  crm::testing::TempDir dir;
  std::unique_ptr<rocksdb::DB> db = OpenRawDb(dir);
  if (db == nullptr) {
    state.SkipWithError("open failed");
    return;
  }
  rocksdb::WriteOptions sync;
  sync.sync = true;
  const std::string value = Payload();
  int64_t key = 0;
  for (auto _ : state) {
    rocksdb::WriteBatch batch;
    for (int64_t i = 0; i < state.range(0); ++i) batch.Put(absl::StrCat(key++), value);
    if (!db->Write(sync, &batch).ok()) state.SkipWithError("write failed");
  }
  state.SetItemsProcessed(state.iterations() * state.range(0));
}
BENCHMARK(BM_RawSyncedBatch)->Arg(16)->Arg(64)->UseRealTime()->MinTime(2.0);

// Ours with blocking callers: concurrent threads, each appending one 1 KiB event per command to its
// own stream with an expected version, synced before acknowledgement. Latency per command is
// collected per thread and summarised by thread 0 after the run (threads meet at a barrier at the
// end).
std::unique_ptr<crm::testing::TempDir> g_dir;
std::unique_ptr<EventStore> g_store;
std::vector<std::vector<double>> g_latency_ms;

void BM_Append(benchmark::State& state) {
  if (state.thread_index() == 0) {
    g_dir = std::make_unique<crm::testing::TempDir>();
    g_store = *EventStore::Open(g_dir->Sub("store"));
    g_latency_ms.assign(state.threads(), {});
  }
  const std::string stream = absl::StrCat("bench-", state.thread_index());
  int64_t version = 0;
  const std::string payload = Payload();
  const auto occurred_at = ToProto(absl::Now());
  std::vector<double>* latencies = nullptr;
  for (auto _ : state) {
    if (latencies == nullptr) latencies = &g_latency_ms[state.thread_index()];
    AppendRequest request{.stream_id = stream, .stream_type = "bench", .expected_version = version};
    EventEnvelope& event = request.events.emplace_back();
    event.mutable_payload()->set_type_url("type.googleapis.com/crm.bench.v1.Event");
    event.mutable_payload()->set_value(payload);
    *event.mutable_occurred_at() = occurred_at;
    const auto start = std::chrono::steady_clock::now();
    auto result = g_store->Append(std::move(request));
    latencies->push_back(
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
            .count());
    if (!result.ok()) {
      state.SkipWithError(result.status().ToString().c_str());
      break;
    }
    version = result->last_version;
  }
  state.SetItemsProcessed(state.iterations());
  if (state.thread_index() == 0) {
    std::vector<double> all;
    for (const auto& per_thread : g_latency_ms)
      all.insert(all.end(), per_thread.begin(), per_thread.end());
    std::sort(all.begin(), all.end());
    state.counters["p50_ms"] = NearestRank(all, 0.50);
    state.counters["p99_ms"] = NearestRank(all, 0.99);
    const auto stats = g_store->stats();
    state.counters["commands_per_fsync"] =
        stats.groups_committed ? double(stats.commands_committed) / double(stats.groups_committed)
                               : 0.0;
    g_store.reset();
    g_dir.reset();
  }
}
BENCHMARK(BM_Append)->Threads(1)->Threads(16)->Threads(64)->UseRealTime()->MinTime(2.0);

// A closed loop of appends, as gRPC callback reactors drive the store: `in_flight` writers,
// each completion issuing that writer's next append until ops_per_iteration have completed
// per benchmark iteration.
class ClosedLoop {
 public:
  ClosedLoop(int in_flight, int64_t ops_per_iteration)
      : in_flight_(in_flight), ops_per_iteration_(ops_per_iteration) {}

  // `issue(writer)` starts one append; its completion calls Done(ok) and issues another
  // append for the writer when Done returns true.
  void Run(benchmark::State& state, const std::function<void(int)>& issue) {
    for (auto _ : state) {
      {
        absl::MutexLock lock(&mu_);
        issued_ = in_flight_;
        completed_ = 0;
      }
      for (int writer = 0; writer < in_flight_; ++writer) issue(writer);
      const auto all_done = [&]() ABSL_NO_THREAD_SAFETY_ANALYSIS {
        return completed_ == issued_;
      };
      absl::MutexLock lock(&mu_);
      mu_.Await(absl::Condition(&all_done));
      if (failed_) {
        state.SkipWithError("append failed");
        break;
      }
    }
    state.SetItemsProcessed(state.iterations() * ops_per_iteration_);
  }

  bool Done(bool ok) {
    absl::MutexLock lock(&mu_);
    ++completed_;
    if (!ok) failed_ = true;
    if (failed_ || issued_ >= ops_per_iteration_) return false;
    ++issued_;
    return true;
  }

 private:
  const int in_flight_;
  const int64_t ops_per_iteration_;
  absl::Mutex mu_;
  int64_t issued_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t completed_ ABSL_GUARDED_BY(mu_) = 0;
  bool failed_ ABSL_GUARDED_BY(mu_) = false;
};

// Ours as a gRPC callback service drives it: N appends in flight from no dedicated threads.
// Each completion (on the store's writer thread) records its latency and issues that writer's
// next append.
void BM_AppendInFlight(benchmark::State& state) {
  crm::testing::TempDir dir;
  auto store = *EventStore::Open(dir.Sub("store"));
  const int in_flight = static_cast<int>(state.range(0));
  const std::string payload = Payload();
  const auto occurred_at = ToProto(absl::Now());
  std::vector<int64_t> versions(in_flight, 0);
  absl::Mutex mu;
  std::vector<double> latencies_ms;
  ClosedLoop loop(in_flight, 200LL * in_flight);

  std::function<void(int)> issue = [&](int writer) {
    AppendRequest request{.stream_id = absl::StrCat("bench-", writer),
                          .stream_type = "bench",
                          .expected_version = versions[writer]};
    EventEnvelope& event = request.events.emplace_back();
    event.mutable_payload()->set_type_url("type.googleapis.com/crm.bench.v1.Event");
    event.mutable_payload()->set_value(payload);
    *event.mutable_occurred_at() = occurred_at;
    const auto start = std::chrono::steady_clock::now();
    store->AppendAsync(std::move(request), [&, writer, start](absl::StatusOr<AppendResult> result) {
      const double ms =
          std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
              .count();
      {
        absl::MutexLock lock(&mu);
        latencies_ms.push_back(ms);
        if (result.ok()) versions[writer] = result->last_version;
      }
      if (loop.Done(result.ok())) issue(writer);
    });
  };
  loop.Run(state, issue);

  std::sort(latencies_ms.begin(), latencies_ms.end());
  state.counters["p50_ms"] = NearestRank(latencies_ms, 0.50);
  state.counters["p99_ms"] = NearestRank(latencies_ms, 0.99);
  const auto stats = store->stats();
  state.counters["commands_per_fsync"] =
      stats.groups_committed ? double(stats.commands_committed) / double(stats.groups_committed)
                             : 0.0;
}
BENCHMARK(BM_AppendInFlight)->Arg(1)->Arg(16)->Arg(64)->UseRealTime()->MinTime(2.0);

// The writes of a contact-service create: a new stream with a request id, its state and eight
// index keys spread over the key space (lists by owner, account, region, stage; duplicate
// lookups by email, phone, name). Unsynced, so the writer thread's CPU is the limit: it
// measures staging and memtable inserts, not the disk.
void BM_AppendContactShaped(benchmark::State& state) {
  crm::testing::TempDir dir;
  auto store = *EventStore::Open(dir.Sub("store"), {.sync = false});
  const int in_flight = static_cast<int>(state.range(0));
  const std::string payload(400, 'x');
  const std::string contact(300, 'c');
  const auto occurred_at = ToProto(absl::Now());
  std::atomic<int64_t> next_id{0};
  ClosedLoop loop(in_flight, 200LL * in_flight);

  std::function<void(int)> issue = [&](int writer) {
    const int64_t n = next_id.fetch_add(1);
    const std::string id = absl::StrCat("bench-con-", n);
    AppendRequest request{.stream_id = absl::StrCat("contact/", id),
                          .stream_type = "contact",
                          .expected_version = kNoStream,
                          .request_id = absl::StrCat("bench:", n),
                          .request_fingerprint = "f"};
    EventEnvelope& event = request.events.emplace_back();
    event.mutable_payload()->set_type_url("type.googleapis.com/crm.bench.v1.Event");
    event.mutable_payload()->set_value(payload);
    *event.mutable_occurred_at() = occurred_at;
    request.writes.push_back({Table::kState, id, contact});
    for (const std::string& key :
         {absl::StrCat("contact/live/all/", id),
          absl::StrCat("contact/live/owner/rep-", n % 50, "/", id),
          absl::StrCat("contact/live/account/acc-", n % 1000, "/", id),
          absl::StrCat("contact/live/region/r", n % 4, "/", id),
          absl::StrCat("contact/live/stage/LEAD/", id),
          absl::StrCat("contact/email/", id, "@example.com/", id),
          absl::StrCat("contact/phone/+4930", (n * 7919) % 9000000 + 1000000, "/", id),
          absl::StrCat("contact/name/acc-", n % 1000, "/ada load ", id, "/", id)}) {
      request.writes.push_back({Table::kIndex, key, ""});
    }
    store->AppendAsync(std::move(request), [&, writer](absl::StatusOr<AppendResult> result) {
      if (loop.Done(result.ok())) issue(writer);
    });
  };
  loop.Run(state, issue);
}
BENCHMARK(BM_AppendContactShaped)->Arg(64)->UseRealTime()->MinTime(5.0);

}  // namespace
}  // namespace crm::eventstore

BENCHMARK_MAIN();
