#pragma once

// A thin, safe-by-default wrapper over a librdkafka producer: idempotent (enable.idempotence,
// acks=all), compressed (lz4), Java-compatible key partitioning (murmur2_random), and
// delivery reports as absl::Status. The outbox relay (crm/kafka/relay.h) is its main user.

#include <librdkafka/rdkafka.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "crm/events/v1/envelope.pb.h"
#include "crm/kafka/client_config.h"

namespace crm::kafka {

using Headers = std::vector<std::pair<std::string, std::string>>;

// Record header names carried by every published event.
inline constexpr std::string_view kEventTypeHeader = "event_type";
inline constexpr std::string_view kEventIdHeader = "event_id";

// The payload type name of an Any type URL: the part after the last '/'
// ("type.googleapis.com/crm.contact.v1.ContactCreated" -> "crm.contact.v1.ContactCreated").
std::string_view EventTypeName(std::string_view type_url);

struct ProducerOptions {
  std::string bootstrap_servers;
  std::string client_id = "crm";
  // Applied after the defaults, so they may tune anything (linger.ms, message.timeout.ms,
  // compression.codec...) except the delivery guarantee: enable.idempotence must stay true
  // and acks must stay all, or Create() is INVALID_ARGUMENT.
  Settings settings;
};

struct DeliveryReport {
  uint64_t tag = 0;  // as passed to Produce()
  // OK once the partition leader and all in-sync replicas have the record (acks=all).
  absl::Status status;
  // On failure: the record may have been written anyway (e.g. timed out while in flight).
  bool possibly_persisted = false;
  int32_t partition = -1;
  int64_t offset = -1;
};

// Produce() may be called from any thread; Poll(), Flush() and the callbacks they run belong
// to one thread at a time.
class Producer {
 public:
  // Runs on the thread that calls Poll() or Flush(), once per produced record.
  using DeliveryCallback = std::function<void(const DeliveryReport&)>;
  // Runs on a librdkafka thread when reports become ready to Poll(), so a caller can sleep on
  // its own condition instead of polling. It must not block or call into this producer.
  using ReadyCallback = std::function<void()>;

  static absl::StatusOr<std::unique_ptr<Producer>> Create(ProducerOptions options,
                                                          DeliveryCallback on_delivery,
                                                          ReadyCallback on_ready = nullptr);
  // Does not wait for outstanding records: Flush() first when their delivery matters. Their
  // reports are dropped.
  ~Producer();
  Producer(const Producer&) = delete;
  Producer& operator=(const Producer&) = delete;

  // Queues one record; its delivery is reported through the callback with `tag`. Errors:
  // RESOURCE_EXHAUSTED the local queue is full (Poll and retry); INVALID_ARGUMENT the record
  // is larger than message.max.bytes; FAILED_PRECONDITION the producer hit a fatal error.
  absl::Status Produce(std::string_view topic, std::string_view key, std::string_view value,
                       const Headers& headers, uint64_t tag);
  // An event: key = stream_id, value = the serialized envelope, headers event_type and
  // event_id.
  absl::Status ProduceEvent(std::string_view topic, const events::v1::EventEnvelope& event,
                            uint64_t tag);

  // Serves delivery reports and client events; returns how many were served.
  int Poll(absl::Duration timeout);
  // Polls until every outstanding record is reported; DEADLINE_EXCEEDED if some are not.
  absl::Status Flush(absl::Duration timeout);
  // Fails every queued and in-flight record (their reports, served by Poll(), say CANCELLED).
  void Purge();
  // Records queued or in flight, plus reports not yet served by Poll().
  int OutstandingCount() const;

  // OK, or the fatal error after which this producer can only be destroyed and replaced
  // (the idempotent producer raises these when it can no longer guarantee order).
  absl::Status FatalError() const;
  // Raises a fabricated fatal error (librdkafka's test hook), for testing recovery.
  absl::Status InjectFatalErrorForTesting();

  // A setting as the live client uses it, e.g. GetSetting("enable.idempotence") -> "true".
  absl::StatusOr<std::string> GetSetting(std::string_view name) const;

 private:
  Producer(DeliveryCallback on_delivery, ReadyCallback on_ready);
  static void OnDeliveryReport(rd_kafka_t* client, const rd_kafka_message_t* message, void* opaque);
  static void OnQueueReady(rd_kafka_t* client, void* opaque);
  absl::StatusOr<rd_kafka_topic_t*> Topic(std::string_view name);

  DeliveryCallback on_delivery_;
  ReadyCallback on_ready_;
  ClientPtr client_;
  rd_kafka_queue_t* main_queue_ = nullptr;  // referenced while the ready callback is enabled
  std::atomic<bool> destroying_{false};

  absl::Mutex topics_mu_;
  std::map<std::string, rd_kafka_topic_t*, std::less<>> topics_ ABSL_GUARDED_BY(topics_mu_);
};

}  // namespace crm::kafka
