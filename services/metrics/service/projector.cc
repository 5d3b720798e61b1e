#include "service/projector.h"

#include <algorithm>
#include <filesystem>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "crm/common/status_macros.h"
#include "crm/runtime/log.h"
#include "google/protobuf/arena.h"
#include "rocksdb/db.h"
#include "rocksdb/write_batch.h"

namespace crm::metrics {
namespace {

constexpr char kActiveKey[] = "active_generation";
constexpr char kOffsetPrefix[] = "kafka.offset/";

std::string FamilyName(int64_t generation) { return absl::StrCat("projection-", generation); }

absl::Status Rocks(const rocksdb::Status& status, std::string_view what) {
  if (status.ok()) return absl::OkStatus();
  return absl::InternalError(absl::StrCat(std::string(what), ": ", status.ToString()));
}

// "kafka.offset/<topic>/<partition>" -> (topic, partition).
std::optional<std::pair<std::string, int32_t>> ParseOffsetKey(absl::string_view key) {
  key.remove_prefix(sizeof(kOffsetPrefix) - 1);
  const size_t slash = key.rfind('/');
  int32_t partition = 0;
  if (slash == absl::string_view::npos || !absl::SimpleAtoi(key.substr(slash + 1), &partition)) {
    return std::nullopt;
  }
  return std::make_pair(std::string(key.substr(0, slash)), partition);
}

}  // namespace

// Writes batches to RocksDB on its own thread, in the order given, so that applying the next
// batch overlaps writing the last one. At most one batch waits behind the one being written.
class Projector::Writer {
 public:
  explicit Writer(rocksdb::DB* db) : db_(db), thread_([this] { Run(); }) {}
  // Writes what is queued, then joins.
  ~Writer() {
    {
      absl::MutexLock lock(&mu_);
      stopping_ = true;
    }
    thread_.join();
  }

  // Queues the batch (waiting while another one is queued); the first error of an earlier
  // write, if any, instead.
  absl::Status Write(rocksdb::WriteBatch batch) {
    absl::MutexLock lock(&mu_);
    auto room = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) { return !queued_.has_value(); };
    mu_.Await(absl::Condition(&room));
    if (!error_.ok()) return error_;
    queued_ = std::move(batch);
    return absl::OkStatus();
  }

  // Waits until everything queued is written: the first write error, if any.
  absl::Status Drain() {
    absl::MutexLock lock(&mu_);
    auto idle = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) { return !queued_ && !writing_; };
    mu_.Await(absl::Condition(&idle));
    return error_;
  }

 private:
  void Run() {
    absl::MutexLock lock(&mu_);
    auto work = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) { return queued_ || stopping_; };
    for (;;) {
      mu_.Await(absl::Condition(&work));
      if (!queued_) return;  // stopping, nothing left
      rocksdb::WriteBatch batch = *std::move(queued_);
      queued_.reset();
      writing_ = true;
      mu_.Unlock();
      // Not synced: the offsets travel with the state, so a lost tail is re-read after a crash.
      absl::Status written = Rocks(db_->Write(rocksdb::WriteOptions(), &batch), "write projection");
      mu_.Lock();
      writing_ = false;
      if (error_.ok()) error_ = written;
    }
  }

  rocksdb::DB* const db_;
  absl::Mutex mu_;
  std::optional<rocksdb::WriteBatch> queued_ ABSL_GUARDED_BY(mu_);
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  absl::Status error_ ABSL_GUARDED_BY(mu_);
  std::thread thread_;
};

struct Projector::Generation {
  int64_t number = 0;
  rocksdb::ColumnFamilyHandle* family = nullptr;
  std::unique_ptr<Projection> projection = std::make_unique<Projection>();
  using Offsets = std::map<std::pair<std::string, int32_t>, int64_t>;  // next, by partition
  Offsets offsets;
  std::unique_ptr<kafka::Consumer> consumer;
  int64_t applied = 0;
  int64_t duplicates = 0;
  bool idle = false;  // the last poll returned nothing
};

Projector::Projector(ProjectorOptions options) : options_(std::move(options)) {}

absl::StatusOr<std::unique_ptr<Projector>> Projector::Start(ProjectorOptions options) {
  std::unique_ptr<Projector> projector(new Projector(std::move(options)));
  if (absl::Status opened = projector->Open(); !opened.ok()) return opened;
  if (projector->options_.rebuild_at_start) projector->RequestRebuild();
  projector->thread_ = std::thread([p = projector.get()] { p->Run(); });
  return projector;
}

