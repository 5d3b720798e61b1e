#include "crm/kafka/producer.h"

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "crm/common/time.h"
#include "crm/kafka/consumer.h"
#include "crm/kafka/mock_cluster.h"
#include "crm/testing/testing.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace crm::kafka {
namespace {

using ::crm::testing::IsOk;
using ::crm::testing::IsOkAndHolds;
using ::crm::testing::StatusIs;
using ::crm::testing::WaitFor;
using ::testing::AnyOf;
using ::testing::HasSubstr;
using ::testing::Optional;
using ::testing::SizeIs;

constexpr char kTopic[] = "crm.test.events.v1";

class ProducerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<std::unique_ptr<MockCluster>> cluster = MockCluster::Start(1);
    ASSERT_THAT(cluster, IsOk());
    cluster_ = *std::move(cluster);
    ASSERT_THAT(cluster_->CreateTopic(kTopic, 3, 1), IsOk());
  }

  absl::StatusOr<std::unique_ptr<Producer>> Create(Settings settings = {}) {
    return Producer::Create(ProducerOptions{.bootstrap_servers = cluster_->bootstrap_servers(),
                                            .settings = std::move(settings)},
                            [this](const DeliveryReport& report) { reports_.push_back(report); });
  }

  // Polls until `count` reports arrived.
  bool AwaitReports(Producer& producer, size_t count) {
    return WaitFor([&] {
      producer.Poll(absl::Milliseconds(10));
      return reports_.size() >= count;
    });
  }

  std::unique_ptr<MockCluster> cluster_;
  std::vector<DeliveryReport> reports_;
};
// Suite names carry the module in lower case: ctest -R filters are case-sensitive.
using kafka_producer = ProducerTest;

TEST(kafka_producer_names, EventTypeIsTheTypeUrlAfterTheLastSlash) {
  EXPECT_EQ(EventTypeName("type.googleapis.com/crm.contact.v1.ContactCreated"),
            "crm.contact.v1.ContactCreated");
  EXPECT_EQ(EventTypeName("example.com/a/b/crm.x.v1.Y"), "crm.x.v1.Y");
  EXPECT_EQ(EventTypeName("crm.x.v1.Y"), "crm.x.v1.Y");
}

TEST_F(kafka_producer, KeepsDeliveryGuaranteeSettings) {
  absl::StatusOr<std::unique_ptr<Producer>> producer = Create({{"linger.ms", "7"}});
  ASSERT_THAT(producer, IsOk());
  // Read back from the live client: librdkafka 2.0 defaults idempotence to false.
  EXPECT_THAT((*producer)->GetSetting("enable.idempotence"), IsOkAndHolds("true"));
  EXPECT_THAT((*producer)->GetSetting("acks"), IsOkAndHolds(AnyOf("-1", "all")));
  EXPECT_THAT((*producer)->GetSetting("compression.codec"), IsOkAndHolds("lz4"));
  EXPECT_THAT((*producer)->GetSetting("partitioner"), IsOkAndHolds("murmur2_random"));
  EXPECT_THAT((*producer)->GetSetting("linger.ms"), IsOkAndHolds("7"));  // user tuning wins
}

TEST_F(kafka_producer, RefusesSettingsThatWeakenDelivery) {
  const Settings weakening[] = {
      {{"enable.idempotence", "false"}},
      {{"acks", "1"}},
      {{"request.required.acks", "0"}},  // an alias of acks
  };
  for (const Settings& settings : weakening) {
    EXPECT_THAT(Create(settings), StatusIs(absl::StatusCode::kInvalidArgument))
        << settings.begin()->first;
  }
}

TEST_F(kafka_producer, NamesTheBadSetting) {
  EXPECT_THAT(Create({{"no.such.setting", "1"}}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("no.such.setting")));
  EXPECT_THAT(Create({{"compression.codec", "zip"}}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("compression.codec")));
}

