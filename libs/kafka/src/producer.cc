#include "crm/kafka/producer.h"

#include <cstdint>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "spdlog/spdlog.h"

namespace crm::kafka {
namespace {

// Settings the delivery guarantee rests on, set explicitly because librdkafka 2.0 defaults
// enable.idempotence to false. Users' settings come after these.
Settings DefaultSettings(const ProducerOptions& options) {
  return {
      {"bootstrap.servers", options.bootstrap_servers},
      {"client.id", options.client_id},
      {"enable.idempotence", "true"},
      {"acks", "all"},
      {"compression.codec", "lz4"},
      // Same key -> same partition as the Java client, so tools in any language agree.
      {"partitioner", "murmur2_random"},
      // 1 ms instead of librdkafka's 5: publish latency ~1 ms; batches still form on their
      // own while requests are in flight, so throughput does not suffer.
      {"linger.ms", "1"},
      // Recover within a second after a broker outage instead of librdkafka's 10 s ceiling.
      {"reconnect.backoff.max.ms", "1000"},
  };
}

int ToMillis(absl::Duration timeout) {
  if (timeout <= absl::ZeroDuration()) return 0;
  if (timeout >= absl::Hours(24)) return 24 * 3600 * 1000;
  return static_cast<int>(absl::ToInt64Milliseconds(absl::Ceil(timeout, absl::Milliseconds(1))));
}

}  // namespace

std::string_view EventTypeName(std::string_view type_url) {
  const size_t slash = type_url.rfind('/');
  return slash == std::string_view::npos ? type_url : type_url.substr(slash + 1);
}

absl::StatusOr<std::unique_ptr<Producer>> Producer::Create(ProducerOptions options,
                                                           DeliveryCallback on_delivery,
                                                           ReadyCallback on_ready) {
  if (options.bootstrap_servers.empty()) {
    return absl::InvalidArgumentError("bootstrap_servers: must not be empty");
  }
  if (!on_delivery) return absl::InvalidArgumentError("on_delivery: must be set");
  std::unique_ptr<Producer> producer(new Producer(std::move(on_delivery), std::move(on_ready)));

  ConfPtr conf = NewConf();
  if (absl::Status status = ApplySettings(conf.get(), DefaultSettings(options)); !status.ok()) {
    return status;
  }
  if (absl::Status status = ApplySettings(conf.get(), options.settings); !status.ok()) {
    return status;
  }
  // Checked on the effective values so aliases (request.required.acks) cannot slip through.
  absl::StatusOr<std::string> idempotence = kafka::GetSetting(conf.get(), "enable.idempotence");
  if (!idempotence.ok() || *idempotence != "true") {
    return absl::InvalidArgumentError(
        "kafka setting enable.idempotence: must stay true (the relay relies on it for "
        "per-stream order without duplicates from retries)");
  }
  absl::StatusOr<std::string> acks = kafka::GetSetting(conf.get(), "acks");
  if (!acks.ok() || (*acks != "-1" && *acks != "all")) {
    return absl::InvalidArgumentError(absl::StrCat(
        "kafka setting acks=", acks.ok() ? *acks : "?",
        ": must stay all (a record counts as delivered only once every in-sync replica has it)"));
  }

  rd_kafka_conf_set_opaque(conf.get(), producer.get());
  rd_kafka_conf_set_dr_msg_cb(conf.get(), &Producer::OnDeliveryReport);
  absl::StatusOr<ClientPtr> client = NewClient(RD_KAFKA_PRODUCER, std::move(conf));
  if (!client.ok()) return client.status();
  producer->client_ = *std::move(client);

  if (producer->on_ready_) {
    producer->main_queue_ = rd_kafka_queue_get_main(producer->client_.get());
    rd_kafka_queue_cb_event_enable(producer->main_queue_, &Producer::OnQueueReady, producer.get());
  }
  return producer;
}

Producer::Producer(DeliveryCallback on_delivery, ReadyCallback on_ready)
    : on_delivery_(std::move(on_delivery)), on_ready_(std::move(on_ready)) {}

Producer::~Producer() {
  // Reports must not reach an owner that is itself being torn down.
  destroying_.store(true);
  if (!client_) return;
  if (main_queue_ != nullptr) {
    rd_kafka_queue_cb_event_enable(main_queue_, nullptr, nullptr);
    rd_kafka_queue_destroy(main_queue_);
  }
  // Non-blocking: the blocking form waits for every broker thread's next wake-up (~1 s).
  rd_kafka_purge(client_.get(), RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT |
                                    RD_KAFKA_PURGE_F_NON_BLOCKING);
  {
    absl::MutexLock lock(&topics_mu_);
    for (auto& [name, topic] : topics_) rd_kafka_topic_destroy(topic);
    topics_.clear();
  }
  client_.reset();
}

void Producer::OnDeliveryReport(rd_kafka_t* /*client*/, const rd_kafka_message_t* message,
                                void* opaque) {
  auto* self = static_cast<Producer*>(opaque);
  if (self->destroying_.load()) return;
  DeliveryReport report;
  report.tag = static_cast<uint64_t>(reinterpret_cast<uintptr_t>(message->_private));
  report.partition = message->partition;
  report.offset = message->offset;
  if (message->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    report.status = KafkaError(message->err, "delivery");
    report.possibly_persisted =
        rd_kafka_message_status(message) != RD_KAFKA_MSG_STATUS_NOT_PERSISTED;
  }
  self->on_delivery_(report);
}

void Producer::OnQueueReady(rd_kafka_t* /*client*/, void* opaque) {
  auto* self = static_cast<Producer*>(opaque);
  if (!self->destroying_.load()) self->on_ready_();
}

absl::StatusOr<rd_kafka_topic_t*> Producer::Topic(std::string_view name) {
  absl::MutexLock lock(&topics_mu_);
  if (auto it = topics_.find(name); it != topics_.end()) return it->second;
  const std::string name_str(name);
  rd_kafka_topic_t* topic = rd_kafka_topic_new(client_.get(), name_str.c_str(), nullptr);
  if (topic == nullptr)
    return KafkaError(rd_kafka_last_error(), absl::StrCat("topic ", AsAbsl(name)));
  topics_.emplace(name_str, topic);
  return topic;
}

absl::Status Producer::Produce(std::string_view topic, std::string_view key, std::string_view value,
                               const Headers& headers, uint64_t tag) {
  absl::StatusOr<rd_kafka_topic_t*> handle = Topic(topic);
  if (!handle.ok()) return handle.status();
  rd_kafka_headers_t* record_headers = rd_kafka_headers_new(headers.size());
  for (const auto& [name, header_value] : headers) {
    rd_kafka_header_add(record_headers, name.data(), static_cast<ssize_t>(name.size()),
                        header_value.data(), static_cast<ssize_t>(header_value.size()));
  }
  const rd_kafka_resp_err_t err = rd_kafka_producev(
      client_.get(), RD_KAFKA_V_RKT(*handle),
      RD_KAFKA_V_KEY(const_cast<char*>(key.data()), key.size()),
      RD_KAFKA_V_VALUE(const_cast<char*>(value.data()), value.size()),
      RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_HEADERS(record_headers),
      RD_KAFKA_V_OPAQUE(reinterpret_cast<void*>(static_cast<uintptr_t>(tag))), RD_KAFKA_V_END);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    rd_kafka_headers_destroy(record_headers);  // only taken over on success
    return KafkaError(err, absl::StrCat("produce to ", AsAbsl(topic)));
  }
  return absl::OkStatus();
}