absl::Status Projector::Open() {
  std::error_code created;
  std::filesystem::create_directories(options_.data_dir, created);
  if (created) {
    return absl::InternalError(absl::StrCat("create ", options_.data_dir, ": ", created.message()));
  }
  rocksdb::Options db_options;
  db_options.create_if_missing = true;
  db_options.create_missing_column_families = true;
  std::vector<std::string> names;
  if (!rocksdb::DB::ListColumnFamilies(db_options, options_.data_dir, &names).ok()) {
    names = {rocksdb::kDefaultColumnFamilyName};
  }
  std::vector<rocksdb::ColumnFamilyDescriptor> families;
  for (const std::string& name : names) families.emplace_back(name, rocksdb::ColumnFamilyOptions());
  rocksdb::DB* db = nullptr;
  CRM_RETURN_IF_ERROR(
      Rocks(rocksdb::DB::Open(db_options, options_.data_dir, families, &handles_, &db),
            absl::StrCat("open ", options_.data_dir)));
  db_.reset(db);
  writer_ = std::make_unique<Writer>(db_.get());

  int64_t active = 1;
  std::string value;
  if (db_->Get({}, kActiveKey, &value).ok() && !absl::SimpleAtoi(value, &active)) {
    return absl::InternalError("unreadable active generation");
  }
  // Leftovers of a rebuild that did not finish: start over if asked again.
  for (size_t i = 0; i < handles_.size(); ++i) {
    const std::string& name = handles_[i]->GetName();
    if (name != rocksdb::kDefaultColumnFamilyName && name != FamilyName(active)) {
      CRM_RETURN_IF_ERROR(Rocks(db_->DropColumnFamily(handles_[i]), "drop " + name));
    }
  }
  CRM_ASSIGN_OR_RETURN(std::unique_ptr<Generation> live, LoadGeneration(active, true));
  CRM_RETURN_IF_ERROR(Rocks(db_->Put({}, kActiveKey, absl::StrCat(active)), "save generation"));
  CRM_RETURN_IF_ERROR(Attach(*live));
  absl::MutexLock lock(&mu_);
  live_ = std::move(live);
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<Projector::Generation>> Projector::LoadGeneration(int64_t number,
                                                                                 bool load) {
  auto generation = std::make_unique<Generation>();
  generation->number = number;
  for (rocksdb::ColumnFamilyHandle* handle : handles_) {
    if (handle->GetName() == FamilyName(number)) generation->family = handle;
  }
  if (generation->family == nullptr) {
    rocksdb::ColumnFamilyHandle* handle = nullptr;
    CRM_RETURN_IF_ERROR(
        Rocks(db_->CreateColumnFamily(rocksdb::ColumnFamilyOptions(), FamilyName(number), &handle),
              "create " + FamilyName(number)));
    handles_.push_back(handle);
    generation->family = handle;
    return generation;
  }
  // Sums are filed once the views are all there: at the end of the load below, or when a
  // rebuild catches up (Swap).
  generation->projection->KeepSums(false);
  if (!load) return generation;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator({}, generation->family));
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    const absl::string_view key(it->key().data(), it->key().size());
    const absl::string_view value(it->value().data(), it->value().size());
    if (absl::StartsWith(key, kOffsetPrefix)) {
      auto partition = ParseOffsetKey(key);
      absl::StatusOr<int64_t> next = kafka::DecodeOffsetRecord(std::string(value));
      if (!partition || !next.ok()) return absl::InternalError("unreadable offset record");
      generation->offsets[*partition] = *next;
      continue;
    }
    CRM_RETURN_IF_ERROR(generation->projection->Restore(key, value));
  }
  CRM_RETURN_IF_ERROR(Rocks(it->status(), "load " + FamilyName(number)));
  generation->projection->KeepSums(true);
  return generation;
}

absl::Status Projector::Attach(Generation& generation) {
  Generation* g = &generation;
  CRM_ASSIGN_OR_RETURN(
      generation.consumer,
      kafka::Consumer::Create(
          {.bootstrap_servers = options_.bootstrap_servers,
           .group_id = absl::StrCat(options_.group_prefix, "-g", generation.number),
           .topics = options_.topics,
           .offset_loader = [g](std::string_view topic,
                                int32_t partition) -> absl::StatusOr<std::optional<int64_t>> {
             auto it = g->offsets.find({std::string(topic), partition});
             if (it == g->offsets.end()) return std::nullopt;
             return it->second;
           },
           .client_id = "metrics",
           .settings = options_.consumer_settings}));
  return absl::OkStatus();
}

Projector::~Projector() { Stop(); }

void Projector::Stop() {
  if (stop_.exchange(true)) return;
  if (thread_.joinable()) thread_.join();
  EndWaits();
  writer_.reset();  // writes what was applied
  rebuild_.reset();
  {
    absl::MutexLock lock(&mu_);
    live_.reset();
  }
  for (rocksdb::ColumnFamilyHandle* handle : handles_) {
    if (db_) db_->DestroyColumnFamilyHandle(handle);
  }
  handles_.clear();
  if (db_) db_->Close();
  db_.reset();
}

