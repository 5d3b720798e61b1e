#pragma once

// The durable event store of one command service: RocksDB, one atomic WriteBatch per command
// group, WAL synced before any command is acknowledged. It is also the outbox: the relay
// tails ReadLog() from its checkpoint (see crm/kafka/relay.h).

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "crm/events/v1/envelope.pb.h"

namespace crm::eventstore {

using crm::events::v1::EventEnvelope;

// Expected stream version for optimistic concurrency (AppendRequest::expected_version).
inline constexpr int64_t kAnyVersion = -1;  // no check
inline constexpr int64_t kNoStream = 0;     // the stream must not exist yet

// Caller-owned tables committed in the same batch as the events.
enum class Table {
  kState,  // current aggregate state (the write model)
  kIndex,  // read-model indexes for queries
};

// One put (value set) or delete (value empty) in a caller-owned table.
struct Write {
  Table table = Table::kState;
  std::string key;
  std::optional<std::string> value;
};

struct AppendRequest {
  std::string stream_id;
  std::string stream_type;
  // kAnyVersion, kNoStream, or the version the caller decided on (stale -> ABORTED).
  int64_t expected_version = kAnyVersion;
  // Idempotency key; empty = none. A retry with the same key gets the original result and
  // writes nothing.
  std::string request_id;
  // Optional digest of the command: a retry whose fingerprint differs from the original's is
  // refused (ALREADY_EXISTS) rather than silently answered with another command's result.
  std::string request_fingerprint;
  // Events in order. The caller sets event_id, occurred_at, actor, channel, correlation and
  // causation ids and the payload; the store sets stream_id, stream_type, stream_version,
  // position, recorded_at and request_id.
  std::vector<EventEnvelope> events;
  // State and index changes, applied only if the events are.
  std::vector<Write> writes;
};

struct AppendResult {
  std::string stream_id;
  int64_t first_version = 0;
  int64_t last_version = 0;
  int64_t first_position = 0;
  int64_t last_position = 0;
  absl::Time recorded_at;
  // True when this answers a retry: the original result, nothing new written.
  bool replayed = false;

  friend bool operator==(const AppendResult&, const AppendResult&) = default;
};

struct StreamHead {
  int64_t version = 0;
  absl::Time last_occurred_at;
  int64_t last_position = 0;
};

// A scan over one table: keys starting with `prefix`, strictly after `start_after` when it is
// set (resume token for pagination), in key order.
struct ScanRange {
  std::string prefix;
  std::string start_after;
};

// Told about every committed group, on the writer thread (keep it cheap; never block).
struct CommitObserver {
  virtual ~CommitObserver() = default;
  // `write` is the synced RocksDB write of the group; `command_latencies` run from each
  // command's arrival to its durability (queueing included).
  virtual void OnGroupCommitted(size_t events, absl::Duration write,
                                const std::vector<absl::Duration>& command_latencies) = 0;
};

struct Options {
  // fsync the WAL before acknowledging (never off in production; benchmarks compare).
  bool sync = true;
  // Group commit bounds: one WriteBatch and one fsync for at most this many commands/bytes.
  size_t max_group_commands = 1024;
  size_t max_group_bytes = 32u << 20;
  // Size limits that protect the store; services enforce their own, tighter, field limits.
  // Below Kafka's default message.max.bytes (1,000,000) with room for the record's key and
  // headers: a stored event that Kafka refused would stall the relay forever.
  size_t max_event_bytes = 900'000;
  size_t max_stream_id_bytes = 256;
  size_t max_request_id_bytes = 256;
  size_t block_cache_bytes = 64u << 20;
  // Optional (e.g. the Prometheus probe); must outlive the store.
  CommitObserver* observer = nullptr;
};

// Wall clock used for recorded_at; tests may inject a fixed one.
using Clock = std::function<absl::Time()>;

class EventStore {
 public:
  static absl::StatusOr<std::unique_ptr<EventStore>> Open(const std::string& path,
                                                          Options options = {},
                                                          Clock clock = absl::Now);
  // Finishes queued appends, then closes RocksDB.
  ~EventStore();
  EventStore(const EventStore&) = delete;
  EventStore& operator=(const EventStore&) = delete;

  // Appends and returns once the events are durable (synced WAL). Errors:
  // INVALID_ARGUMENT malformed request; ABORTED stale expected_version (or kNoStream on an
  // existing stream); FAILED_PRECONDITION occurred_at earlier than the stream's last event;
  // ALREADY_EXISTS request_id reused for a different command; RESOURCE_EXHAUSTED too large;
  // UNAVAILABLE the store is closing or the disk refused the write.
  absl::StatusOr<AppendResult> Append(AppendRequest request);

  // Same, without blocking the caller: `done` runs on the store's writer thread once the group
  // holding the request is durable (or refused); requests refused by validation are answered
  // at once on the caller's thread. Keep `done` short and never block in it: the next group
  // waits for it.
  using AppendCallback = std::function<void(absl::StatusOr<AppendResult>)>;
  void AppendAsync(AppendRequest request, AppendCallback done);

  // Events of one stream with version >= from_version (1-based), at most max_count.
  absl::StatusOr<std::vector<EventEnvelope>> ReadStream(std::string_view stream_id,
                                                        int64_t from_version,
                                                        size_t max_count) const;
  // The service's log with position >= from_position (1-based), at most max_count.
  absl::StatusOr<std::vector<EventEnvelope>> ReadLog(int64_t from_position, size_t max_count) const;
  absl::StatusOr<std::optional<StreamHead>> GetStreamHead(std::string_view stream_id) const;
  // The original result of an append recorded under `request_id`, if any (replayed = true).
  // ALREADY_EXISTS when both fingerprints are known and differ (the id was reused for another
  // request), as Append would answer.
  absl::StatusOr<std::optional<AppendResult>> FindRequest(
      const std::string& request_id, const std::string& fingerprint = "") const;

  absl::StatusOr<std::optional<std::string>> Get(Table table, std::string_view key) const;
  absl::StatusOr<std::vector<std::pair<std::string, std::string>>> Scan(Table table,
                                                                        const ScanRange& range,
                                                                        size_t limit) const;

  // Highest durable position (0 when the log is empty).
  int64_t LastPosition() const;
  // Blocks until LastPosition() > after or the deadline passes; returns LastPosition().
  int64_t WaitForAppend(int64_t after, absl::Time deadline) const;

  struct Stats {
    uint64_t groups_committed = 0;    // synced WriteBatches
    uint64_t commands_committed = 0;  // appends in them (retries answered from records excluded)
  };
  Stats stats() const;

  // Named positions kept beside the log, e.g. the relay's published prefix. Written with the
  // WAL but not synced: after a crash an older value at worst, so the relay republishes.
  absl::Status PutCheckpoint(std::string_view name, int64_t position);
  absl::StatusOr<int64_t> GetCheckpoint(std::string_view name) const;  // 0 when never set

 private:
  class Impl;
  explicit EventStore(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace crm::eventstore
