#include "crm/kafka/relay.h"

#include <algorithm>
#include <limits>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "crm/common/time.h"
#include "spdlog/spdlog.h"

namespace crm::kafka {
namespace {

// Upper bound on any sleep of the relay thread; wake-ups normally come from delivery reports
// and appends, this only bounds the cost of a missed one.
constexpr absl::Duration kMaxIdle = absl::Milliseconds(100);
// How long the append watcher blocks in WaitForAppend before re-checking for Stop().
constexpr absl::Duration kWatchSlice = absl::Milliseconds(100);
// Pause after the producer's local queue filled up; delivery reports usually wake us sooner.
constexpr absl::Duration kQueueFullPause = absl::Milliseconds(10);

}  // namespace

absl::StatusOr<std::unique_ptr<Relay>> Relay::Start(eventstore::EventStore* store,
                                                    RelayOptions options) {
  if (store == nullptr) return absl::InvalidArgumentError("store: must not be null");
  if (options.topic.empty()) return absl::InvalidArgumentError("topic: must not be empty");
  if (options.checkpoint_name.empty()) {
    return absl::InvalidArgumentError("checkpoint_name: must not be empty");
  }
  if (options.max_in_flight == 0) {
    return absl::InvalidArgumentError("max_in_flight: must be at least 1");
  }
  if (options.read_batch == 0) return absl::InvalidArgumentError("read_batch: must be at least 1");
  if (options.min_retry_backoff <= absl::ZeroDuration() ||
      options.max_retry_backoff < options.min_retry_backoff) {
    return absl::InvalidArgumentError("retry backoff: need 0 < min <= max");
  }
  absl::StatusOr<int64_t> checkpoint = store->GetCheckpoint(options.checkpoint_name);
  if (!checkpoint.ok()) return checkpoint.status();

  std::unique_ptr<Relay> relay(new Relay(store, std::move(options), *checkpoint));
  if (absl::Status status = relay->CreateProducer(); !status.ok()) return status;
  relay->PublishStats();
  spdlog::info("relay {}: starting after checkpoint {} (log at {})", relay->options_.topic,
               *checkpoint, store->LastPosition());
  relay->thread_ = std::thread(&Relay::Run, relay.get());
  relay->watcher_ = std::thread(&Relay::WatchAppends, relay.get());
  return relay;
}

Relay::Relay(eventstore::EventStore* store, RelayOptions options, int64_t checkpoint)
    : store_(store),
      options_(std::move(options)),
      checkpoint_(checkpoint),
      persisted_checkpoint_(checkpoint),
      next_position_(checkpoint + 1),
      backoff_(options_.min_retry_backoff) {}

Relay::~Relay() {
  if (absl::Status status = Stop(); !status.ok()) {
    spdlog::warn("relay {}: {}", options_.topic, status.ToString());
  }
}

absl::Status Relay::CreateProducer() {
  absl::StatusOr<std::unique_ptr<Producer>> producer = Producer::Create(
      options_.producer, [this](const DeliveryReport& report) { OnDelivery(report); },
      [this] { Wake(); });
  if (!producer.ok()) return producer.status();
  producer_ = *std::move(producer);
  return absl::OkStatus();
}

void Relay::Wake() {
  absl::MutexLock lock(&wake_mu_);
  reports_ready_ = true;
}

void Relay::WatchAppends() {
  int64_t seen = store_->LastPosition();
  for (;;) {
    {
      absl::MutexLock lock(&wake_mu_);
      if (stop_requested_) return;
      appended_ = std::max(appended_, seen);
    }
    seen = store_->WaitForAppend(seen, absl::Now() + kWatchSlice);
  }
}

void Relay::Run() {
  int64_t stop_target = -1;
  absl::Time stop_deadline = absl::InfiniteFuture();
  for (;;) {
    bool stopping = false;
    bool inject_fatal = false;
    {
      absl::MutexLock lock(&wake_mu_);
      reports_ready_ = false;  // reset before polling, so no report is missed
      stopping = stop_requested_;
      std::swap(inject_fatal, inject_fatal_);
    }
    if (stopping && stop_target < 0) {
      stop_target = store_->LastPosition();
      stop_deadline = absl::Now() + options_.stop_timeout;
    }

    if (producer_ == nullptr && absl::Now() >= retry_at_) {
      if (absl::Status status = CreateProducer(); !status.ok()) {
        spdlog::error("relay {}: cannot create producer: {}", options_.topic, status.ToString());
        retry_at_ = absl::Now() + backoff_;
        backoff_ = std::min(backoff_ * 2, options_.max_retry_backoff);
      }
    }
    if (producer_ != nullptr) {
      if (inject_fatal) {
        if (absl::Status status = producer_->InjectFatalErrorForTesting(); !status.ok()) {
          spdlog::warn("relay {}: {}", options_.topic, status.ToString());
        }
      }
      producer_->Poll(absl::ZeroDuration());  // delivery reports -> OnDelivery
      if (absl::Status fatal = producer_->FatalError(); !fatal.ok()) ReplaceProducer(fatal);
    }
    AdvanceCheckpoint();

    if (stopping && (checkpoint_ >= stop_target || absl::Now() >= stop_deadline)) break;

    if (producer_ != nullptr && rewind_pending_ && producer_->OutstandingCount() == 0 &&
        absl::Now() >= retry_at_) {
      Rewind();
    }
    const int64_t limit = stopping ? stop_target : std::numeric_limits<int64_t>::max();
    if (producer_ != nullptr && !rewind_pending_) ProduceAvailable(limit);
    PublishStats();

    // Sleep until something can be done.
    const absl::Time now = absl::Now();
    // A pending retry is due at retry_at_; a pending rewind otherwise waits for reports.
    const absl::Time deadline =
        std::min({now + kMaxIdle, stop_deadline, retry_at_ > now ? retry_at_ : now + kMaxIdle});
    const int64_t produced_up_to = next_position_ - 1;
    const bool can_produce = producer_ != nullptr && !rewind_pending_ && retry_at_ <= now &&
                             window_.size() < options_.max_in_flight && produced_up_to < limit;
    absl::MutexLock lock(&wake_mu_);
    const auto wake = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(wake_mu_) {
      return reports_ready_ || inject_fatal_ || (stop_requested_ && !stopping) ||
             (can_produce && appended_ > produced_up_to);
    };
    wake_mu_.AwaitWithDeadline(absl::Condition(&wake), deadline);
  }

  // Stopping: whatever is still unconfirmed is republished by the next start.
  absl::Status status = absl::OkStatus();
  if (checkpoint_ < stop_target) {
    status = absl::DeadlineExceededError(absl::StrCat(
        "relay ", options_.topic, " stopped at checkpoint ", checkpoint_, " with ",
        stop_target - checkpoint_, " events unconfirmed after ",
        absl::FormatDuration(options_.stop_timeout), "; the next start republishes them"));
  }
  AdvanceCheckpoint();
  if (persisted_checkpoint_ != checkpoint_ && status.ok()) {
    status = absl::UnavailableError(
        absl::StrCat("relay ", options_.topic, ": could not persist checkpoint ", checkpoint_));
  }
  producer_.reset();  // drops unconfirmed records; their reports are not needed any more
  window_.clear();
  next_position_ = checkpoint_ + 1;
  PublishStats();
  spdlog::info("relay {}: stopped at checkpoint {}", options_.topic, persisted_checkpoint_);
  absl::MutexLock lock(&stats_mu_);
  stopped_ = true;
  stop_status_ = status;
}

void Relay::OnDelivery(const DeliveryReport& report) {
  const int64_t position = static_cast<int64_t>(report.tag);
  if (report.status.ok()) {
    ++delivered_;
    const int64_t index = position - checkpoint_ - 1;
    if (index >= 0 && index < static_cast<int64_t>(window_.size())) {
      window_[static_cast<size_t>(index)].confirmed = true;
    }
    return;
  }
  ++errors_;
  ScheduleRewind(absl::Status(report.status.code(),
                              absl::StrCat("delivery of position ", position, " failed",
                                           report.possibly_persisted ? " (possibly persisted)" : "",
                                           ": ", report.status.message())));
}

void Relay::ScheduleRewind(const absl::Status& cause) {
  if (rewind_pending_) return;  // one rewind covers every failure before it
  spdlog::warn("relay {}: {}; republishing from position {} once outstanding records settle",
               options_.topic, cause.ToString(), checkpoint_ + 1);
  rewind_pending_ = true;
  retry_at_ = absl::Now() + backoff_;
  backoff_ = std::min(backoff_ * 2, options_.max_retry_backoff);
}

// Runs only with nothing outstanding, so the records produced from here on are ordered after
// every earlier attempt in their partitions.
void Relay::Rewind() {
  ++rewinds_;
  window_.clear();
  next_position_ = checkpoint_ + 1;
  rewind_pending_ = false;
}

void Relay::ReplaceProducer(const absl::Status& cause) {
  spdlog::error("relay {}: {}; replacing the producer, republishing from position {}",
                options_.topic, cause.ToString(), checkpoint_ + 1);
  ++producer_restarts_;
  producer_.reset();
  Rewind();
  // Back off so a producer that fails fatally at once does not spin.
  retry_at_ = absl::Now() + backoff_;
  backoff_ = std::min(backoff_ * 2, options_.max_retry_backoff);
}

void Relay::ProduceAvailable(int64_t limit) {
  if (absl::Now() < retry_at_) return;
  while (window_.size() < options_.max_in_flight) {
    const int64_t last = std::min(store_->LastPosition(), limit);
    if (next_position_ > last) return;
    const size_t count = static_cast<size_t>(
        std::min<int64_t>({static_cast<int64_t>(options_.read_batch),
                           static_cast<int64_t>(options_.max_in_flight - window_.size()),
                           last - next_position_ + 1}));
    absl::StatusOr<std::vector<eventstore::EventEnvelope>> events =
        store_->ReadLog(next_position_, count);
    if (!events.ok() || events->empty() || events->front().position() != next_position_) {
      ++errors_;
      spdlog::error("relay {}: reading the log at position {}: {}", options_.topic, next_position_,
                    !events.ok() ? events.status().ToString()
                                 : absl::StrCat("expected position ", next_position_, ", got ",
                                                events->empty() ? 0 : events->front().position()));
      retry_at_ = absl::Now() + backoff_;
      backoff_ = std::min(backoff_ * 2, options_.max_retry_backoff);
      return;
    }
    for (const eventstore::EventEnvelope& event : *events) {
      // The log is gap-free; never publish past what is durable.
      if (event.position() != next_position_ || event.position() > last) return;
      absl::Status status =
          producer_->ProduceEvent(options_.topic, event, static_cast<uint64_t>(next_position_));
      if (status.code() == absl::StatusCode::kResourceExhausted) {
        retry_at_ = absl::Now() + kQueueFullPause;  // local queue full: let reports drain it
        return;
      }
      if (!status.ok()) {
        ++errors_;
        ScheduleRewind(absl::Status(
            status.code(), absl::StrCat("position ", next_position_, ": ", status.message())));
        return;
      }
      window_.push_back(Slot{.recorded_at = FromProto(event.recorded_at())});
      ++next_position_;
      ++produced_;
    }
  }
}

void Relay::AdvanceCheckpoint() {
  const int64_t before = checkpoint_;
  while (!window_.empty() && window_.front().confirmed) {
    window_.pop_front();
    ++checkpoint_;
  }
  if (checkpoint_ > before && !rewind_pending_) backoff_ = options_.min_retry_backoff;
  if (checkpoint_ == persisted_checkpoint_) return;
  // Not synced (see EventStore::PutCheckpoint): losing it to a crash only republishes.
  if (absl::Status status = store_->PutCheckpoint(options_.checkpoint_name, checkpoint_);
      !status.ok()) {
    spdlog::warn("relay {}: persisting checkpoint {}: {}", options_.topic, checkpoint_,
                 status.ToString());
    return;
  }
  persisted_checkpoint_ = checkpoint_;
}

void Relay::PublishStats() {
  absl::MutexLock lock(&stats_mu_);
  stats_.checkpoint = persisted_checkpoint_;
  stats_.in_flight = next_position_ - 1 - checkpoint_;
  stats_.produced = produced_;
  stats_.delivered = delivered_;
  stats_.errors = errors_;
  stats_.rewinds = rewinds_;
  stats_.producer_restarts = producer_restarts_;
  oldest_unconfirmed_ = window_.empty() ? absl::InfiniteFuture() : window_.front().recorded_at;
}

RelayStats Relay::Stats() const {
  RelayStats stats;
  absl::Time oldest;
  {
    absl::MutexLock lock(&stats_mu_);
    stats = stats_;
    oldest = oldest_unconfirmed_;
  }
  stats.last_position = store_->LastPosition();
  stats.lag_events = std::max<int64_t>(0, stats.last_position - stats.checkpoint);
  if (stats.lag_events > 0) {
    if (oldest == absl::InfiniteFuture()) {
      // Not produced yet (brokers down, or the relay is behind): ask the log.
      absl::StatusOr<std::vector<eventstore::EventEnvelope>> events =
          store_->ReadLog(stats.checkpoint + 1, 1);
      if (events.ok() && !events->empty()) oldest = FromProto(events->front().recorded_at());
    }
    if (oldest != absl::InfiniteFuture()) {
      stats.lag = std::max(absl::ZeroDuration(), absl::Now() - oldest);
    }
  }
  return stats;
}

absl::Status Relay::WaitForCheckpoint(int64_t position, absl::Duration timeout) const {
  absl::MutexLock lock(&stats_mu_);
  const auto reached = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(stats_mu_) {
    return stats_.checkpoint >= position || stopped_;
  };
  stats_mu_.AwaitWithTimeout(absl::Condition(&reached), timeout);
  if (stats_.checkpoint >= position) return absl::OkStatus();
  if (stopped_) {
    return absl::CancelledError(absl::StrCat("relay ", options_.topic, " stopped at checkpoint ",
                                             stats_.checkpoint, " before ", position));
  }
  return absl::DeadlineExceededError(
      absl::StrCat("relay ", options_.topic, ": checkpoint ", stats_.checkpoint, " after ",
                   absl::FormatDuration(timeout), ", waiting for ", position));
}

absl::Status Relay::Stop() {
  absl::MutexLock stop_lock(&stop_mu_);
  {
    absl::MutexLock lock(&wake_mu_);
    stop_requested_ = true;
  }
  if (thread_.joinable()) thread_.join();
  if (watcher_.joinable()) watcher_.join();
  absl::MutexLock lock(&stats_mu_);
  return stop_status_;
}

void Relay::InjectFatalErrorForTesting() {
  absl::MutexLock lock(&wake_mu_);
  inject_fatal_ = true;
}

}  // namespace crm::kafka
