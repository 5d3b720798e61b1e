#include "crm/kafka/consumer.h"

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "crm/common/time.h"
#include "crm/eventstore/event_store.h"
#include "crm/kafka/mock_cluster.h"
#include "crm/kafka/relay.h"
#include "crm/testing/testing.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "rocksdb/db.h"
#include "rocksdb/write_batch.h"

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
using ::testing::HasSubstr;

constexpr char kTopic[] = "crm.test.events.v1";
constexpr char kGroup[] = "projection";

// Suite names carry the module in lower case: ctest -R filters are case-sensitive.

TEST(kafka_consumer_records, OffsetRecordRoundTrips) {
  EXPECT_EQ(OffsetRecordKey("crm.contact.events.v1", 2), "kafka.offset/crm.contact.events.v1/2");
  EXPECT_THAT(DecodeOffsetRecord(EncodeOffsetRecord(0)), IsOkAndHolds(0));
  EXPECT_THAT(DecodeOffsetRecord(EncodeOffsetRecord(123456789012)), IsOkAndHolds(123456789012));
  EXPECT_THAT(DecodeOffsetRecord("-1"), StatusIs(absl::StatusCode::kDataLoss));
  EXPECT_THAT(DecodeOffsetRecord("12x"), StatusIs(absl::StatusCode::kDataLoss));
  EXPECT_THAT(DecodeOffsetRecord(""), StatusIs(absl::StatusCode::kDataLoss));
}

TEST(kafka_consumer_records, StreamVersionRule) {
  struct Case {
    int64_t applied;
    int64_t incoming;
    VersionCheck expected;
  };
  const Case cases[] = {
      {0, 1, VersionCheck::kApply},     {4, 5, VersionCheck::kApply},
      {5, 5, VersionCheck::kDuplicate}, {5, 1, VersionCheck::kDuplicate},
      {0, 2, VersionCheck::kGap},       {4, 6, VersionCheck::kGap},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(CheckStreamVersion(c.applied, c.incoming), c.expected)
        << c.applied << " then " << c.incoming;
  }
}

class ConsumerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<std::unique_ptr<MockCluster>> cluster = MockCluster::Start(1);
    ASSERT_THAT(cluster, IsOk());
    cluster_ = *std::move(cluster);
    ASSERT_THAT(cluster_->CreateTopic(kTopic, 3, 1), IsOk());
  }

  ConsumerOptions Options(OffsetLoader loader) {
    // The mock group coordinator waits session.timeout.ms - 1 s for members to rejoin after
    // one leaves (a real one rebalances at once when nobody is left): keep it short, yet above
    // its 3 s initial join delay, during which a joining member sends no heartbeats.
    return ConsumerOptions{
        .bootstrap_servers = cluster_->bootstrap_servers(),
        .group_id = kGroup,
        .topics = {kTopic},
        .offset_loader = std::move(loader),
        .settings = {{"session.timeout.ms", "4000"}, {"heartbeat.interval.ms", "1000"}}};
  }

  std::unique_ptr<MockCluster> cluster_;
};
using kafka_consumer = ConsumerTest;

TEST_F(kafka_consumer, LeavesOffsetsToTheCaller) {
  absl::StatusOr<std::unique_ptr<Consumer>> consumer =
      Consumer::Create(Options([](std::string_view, int32_t) { return std::nullopt; }));
  ASSERT_THAT(consumer, IsOk());
  EXPECT_THAT((*consumer)->GetSetting("enable.auto.commit"), IsOkAndHolds("false"));
  EXPECT_THAT((*consumer)->GetSetting("enable.auto.offset.store"), IsOkAndHolds("false"));
  EXPECT_THAT((*consumer)->GetSetting("fetch.wait.max.ms"), IsOkAndHolds("5"));
  EXPECT_THAT((*consumer)->GetSetting("group.id"), IsOkAndHolds(kGroup));
}

