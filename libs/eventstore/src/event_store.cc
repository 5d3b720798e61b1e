#include "crm/eventstore/event_store.h"

#include <algorithm>
#include <atomic>
#include <deque>
#include <filesystem>
#include <future>
#include <limits>
#include <optional>
#include <thread>
#include <tuple>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "crm/common/status_macros.h"
#include "crm/common/time.h"
#include "crm/common/uuid.h"
#include "crm/eventstore/records.pb.h"
#include "rocksdb/db.h"
#include "rocksdb/filter_policy.h"
#include "rocksdb/slice_transform.h"
#include "rocksdb/table.h"
#include "rocksdb/write_batch.h"

namespace crm::eventstore {
namespace {

// Column families. The log is the outbox: the relay tails it by position.
constexpr const char* kLogCf = "log";                  // BE64(position) -> EventEnvelope
constexpr const char* kStreamsCf = "streams";          // id\0 -> head; id\0 BE64(v) -> BE64(pos)
constexpr const char* kStateCf = "state";              // caller's write model
constexpr const char* kIndexCf = "index";              // caller's read-model indexes
constexpr const char* kIdempotencyCf = "idempotency";  // request_id -> original result
constexpr const char* kCheckpointsCf = "checkpoints";  // name -> BE64(position)

std::string EncodeBigEndian(int64_t value) {
  std::string out(8, '\0');
  const auto v = static_cast<uint64_t>(value);
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>(v >> (56 - 8 * i));
  return out;
}

absl::StatusOr<int64_t> DecodeBigEndian(std::string_view bytes) {
  if (bytes.size() != 8) return absl::DataLossError("corrupt 8-byte integer");
  uint64_t v = 0;
  for (unsigned char c : bytes) v = (v << 8) | c;
  return static_cast<int64_t>(v);
}

// Stream index: "<stream_id>\0<BE64 version>" -> "<BE64 position><BE64 occurred_at seconds>
// <BE64 occurred_at nanos>". '\0' sorts first, so "a" never interleaves with "ab"; the last
// entry of a stream is its head, so no separate head record is written.
std::string StreamPrefix(std::string_view stream_id) {
  std::string key(stream_id);
  key.push_back('\0');
  return key;
}

std::string StreamVersionKey(std::string_view stream_id, int64_t version) {
  return StreamPrefix(stream_id) + EncodeBigEndian(version);
}

std::string StreamIndexValue(int64_t position, const google::protobuf::Timestamp& occurred_at) {
  return EncodeBigEndian(position) + EncodeBigEndian(occurred_at.seconds()) +
         EncodeBigEndian(occurred_at.nanos());
}

absl::StatusOr<StreamHead> DecodeStreamIndexEntry(std::string_view key, std::string_view value) {
  if (key.size() < 8 || value.size() != 24) return absl::DataLossError("corrupt stream index");
  CRM_ASSIGN_OR_RETURN(int64_t version, DecodeBigEndian(key.substr(key.size() - 8)));
  CRM_ASSIGN_OR_RETURN(int64_t position, DecodeBigEndian(value.substr(0, 8)));
  CRM_ASSIGN_OR_RETURN(int64_t seconds, DecodeBigEndian(value.substr(8, 8)));
  CRM_ASSIGN_OR_RETURN(int64_t nanos, DecodeBigEndian(value.substr(16, 8)));
  return StreamHead{.version = version,
                    .last_occurred_at = absl::FromUnixSeconds(seconds) + absl::Nanoseconds(nanos),
                    .last_position = position};
}

absl::Status FromRocks(const rocksdb::Status& status, const std::string& what) {
  if (status.ok()) return absl::OkStatus();
  if (status.IsCorruption())
    return absl::DataLossError(absl::StrCat(what, ": ", status.ToString()));
  return absl::UnavailableError(absl::StrCat(what, ": ", status.ToString()));
}

// A retry must be the same request: differing known fingerprints mean the id was reused.
absl::Status SameRequest(const std::string& request_id, const std::string& fingerprint,
                         const IdempotencyRecord& record) {
  if (!fingerprint.empty() && !record.fingerprint().empty() &&
      fingerprint != record.fingerprint()) {
    return absl::AlreadyExistsError(
        absl::StrCat("request_id: ", request_id, " was already used for a different request"));
  }
  return absl::OkStatus();
}

AppendResult ToResult(const IdempotencyRecord& record) {
  return AppendResult{.stream_id = record.stream_id(),
                      .first_version = record.first_version(),
                      .last_version = record.last_version(),
                      .first_position = record.first_position(),
                      .last_position = record.last_position(),
                      .recorded_at = FromProto(record.recorded_at()),
                      .replayed = true};
}

}  // namespace

class EventStore::Impl {
 public:
  Impl(Options options, Clock clock) : options_(std::move(options)), clock_(std::move(clock)) {}

