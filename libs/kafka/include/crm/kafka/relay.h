#pragma once

// The outbox relay: publishes a service's event log to its Kafka topic, at least once and in
// log order per stream.
//
// It tails EventStore::ReadLog() from its persisted checkpoint and produces every event
// (key = stream_id, value = the envelope) through an idempotent producer. The checkpoint
// only ever covers the contiguous prefix of positions whose delivery Kafka confirmed
// (acks=all), so a crash or restart republishes from there: duplicates, never gaps. Any
// failed delivery (timeout, possibly persisted, broker error) makes the relay wait for its
// outstanding records, then rewind to the checkpoint and produce again from there; a fatal
// producer error replaces the producer first. Consumers skip what they already applied by
// stream_version (crm/kafka/consumer.h).

#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "crm/eventstore/event_store.h"
#include "crm/kafka/producer.h"

namespace crm::kafka {

struct RelayOptions {
  std::string topic;
  // Name of the checkpoint in the event store; one relay per name.
  std::string checkpoint_name = "relay";
  ProducerOptions producer;
  // At most this many events beyond the checkpoint are produced but not yet confirmed; it
  // bounds the relay's memory and how much a rewind re-sends.
  size_t max_in_flight = 10000;
  // Events read from the log at a time.
  size_t read_batch = 512;
  // Stop() keeps publishing what was appended before it was called, for at most this long.
  absl::Duration stop_timeout = absl::Seconds(10);
  // Wait before re-producing after a failure; doubles per consecutive failure up to the max.
  absl::Duration min_retry_backoff = absl::Milliseconds(50);
  absl::Duration max_retry_backoff = absl::Seconds(5);
};

// A snapshot for monitoring (exported as Prometheus metrics by the service runtime).
struct RelayStats {
  int64_t checkpoint = 0;     // persisted; every position <= checkpoint is confirmed in Kafka
  int64_t last_position = 0;  // the event store's last durable position
  int64_t lag_events = 0;     // last_position - checkpoint
  // now - recorded_at of the oldest unconfirmed event (0 when none).
  absl::Duration lag = absl::ZeroDuration();
  int64_t in_flight = 0;           // produced beyond the checkpoint (<= max_in_flight)
  uint64_t produced = 0;           // records handed to the producer (re-sends included)
  uint64_t delivered = 0;          // delivery reports with success
  uint64_t errors = 0;             // failed deliveries and failed produce calls
  uint64_t rewinds = 0;            // restarts from the checkpoint after errors
  uint64_t producer_restarts = 0;  // producers replaced after fatal errors
  double lag_seconds() const { return absl::ToDoubleSeconds(lag); }
};

class Relay {
 public:
  // Reads the checkpoint, creates the producer and starts publishing on its own thread.
  // `store` must outlive the relay. Errors: INVALID_ARGUMENT bad options or producer settings;
  // the store's error if the checkpoint cannot be read. Unreachable brokers are not an error:
  // the relay keeps retrying and reports lag.
  static absl::StatusOr<std::unique_ptr<Relay>> Start(eventstore::EventStore* store,
                                                      RelayOptions options);
  // Stop().
  ~Relay();
  Relay(const Relay&) = delete;
  Relay& operator=(const Relay&) = delete;

  // Publishes what was appended before the call (within stop_timeout), persists the
  // checkpoint and stops. DEADLINE_EXCEEDED when events were left unconfirmed (the next
  // start republishes them). Idempotent.
  absl::Status Stop();

  RelayStats Stats() const;

  // Blocks until the checkpoint reaches `position`. DEADLINE_EXCEEDED after `timeout`;
  // CANCELLED if the relay stopped short of it.
  absl::Status WaitForCheckpoint(int64_t position, absl::Duration timeout) const;

  // Makes the current producer fail fatally, as the idempotent producer may in production.
  void InjectFatalErrorForTesting();

 private:
  struct Slot {  // one produced, unconfirmed position beyond the checkpoint
    absl::Time recorded_at;
    bool confirmed = false;
  };

  Relay(eventstore::EventStore* store, RelayOptions options, int64_t checkpoint);
  absl::Status CreateProducer();
  void Run();
  void WatchAppends();
  void OnDelivery(const DeliveryReport& report);
  void ProduceAvailable(int64_t limit);
  void AdvanceCheckpoint();
  void ScheduleRewind(const absl::Status& cause);
  void Rewind();
  void ReplaceProducer(const absl::Status& cause);
  void PublishStats();
  void Wake();

  eventstore::EventStore* const store_;
  const RelayOptions options_;

  // Relay-thread state (also touched before the thread starts).
  std::unique_ptr<Producer> producer_;
  int64_t checkpoint_;  // confirmed prefix
  int64_t persisted_checkpoint_;
  int64_t next_position_;    // next position to produce
  std::deque<Slot> window_;  // positions checkpoint_+1 .. next_position_-1
  bool rewind_pending_ = false;
  absl::Time retry_at_ = absl::InfinitePast();
  absl::Duration backoff_;
  uint64_t produced_ = 0, delivered_ = 0, errors_ = 0, rewinds_ = 0, producer_restarts_ = 0;

  // Wake-ups of the relay thread: delivery reports ready, events appended, stop.
  mutable absl::Mutex wake_mu_;
  bool reports_ready_ ABSL_GUARDED_BY(wake_mu_) = false;
  int64_t appended_ ABSL_GUARDED_BY(wake_mu_) = 0;
  bool stop_requested_ ABSL_GUARDED_BY(wake_mu_) = false;
  bool inject_fatal_ ABSL_GUARDED_BY(wake_mu_) = false;

  // What other threads may read.
  mutable absl::Mutex stats_mu_;
  RelayStats stats_ ABSL_GUARDED_BY(stats_mu_);
  absl::Time oldest_unconfirmed_ ABSL_GUARDED_BY(stats_mu_) = absl::InfiniteFuture();
  bool stopped_ ABSL_GUARDED_BY(stats_mu_) = false;
  absl::Status stop_status_ ABSL_GUARDED_BY(stats_mu_);

  absl::Mutex stop_mu_;  // serializes Stop()
  std::thread thread_;
  std::thread watcher_;
};

}  // namespace crm::kafka