TEST_F(kafka_consumer, RefusesKafkaSideOffsetsAndIncompleteOptions) {
  ConsumerOptions options = Options([](std::string_view, int32_t) { return std::nullopt; });
  options.settings = {{"enable.auto.commit", "true"}};
  EXPECT_THAT(Consumer::Create(options),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("enable.auto.commit")));
  options.settings = {};
  options.offset_loader = nullptr;
  EXPECT_THAT(Consumer::Create(options), StatusIs(absl::StatusCode::kInvalidArgument));
  options = Options([](std::string_view, int32_t) { return std::nullopt; });
  options.group_id.clear();
  EXPECT_THAT(Consumer::Create(options), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST_F(kafka_consumer, OffsetLoaderFailureStopsTheConsumer) {
  absl::StatusOr<std::unique_ptr<Consumer>> consumer = Consumer::Create(
      Options([](std::string_view, int32_t) -> absl::StatusOr<std::optional<int64_t>> {
        return absl::UnavailableError("projection store is closing");
      }));
  ASSERT_THAT(consumer, IsOk());
  absl::Status status = absl::OkStatus();
  ASSERT_TRUE(WaitFor([&] {
    absl::StatusOr<std::vector<Message>> batch = (*consumer)->Poll(10, absl::Milliseconds(50));
    status = batch.status();
    return !status.ok();
  }));
  EXPECT_THAT(status, StatusIs(absl::StatusCode::kUnavailable, HasSubstr("closing")));
}

// A projection as the metrics service builds it: applied events, stream heads and the
// consumer offsets all in one RocksDB WriteBatch.
class Projection {
 public:
  explicit Projection(const std::string& path) {
    rocksdb::Options options;
    options.create_if_missing = true;
    rocksdb::DB* db = nullptr;
    const rocksdb::Status status = rocksdb::DB::Open(options, path, &db);
    EXPECT_TRUE(status.ok()) << status.ToString();
    db_.reset(db);
  }

  std::optional<std::string> Get(const std::string& key) {
    std::string value;
    const rocksdb::Status status = db_->Get(rocksdb::ReadOptions(), key, &value);
    if (status.IsNotFound()) return std::nullopt;
    EXPECT_TRUE(status.ok()) << status.ToString();
    return value;
  }

  // The consumer's offset loader; remembers what it answered.
  absl::StatusOr<std::optional<int64_t>> LoadOffset(std::string_view topic, int32_t partition) {
    std::optional<std::string> value = Get(OffsetRecordKey(topic, partition));
    if (!value) return std::nullopt;
    absl::StatusOr<int64_t> offset = DecodeOffsetRecord(*value);
    if (!offset.ok()) return offset.status();
    loaded_[partition] = *offset;
    return *offset;
  }

  void ApplyBatch(const std::vector<Message>& messages) {
    rocksdb::WriteBatch batch;
    std::map<std::string, int64_t> heads;  // staged in this batch
    for (const Message& message : messages) {
      // Never read what the stored offsets say was already applied.
      if (auto loaded = loaded_.find(message.partition); loaded != loaded_.end()) {
        EXPECT_GE(message.offset, loaded->second) << "partition " << message.partition;
      }
      EventEnvelope event;
      ASSERT_TRUE(event.ParseFromString(message.value));
      auto head = heads.find(event.stream_id());
      if (head == heads.end()) {
        const std::optional<std::string> stored = Get("head/" + event.stream_id());
        head = heads.emplace(event.stream_id(), stored ? std::stoll(*stored) : 0).first;
      }
      switch (CheckStreamVersion(head->second, event.stream_version())) {
        case VersionCheck::kApply: {
          const std::string key = "applied/" + event.event_id();
          if (Get(key)) ++applied_twice_;
          batch.Put(key, absl::StrCat(event.position()));
          head->second = event.stream_version();
          batch.Put("head/" + event.stream_id(), absl::StrCat(head->second));
          ++applied_;
          break;
        }
        case VersionCheck::kDuplicate:
          ++duplicates_;
          break;
        case VersionCheck::kGap:
          ++gaps_;
          break;
      }
      batch.Put(OffsetRecordKey(message.topic, message.partition),
                EncodeOffsetRecord(message.offset + 1));
    }
    rocksdb::WriteOptions write_options;
    write_options.sync = true;
    const rocksdb::Status status = db_->Write(write_options, &batch);
    ASSERT_TRUE(status.ok()) << status.ToString();
  }

  int64_t Head(const std::string& stream) {
    const std::optional<std::string> stored = Get("head/" + stream);
    return stored ? std::stoll(*stored) : 0;
  }

  int CountApplied() {
    int count = 0;
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions()));
    for (it->Seek("applied/"); it->Valid() && it->key().starts_with("applied/"); it->Next()) {
      ++count;
    }
    return count;
  }

  int applied_ = 0;
  int applied_twice_ = 0;
  int duplicates_ = 0;
  int gaps_ = 0;
  std::map<int32_t, int64_t> loaded_;

 private:
  std::unique_ptr<rocksdb::DB> db_;
};