  ~Impl() {
    {
      absl::MutexLock lock(&queue_mu_);
      stopping_ = true;
    }
    if (writer_.joinable()) writer_.join();
    for (auto* handle : handles_) db_->DestroyColumnFamilyHandle(handle);
    if (db_) db_->Close().PermitUncheckedError();
  }

  absl::Status Open(const std::string& path) {
    std::error_code ec;
    std::filesystem::create_directories(path, ec);
    if (ec) return absl::UnavailableError(absl::StrCat("cannot create ", path, ": ", ec.message()));

    rocksdb::Options db_options;
    db_options.create_if_missing = true;
    db_options.create_missing_column_families = true;
    db_options.IncreaseParallelism(2);
    rocksdb::BlockBasedTableOptions table;
    table.block_cache = rocksdb::NewLRUCache(options_.block_cache_bytes);
    rocksdb::BlockBasedTableOptions point_lookup_table = table;
    point_lookup_table.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));

    auto cf_options = [&](bool point_lookups) {
      rocksdb::ColumnFamilyOptions cf;
      cf.table_factory.reset(
          rocksdb::NewBlockBasedTableFactory(point_lookups ? point_lookup_table : table));
      return cf;
    };
    // The log's keys only ever grow: one shared insert hint turns each memtable insert into
    // an append instead of a full skiplist search.
    rocksdb::ColumnFamilyOptions log_options = cf_options(false);
    log_options.memtable_insert_with_hint_prefix_extractor.reset(
        rocksdb::NewFixedPrefixTransform(0));
    std::vector<rocksdb::ColumnFamilyDescriptor> families = {
        {rocksdb::kDefaultColumnFamilyName, cf_options(false)},
        {kLogCf, log_options},
        {kStreamsCf, cf_options(true)},
        {kStateCf, cf_options(true)},
        {kIndexCf, cf_options(false)},
        {kIdempotencyCf, cf_options(true)},
        {kCheckpointsCf, cf_options(true)},
    };
    rocksdb::DB* db = nullptr;
    CRM_RETURN_IF_ERROR(FromRocks(rocksdb::DB::Open(db_options, path, families, &handles_, &db),
                                  absl::StrCat("open event store at ", path)));
    db_.reset(db);
    log_ = handles_[1];
    streams_ = handles_[2];
    state_ = handles_[3];
    index_ = handles_[4];
    idempotency_ = handles_[5];
    checkpoints_ = handles_[6];

    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), log_));
    it->SeekToLast();
    CRM_RETURN_IF_ERROR(FromRocks(it->status(), "read last position"));
    if (it->Valid()) {
      CRM_ASSIGN_OR_RETURN(int64_t last, DecodeBigEndian(it->key().ToStringView()));
      last_position_.store(last);
      EventEnvelope last_event;
      if (!last_event.ParseFromArray(it->value().data(), static_cast<int>(it->value().size()))) {
        return absl::DataLossError(absl::StrCat("corrupt event at position ", last));
      }
      last_recorded_at_ = FromProto(last_event.recorded_at());
    }
    writer_ = std::thread([this] { WriterLoop(); });

    return absl::OkStatus();
  }

  void AppendAsync(AppendRequest request, AppendCallback done) {
    absl::StatusOr<size_t> bytes = Validate(request);
    if (!bytes.ok()) {
      done(bytes.status());
      return;
    }
    {
      absl::MutexLock lock(&queue_mu_);
      if (!stopping_) {
        queue_.push_back(Pending{std::move(request), std::move(done), *bytes, absl::Now()});
        return;
      }
    }
    done(absl::UnavailableError("event store is closing"));
  }

  absl::StatusOr<std::vector<EventEnvelope>> ReadStream(std::string_view stream_id,
                                                        int64_t from_version,
                                                        size_t max_count) const {
    std::vector<std::string> position_keys;
    const std::string prefix = StreamPrefix(stream_id);
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), streams_));
    for (it->Seek(StreamVersionKey(stream_id, std::max<int64_t>(from_version, 1)));
         it->Valid() && it->key().starts_with(prefix) && position_keys.size() < max_count;
         it->Next()) {
      position_keys.push_back(it->value().ToString().substr(0, 8));
    }
    CRM_RETURN_IF_ERROR(FromRocks(it->status(), "read stream"));
    std::vector<rocksdb::Slice> keys(position_keys.begin(), position_keys.end());
    std::vector<std::string> values;
    std::vector<rocksdb::ColumnFamilyHandle*> cfs(keys.size(), log_);
    std::vector<rocksdb::Status> statuses =
        db_->MultiGet(rocksdb::ReadOptions(), cfs, keys, &values);
    std::vector<EventEnvelope> events(values.size());
    for (size_t i = 0; i < values.size(); ++i) {
      CRM_RETURN_IF_ERROR(FromRocks(statuses[i], "read stream event"));
      if (!events[i].ParseFromString(values[i]))
        return absl::DataLossError("corrupt event in stream");
    }
    return events;
  }

  absl::StatusOr<std::vector<EventEnvelope>> ReadLog(int64_t from_position,
                                                     size_t max_count) const {
    std::vector<EventEnvelope> events;
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), log_));
    for (it->Seek(EncodeBigEndian(std::max<int64_t>(from_position, 1)));
         it->Valid() && events.size() < max_count; it->Next()) {
      if (!events.emplace_back().ParseFromArray(it->value().data(),
                                                static_cast<int>(it->value().size()))) {
        return absl::DataLossError(
            absl::StrCat("corrupt event at log key ", it->key().ToString(true)));
      }
    }
    CRM_RETURN_IF_ERROR(FromRocks(it->status(), "read log"));
    return events;
  }

  absl::StatusOr<std::optional<StreamHead>> GetStreamHead(std::string_view stream_id) const {
    return ReadHead(stream_id);
  }

  absl::StatusOr<std::optional<AppendResult>> FindRecordedRequest(
      const std::string& request_id, const std::string& fingerprint) const {
    CRM_ASSIGN_OR_RETURN(std::optional<IdempotencyRecord> record,
                         FindRequest(request_id, GroupView()));
    if (!record) return std::nullopt;
    CRM_RETURN_IF_ERROR(SameRequest(request_id, fingerprint, *record));
    return ToResult(*record);
  }

  absl::StatusOr<std::optional<std::string>> Get(Table table, std::string_view key) const {
    return GetRaw(Handle(table), key);
  }

  absl::StatusOr<std::vector<std::pair<std::string, std::string>>> Scan(Table table,
                                                                        const ScanRange& range,
                                                                        size_t limit) const {
    std::vector<std::pair<std::string, std::string>> rows;
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), Handle(table)));
    if (range.start_after < range.prefix) {
      it->Seek(range.prefix);
    } else {
      it->Seek(range.start_after);
      if (it->Valid() && it->key() == rocksdb::Slice(range.start_after)) it->Next();
    }
    for (; it->Valid() && it->key().starts_with(range.prefix) && rows.size() < limit; it->Next()) {
      rows.emplace_back(it->key().ToString(), it->value().ToString());
    }
    CRM_RETURN_IF_ERROR(FromRocks(it->status(), "scan"));
    return rows;
  }

  int64_t LastPosition() const { return last_position_.load(std::memory_order_acquire); }

  Stats stats() const {
    return Stats{.groups_committed = groups_committed_.load(std::memory_order_relaxed),
                 .commands_committed = commands_committed_.load(std::memory_order_relaxed)};
  }

  int64_t WaitForAppend(int64_t after, absl::Time deadline) const {
    const auto appended = [this, after] { return LastPosition() > after; };
    absl::MutexLock lock(&position_mu_);
    position_mu_.AwaitWithDeadline(absl::Condition(&appended), deadline);
    return LastPosition();
  }

  absl::Status PutCheckpoint(std::string_view name, int64_t position) {
    rocksdb::WriteOptions write_options;  // WAL on, not synced: an older value only republishes
    return FromRocks(db_->Put(write_options, checkpoints_, name, EncodeBigEndian(position)),
                     "write checkpoint");
  }

  absl::StatusOr<int64_t> GetCheckpoint(std::string_view name) const {
    CRM_ASSIGN_OR_RETURN(std::optional<std::string> value, GetRaw(checkpoints_, name));
    if (!value) return 0;
    return DecodeBigEndian(*value);
  }

 private:
  struct Pending {
    AppendRequest request;
    AppendCallback done;
    size_t bytes = 0;
    absl::Time arrived;
  };

  // A group's writes, handed to RocksDB sorted by column family and key. Each memtable's
  // skiplist remembers where its last insert went and searches onward from there, so sorted
  // neighbours are found in a few steps; in arrival order, each command's index keys lie far
  // apart and every insert searched from the top.
  class GroupWrites {
   public:
    void Put(rocksdb::ColumnFamilyHandle* cf, std::string key, std::string value) {
      writes_.push_back({cf, cf->GetID(), std::move(key), std::move(value)});
    }
    void Delete(rocksdb::ColumnFamilyHandle* cf, std::string key) {
      writes_.push_back({cf, cf->GetID(), std::move(key), std::nullopt});
    }
    bool empty() const { return writes_.empty(); }

    // Two writes of one key keep their order (ties go by arrival), so the later one wins.
    rocksdb::WriteBatch Sorted() const {
      std::vector<const Entry*> order;
      order.reserve(writes_.size());
      for (const Entry& write : writes_) order.push_back(&write);
      std::sort(order.begin(), order.end(), [](const Entry* a, const Entry* b) {
        return std::tie(a->cf_id, a->key, a) < std::tie(b->cf_id, b->key, b);
      });
      rocksdb::WriteBatch batch;
      for (const Entry* write : order) {
        if (write->value) {
          batch.Put(write->cf, write->key, *write->value);
        } else {
          batch.Delete(write->cf, write->key);
        }
      }
      return batch;
    }

   private:
    struct Entry {
      rocksdb::ColumnFamilyHandle* cf;
      uint32_t cf_id;
      std::string key;
      std::optional<std::string> value;  // none: a delete
    };
    std::vector<Entry> writes_;
  };

  // What a group has staged so far, so later commands in the group see earlier ones.
  struct GroupView {
    absl::flat_hash_map<std::string, StreamHead> heads;
    absl::flat_hash_map<std::string, IdempotencyRecord> requests;
    int64_t next_position = 0;
    absl::Time recorded_at;
  };

  // Checks that need no storage, done on the caller's thread. Returns the request's size.
  absl::StatusOr<size_t> Validate(AppendRequest& request) const {
    if (request.stream_id.empty())
      return absl::InvalidArgumentError("stream_id: must not be empty");
    if (request.stream_id.size() > options_.max_stream_id_bytes) {
      return absl::InvalidArgumentError(
          absl::StrCat("stream_id: longer than ", options_.max_stream_id_bytes, " bytes"));
    }
    if (request.stream_id.find('\0') != std::string::npos) {
      return absl::InvalidArgumentError("stream_id: must not contain NUL bytes");
    }
    if (request.stream_type.empty())
      return absl::InvalidArgumentError("stream_type: must not be empty");
    if (request.expected_version < kAnyVersion) {
      return absl::InvalidArgumentError(
          "expected_version: must be -1 (any), 0 (no stream) or a version");
    }
    if (request.request_id.size() > options_.max_request_id_bytes) {
      return absl::InvalidArgumentError(
          absl::StrCat("request_id: longer than ", options_.max_request_id_bytes, " bytes"));
    }
    size_t bytes = 0;
    if (request.events.empty())
      return absl::InvalidArgumentError("events: at least one event is required");
    for (size_t i = 0; i < request.events.size(); ++i) {
      EventEnvelope& event = request.events[i];
      if (!event.has_payload() || event.payload().type_url().empty()) {
        return absl::InvalidArgumentError(
            absl::StrCat("events[", i, "].payload: type is required"));
      }
      if (!event.has_occurred_at() || !IsValidTimestamp(event.occurred_at())) {
        return absl::InvalidArgumentError(
            absl::StrCat("events[", i, "].occurred_at: a valid time is required"));
      }
      if (i > 0 &&
          FromProto(event.occurred_at()) < FromProto(request.events[i - 1].occurred_at())) {
        return absl::InvalidArgumentError(
            absl::StrCat("events[", i, "].occurred_at: earlier than the event before it"));
      }
      if (event.event_id().empty()) event.set_event_id(NewUuid());
      // Room for the fields the store fills in (ids, versions, timestamps).
      const size_t event_bytes = event.ByteSizeLong() + request.stream_id.size() +
                                 request.stream_type.size() + request.request_id.size() + 64;
      if (event_bytes > options_.max_event_bytes) {
        return absl::ResourceExhaustedError(
            absl::StrCat("events[", i, "]: larger than ", options_.max_event_bytes, " bytes"));
      }
      bytes += event_bytes;
    }
    for (size_t i = 0; i < request.writes.size(); ++i) {
      const Write& write = request.writes[i];
      if (write.key.empty()) {
        return absl::InvalidArgumentError(absl::StrCat("writes[", i, "].key: must not be empty"));
      }
      bytes += write.key.size() + (write.value ? write.value->size() : 0);
    }
    return bytes;
  }

  void WriterLoop() {
    while (true) {
      std::vector<Pending> group;
      {
        absl::MutexLock lock(&queue_mu_);
        queue_mu_.Await(absl::Condition(
            +[](Impl* self) ABSL_NO_THREAD_SAFETY_ANALYSIS {
              return self->stopping_ || !self->queue_.empty();
            },
            this));
        if (queue_.empty()) return;  // stopping, and everything queued is done
        size_t bytes = 0;
        while (!queue_.empty() && group.size() < options_.max_group_commands &&
               (group.empty() || bytes + queue_.front().bytes <= options_.max_group_bytes)) {
          bytes += queue_.front().bytes;
          group.push_back(std::move(queue_.front()));
          queue_.pop_front();
        }
      }
      CommitGroup(std::move(group));
    }
  }

  // One WriteBatch and one synced write for the whole group; each command either commits
  // entirely or not at all.
  void CommitGroup(std::vector<Pending> group) {
    GroupView view;
    view.next_position = LastPosition() + 1;
    view.recorded_at = std::max(clock_(), last_recorded_at_);  // record time never goes backwards
    GroupWrites writes;
    std::vector<absl::StatusOr<AppendResult>> outcomes;
    outcomes.reserve(group.size());
    for (Pending& pending : group) outcomes.push_back(Stage(pending.request, view, writes));

    if (!writes.empty()) {
      rocksdb::WriteBatch batch = writes.Sorted();
      rocksdb::WriteOptions write_options;
      write_options.sync = options_.sync;
      const int64_t staged_events = view.next_position - 1 - LastPosition();
      const absl::Time write_start = absl::Now();
      const absl::Status written = FromRocks(db_->Write(write_options, &batch), "append");
      if (written.ok() && options_.observer != nullptr) {
        const absl::Time durable = absl::Now();
        std::vector<absl::Duration> latencies;
        latencies.reserve(group.size());
        for (size_t i = 0; i < group.size(); ++i) {
          if (outcomes[i].ok() && !outcomes[i]->replayed)
            latencies.push_back(durable - group[i].arrived);
        }
        options_.observer->OnGroupCommitted(static_cast<size_t>(staged_events),
                                            durable - write_start, latencies);
      }
      if (written.ok()) {
        last_recorded_at_ = view.recorded_at;
        // Bounded: a full cache starts over; misses fall back to one RocksDB seek.
        if (head_cache_.size() + view.heads.size() > kHeadCacheEntries) head_cache_.clear();
        for (auto& [stream_id, head] : view.heads) head_cache_[stream_id] = head;
        {
          absl::MutexLock lock(&position_mu_);
          last_position_.store(view.next_position - 1, std::memory_order_release);
        }
        groups_committed_.fetch_add(1, std::memory_order_relaxed);
      } else {
        // Nothing of the group is durable: every command staged in it fails, and so does a
        // retry in the same group that was answered from one of them.
        for (size_t i = 0; i < group.size(); ++i) {
          const AppendRequest& request = group[i].request;
          if (outcomes[i].ok() &&
              (!outcomes[i]->replayed || view.requests.contains(request.request_id))) {
            outcomes[i] = written;
          }
        }
      }
    }
    for (const auto& outcome : outcomes) {
      if (outcome.ok() && !outcome->replayed) {
        commands_committed_.fetch_add(1, std::memory_order_relaxed);
      }
    }
    // Answered here, before the next group forms: the callers' next commands then join it
    // (a separate completion thread halves group sizes; see docs/decisions.md).
    for (size_t i = 0; i < group.size(); ++i) group[i].done(std::move(outcomes[i]));
  }

  absl::StatusOr<AppendResult> Stage(AppendRequest& request, GroupView& view,
                                     GroupWrites& writes) {
    if (!request.request_id.empty()) {
      CRM_ASSIGN_OR_RETURN(std::optional<IdempotencyRecord> earlier,
                           FindRequest(request.request_id, view));
      if (earlier) {
        CRM_RETURN_IF_ERROR(SameRequest(request.request_id, request.request_fingerprint, *earlier));
        return ToResult(*earlier);
      }
    }

    CRM_ASSIGN_OR_RETURN(std::optional<StreamHead> found,
                         FindHead(request.stream_id, view,
                                  /*expect_new=*/request.expected_version == kNoStream));
    StreamHead head = found.value_or(StreamHead());
    if (request.expected_version == kNoStream && head.version > 0) {
      return absl::AbortedError(absl::StrCat("stream ", request.stream_id,
                                             " already exists (version ", head.version, ")"));
    }
    if (request.expected_version > 0 && head.version != request.expected_version) {
      return absl::AbortedError(absl::StrCat("stream ", request.stream_id, " is at version ",
                                             head.version, ", expected ",
                                             request.expected_version));
    }
    const absl::Time occurred_at = FromProto(request.events.front().occurred_at());
    if (head.version > 0 && occurred_at < head.last_occurred_at) {
      return absl::FailedPreconditionError(absl::StrCat(
          "occurred_at: ", absl::FormatTime(occurred_at), " is earlier than the last event of ",
          request.stream_id, " (", absl::FormatTime(head.last_occurred_at), ")"));
    }

    const google::protobuf::Timestamp recorded_at = ToProto(view.recorded_at);
    AppendResult result{.stream_id = request.stream_id,
                        .first_version = head.version + 1,
                        .first_position = view.next_position,
                        .recorded_at = view.recorded_at};
    for (EventEnvelope& event : request.events) {
      const int64_t version = head.version + 1;
      const int64_t position = view.next_position++;
      event.set_stream_id(request.stream_id);
      event.set_stream_type(request.stream_type);
      event.set_stream_version(version);
      event.set_position(position);
      *event.mutable_recorded_at() = recorded_at;
      event.set_request_id(request.request_id);
      const std::string position_key = EncodeBigEndian(position);
      writes.Put(log_, position_key, event.SerializeAsString());
      writes.Put(streams_, StreamVersionKey(request.stream_id, version),
                StreamIndexValue(position, event.occurred_at()));
      head = StreamHead{.version = version,
                        .last_occurred_at = FromProto(event.occurred_at()),
                        .last_position = position};
    }
    for (Write& write : request.writes) {
      if (write.value) {
        writes.Put(Handle(write.table), std::move(write.key), *std::move(write.value));
      } else {
        writes.Delete(Handle(write.table), std::move(write.key));
      }
    }
    result.last_version = head.version;
    result.last_position = head.last_position;
    view.heads[request.stream_id] = head;

    if (!request.request_id.empty()) {
      IdempotencyRecord record;
      record.set_stream_id(result.stream_id);
      record.set_first_version(result.first_version);
      record.set_last_version(result.last_version);
      record.set_first_position(result.first_position);
      record.set_last_position(result.last_position);
      *record.mutable_recorded_at() = recorded_at;
      record.set_fingerprint(request.request_fingerprint);
      writes.Put(idempotency_, request.request_id, record.SerializeAsString());
      view.requests[request.request_id] = std::move(record);
    }
    return result;
  }

  absl::StatusOr<std::optional<IdempotencyRecord>> FindRequest(const std::string& request_id,
                                                               const GroupView& view) const {
    if (auto it = view.requests.find(request_id); it != view.requests.end()) return it->second;
    CRM_ASSIGN_OR_RETURN(std::optional<std::string> raw, GetRaw(idempotency_, request_id));
    if (!raw) return std::nullopt;
    IdempotencyRecord record;
    if (!record.ParseFromString(*raw)) return absl::DataLossError("corrupt idempotency record");
    return record;
  }

  // Writer thread only: the group's staged heads, then the cache, then RocksDB. When the
  // caller expects a new stream, a point lookup of version 1 settles it first: versions start
  // at 1 and are never deleted, and a miss is answered by the bloom filters, where finding the
  // last version takes an iterator seek through every level.
  absl::StatusOr<std::optional<StreamHead>> FindHead(const std::string& stream_id,
                                                     const GroupView& view,
                                                     bool expect_new) const {
    if (auto it = view.heads.find(stream_id); it != view.heads.end()) return it->second;
    if (auto it = head_cache_.find(stream_id); it != head_cache_.end()) return it->second;
    if (expect_new) {
      CRM_ASSIGN_OR_RETURN(std::optional<std::string> first,
                           GetRaw(streams_, StreamVersionKey(stream_id, 1)));
      if (!first) return std::nullopt;
    }
    return ReadHead(stream_id);
  }

  absl::StatusOr<std::optional<StreamHead>> ReadHead(std::string_view stream_id) const {
    const std::string prefix = StreamPrefix(stream_id);
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), streams_));
    it->SeekForPrev(StreamVersionKey(stream_id, std::numeric_limits<int64_t>::max()));
    CRM_RETURN_IF_ERROR(FromRocks(it->status(), "read stream head"));
    if (!it->Valid() || !it->key().starts_with(prefix)) return std::nullopt;
    return DecodeStreamIndexEntry(it->key().ToStringView(), it->value().ToStringView());
  }

  absl::StatusOr<std::optional<std::string>> GetRaw(rocksdb::ColumnFamilyHandle* cf,
                                                    std::string_view key) const {
    std::string value;
    rocksdb::Status status = db_->Get(rocksdb::ReadOptions(), cf, key, &value);
    if (status.IsNotFound()) return std::nullopt;
    CRM_RETURN_IF_ERROR(FromRocks(status, "read"));
    return value;
  }

  rocksdb::ColumnFamilyHandle* Handle(Table table) const {
    return table == Table::kState ? state_ : index_;
  }

  const Options options_;
  const Clock clock_;
  std::unique_ptr<rocksdb::DB> db_;
  std::vector<rocksdb::ColumnFamilyHandle*> handles_;
  rocksdb::ColumnFamilyHandle* log_ = nullptr;
  rocksdb::ColumnFamilyHandle* streams_ = nullptr;
  rocksdb::ColumnFamilyHandle* state_ = nullptr;
  rocksdb::ColumnFamilyHandle* index_ = nullptr;
  rocksdb::ColumnFamilyHandle* idempotency_ = nullptr;
  rocksdb::ColumnFamilyHandle* checkpoints_ = nullptr;

  absl::Mutex queue_mu_;
  std::deque<Pending> queue_ ABSL_GUARDED_BY(queue_mu_);
  bool stopping_ ABSL_GUARDED_BY(queue_mu_) = false;
  std::thread writer_;
  absl::Time last_recorded_at_ = absl::InfinitePast();  // writer thread only
  // Stream heads of committed appends (writer thread only; it is the only mutator of heads).
  static constexpr size_t kHeadCacheEntries = 1 << 18;
  absl::flat_hash_map<std::string, StreamHead> head_cache_;

  mutable absl::Mutex position_mu_;
  std::atomic<int64_t> last_position_{0};
  std::atomic<uint64_t> groups_committed_{0};
  std::atomic<uint64_t> commands_committed_{0};
};

