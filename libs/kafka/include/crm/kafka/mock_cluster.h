#pragma once

// librdkafka's built-in mock Kafka cluster, hosted in this process: real Kafka protocol on
// loopback listeners, consumer groups, and fault injection (brokers down/up, latency,
// request errors). Tests use it in-process; tools/devbroker hosts one in its own process.
// The cluster lives exactly as long as this object (and its host process).

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "crm/kafka/client_config.h"

namespace crm::kafka {

// Kafka protocol request types, for error injection.
enum class ApiKey : int16_t {
  kProduce = 0,
  kFetch = 1,
  kListOffsets = 2,
  kMetadata = 3,
  kOffsetCommit = 8,
  kOffsetFetch = 9,
  kFindCoordinator = 10,
  kJoinGroup = 11,
  kHeartbeat = 12,
  kLeaveGroup = 13,
  kSyncGroup = 14,
  kInitProducerId = 22,
};

struct BrokerState {
  int32_t id = 0;
  bool up = true;
  absl::Duration rtt = absl::ZeroDuration();
};

class MockCluster {
 public:
  // Brokers get ids 1..broker_count and listen on ephemeral loopback ports.
  static absl::StatusOr<std::unique_ptr<MockCluster>> Start(int broker_count);
  ~MockCluster();
  MockCluster(const MockCluster&) = delete;
  MockCluster& operator=(const MockCluster&) = delete;

  // Comma-separated host:port list for `bootstrap.servers`.
  const std::string& bootstrap_servers() const { return bootstrap_servers_; }
  int broker_count() const { return broker_count_; }

  // replication_factor must not exceed broker_count().
  absl::Status CreateTopic(std::string_view name, int partitions, int replication_factor);

  // Moves a partition's leadership (tests that need to know which broker leads what).
  absl::Status SetPartitionLeader(std::string_view topic, int32_t partition, int32_t broker_id);

  // A down broker drops its connections and refuses new ones; partition leadership does not
  // move (as with a real broker that is unreachable, not decommissioned).
  absl::Status SetBrokerDown(int32_t broker_id);
  absl::Status SetBrokerUp(int32_t broker_id);
  absl::Status SetAllBrokersDown();
  absl::Status SetAllBrokersUp();
  // Added delay on every response of the broker.
  absl::Status SetBrokerRtt(int32_t broker_id, absl::Duration rtt);
  absl::Status SetAllBrokersRtt(absl::Duration rtt);

  // The next errors.size() requests of this type, to any broker, fail with these errors in
  // order. RD_KAFKA_RESP_ERR__TRANSPORT makes the broker drop the connection instead.
  void PushRequestErrors(ApiKey api_key, const std::vector<rd_kafka_resp_err_t>& errors);
  void ClearRequestErrors(ApiKey api_key);

  std::vector<BrokerState> Brokers() const;

  // The raw handle, for fault injection this class does not wrap.
  rd_kafka_mock_cluster_t* raw() const { return cluster_; }

 private:
  MockCluster(ClientPtr host, rd_kafka_mock_cluster_t* cluster, int broker_count);
  absl::Status CheckBrokerId(int32_t broker_id) const;
  absl::Status SetBrokersDown(int32_t broker_id, bool down);  // -1 = all
  absl::Status SetBrokersRtt(int32_t broker_id, absl::Duration rtt);
  // Runs a command against the mock's thread; see the .cc for why it needs help waking up.
  template <typename Fn>
  auto Command(Fn fn) const;

  ClientPtr host_;  // the cluster's owner; must outlive cluster_
  rd_kafka_mock_cluster_t* cluster_;
  const int broker_count_;
  const std::string bootstrap_servers_;
  const std::vector<int> listener_ports_;  // poked to wake the mock thread

  // The mock has no getters, so its state as set through this object is kept here.
  mutable absl::Mutex mu_;
  std::vector<BrokerState> brokers_ ABSL_GUARDED_BY(mu_);
};

}  // namespace crm::kafka
