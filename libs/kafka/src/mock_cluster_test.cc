#include "crm/kafka/mock_cluster.h"

#include <memory>
#include <vector>

#include "absl/strings/str_split.h"
#include "crm/testing/testing.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace crm::kafka {
namespace {

using ::crm::testing::IsOk;
using ::crm::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::Field;
using ::testing::SizeIs;

// Suite names carry the module in lower case: ctest -R filters are case-sensitive.

std::unique_ptr<MockCluster> StartCluster(int brokers) {
  absl::StatusOr<std::unique_ptr<MockCluster>> cluster = MockCluster::Start(brokers);
  EXPECT_THAT(cluster, IsOk());
  return cluster.ok() ? *std::move(cluster) : nullptr;
}

TEST(mock_cluster, RefusesZeroBrokers) {
  EXPECT_THAT(MockCluster::Start(0), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(mock_cluster, ListensOnLoopbackPerBroker) {
  std::unique_ptr<MockCluster> cluster = StartCluster(3);
  ASSERT_NE(cluster, nullptr);
  const std::vector<std::string> servers = absl::StrSplit(cluster->bootstrap_servers(), ',');
  EXPECT_THAT(servers, SizeIs(3));
  for (const std::string& server : servers) {
    EXPECT_TRUE(server.rfind("127.0.0.1:", 0) == 0 || server.rfind("localhost:", 0) == 0) << server;
  }
  EXPECT_THAT(cluster->Brokers(),
              ElementsAre(Field(&BrokerState::id, 1), Field(&BrokerState::id, 2),
                          Field(&BrokerState::id, 3)));
}

TEST(mock_cluster, CreatesTopicsWithinBrokerCount) {
  std::unique_ptr<MockCluster> cluster = StartCluster(2);
  ASSERT_NE(cluster, nullptr);
  EXPECT_THAT(cluster->CreateTopic("crm.test.events.v1", 3, 2), IsOk());
  EXPECT_THAT(cluster->CreateTopic("crm.test.other.v1", 3, 3),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(cluster->CreateTopic("crm.test.other.v1", 0, 1),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(cluster->CreateTopic("", 1, 1), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(mock_cluster, TracksBrokerStateAndLatency) {
  std::unique_ptr<MockCluster> cluster = StartCluster(3);
  ASSERT_NE(cluster, nullptr);
  ASSERT_THAT(cluster->SetBrokerDown(2), IsOk());
  ASSERT_THAT(cluster->SetBrokerRtt(3, absl::Milliseconds(25)), IsOk());
  EXPECT_THAT(cluster->Brokers(),
              ElementsAre(Field(&BrokerState::up, true), Field(&BrokerState::up, false),
                          Field(&BrokerState::up, true)));
  EXPECT_EQ(cluster->Brokers()[2].rtt, absl::Milliseconds(25));

  ASSERT_THAT(cluster->SetAllBrokersDown(), IsOk());
  for (const BrokerState& broker : cluster->Brokers()) EXPECT_FALSE(broker.up) << broker.id;
  ASSERT_THAT(cluster->SetAllBrokersUp(), IsOk());
  for (const BrokerState& broker : cluster->Brokers()) EXPECT_TRUE(broker.up) << broker.id;
  ASSERT_THAT(cluster->SetAllBrokersRtt(absl::ZeroDuration()), IsOk());
  for (const BrokerState& broker : cluster->Brokers()) {
    EXPECT_EQ(broker.rtt, absl::ZeroDuration()) << broker.id;
  }
}

TEST(mock_cluster, RefusesUnknownBrokersAndBadLatency) {
  std::unique_ptr<MockCluster> cluster = StartCluster(1);
  ASSERT_NE(cluster, nullptr);
  EXPECT_THAT(cluster->SetBrokerDown(0), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(cluster->SetBrokerUp(2), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(cluster->SetBrokerRtt(1, absl::Milliseconds(-1)),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

}  // namespace
}  // namespace crm::kafka