EventStore::EventStore(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
EventStore::~EventStore() = default;

absl::StatusOr<std::unique_ptr<EventStore>> EventStore::Open(const std::string& path,
                                                             Options options, Clock clock) {
  auto impl = std::make_unique<Impl>(std::move(options), std::move(clock));
  CRM_RETURN_IF_ERROR(impl->Open(path));
  return std::unique_ptr<EventStore>(new EventStore(std::move(impl)));
}

absl::StatusOr<AppendResult> EventStore::Append(AppendRequest request) {
  std::promise<absl::StatusOr<AppendResult>> outcome;
  std::future<absl::StatusOr<AppendResult>> ready = outcome.get_future();
  impl_->AppendAsync(std::move(request), [&outcome](absl::StatusOr<AppendResult> result) {
    outcome.set_value(std::move(result));
  });
  return ready.get();
}

void EventStore::AppendAsync(AppendRequest request, AppendCallback done) {
  impl_->AppendAsync(std::move(request), std::move(done));
}

absl::StatusOr<std::vector<EventEnvelope>> EventStore::ReadStream(std::string_view stream_id,
                                                                  int64_t from_version,
                                                                  size_t max_count) const {
  return impl_->ReadStream(stream_id, from_version, max_count);
}

absl::StatusOr<std::vector<EventEnvelope>> EventStore::ReadLog(int64_t from_position,
                                                               size_t max_count) const {
  return impl_->ReadLog(from_position, max_count);
}

absl::StatusOr<std::optional<StreamHead>> EventStore::GetStreamHead(
    std::string_view stream_id) const {
  return impl_->GetStreamHead(stream_id);
}

absl::StatusOr<std::optional<AppendResult>> EventStore::FindRequest(
    const std::string& request_id, const std::string& fingerprint) const {
  return impl_->FindRecordedRequest(request_id, fingerprint);
}

absl::StatusOr<std::optional<std::string>> EventStore::Get(Table table,
                                                           std::string_view key) const {
  return impl_->Get(table, key);
}

absl::StatusOr<std::vector<std::pair<std::string, std::string>>> EventStore::Scan(
    Table table, const ScanRange& range, size_t limit) const {
  return impl_->Scan(table, range, limit);
}

int64_t EventStore::LastPosition() const { return impl_->LastPosition(); }

int64_t EventStore::WaitForAppend(int64_t after, absl::Time deadline) const {
  return impl_->WaitForAppend(after, deadline);
}

absl::Status EventStore::PutCheckpoint(std::string_view name, int64_t position) {
  return impl_->PutCheckpoint(name, position);
}

absl::StatusOr<int64_t> EventStore::GetCheckpoint(std::string_view name) const {
  return impl_->GetCheckpoint(name);
}

EventStore::Stats EventStore::stats() const { return impl_->stats(); }

}  // namespace crm::eventstore