absl::Status Producer::ProduceEvent(std::string_view topic, const events::v1::EventEnvelope& event,
                                    uint64_t tag) {
  std::string value;
  if (!event.SerializeToString(&value)) {
    return absl::InvalidArgumentError(
        absl::StrCat("event ", event.event_id(), ": cannot serialize"));
  }
  const Headers headers = {
      {std::string(kEventTypeHeader), std::string(EventTypeName(event.payload().type_url()))},
      {std::string(kEventIdHeader), event.event_id()},
  };
  return Produce(topic, event.stream_id(), value, headers, tag);
}

int Producer::Poll(absl::Duration timeout) {
  return rd_kafka_poll(client_.get(), ToMillis(timeout));
}

absl::Status Producer::Flush(absl::Duration timeout) {
  return KafkaError(rd_kafka_flush(client_.get(), ToMillis(timeout)), "flush");
}

void Producer::Purge() {
  rd_kafka_purge(client_.get(), RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT |
                                    RD_KAFKA_PURGE_F_NON_BLOCKING);
}

int Producer::OutstandingCount() const { return rd_kafka_outq_len(client_.get()); }

absl::Status Producer::FatalError() const {
  char reason[512] = "";
  const rd_kafka_resp_err_t err = rd_kafka_fatal_error(client_.get(), reason, sizeof(reason));
  if (err == RD_KAFKA_RESP_ERR_NO_ERROR) return absl::OkStatus();
  return absl::FailedPreconditionError(
      absl::StrCat("kafka producer fatal error ", rd_kafka_err2name(err), ": ", reason));
}

absl::Status Producer::InjectFatalErrorForTesting() {
  return KafkaError(
      rd_kafka_test_fatal_error(client_.get(), RD_KAFKA_RESP_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER,
                                "injected by a test"),
      "inject fatal error");
}

absl::StatusOr<std::string> Producer::GetSetting(std::string_view name) const {
  return kafka::GetSetting(client_.get(), name);
}

}  // namespace crm::kafka