void Projector::Run() {
  while (!stop_.load()) {
    absl::Status status;
    if (rebuild_requested_.load() && rebuild_ == nullptr) {
      const int64_t number = rebuilding_.load();
      absl::StatusOr<std::unique_ptr<Generation>> fresh = LoadGeneration(number, false);
      if (fresh.ok()) status = Attach(**fresh);
      if (!fresh.ok()) status = fresh.status();
      if (status.ok()) {
        rebuild_ = *std::move(fresh);
        runtime::LogInfo("rebuild started", {{"generation", number}});
      }
    } else if (rebuild_ != nullptr) {
      status = PollInto(*rebuild_, /*live=*/false);
      rebuild_applied_ = rebuild_->applied;
      if (status.ok() && CaughtUp(*rebuild_)) status = Swap();
    } else {
      Generation* live;
      {
        absl::ReaderMutexLock lock(&mu_);
        live = live_.get();
      }
      status = PollInto(*live, /*live=*/true);
    }
    SettleWaits();
    if (!status.ok()) {
      runtime::LogError("projection stopped", {{"error", status.ToString()}});
      {
        absl::MutexLock lock(&mu_);
        error_ = status;
      }
      SettleWaits();
      return;
    }
  }
}

absl::Status Projector::PollInto(Generation& generation, bool live) {
  CRM_ASSIGN_OR_RETURN(
      std::vector<kafka::Message> batch,
      generation.consumer->Poll(live ? options_.max_batch : options_.max_rebuild_batch,
                                PollTimeout()));
  generation.idle = batch.empty();
  if (batch.empty()) return absl::OkStatus();
  // The batch's envelopes live on one arena: parsing allocates by bumping a pointer and the
  // whole batch is freed at once.
  google::protobuf::Arena arena;
  std::vector<const events::v1::EventEnvelope*> events(batch.size(), nullptr);
  for (size_t i = 0; i < batch.size(); ++i) {
    auto* event = google::protobuf::Arena::CreateMessage<events::v1::EventEnvelope>(&arena);
    if (event->ParseFromString(batch[i].value)) {
      events[i] = event;
    } else {
      runtime::LogWarn("unreadable record skipped", {{"topic", batch[i].topic},
                                                     {"partition", batch[i].partition},
                                                     {"offset", batch[i].offset}});
    }
  }
  std::vector<Row> rows;
  std::vector<const Generation::Offsets::value_type*> read;  // offsets of the batch's partitions
  auto apply = [&] {
    for (size_t i = 0; i < batch.size(); ++i) {
      if (events[i] == nullptr) continue;
      switch (generation.projection->Apply(*events[i])) {
        case Outcome::kApplied:
          ++generation.applied;
          break;
        case Outcome::kDuplicate:
        case Outcome::kGap:
          ++generation.duplicates;
          break;
      }
    }
    // A batch holds runs of one partition's messages: the map is searched once per run.
    auto run = generation.offsets.end();
    for (const kafka::Message& message : batch) {
      if (run == generation.offsets.end() || run->first.second != message.partition ||
          run->first.first != message.topic) {
        run = generation.offsets.try_emplace({message.topic, message.partition}).first;
        if (std::find(read.begin(), read.end(), &*run) == read.end()) read.push_back(&*run);
      }
      run->second = message.offset + 1;
    }
    rows = generation.projection->TakeChangedRows();
  };
  if (live) {
    absl::MutexLock lock(&mu_);
    apply();
  } else {
    apply();
  }
  rocksdb::WriteBatch write;
  for (const Row& row : rows) write.Put(generation.family, row.key, row.value);
  for (const auto* offset : read) {
    const auto& [partition, next] = *offset;
    write.Put(generation.family, kafka::OffsetRecordKey(partition.first, partition.second),
              kafka::EncodeOffsetRecord(next));
  }
  return writer_->Write(std::move(write));
}

bool Projector::CaughtUp(const Generation& rebuild) const {
  if (!rebuild.idle || rebuild.consumer->Assignment().empty()) return false;
  absl::ReaderMutexLock lock(&mu_);
  for (const auto& [partition, next] : live_->offsets) {
    auto it = rebuild.offsets.find(partition);
    if (next > 0 && (it == rebuild.offsets.end() || it->second < next)) return false;
  }
  return true;
}

