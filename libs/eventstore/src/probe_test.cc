#include "crm/eventstore/probe.h"

#include "absl/strings/str_cat.h"
#include "crm/common/time.h"
#include "crm/testing/subprocess.h"
#include "crm/testing/testing.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "prometheus/text_serializer.h"

namespace crm::eventstore {
namespace {

using ::testing::HasSubstr;

TEST(EventStoreProbeTest, ExportsAppendAndFsyncMetricsThatPassPromtool) {
  crm::testing::TempDir dir;
  prometheus::Registry registry;
  EventStoreProbe probe(registry);
  auto store = EventStore::Open(dir.Sub("store"), {.observer = &probe});
  ASSERT_THAT(store, crm::testing::IsOk());
  for (int i = 0; i < 3; ++i) {
    AppendRequest request{
        .stream_id = absl::StrCat("s", i), .stream_type = "t", .expected_version = kNoStream};
    for (int e = 0; e < 2; ++e) {
      EventEnvelope& event = request.events.emplace_back();
      event.mutable_payload()->set_type_url("type.googleapis.com/crm.test.v1.E");
      *event.mutable_occurred_at() = ToProto(absl::Now());
    }
    ASSERT_THAT((*store)->Append(std::move(request)), crm::testing::IsOk());
  }
  // A refused command is not counted.
  AppendRequest stale{.stream_id = "s0", .stream_type = "t", .expected_version = kNoStream};
  stale.events.emplace_back().mutable_payload()->set_type_url("type.googleapis.com/x.E");
  *stale.events.back().mutable_occurred_at() = ToProto(absl::Now());
  ASSERT_FALSE((*store)->Append(std::move(stale)).ok());

  const std::string text = prometheus::TextSerializer().Serialize(registry.Collect());
  EXPECT_THAT(text, HasSubstr("crm_eventstore_events_appended_total 6"));
  EXPECT_THAT(text, HasSubstr("crm_eventstore_commands_committed_total 3"));
  EXPECT_THAT(text, HasSubstr("crm_eventstore_append_duration_seconds_count 3"));
  EXPECT_THAT(text, HasSubstr("crm_eventstore_fsync_duration_seconds_count 3"));

  crm::testing::Subprocess promtool({"/usr/bin/promtool", "check", "metrics"}, true);
  promtool.WriteStdin(text);
  promtool.CloseStdin();
  EXPECT_EQ(promtool.WaitForExitCode(), 0) << promtool.DrainStderr();
}

}  // namespace
}  // namespace crm::eventstore
