#pragma once

// The projection's process side: a consumer group reading the three topics into the
// Projection, each polled batch persisted with its Kafka offsets in one RocksDB write batch
// (column family "projection-<generation>"), read-your-writes waits, and rebuilds into a fresh
// column family that replace the live one once they have caught up.

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "crm/kafka/consumer.h"
#include "crm/metrics/v1/metrics_service.pb.h"
#include "domain/projection.h"

namespace rocksdb {
class DB;
class ColumnFamilyHandle;
}  // namespace rocksdb

namespace crm::metrics {

struct ProjectorOptions {
  std::string data_dir;
  std::string bootstrap_servers;
  std::vector<std::string> topics = {"crm.contact.events.v1", "crm.activity.events.v1",
                                     "crm.pipeline.events.v1"};
  // Each generation consumes as "<group_prefix>-g<generation>". Every replica needs its own
  // prefix: a replica must read all partitions, not share them.
  std::string group_prefix = "crm-metrics";
  kafka::Settings consumer_settings;
  bool rebuild_at_start = false;
  // Events per batch: a live batch is applied under the lock that queries read under, a
  // rebuild's is not, so it can be larger (fewer, larger writes).
  size_t max_batch = 2000;
  size_t max_rebuild_batch = 10000;
};

struct ProjectorStats {
  int64_t generation = 0;
  std::map<std::pair<std::string, int32_t>, int64_t> next_offsets;
  absl::Time applied_through = absl::UnixEpoch();
  int64_t lag_events = 0;
  int64_t applied_events = 0;
  int64_t skipped_duplicates = 0;
  int64_t rebuilding_generation = 0;
  int64_t rebuild_applied_events = 0;
  int64_t consistency_waits = 0;  // read-your-writes queries waiting for their streams
};

class Projector {
 public:
  // Opens (or creates) the store, loads the live generation and starts consuming.
  static absl::StatusOr<std::unique_ptr<Projector>> Start(ProjectorOptions options);
  ~Projector();
  Projector(const Projector&) = delete;
  Projector& operator=(const Projector&) = delete;

  // Calls fn(projection, stats) with the live projection, consistent with the stats.
  template <typename Fn>
  auto Read(Fn fn) const {
    absl::ReaderMutexLock lock(&mu_);
    return fn(LiveProjection(), StatsLocked());
  }

  ProjectorStats Stats() const;

  // Calls done(OK) once every stream has reached its version (at once when they already
  // have), done(DEADLINE_EXCEEDED naming the first stream still behind) when `deadline`
  // passes, or done(UNAVAILABLE) when the projector stops first. No thread waits: the
  // consumer thread settles waits after each poll, so one slow stream cannot hold up the
  // readers behind it. `done` never runs under the projector's lock.
  void WhenReached(std::vector<std::pair<std::string, int64_t>> min_versions, absl::Time deadline,
                   std::function<void(absl::Status)> done);

  // Answers every wait UNAVAILABLE now, and every later one at once: a stopping service must
  // not hold calls open until their waits run out.
  void EndWaits();

  // Starts a rebuild from offset 0 (or returns the one in progress): its generation.
  int64_t RequestRebuild();

  // An error that stopped consuming (the store failed), OK otherwise.
  absl::Status health() const;

  void Stop();

 private:
  struct Generation;
  class Writer;
  struct Wait {
    std::vector<std::pair<std::string, int64_t>> min_versions;
    absl::Time deadline;
    std::function<void(absl::Status)> done;
  };

  explicit Projector(ProjectorOptions options);
  absl::Status Open();
  absl::StatusOr<std::unique_ptr<Generation>> LoadGeneration(int64_t number, bool load);
  absl::Status Attach(Generation& generation);
  void Run();
  // Polls one batch into `generation`; `live` generations are applied under the lock.
  absl::Status PollInto(Generation& generation, bool live);
  // How long a poll may block: until the earliest wait's deadline, at most 100 ms.
  absl::Duration PollTimeout() const;
  // Calls done() of every wait reached or past its deadline (all of them, UNAVAILABLE, once
  // stopping).
  void SettleWaits();
  // UNAVAILABLE once stopping or stopped by an error.
  absl::Status NoMoreWaits() const ABSL_SHARED_LOCKS_REQUIRED(mu_);
  // The first of `min_versions` the live projection has not reached; nullptr when none.
  const std::pair<std::string, int64_t>* Behind(
      const std::vector<std::pair<std::string, int64_t>>& min_versions) const
      ABSL_SHARED_LOCKS_REQUIRED(mu_);
  bool CaughtUp(const Generation& rebuild) const;
  absl::Status Swap();
  ProjectorStats StatsLocked() const ABSL_SHARED_LOCKS_REQUIRED(mu_);
  const Projection& LiveProjection() const ABSL_SHARED_LOCKS_REQUIRED(mu_);

  ProjectorOptions options_;
  std::unique_ptr<rocksdb::DB> db_;
  std::vector<rocksdb::ColumnFamilyHandle*> handles_;
  std::unique_ptr<Writer> writer_;

  mutable absl::Mutex mu_;
  std::unique_ptr<Generation> live_ ABSL_GUARDED_BY(mu_);
  std::unique_ptr<Generation> rebuild_;  // consumer thread only; its number is below
  std::atomic<int64_t> rebuilding_{0};
  std::atomic<int64_t> rebuild_applied_{0};
  std::atomic<bool> rebuild_requested_{false};
  absl::Status error_ ABSL_GUARDED_BY(mu_);
  std::vector<Wait> waits_ ABSL_GUARDED_BY(mu_);
  bool waits_ended_ ABSL_GUARDED_BY(mu_) = false;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace crm::metrics
