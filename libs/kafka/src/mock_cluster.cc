#include "crm/kafka/mock_cluster.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>
#include <thread>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/notification.h"

namespace crm::kafka {
namespace {

// The listener ports in "127.0.0.1:1234,127.0.0.1:1235".
std::vector<int> ListenerPorts(std::string_view bootstrap_servers) {
  std::vector<int> ports;
  for (absl::string_view server : absl::StrSplit(AsAbsl(bootstrap_servers), ',')) {
    const size_t colon = server.rfind(':');
    int port = 0;
    if (colon != absl::string_view::npos && absl::SimpleAtoi(server.substr(colon + 1), &port)) {
      ports.push_back(port);
    }
  }
  return ports;
}

// Opens and closes a loopback connection to a mock listener: any socket event wakes the mock
// cluster's thread, which then serves its queued commands.
void Poke(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return;
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<uint16_t>(port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  (void)::connect(fd, reinterpret_cast<const sockaddr*>(&address), sizeof(address));
  ::close(fd);
}

}  // namespace

// librdkafka 2.0's mock thread can miss the wake-up of a command queued right after the
// previous one was served (its queue's "wake-up sent" flag and wake-up pipe get out of step)
// and then sleeps up to a second before serving it: commands randomly took ~1 s. While a
// command is pending, a helper opens a loopback connection to a listener every few
// milliseconds (to every broker: a down broker's port refuses connections without waking
// anything); the socket event wakes the mock thread, which then serves the command. With all
// brokers down nothing can be poked and a command may still take up to a second.
// (Destroying the cluster can still take ~1 s when clients disconnected just before: the
// mock joins an internal broker thread that only notices at its next tick.)
template <typename Fn>
auto MockCluster::Command(Fn fn) const {
  absl::Notification done;
  std::thread poker([&done, this] {
    while (!done.WaitForNotificationWithTimeout(absl::Milliseconds(5))) {
      for (int port : listener_ports_) Poke(port);
    }
  });
  auto result = fn();
  done.Notify();
  poker.join();
  return result;
}

absl::StatusOr<std::unique_ptr<MockCluster>> MockCluster::Start(int broker_count) {
  if (broker_count < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("broker_count: must be at least 1, got ", broker_count));
  }
  // The host handle only does the cluster's book-keeping; it never connects anywhere, so the
  // "no bootstrap.servers" notice is silenced by the log level.
  ConfPtr conf = NewConf();
  if (absl::Status status = SetSetting(conf.get(), "log_level", "3"); !status.ok()) return status;
  if (absl::Status status = SetSetting(conf.get(), "client.id", "crm-mock-cluster"); !status.ok()) {
    return status;
  }
  absl::StatusOr<ClientPtr> host = NewClient(RD_KAFKA_PRODUCER, std::move(conf));
  if (!host.ok()) return host.status();
  rd_kafka_mock_cluster_t* cluster = rd_kafka_mock_cluster_new(host->get(), broker_count);
  if (cluster == nullptr) {
    return absl::InternalError("rd_kafka_mock_cluster_new failed (could not bind listeners?)");
  }
  return std::unique_ptr<MockCluster>(new MockCluster(*std::move(host), cluster, broker_count));
}

MockCluster::MockCluster(ClientPtr host, rd_kafka_mock_cluster_t* cluster, int broker_count)
    : host_(std::move(host)),
      cluster_(cluster),
      broker_count_(broker_count),
      bootstrap_servers_(rd_kafka_mock_cluster_bootstraps(cluster)),
      listener_ports_(ListenerPorts(bootstrap_servers_)) {
  for (int32_t id = 1; id <= broker_count; ++id) brokers_.push_back(BrokerState{.id = id});
}

MockCluster::~MockCluster() {
  Command([this] {
    rd_kafka_mock_cluster_destroy(cluster_);
    return 0;
  });
  host_.reset();
}

absl::Status MockCluster::CreateTopic(std::string_view name, int partitions,
                                      int replication_factor) {
  if (name.empty()) return absl::InvalidArgumentError("topic: must not be empty");
  if (partitions < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("partitions: must be at least 1, got ", partitions));
  }
  if (replication_factor < 1 || replication_factor > broker_count_) {
    return absl::InvalidArgumentError(absl::StrCat("replication_factor: must be in [1, ",
                                                   broker_count_, "], got ", replication_factor));
  }
  const std::string topic(name);
  return KafkaError(Command([&] {
                      return rd_kafka_mock_topic_create(cluster_, topic.c_str(), partitions,
                                                        replication_factor);
                    }),
                    absl::StrCat("create topic ", AsAbsl(name)));
}

