#include "crm/kafka/relay.h"

#include <algorithm>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "crm/common/time.h"
#include "crm/eventstore/event_store.h"
#include "crm/kafka/consumer.h"
#include "crm/kafka/mock_cluster.h"
#include "crm/testing/testing.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace crm::kafka {
namespace {

using ::crm::eventstore::AppendRequest;
using ::crm::eventstore::EventEnvelope;
using ::crm::eventstore::EventStore;
using ::crm::testing::IsOk;
using ::crm::testing::IsOkAndHolds;
using ::crm::testing::StatusIs;
using ::crm::testing::TempDir;
using ::crm::testing::WaitFor;
using ::testing::Each;
using ::testing::ElementsAreArray;
using ::testing::Gt;
using ::testing::Le;

constexpr char kTopic[] = "crm.test.events.v1";
const absl::Time kOccurredAt = absl::FromUnixSeconds(1'790'000'000);

// What a projection sees when it applies the topic in order and skips by stream_version.
struct Applied {
  std::map<std::string, int64_t> head;  // stream -> last applied version
  std::multiset<int64_t> positions;     // every position on the topic, duplicates included
  std::set<int64_t> applied_positions;
  int duplicates = 0;
  int gaps = 0;
};

Applied Apply(const std::vector<Message>& messages) {
  Applied applied;
  for (const Message& message : messages) {
    EventEnvelope event;
    EXPECT_TRUE(event.ParseFromString(message.value));
    EXPECT_EQ(message.key, event.stream_id());
    applied.positions.insert(event.position());
    int64_t& head = applied.head[event.stream_id()];
    switch (CheckStreamVersion(head, event.stream_version())) {
      case VersionCheck::kApply:
        head = event.stream_version();
        applied.applied_positions.insert(event.position());
        break;
      case VersionCheck::kDuplicate:
        ++applied.duplicates;
        break;
      case VersionCheck::kGap:
        ++applied.gaps;
        break;
    }
  }
  return applied;
}

std::vector<int64_t> Range(int64_t first, int64_t last) {
  std::vector<int64_t> range;
  for (int64_t i = first; i <= last; ++i) range.push_back(i);
  return range;
}

class RelayTest : public ::testing::Test {
 protected:
  void StartCluster(int brokers, int partitions) {
    absl::StatusOr<std::unique_ptr<MockCluster>> cluster = MockCluster::Start(brokers);
    ASSERT_THAT(cluster, IsOk());
    cluster_ = *std::move(cluster);
    ASSERT_THAT(cluster_->CreateTopic(kTopic, partitions, brokers), IsOk());
  }

  void SetUp() override {
    // Durability is the event store's concern and tested there; fsyncs only slow this down.
    absl::StatusOr<std::unique_ptr<EventStore>> store =
        EventStore::Open(dir_.Sub("store"), eventstore::Options{.sync = false});
    ASSERT_THAT(store, IsOk());
    store_ = *std::move(store);
  }

  RelayOptions Options(Settings extra = {}) {
    Settings settings = {{"reconnect.backoff.ms", "10"}, {"reconnect.backoff.max.ms", "100"}};
    for (auto& [name, value] : extra) settings[name] = value;
    return RelayOptions{.topic = kTopic,
                        .producer = {.bootstrap_servers = cluster_->bootstrap_servers(),
                                     .settings = std::move(settings)},
                        .stop_timeout = absl::Seconds(5),
                        .min_retry_backoff = absl::Milliseconds(10),
                        .max_retry_backoff = absl::Milliseconds(200)};
  }

  void StartRelay(RelayOptions options) {
    absl::StatusOr<std::unique_ptr<Relay>> relay = Relay::Start(store_.get(), std::move(options));
    ASSERT_THAT(relay, IsOk());
    relay_ = *std::move(relay);
  }

  // Appends `per_stream` events to each of `streams` streams, interleaving the streams in
  // requests of `batch` events; returns the last position.
  int64_t Append(int streams, int per_stream, int batch = 1, const std::string& prefix = "s-") {
    int64_t last = 0;
    for (int done = 0; done < per_stream; done += batch) {
      for (int s = 0; s < streams; ++s) {
        AppendRequest request{.stream_id = absl::StrCat(prefix, s), .stream_type = "test"};
        for (int i = done; i < std::min(done + batch, per_stream); ++i) {
          EventEnvelope& event = request.events.emplace_back();
          event.mutable_payload()->set_type_url("type.googleapis.com/crm.test.v1.Happened");
          event.mutable_payload()->set_value(std::string(100, 'x'));
          *event.mutable_occurred_at() = ToProto(kOccurredAt);
        }
        absl::StatusOr<eventstore::AppendResult> result = store_->Append(std::move(request));
        EXPECT_THAT(result, IsOk());
        if (result.ok()) last = result->last_position;
      }
    }
    return last;
  }

  std::vector<Message> ReadAll() {
    absl::StatusOr<std::vector<Message>> messages =
        ReadTopic(cluster_->bootstrap_servers(), kTopic, absl::Seconds(20));
    EXPECT_THAT(messages, IsOk());
    return messages.ok() ? *std::move(messages) : std::vector<Message>{};
  }

  // Every stream fully applied, every position on the topic at least once.
  void ExpectNothingLost(int streams, int per_stream, int64_t last,
                         const std::string& prefix = "s-") {
    const Applied applied = Apply(ReadAll());
    for (int s = 0; s < streams; ++s) {
      EXPECT_EQ(applied.head.at(absl::StrCat(prefix, s)), per_stream) << prefix << s;
    }
    EXPECT_THAT(applied.applied_positions, ElementsAreArray(Range(1, last)));
  }

  TempDir dir_;
  std::unique_ptr<MockCluster> cluster_;
  std::unique_ptr<EventStore> store_;
  std::unique_ptr<Relay> relay_;  // destroyed first
};
// Suite names carry the module in lower case: ctest -R filters are case-sensitive.
using relay = RelayTest;

TEST_F(relay, StartRefusesBadOptions) {
  StartCluster(1, 1);
  RelayOptions no_topic = Options();
  no_topic.topic.clear();
  EXPECT_THAT(Relay::Start(store_.get(), no_topic), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(Relay::Start(store_.get(), Options({{"acks", "1"}})),
              StatusIs(absl::StatusCode::kInvalidArgument));
  RelayOptions no_window = Options();
  no_window.max_in_flight = 0;
  EXPECT_THAT(Relay::Start(store_.get(), no_window), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST_F(relay, PublishesEveryEventOnceInStreamOrder) {
  StartCluster(1, 3);
  const int64_t backlog = Append(20, 5, /*batch=*/5);  // waiting before the relay starts
  ASSERT_EQ(backlog, 100);
  ASSERT_NO_FATAL_FAILURE(StartRelay(Options()));
  const int64_t last = Append(20, 25, /*batch=*/3, "s-");  // live, while it publishes
  ASSERT_EQ(last, 600);
  ASSERT_THAT(relay_->WaitForCheckpoint(last, absl::Seconds(30)), IsOk());

  const std::vector<Message> messages = ReadAll();
  ASSERT_EQ(messages.size(), 600u);
  std::map<std::string, std::vector<int64_t>> versions;
  std::vector<int64_t> positions;
  for (const Message& message : messages) {
    EventEnvelope event;
    ASSERT_TRUE(event.ParseFromString(message.value));
    EXPECT_EQ(message.key, event.stream_id());
    EXPECT_EQ(message.Header(kEventTypeHeader),
              std::optional<std::string_view>("crm.test.v1.Happened"));
    EXPECT_EQ(message.Header(kEventIdHeader), std::optional<std::string_view>(event.event_id()));
    versions[event.stream_id()].push_back(event.stream_version());
    positions.push_back(event.position());
  }
  ASSERT_EQ(versions.size(), 20u);
  for (const auto& [stream, stream_versions] : versions) {
    EXPECT_THAT(stream_versions, ElementsAreArray(Range(1, 30))) << stream;
  }
  std::sort(positions.begin(), positions.end());
  EXPECT_THAT(positions, ElementsAreArray(Range(1, 600)));

  const RelayStats stats = relay_->Stats();
  EXPECT_EQ(stats.checkpoint, 600);
  EXPECT_EQ(stats.last_position, 600);
  EXPECT_EQ(stats.lag_events, 0);
  EXPECT_EQ(stats.lag, absl::ZeroDuration());
  EXPECT_EQ(stats.produced, 600u);
  EXPECT_EQ(stats.delivered, 600u);
  EXPECT_EQ(stats.errors, 0u);
  EXPECT_EQ(stats.rewinds, 0u);
  EXPECT_THAT(store_->GetCheckpoint("relay"), IsOkAndHolds(600));
}

TEST_F(relay, BrokersDownWhileAppendingLosesNothing) {
  StartCluster(3, 3);
  ASSERT_NO_FATAL_FAILURE(StartRelay(Options()));
  const int64_t before = Append(10, 5);
  ASSERT_THAT(relay_->WaitForCheckpoint(before, absl::Seconds(30)), IsOk());

  ASSERT_THAT(cluster_->SetAllBrokersDown(), IsOk());
  const int64_t last = Append(10, 20, /*batch=*/2, "t-");
  EXPECT_THAT(relay_->WaitForCheckpoint(last, absl::Milliseconds(300)),
              StatusIs(absl::StatusCode::kDeadlineExceeded));
  RelayStats stats = relay_->Stats();
  EXPECT_LT(stats.checkpoint, last);
  EXPECT_EQ(stats.lag_events, last - stats.checkpoint);
  EXPECT_GT(stats.lag, absl::ZeroDuration());

  ASSERT_THAT(cluster_->SetAllBrokersUp(), IsOk());
  ASSERT_THAT(relay_->WaitForCheckpoint(last, absl::Seconds(30)), IsOk());
  EXPECT_EQ(relay_->Stats().lag_events, 0);
  ExpectNothingLost(10, 20, last, "t-");
}

TEST_F(relay, TimedOutDeliveriesAreRepublished) {
  StartCluster(1, 3);
  ASSERT_NO_FATAL_FAILURE(StartRelay(Options({{"message.timeout.ms", "300"}})));
  ASSERT_THAT(cluster_->SetAllBrokersDown(), IsOk());
  const int64_t last = Append(10, 10);
  // Every record times out at least once, is reported as failed and must come back.
  ASSERT_TRUE(WaitFor([&] {
    const RelayStats stats = relay_->Stats();
    return stats.errors > 0 && stats.rewinds > 0;
  }));
  ASSERT_THAT(cluster_->SetAllBrokersUp(), IsOk());
  ASSERT_THAT(relay_->WaitForCheckpoint(last, absl::Seconds(30)), IsOk());
  ExpectNothingLost(10, 10, last);
}

TEST_F(relay, RejectedProducesAreRetried) {
  StartCluster(1, 3);
  ASSERT_NO_FATAL_FAILURE(StartRelay(Options()));
  // Not retriable inside librdkafka, so the records fail back to the relay.
  cluster_->PushRequestErrors(ApiKey::kProduce, {RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED,
                                                 RD_KAFKA_RESP_ERR_INVALID_REQUIRED_ACKS,
                                                 RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED});
  const int64_t last = Append(10, 10);
  ASSERT_THAT(relay_->WaitForCheckpoint(last, absl::Seconds(30)), IsOk());
  const RelayStats stats = relay_->Stats();
  EXPECT_GT(stats.errors, 0u);
  EXPECT_GT(stats.rewinds, 0u);
  ExpectNothingLost(10, 10, last);
}

TEST_F(relay, FatalProducerErrorReplacesTheProducer) {
  StartCluster(1, 3);
  ASSERT_NO_FATAL_FAILURE(StartRelay(Options()));
  const int64_t first = Append(5, 4);
  ASSERT_THAT(relay_->WaitForCheckpoint(first, absl::Seconds(30)), IsOk());
  relay_->InjectFatalErrorForTesting();
  ASSERT_TRUE(WaitFor([&] { return relay_->Stats().producer_restarts == 1; }));
  const int64_t last = Append(5, 8, /*batch=*/4);
  ASSERT_THAT(relay_->WaitForCheckpoint(last, absl::Seconds(30)), IsOk());
  ExpectNothingLost(5, 12, last);
}

TEST_F(relay, CheckpointCoversOnlyTheConfirmedPrefix) {
  StartCluster(2, 2);
  // Partition 0 on broker 1, partition 1 on broker 2; broker 1 goes down, so records keyed
  // to partition 0 wait while later ones on partition 1 are confirmed.
  ASSERT_THAT(cluster_->SetPartitionLeader(kTopic, 0, 1), IsOk());
  ASSERT_THAT(cluster_->SetPartitionLeader(kTopic, 1, 2), IsOk());
  ASSERT_NO_FATAL_FAILURE(StartRelay(Options()));
  ASSERT_THAT(cluster_->SetBrokerDown(1), IsOk());
  const int64_t last = Append(40, 1);

  // Some position beyond the checkpoint confirmed: delivered counts distinct positions here.
  ASSERT_TRUE(WaitFor([&] {
    const RelayStats stats = relay_->Stats();
    return stats.delivered > static_cast<uint64_t>(stats.checkpoint);
  }));
  const RelayStats during = relay_->Stats();
  absl::StatusOr<int64_t> persisted = store_->GetCheckpoint("relay");
  ASSERT_THAT(persisted, IsOk());

  ASSERT_THAT(cluster_->SetBrokerUp(1), IsOk());
  ASSERT_THAT(relay_->WaitForCheckpoint(last, absl::Seconds(30)), IsOk());
  int64_t first_on_partition_0 = last + 1;
  int64_t on_partition_1 = 0;
  for (const Message& message : ReadAll()) {
    EventEnvelope event;
    ASSERT_TRUE(event.ParseFromString(message.value));
    if (message.partition == 0) {
      first_on_partition_0 = std::min(first_on_partition_0, event.position());
    } else {
      ++on_partition_1;
    }
  }
  ASSERT_LE(first_on_partition_0, last) << "no event was keyed to the broker that was down";
  ASSERT_GT(on_partition_1, 0);
  EXPECT_LT(during.checkpoint, first_on_partition_0);
  EXPECT_LT(*persisted, first_on_partition_0);
  ExpectNothingLost(40, 1, last);
}

TEST_F(relay, InFlightIsBounded) {
  StartCluster(1, 3);
  RelayOptions options = Options();
  options.max_in_flight = 16;
  options.read_batch = 5;
  ASSERT_NO_FATAL_FAILURE(StartRelay(std::move(options)));
  ASSERT_THAT(cluster_->SetAllBrokersDown(), IsOk());
  const int64_t last = Append(10, 10);
  ASSERT_TRUE(WaitFor([&] { return relay_->Stats().produced == 16; }));
  // It stays at the bound until deliveries are confirmed.
  EXPECT_THAT(relay_->WaitForCheckpoint(1, absl::Milliseconds(200)),
              StatusIs(absl::StatusCode::kDeadlineExceeded));
  EXPECT_EQ(relay_->Stats().produced, 16u);
  EXPECT_EQ(relay_->Stats().in_flight, 16);

  ASSERT_THAT(cluster_->SetAllBrokersUp(), IsOk());
  ASSERT_THAT(relay_->WaitForCheckpoint(last, absl::Seconds(30)), IsOk());
  ExpectNothingLost(10, 10, last);
}

TEST_F(relay, RestartRepublishesOnlyFromTheCheckpoint) {
  StartCluster(1, 3);
  ASSERT_NO_FATAL_FAILURE(StartRelay(Options()));
  const int64_t first = Append(10, 10);
  ASSERT_THAT(relay_->WaitForCheckpoint(first, absl::Seconds(30)), IsOk());
  ASSERT_THAT(relay_->Stop(), IsOk());
  relay_.reset();
  ASSERT_THAT(store_->GetCheckpoint("relay"), IsOkAndHolds(first));

  // Appended while no relay runs; the next one starts after the checkpoint.
  const int64_t last = Append(10, 5, /*batch=*/1, "u-");
  ASSERT_NO_FATAL_FAILURE(StartRelay(Options()));
  ASSERT_THAT(relay_->WaitForCheckpoint(last, absl::Seconds(30)), IsOk());
  EXPECT_EQ(relay_->Stats().produced, static_cast<uint64_t>(last - first));

  const Applied applied = Apply(ReadAll());
  for (int64_t position = 1; position <= last; ++position) {
    EXPECT_EQ(applied.positions.count(position), 1u) << position;
  }
  EXPECT_EQ(applied.duplicates, 0);
}

TEST_F(relay, StopWithBrokersDownKeepsTheConfirmedCheckpoint) {
  StartCluster(1, 3);
  RelayOptions options = Options();
  options.stop_timeout = absl::Milliseconds(200);
  ASSERT_NO_FATAL_FAILURE(StartRelay(options));
  const int64_t confirmed = Append(5, 4);
  ASSERT_THAT(relay_->WaitForCheckpoint(confirmed, absl::Seconds(30)), IsOk());
  ASSERT_THAT(cluster_->SetAllBrokersDown(), IsOk());
  const int64_t last = Append(5, 4, /*batch=*/2);
  ASSERT_TRUE(WaitFor([&] { return relay_->Stats().produced == static_cast<uint64_t>(last); }));

  // Bounded: gives up after stop_timeout, keeps the confirmed prefix only.
  EXPECT_THAT(relay_->Stop(), StatusIs(absl::StatusCode::kDeadlineExceeded));
  EXPECT_THAT(relay_->WaitForCheckpoint(last, absl::Seconds(1)),
              StatusIs(absl::StatusCode::kCancelled));
  relay_.reset();
  ASSERT_THAT(store_->GetCheckpoint("relay"), IsOkAndHolds(confirmed));

  ASSERT_THAT(cluster_->SetAllBrokersUp(), IsOk());
  ASSERT_NO_FATAL_FAILURE(StartRelay(Options()));
  ASSERT_THAT(relay_->WaitForCheckpoint(last, absl::Seconds(30)), IsOk());
  const Applied applied = Apply(ReadAll());
  for (int64_t position = 1; position <= confirmed; ++position) {
    EXPECT_EQ(applied.positions.count(position), 1u) << position;
  }
  EXPECT_THAT(applied.applied_positions, ElementsAreArray(Range(1, last)));
}

TEST_F(relay, StopPublishesWhatWasAppendedBefore) {
  StartCluster(1, 3);
  ASSERT_NO_FATAL_FAILURE(StartRelay(Options()));
  const int64_t last = Append(20, 10, /*batch=*/10);
  EXPECT_THAT(relay_->Stop(), IsOk());
  EXPECT_THAT(store_->GetCheckpoint("relay"), IsOkAndHolds(last));
  EXPECT_THAT(relay_->Stop(), IsOk());  // idempotent
}

}  // namespace
}  // namespace crm::kafka
