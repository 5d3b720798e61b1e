#pragma once

// Consumer-group helper for effectively-once projections. Kafka never stores this group's
// offsets: the caller writes "next offset" records into its OWN RocksDB WriteBatch together
// with the state it derives from the messages, and on every partition assignment this helper
// asks the caller where to resume (offset loader). Duplicates the relay re-publishes are then
// skipped by stream_version (CheckStreamVersion).
//
//   auto consumer = Consumer::Create({.bootstrap_servers = ..., .group_id = "metrics",
//                                     .topics = {"crm.contact.events.v1"},
//                                     .offset_loader = LoadFromMyDb});
//   for (;;) {
//     CRM_ASSIGN_OR_RETURN(auto batch, (*consumer)->Poll(500, absl::Milliseconds(100)));
//     rocksdb::WriteBatch wb;
//     for (const Message& m : batch) {
//       ... apply m to wb (skip by stream_version) ...
//       wb.Put(OffsetRecordKey(m.topic, m.partition), EncodeOffsetRecord(m.offset + 1));
//     }
//     db->Write(sync_options, &wb);
//   }

#include <librdkafka/rdkafka.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "crm/kafka/client_config.h"
#include "crm/kafka/producer.h"

namespace crm::kafka {

struct Message {
  std::string topic;
  int32_t partition = -1;
  int64_t offset = -1;
  std::string key;
  std::string value;
  Headers headers;
  absl::Time timestamp;  // the record's timestamp (producer create time by default)

  // The first header called `name`, if any.
  std::optional<std::string_view> Header(std::string_view name) const;
};

struct TopicPartition {
  std::string topic;
  int32_t partition = -1;
  friend bool operator==(const TopicPartition&, const TopicPartition&) = default;
};

// Where to resume a partition: the caller's stored next offset (last applied + 1), nullopt
// when it has none (read from the beginning), or an error (the consumer then stops: Poll()
// returns it).
using OffsetLoader = std::function<absl::StatusOr<std::optional<int64_t>>(std::string_view topic,
                                                                          int32_t partition)>;

struct ConsumerOptions {
  std::string bootstrap_servers;
  std::string group_id;
  std::vector<std::string> topics;
  OffsetLoader offset_loader;
  std::string client_id = "crm";
  // Applied after the defaults (enable.auto.commit=false, enable.auto.offset.store=false,
  // auto.offset.reset=earliest, fetch.wait.max.ms=5).
  Settings settings;
};

// How far a consumer is behind, refreshed by each Poll(). Lag is the partition's high
// watermark (as last fetched) minus the next offset this consumer will return.
struct PartitionLag {
  std::string topic;
  int32_t partition = -1;
  int64_t lag = 0;
};
struct ConsumerStats {
  std::vector<PartitionLag> partitions;
  uint64_t messages = 0;  // returned by Poll() so far
};

// Used from one thread: the one that polls. Stats() may be called from any thread.
class Consumer {
 public:
  static absl::StatusOr<std::unique_ptr<Consumer>> Create(ConsumerOptions options);
  // Leaves the group (Close()).
  ~Consumer();
  Consumer(const Consumer&) = delete;
  Consumer& operator=(const Consumer&) = delete;

  // Up to max_messages messages, waiting at most `timeout` for the first one; an empty batch
  // when none came. Rebalances run inside Poll() (the offset loader is called from here).
  // Transient errors (brokers down) are logged, not returned; an error means this consumer
  // is unusable (fatal client error, or the offset loader failed) and must be recreated.
  absl::StatusOr<std::vector<Message>> Poll(size_t max_messages, absl::Duration timeout);

  ConsumerStats Stats() const;

  // The partitions currently assigned to this member.
  std::vector<TopicPartition> Assignment() const;

  // A setting as the live client uses it.
  absl::StatusOr<std::string> GetSetting(std::string_view name) const;

  // Leaves the group so the partitions move to other members at once. Idempotent.
  absl::Status Close();

 private:
  explicit Consumer(ConsumerOptions options);
  static void OnRebalance(rd_kafka_t* client, rd_kafka_resp_err_t err,
                          rd_kafka_topic_partition_list_t* partitions, void* opaque);
  void Rebalance(rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t* partitions);

  ConsumerOptions options_;
  ClientPtr client_;
  bool closed_ = false;
  absl::Status error_;  // sticky: set from the rebalance callback, returned by Poll()

  void RefreshStats(size_t returned);
  mutable absl::Mutex stats_mu_;
  ConsumerStats stats_ ABSL_GUARDED_BY(stats_mu_);
};

// --- Helpers for the caller's offset records --------------------------------------------

// Key of the caller's record holding the next offset of one partition:
// "kafka.offset/<topic>/<partition>".
std::string OffsetRecordKey(std::string_view topic, int32_t partition);
// The record value: the next offset to read (last applied + 1), as decimal text.
std::string EncodeOffsetRecord(int64_t next_offset);
absl::StatusOr<int64_t> DecodeOffsetRecord(std::string_view value);

// How a consumer treats an event of a stream it has applied up to `applied_version`
// (0 = nothing yet). A gap means an earlier event of the stream failed delivery while a later
// one got through; the relay rewinds and publishes the stream again in order, so the event is
// skipped now and applied when it comes back after its predecessor.
enum class VersionCheck { kApply, kDuplicate, kGap };
VersionCheck CheckStreamVersion(int64_t applied_version, int64_t event_version);

// Reads every record currently in `topic` (up to each partition's high watermark at the time
// of the call), partition by partition in offset order, without joining a consumer group.
// For tests, tools and audits that must not disturb a group.
absl::StatusOr<std::vector<Message>> ReadTopic(const std::string& bootstrap_servers,
                                               const std::string& topic, absl::Duration timeout,
                                               const Settings& settings = {});

}  // namespace crm::kafka