absl::Status MockCluster::SetPartitionLeader(std::string_view topic, int32_t partition,
                                             int32_t broker_id) {
  if (absl::Status status = CheckBrokerId(broker_id); !status.ok()) return status;
  const std::string topic_str(topic);
  return KafkaError(Command([&] {
                      return rd_kafka_mock_partition_set_leader(cluster_, topic_str.c_str(),
                                                                partition, broker_id);
                    }),
                    absl::StrCat("leader of ", AsAbsl(topic), "[", partition, "]"));
}

absl::Status MockCluster::CheckBrokerId(int32_t broker_id) const {
  if (broker_id < 1 || broker_id > broker_count_) {
    return absl::NotFoundError(
        absl::StrCat("broker ", broker_id, ": no such broker (ids are 1..", broker_count_, ")"));
  }
  return absl::OkStatus();
}

absl::Status MockCluster::SetBrokersDown(int32_t broker_id, bool down) {
  absl::MutexLock lock(&mu_);
  const rd_kafka_resp_err_t err = Command([&] {
    return down ? rd_kafka_mock_broker_set_down(cluster_, broker_id)
                : rd_kafka_mock_broker_set_up(cluster_, broker_id);
  });
  if (absl::Status status =
          KafkaError(err, absl::StrCat("broker ", broker_id, down ? " down" : " up"));
      !status.ok()) {
    return status;
  }
  for (BrokerState& broker : brokers_) {
    if (broker_id == -1 || broker.id == broker_id) broker.up = !down;
  }
  return absl::OkStatus();
}

absl::Status MockCluster::SetBrokerDown(int32_t broker_id) {
  if (absl::Status status = CheckBrokerId(broker_id); !status.ok()) return status;
  return SetBrokersDown(broker_id, true);
}

absl::Status MockCluster::SetBrokerUp(int32_t broker_id) {
  if (absl::Status status = CheckBrokerId(broker_id); !status.ok()) return status;
  return SetBrokersDown(broker_id, false);
}

absl::Status MockCluster::SetAllBrokersDown() { return SetBrokersDown(-1, true); }

absl::Status MockCluster::SetAllBrokersUp() { return SetBrokersDown(-1, false); }

absl::Status MockCluster::SetBrokersRtt(int32_t broker_id, absl::Duration rtt) {
  if (rtt < absl::ZeroDuration() || rtt > absl::Hours(1)) {
    return absl::InvalidArgumentError(
        absl::StrCat("rtt: must be in [0, 1h], got ", absl::FormatDuration(rtt)));
  }
  const int rtt_ms = static_cast<int>(absl::ToInt64Milliseconds(rtt));
  absl::MutexLock lock(&mu_);
  const rd_kafka_resp_err_t err =
      Command([&] { return rd_kafka_mock_broker_set_rtt(cluster_, broker_id, rtt_ms); });
  if (absl::Status status = KafkaError(err, absl::StrCat("broker ", broker_id, " rtt"));
      !status.ok()) {
    return status;
  }
  for (BrokerState& broker : brokers_) {
    if (broker_id == -1 || broker.id == broker_id) broker.rtt = absl::Milliseconds(rtt_ms);
  }
  return absl::OkStatus();
}

absl::Status MockCluster::SetBrokerRtt(int32_t broker_id, absl::Duration rtt) {
  if (absl::Status status = CheckBrokerId(broker_id); !status.ok()) return status;
  return SetBrokersRtt(broker_id, rtt);
}

absl::Status MockCluster::SetAllBrokersRtt(absl::Duration rtt) { return SetBrokersRtt(-1, rtt); }

void MockCluster::PushRequestErrors(ApiKey api_key,
                                    const std::vector<rd_kafka_resp_err_t>& errors) {
  Command([&] {
    rd_kafka_mock_push_request_errors_array(cluster_, static_cast<int16_t>(api_key), errors.size(),
                                            errors.data());
    return 0;
  });
}

void MockCluster::ClearRequestErrors(ApiKey api_key) {
  Command([&] {
    rd_kafka_mock_clear_request_errors(cluster_, static_cast<int16_t>(api_key));
    return 0;
  });
}

std::vector<BrokerState> MockCluster::Brokers() const {
  absl::MutexLock lock(&mu_);
  return brokers_;
}

}  // namespace crm::kafka
