#include "crm/kafka/consumer.h"

#include <algorithm>
#include <map>
#include <string>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "spdlog/spdlog.h"

namespace crm::kafka {
namespace {

int ToMillis(absl::Duration timeout) {
  if (timeout <= absl::ZeroDuration()) return 0;
  if (timeout >= absl::Hours(24)) return 24 * 3600 * 1000;
  return static_cast<int>(absl::ToInt64Milliseconds(absl::Ceil(timeout, absl::Milliseconds(1))));
}

struct PartitionListDeleter {
  void operator()(rd_kafka_topic_partition_list_t* list) const {
    rd_kafka_topic_partition_list_destroy(list);
  }
};
using PartitionList = std::unique_ptr<rd_kafka_topic_partition_list_t, PartitionListDeleter>;

struct MessageDeleter {
  void operator()(rd_kafka_message_t* message) const { rd_kafka_message_destroy(message); }
};
using MessagePtr = std::unique_ptr<rd_kafka_message_t, MessageDeleter>;

Message ToMessage(const rd_kafka_message_t& raw) {
  Message message;
  message.topic = rd_kafka_topic_name(raw.rkt);
  message.partition = raw.partition;
  message.offset = raw.offset;
  if (raw.key != nullptr) message.key.assign(static_cast<const char*>(raw.key), raw.key_len);
  if (raw.payload != nullptr) {
    message.value.assign(static_cast<const char*>(raw.payload), raw.len);
  }
  rd_kafka_headers_t* headers = nullptr;
  if (rd_kafka_message_headers(&raw, &headers) == RD_KAFKA_RESP_ERR_NO_ERROR) {
    const char* name = nullptr;
    const void* value = nullptr;
    size_t size = 0;
    for (size_t i = 0;
         rd_kafka_header_get_all(headers, i, &name, &value, &size) == RD_KAFKA_RESP_ERR_NO_ERROR;
         ++i) {
      message.headers.emplace_back(
          name, value != nullptr ? std::string(static_cast<const char*>(value), size) : "");
    }
  }
  rd_kafka_timestamp_type_t type;
  const int64_t millis = rd_kafka_message_timestamp(&raw, &type);
  message.timestamp = millis >= 0 ? absl::FromUnixMillis(millis) : absl::InfinitePast();
  return message;
}

// Consumer defaults: offsets are the caller's business, and the mock cluster (like a quiet
// real one) holds fetches for fetch.wait.max.ms, which would show up directly as lag.
Settings DefaultSettings(const ConsumerOptions& options) {
  return {
      {"bootstrap.servers", options.bootstrap_servers},
      {"client.id", options.client_id},
      {"group.id", options.group_id},
      {"enable.auto.commit", "false"},
      {"enable.auto.offset.store", "false"},
      // A stored offset that retention already deleted resumes at the oldest record: a
      // projection never silently skips events.
      {"auto.offset.reset", "earliest"},
      {"fetch.wait.max.ms", "5"},
      {"reconnect.backoff.max.ms", "1000"},
  };
}

bool IsCooperative(rd_kafka_t* client) {
  return std::string_view(rd_kafka_rebalance_protocol(client)) == "COOPERATIVE";
}

}  // namespace

std::optional<std::string_view> Message::Header(std::string_view name) const {
  for (const auto& [header_name, value] : headers) {
    if (header_name == name) return std::string_view(value);
  }
  return std::nullopt;
}

absl::StatusOr<std::unique_ptr<Consumer>> Consumer::Create(ConsumerOptions options) {
  if (options.bootstrap_servers.empty()) {
    return absl::InvalidArgumentError("bootstrap_servers: must not be empty");
  }
  if (options.group_id.empty()) return absl::InvalidArgumentError("group_id: must not be empty");
  if (options.topics.empty()) return absl::InvalidArgumentError("topics: must not be empty");
  if (!options.offset_loader) return absl::InvalidArgumentError("offset_loader: must be set");

  ConfPtr conf = NewConf();
  if (absl::Status status = ApplySettings(conf.get(), DefaultSettings(options)); !status.ok()) {
    return status;
  }
  if (absl::Status status = ApplySettings(conf.get(), options.settings); !status.ok()) {
    return status;
  }
  // Kafka-side offsets would compete with the caller's: refuse turning them back on.
  for (const char* name : {"enable.auto.commit", "enable.auto.offset.store"}) {
    absl::StatusOr<std::string> value = kafka::GetSetting(conf.get(), name);
    if (!value.ok() || *value != "false") {
      return absl::InvalidArgumentError(absl::StrCat(
          "kafka setting ", name, ": must stay false (offsets live in the caller's store)"));
    }
  }

  std::unique_ptr<Consumer> consumer(new Consumer(std::move(options)));
  rd_kafka_conf_set_opaque(conf.get(), consumer.get());
  rd_kafka_conf_set_rebalance_cb(conf.get(), &Consumer::OnRebalance);
  absl::StatusOr<ClientPtr> client = NewClient(RD_KAFKA_CONSUMER, std::move(conf));
  if (!client.ok()) return client.status();
  consumer->client_ = *std::move(client);
  // Client errors and rebalances are then served by Poll().
  rd_kafka_poll_set_consumer(consumer->client_.get());

  PartitionList topics(
      rd_kafka_topic_partition_list_new(static_cast<int>(consumer->options_.topics.size())));
  for (const std::string& topic : consumer->options_.topics) {
    rd_kafka_topic_partition_list_add(topics.get(), topic.c_str(), RD_KAFKA_PARTITION_UA);
  }
  if (absl::Status status =
          KafkaError(rd_kafka_subscribe(consumer->client_.get(), topics.get()), "subscribe");
      !status.ok()) {
    return status;
  }
  return consumer;
}

Consumer::Consumer(ConsumerOptions options) : options_(std::move(options)) {}

Consumer::~Consumer() {
  if (absl::Status status = Close(); !status.ok()) {
    spdlog::warn("kafka consumer {}: close: {}", options_.group_id, status.ToString());
  }
}

void Consumer::OnRebalance(rd_kafka_t* /*client*/, rd_kafka_resp_err_t err,
                           rd_kafka_topic_partition_list_t* partitions, void* opaque) {
  static_cast<Consumer*>(opaque)->Rebalance(err, partitions);
}

void Consumer::Rebalance(rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t* partitions) {
  rd_kafka_t* client = client_.get();
  const bool cooperative = IsCooperative(client);
  if (err != RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
    // Revoked (or lost): nothing to save, the caller's store already holds the offsets of
    // everything it applied.
    if (cooperative) {
      if (rd_kafka_error_t* error = rd_kafka_incremental_unassign(client, partitions)) {
        spdlog::warn("kafka consumer {}: unassign: {}", options_.group_id,
                     rd_kafka_error_string(error));
        rd_kafka_error_destroy(error);
      }
    } else {
      rd_kafka_assign(client, nullptr);
    }
    return;
  }

  std::vector<std::string> described;
  for (int i = 0; i < partitions->cnt; ++i) {
    rd_kafka_topic_partition_t& partition = partitions->elems[i];
    absl::StatusOr<std::optional<int64_t>> next =
        options_.offset_loader(partition.topic, partition.partition);
    if (!next.ok()) {
      error_ = absl::Status(next.status().code(),
                            absl::StrCat("offset loader for ", partition.topic, "[",
                                         partition.partition, "]: ", next.status().message()));
      spdlog::error("kafka consumer {}: {}", options_.group_id, error_.ToString());
      // Consume nothing rather than from a guessed offset; Poll() reports the error.
      if (!cooperative) rd_kafka_assign(client, nullptr);
      return;
    }
    partition.offset = next->has_value() ? **next : RD_KAFKA_OFFSET_BEGINNING;
    described.push_back(absl::StrCat(partition.topic, "[", partition.partition, "]@",
                                     next->has_value() ? absl::StrCat(**next) : "beginning"));
  }
  spdlog::info("kafka consumer {}: assigned {}", options_.group_id, absl::StrJoin(described, ", "));
  if (cooperative) {
    if (rd_kafka_error_t* error = rd_kafka_incremental_assign(client, partitions)) {
      error_ =
          absl::InternalError(absl::StrCat("incremental assign: ", rd_kafka_error_string(error)));
      rd_kafka_error_destroy(error);
    }
  } else if (absl::Status status = KafkaError(rd_kafka_assign(client, partitions), "assign");
             !status.ok()) {
    error_ = status;
  }
}

absl::StatusOr<std::vector<Message>> Consumer::Poll(size_t max_messages, absl::Duration timeout) {
  if (closed_) return absl::FailedPreconditionError("consumer is closed");
  std::vector<Message> batch;
  const absl::Time deadline = absl::Now() + timeout;
  while (batch.size() < max_messages && error_.ok()) {
    // Wait only for the first message; then take what is already fetched.
    const int wait_ms = batch.empty() ? ToMillis(deadline - absl::Now()) : 0;
    MessagePtr raw(rd_kafka_consumer_poll(client_.get(), wait_ms));
    if (raw == nullptr) {
      if (!batch.empty() || absl::Now() >= deadline) break;
      continue;
    }
    if (raw->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
      batch.push_back(ToMessage(*raw));
      continue;
    }
    if (raw->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) continue;
    char reason[512] = "";
    if (rd_kafka_fatal_error(client_.get(), reason, sizeof(reason)) != RD_KAFKA_RESP_ERR_NO_ERROR) {
      return absl::FailedPreconditionError(
          absl::StrCat("kafka consumer ", options_.group_id, " fatal error: ", reason));
    }
    spdlog::warn("kafka consumer {}: {}", options_.group_id,
                 KafkaError(raw->err, rd_kafka_message_errstr(raw.get())).ToString());
  }
  if (!error_.ok()) return error_;
  RefreshStats(batch.size());
  return batch;
}

void Consumer::RefreshStats(size_t returned) {
  std::vector<PartitionLag> partitions;
  rd_kafka_topic_partition_list_t* raw = nullptr;
  if (rd_kafka_assignment(client_.get(), &raw) == RD_KAFKA_RESP_ERR_NO_ERROR) {
    PartitionList list(raw);
    rd_kafka_position(client_.get(), list.get());  // next offset per partition (or INVALID)
    for (int i = 0; i < list->cnt; ++i) {
      const auto& tp = list->elems[i];
      int64_t low = 0;
      int64_t high = 0;
      // Cached from the last fetch: no request to the broker.
      if (rd_kafka_get_watermark_offsets(client_.get(), tp.topic, tp.partition, &low, &high) !=
          RD_KAFKA_RESP_ERR_NO_ERROR) {
        continue;
      }
      const int64_t next = tp.offset >= 0 ? tp.offset : low;
      partitions.push_back({tp.topic, tp.partition, std::max<int64_t>(0, high - next)});
    }
  }
  absl::MutexLock lock(&stats_mu_);
  stats_.partitions = std::move(partitions);
  stats_.messages += returned;
}

ConsumerStats Consumer::Stats() const {
  absl::MutexLock lock(&stats_mu_);
  return stats_;
}

std::vector<TopicPartition> Consumer::Assignment() const {
  std::vector<TopicPartition> result;
  rd_kafka_topic_partition_list_t* raw = nullptr;
  if (rd_kafka_assignment(client_.get(), &raw) != RD_KAFKA_RESP_ERR_NO_ERROR) return result;
  PartitionList list(raw);
  for (int i = 0; i < list->cnt; ++i) {
    result.push_back(TopicPartition{list->elems[i].topic, list->elems[i].partition});
  }
  return result;
}

absl::StatusOr<std::string> Consumer::GetSetting(std::string_view name) const {
  return kafka::GetSetting(client_.get(), name);
}

absl::Status Consumer::Close() {
  if (closed_ || !client_) return absl::OkStatus();
  closed_ = true;
  return KafkaError(rd_kafka_consumer_close(client_.get()), "close consumer");
}

// --- Offset records ---------------------------------------------------------------------

std::string OffsetRecordKey(std::string_view topic, int32_t partition) {
  return absl::StrCat("kafka.offset/", AsAbsl(topic), "/", partition);
}

std::string EncodeOffsetRecord(int64_t next_offset) { return absl::StrCat(next_offset); }

absl::StatusOr<int64_t> DecodeOffsetRecord(std::string_view value) {
  int64_t offset = 0;
  if (!absl::SimpleAtoi(AsAbsl(value), &offset) || offset < 0) {
    return absl::DataLossError(absl::StrCat("offset record: not an offset: '", AsAbsl(value), "'"));
  }
  return offset;
}

VersionCheck CheckStreamVersion(int64_t applied_version, int64_t event_version) {
  if (event_version <= applied_version) return VersionCheck::kDuplicate;
  if (event_version == applied_version + 1) return VersionCheck::kApply;
  return VersionCheck::kGap;
}

// --- ReadTopic ----------------------------------------------------------------------------

absl::StatusOr<std::vector<Message>> ReadTopic(const std::string& bootstrap_servers,
                                               const std::string& topic, absl::Duration timeout,
                                               const Settings& settings) {
  const absl::Time deadline = absl::Now() + timeout;
  ConfPtr conf = NewConf();
  // group.id only because assign() needs one; the group is never joined or committed to.
  const Settings defaults = {
      {"bootstrap.servers", bootstrap_servers},
      {"group.id", "crm-read-topic"},
      {"enable.auto.commit", "false"},
      {"enable.auto.offset.store", "false"},
      {"fetch.wait.max.ms", "5"},
  };
  if (absl::Status status = ApplySettings(conf.get(), defaults); !status.ok()) return status;
  if (absl::Status status = ApplySettings(conf.get(), settings); !status.ok()) return status;
  absl::StatusOr<ClientPtr> client = NewClient(RD_KAFKA_CONSUMER, std::move(conf));
  if (!client.ok()) return client.status();
  rd_kafka_t* rk = client->get();

  rd_kafka_topic_t* rkt = rd_kafka_topic_new(rk, topic.c_str(), nullptr);
  const rd_kafka_metadata_t* metadata = nullptr;
  const rd_kafka_resp_err_t metadata_err =
      rd_kafka_metadata(rk, 0, rkt, &metadata, ToMillis(deadline - absl::Now()));
  rd_kafka_topic_destroy(rkt);
  if (absl::Status status = KafkaError(metadata_err, absl::StrCat("metadata of ", topic));
      !status.ok()) {
    return status;
  }
  int partition_count = 0;
  rd_kafka_resp_err_t topic_err = RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART;
  if (metadata->topic_cnt == 1) {
    partition_count = metadata->topics[0].partition_cnt;
    topic_err = metadata->topics[0].err;
  }
  rd_kafka_metadata_destroy(metadata);
  if (absl::Status status = KafkaError(topic_err, absl::StrCat("topic ", topic)); !status.ok()) {
    return status;
  }

  std::map<int32_t, int64_t> end_offsets;  // partition -> high watermark at the start
  std::map<int32_t, int64_t> next_offsets;
  PartitionList assignment(rd_kafka_topic_partition_list_new(partition_count));
  for (int32_t partition = 0; partition < partition_count; ++partition) {
    int64_t low = 0;
    int64_t high = 0;
    if (absl::Status status =
            KafkaError(rd_kafka_query_watermark_offsets(rk, topic.c_str(), partition, &low, &high,
                                                        ToMillis(deadline - absl::Now())),
                       absl::StrCat("watermarks of ", topic, "[", partition, "]"));
        !status.ok()) {
      return status;
    }
    if (high <= low) continue;
    end_offsets[partition] = high;
    next_offsets[partition] = low;
    rd_kafka_topic_partition_list_add(assignment.get(), topic.c_str(), partition)->offset = low;
  }
  std::map<int32_t, std::vector<Message>> by_partition;
  if (end_offsets.empty()) return std::vector<Message>{};
  if (absl::Status status = KafkaError(rd_kafka_assign(rk, assignment.get()), "assign");
      !status.ok()) {
    return status;
  }

  const auto done = [&] {
    return std::all_of(end_offsets.begin(), end_offsets.end(), [&](const auto& entry) {
      return next_offsets[entry.first] >= entry.second;
    });
  };
  while (!done()) {
    const absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration()) {
      return absl::DeadlineExceededError(
          absl::StrCat("read ", topic, ": not all records within ", absl::FormatDuration(timeout)));
    }
    MessagePtr raw(rd_kafka_consumer_poll(rk, std::min(ToMillis(left), 100)));
    if (raw == nullptr) continue;
    if (raw->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      if (raw->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
        spdlog::warn("read {}: {}", topic, rd_kafka_message_errstr(raw.get()));
      }
      continue;
    }
    const auto end = end_offsets.find(raw->partition);
    if (end == end_offsets.end() || raw->offset >= end->second) continue;  // newer than the call
    next_offsets[raw->partition] = raw->offset + 1;
    by_partition[raw->partition].push_back(ToMessage(*raw));
  }
  rd_kafka_consumer_close(rk);

  std::vector<Message> messages;
  for (auto& [partition, partition_messages] : by_partition) {
    for (Message& message : partition_messages) messages.push_back(std::move(message));
  }
  return messages;
}

}  // namespace crm::kafka