absl::Status Projector::Swap() {
  // The rebuilt family is complete on disk before it becomes the active one, and nothing is
  // still being written to the family dropped below.
  CRM_RETURN_IF_ERROR(writer_->Drain());
  rebuild_->projection->KeepSums(true);  // before anyone can query it
  std::unique_ptr<Generation> old;
  {
    absl::MutexLock lock(&mu_);
    old = std::move(live_);
    live_ = std::move(rebuild_);
  }
  const int64_t number = rebuilding_.load();
  rebuild_requested_ = false;
  rebuilding_ = 0;
  CRM_RETURN_IF_ERROR(Rocks(db_->Put({}, kActiveKey, absl::StrCat(number)), "save generation"));
  rocksdb::ColumnFamilyHandle* family = old->family;
  old.reset();  // leaves the old group
  CRM_RETURN_IF_ERROR(Rocks(db_->DropColumnFamily(family), "drop old generation"));
  std::erase(handles_, family);
  db_->DestroyColumnFamilyHandle(family);
  runtime::LogInfo("rebuild swapped in", {{"generation", number}});
  return absl::OkStatus();
}

int64_t Projector::RequestRebuild() {
  absl::MutexLock lock(&mu_);
  if (rebuilding_.load() == 0) {
    rebuilding_ = live_->number + 1;
    rebuild_applied_ = 0;
    rebuild_requested_ = true;
  }
  return rebuilding_.load();
}

ProjectorStats Projector::StatsLocked() const {
  ProjectorStats stats;
  stats.generation = live_->number;
  stats.next_offsets = live_->offsets;
  stats.applied_through = live_->projection->applied_through();
  for (const kafka::PartitionLag& lag : live_->consumer->Stats().partitions) {
    stats.lag_events += lag.lag;
  }
  stats.applied_events = live_->applied;
  stats.skipped_duplicates = live_->duplicates;
  stats.rebuilding_generation = rebuilding_.load();
  stats.rebuild_applied_events = rebuild_applied_.load();
  stats.consistency_waits = static_cast<int64_t>(waits_.size());
  return stats;
}

const Projection& Projector::LiveProjection() const { return *live_->projection; }

ProjectorStats Projector::Stats() const {
  absl::ReaderMutexLock lock(&mu_);
  return StatsLocked();
}

const std::pair<std::string, int64_t>* Projector::Behind(
    const std::vector<std::pair<std::string, int64_t>>& min_versions) const {
  for (const auto& wanted : min_versions) {
    if (live_->projection->Version(wanted.first) < wanted.second) return &wanted;
  }
  return nullptr;
}

absl::Status Projector::NoMoreWaits() const {
  if (waits_ended_) return absl::UnavailableError("metrics-service is stopping");
  if (!error_.ok()) {
    return absl::UnavailableError(absl::StrCat("the projection stopped: ", error_.message()));
  }
  return absl::OkStatus();
}

void Projector::WhenReached(std::vector<std::pair<std::string, int64_t>> min_versions,
                            absl::Time deadline, std::function<void(absl::Status)> done) {
  if (min_versions.empty()) return done(absl::OkStatus());  // a plain read: nothing to lock
  absl::Status closed;
  {
    absl::MutexLock lock(&mu_);
    closed = NoMoreWaits();
    if (closed.ok() && Behind(min_versions) != nullptr) {
      waits_.push_back({std::move(min_versions), deadline, std::move(done)});
      return;
    }
  }
  done(closed);
}

void Projector::SettleWaits() {
  std::vector<std::pair<std::function<void(absl::Status)>, absl::Status>> settled;
  {
    absl::MutexLock lock(&mu_);
    const absl::Time now = absl::Now();
    const absl::Status closed = NoMoreWaits();
    std::erase_if(waits_, [&](Wait& wait) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      absl::Status status;
      if (!closed.ok()) {
        status = closed;
      } else if (const auto* behind = Behind(wait.min_versions); behind != nullptr) {
        if (now < wait.deadline) return false;
        status = absl::DeadlineExceededError(
            absl::StrCat("stream ", behind->first, " is at version ",
                         live_->projection->Version(behind->first), ", not yet ", behind->second));
      }
      settled.emplace_back(std::move(wait.done), std::move(status));
      return true;
    });
  }
  for (auto& [done, status] : settled) done(std::move(status));
}

void Projector::EndWaits() {
  {
    absl::MutexLock lock(&mu_);
    waits_ended_ = true;
  }
  SettleWaits();
}

absl::Duration Projector::PollTimeout() const {
  absl::Duration timeout = absl::Milliseconds(100);
  absl::ReaderMutexLock lock(&mu_);
  const absl::Time now = absl::Now();
  for (const Wait& wait : waits_) timeout = std::min(timeout, wait.deadline - now);
  // librdkafka waits in whole milliseconds; a deadline already passed is settled next round.
  return std::max(timeout, absl::Milliseconds(1));
}

absl::Status Projector::health() const {
  absl::ReaderMutexLock lock(&mu_);
  return error_;
}

}  // namespace crm::metrics