TEST_F(kafka_producer, PublishesEventKeyedByStreamWithTypeAndIdHeaders) {
  absl::StatusOr<std::unique_ptr<Producer>> producer = Create();
  ASSERT_THAT(producer, IsOk());
  events::v1::EventEnvelope event;
  event.set_event_id("7d0e3a52-5c1e-4a7e-9a51-0d6f3c1b2a10");
  event.set_stream_id("contact-42");
  event.set_stream_version(3);
  event.set_position(17);
  event.mutable_payload()->set_type_url("type.googleapis.com/crm.contact.v1.ContactRenamed");
  *event.mutable_recorded_at() = ToProto(absl::FromUnixSeconds(1'800'000'000));

  ASSERT_THAT((*producer)->ProduceEvent(kTopic, event, 17), IsOk());
  ASSERT_TRUE(AwaitReports(**producer, 1));
  EXPECT_EQ(reports_[0].tag, 17u);
  EXPECT_THAT(reports_[0].status, IsOk());
  EXPECT_GE(reports_[0].offset, 0);

  absl::StatusOr<std::vector<Message>> messages =
      ReadTopic(cluster_->bootstrap_servers(), kTopic, absl::Seconds(10));
  ASSERT_THAT(messages, IsOkAndHolds(SizeIs(1)));
  const Message& message = (*messages)[0];
  EXPECT_EQ(message.key, "contact-42");
  EXPECT_EQ(message.partition, reports_[0].partition);
  EXPECT_THAT(message.Header(kEventTypeHeader),
              Optional(std::string_view("crm.contact.v1.ContactRenamed")));
  EXPECT_THAT(message.Header(kEventIdHeader), Optional(std::string_view(event.event_id())));
  events::v1::EventEnvelope decoded;
  ASSERT_TRUE(decoded.ParseFromString(message.value));
  EXPECT_EQ(decoded.SerializeAsString(), event.SerializeAsString());
}

TEST_F(kafka_producer, SameKeyAlwaysLandsInTheSamePartition) {
  absl::StatusOr<std::unique_ptr<Producer>> producer = Create();
  ASSERT_THAT(producer, IsOk());
  for (int round = 0; round < 3; ++round) {
    for (int stream = 0; stream < 10; ++stream) {
      ASSERT_THAT((*producer)->Produce(kTopic, "stream-" + std::to_string(stream), "v", {},
                                       static_cast<uint64_t>(stream)),
                  IsOk());
    }
  }
  ASSERT_TRUE(AwaitReports(**producer, 30));
  std::vector<std::optional<int32_t>> partition_of(10);
  for (const DeliveryReport& report : reports_) {
    ASSERT_THAT(report.status, IsOk());
    std::optional<int32_t>& expected = partition_of[report.tag];
    if (!expected) expected = report.partition;
    EXPECT_EQ(report.partition, *expected) << "stream-" << report.tag;
  }
}

TEST_F(kafka_producer, ReportsBrokerRejectionAsStatus) {
  absl::StatusOr<std::unique_ptr<Producer>> producer = Create();
  ASSERT_THAT(producer, IsOk());
  // Not retriable: the record fails instead of being retried inside librdkafka.
  cluster_->PushRequestErrors(ApiKey::kProduce, {RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED});
  ASSERT_THAT((*producer)->Produce(kTopic, "k", "v", {}, 1), IsOk());
  ASSERT_TRUE(AwaitReports(**producer, 1));
  EXPECT_THAT(reports_[0].status, StatusIs(absl::StatusCode::kPermissionDenied));
}

TEST_F(kafka_producer, FatalErrorIsReportedAndStopsProduce) {
  absl::StatusOr<std::unique_ptr<Producer>> producer = Create();
  ASSERT_THAT(producer, IsOk());
  EXPECT_THAT((*producer)->FatalError(), IsOk());
  ASSERT_THAT((*producer)->InjectFatalErrorForTesting(), IsOk());
  EXPECT_THAT((*producer)->FatalError(), StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_THAT((*producer)->Produce(kTopic, "k", "v", {}, 1),
              StatusIs(absl::StatusCode::kFailedPrecondition));
}

}  // namespace
}  // namespace crm::kafka