TEST_F(kafka_consumer, RestartMidStreamAppliesEveryEventExactlyOnce) {
  constexpr int kStreams = 15;
  constexpr int kPerStream = 20;
  TempDir dir;
  absl::StatusOr<std::unique_ptr<EventStore>> store =
      EventStore::Open(dir.Sub("store"), eventstore::Options{.sync = false});
  ASSERT_THAT(store, IsOk());
  const auto append = [&](int stream, int count) {
    AppendRequest request{.stream_id = absl::StrCat("s-", stream), .stream_type = "test"};
    for (int i = 0; i < count; ++i) {
      EventEnvelope& event = request.events.emplace_back();
      event.mutable_payload()->set_type_url("type.googleapis.com/crm.test.v1.Happened");
      *event.mutable_occurred_at() = ToProto(absl::FromUnixSeconds(1'790'000'000));
    }
    absl::StatusOr<eventstore::AppendResult> result = (*store)->Append(std::move(request));
    EXPECT_THAT(result, IsOk());
    return result.ok() ? result->last_position : 0;
  };
  int64_t last = 0;
  for (int round = 0; round < kPerStream / 4; ++round) {
    for (int stream = 0; stream < kStreams; ++stream) last = append(stream, 4);
  }
  ASSERT_EQ(last, kStreams * kPerStream);
  const RelayOptions relay_options{
      .topic = kTopic, .producer = {.bootstrap_servers = cluster_->bootstrap_servers()}};
  absl::StatusOr<std::unique_ptr<Relay>> relay = Relay::Start(store->get(), relay_options);
  ASSERT_THAT(relay, IsOk());
  ASSERT_THAT((*relay)->WaitForCheckpoint(last, absl::Seconds(30)), IsOk());

  Projection projection(dir.Sub("projection"));
  const auto loader = [&](std::string_view topic, int32_t partition) {
    return projection.LoadOffset(topic, partition);
  };
  const auto poll_until = [&](Consumer& consumer, const std::function<bool()>& done) {
    return WaitFor([&] {
      absl::StatusOr<std::vector<Message>> batch = consumer.Poll(20, absl::Milliseconds(50));
      EXPECT_THAT(batch, IsOk());
      if (batch.ok() && !batch->empty()) projection.ApplyBatch(*batch);
      return done();
    });
  };

  // First instance: stops (is destroyed) a third of the way through.
  {
    absl::StatusOr<std::unique_ptr<Consumer>> consumer = Consumer::Create(Options(loader));
    ASSERT_THAT(consumer, IsOk());
    ASSERT_TRUE(poll_until(**consumer, [&] { return projection.applied_ >= last / 3; }));
  }
  ASSERT_LT(projection.applied_, last);
  EXPECT_TRUE(projection.loaded_.empty());  // nothing stored yet at its start

  // Second instance, same group: resumes from the offsets stored with the state.
  absl::StatusOr<std::unique_ptr<Consumer>> consumer = Consumer::Create(Options(loader));
  ASSERT_THAT(consumer, IsOk());
  ASSERT_TRUE(poll_until(**consumer, [&] { return projection.applied_ == last; }));
  EXPECT_FALSE(projection.loaded_.empty());
  EXPECT_EQ(projection.applied_twice_, 0);
  EXPECT_EQ(projection.duplicates_, 0);  // the stored offsets, not the version check, did it
  EXPECT_EQ(projection.CountApplied(), last);
  for (int stream = 0; stream < kStreams; ++stream) {
    EXPECT_EQ(projection.Head(absl::StrCat("s-", stream)), kPerStream);
  }

  // The relay republishes from an older checkpoint (as after a crash): duplicates arrive and
  // are skipped by stream_version; a new event after them is applied.
  ASSERT_THAT((*relay)->Stop(), IsOk());
  relay->reset();
  ASSERT_THAT((*store)->PutCheckpoint("relay", last / 2), IsOk());
  const int64_t newest = append(0, 1);
  relay = Relay::Start(store->get(), relay_options);
  ASSERT_THAT(relay, IsOk());
  ASSERT_THAT((*relay)->WaitForCheckpoint(newest, absl::Seconds(30)), IsOk());
  ASSERT_TRUE(poll_until(**consumer, [&] {
    return projection.duplicates_ == last - last / 2 && projection.Head("s-0") == kPerStream + 1;
  }));
  EXPECT_EQ(projection.applied_twice_, 0);
  EXPECT_EQ(projection.CountApplied(), newest);
  EXPECT_EQ(projection.gaps_, 0);
}

}  // namespace
}  // namespace crm::kafka
