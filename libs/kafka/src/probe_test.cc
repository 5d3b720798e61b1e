#include "crm/kafka/probe.h"

#include "absl/strings/str_cat.h"
#include "crm/common/time.h"
#include "crm/kafka/mock_cluster.h"
#include "crm/testing/subprocess.h"
#include "crm/testing/testing.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "prometheus/text_serializer.h"

namespace crm::kafka {
namespace {

using ::crm::testing::IsOk;
using ::testing::HasSubstr;

constexpr char kTopic[] = "crm.probe.events.v1";

std::string Text(const prometheus::Collectable& probe) {
  return prometheus::TextSerializer().Serialize(probe.Collect());
}

void ExpectPromtoolAccepts(const std::string& text) {
  crm::testing::Subprocess promtool({"/usr/bin/promtool", "check", "metrics"}, true);
  promtool.WriteStdin(text);
  promtool.CloseStdin();
  EXPECT_EQ(promtool.WaitForExitCode(), 0) << promtool.DrainStderr() << text;
}

TEST(probe, RelayAndConsumerLagAreExported) {
  auto cluster = MockCluster::Start(1);
  ASSERT_THAT(cluster, IsOk());
  ASSERT_THAT((*cluster)->CreateTopic(kTopic, 2, 1), IsOk());
  crm::testing::TempDir dir;
  auto store = eventstore::EventStore::Open(dir.Sub("store"));
  ASSERT_THAT(store, IsOk());
  constexpr int kEvents = 20;
  for (int i = 0; i < kEvents; ++i) {
    eventstore::AppendRequest request{.stream_id = absl::StrCat("s", i % 4), .stream_type = "t"};
    auto& event = request.events.emplace_back();
    event.mutable_payload()->set_type_url("type.googleapis.com/crm.test.v1.E");
    *event.mutable_occurred_at() = ToProto(absl::Now());
    ASSERT_THAT((*store)->Append(std::move(request)), IsOk());
  }

  // Before the relay runs, the whole log is lag.
  auto relay = Relay::Start(
      store->get(),
      {.topic = kTopic, .producer = {.bootstrap_servers = (*cluster)->bootstrap_servers()}});
  ASSERT_THAT(relay, IsOk());
  RelayProbe relay_probe(kTopic, [&] { return (*relay)->Stats(); });
  ASSERT_THAT((*relay)->WaitForCheckpoint(kEvents, absl::Seconds(30)), IsOk());
  const std::string relay_text = Text(relay_probe);
  EXPECT_THAT(relay_text, HasSubstr("crm_relay_lag_events{topic=\"crm.probe.events.v1\"} 0"));
  EXPECT_THAT(relay_text,
              HasSubstr("crm_relay_checkpoint_position{topic=\"crm.probe.events.v1\"} 20"));
  EXPECT_THAT(relay_text, HasSubstr("crm_relay_delivered_total{topic=\"crm.probe.events.v1\"} 20"));
  ExpectPromtoolAccepts(relay_text);

  auto consumer = Consumer::Create(
      {.bootstrap_servers = (*cluster)->bootstrap_servers(),
       .group_id = "probe-test",
       .topics = {kTopic},
       .offset_loader =
           [](std::string_view, int32_t) {
             return absl::StatusOr<std::optional<int64_t>>(std::nullopt);
           },
       .settings = {{"session.timeout.ms", "4000"}, {"heartbeat.interval.ms", "1000"}}});
  ASSERT_THAT(consumer, IsOk());
  ConsumerProbe consumer_probe("probe-test", [&] { return (*consumer)->Stats(); });
  size_t received = 0;
  ASSERT_TRUE(crm::testing::WaitFor([&] {
    auto batch = (*consumer)->Poll(100, absl::Milliseconds(100));
    received += batch.ok() ? batch->size() : 0;
    return received == kEvents;
  }));
  // Lag is known once every assigned partition has been fetched up to its end.
  ASSERT_TRUE(crm::testing::WaitFor([&] {
    (*consumer)->Poll(100, absl::Milliseconds(20)).IgnoreError();
    const ConsumerStats stats = (*consumer)->Stats();
    if (stats.partitions.size() != 2) return false;
    for (const auto& p : stats.partitions) {
      if (p.lag != 0) return false;
    }
    return true;
  }));
  const std::string consumer_text = Text(consumer_probe);
  EXPECT_THAT(consumer_text, HasSubstr("crm_consumer_messages_total{group=\"probe-test\"} 20"));
  EXPECT_THAT(consumer_text,
              HasSubstr("crm_consumer_lag_events{group=\"probe-test\",topic=\"crm.probe."
                        "events.v1\",partition=\"0\"} 0"));
  ExpectPromtoolAccepts(consumer_text);
}

}  // namespace
}  // namespace crm::kafka
