// Kill -9 durability: a child process appends in a loop and reports every acknowledged
// append; the test kills it with SIGKILL at a random moment, reopens the store and checks that
// every acknowledged event is there, intact, and that no batch is partial. Repeated on the same
// store so that recovery itself is also crashed into.

#include <signal.h>
#include <sys/wait.h>

#include <map>
#include <random>
#include <string>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "crash_payload.h"
#include "crm/eventstore/event_store.h"
#include "crm/testing/subprocess.h"
#include "crm/testing/testing.h"
#include "gtest/gtest.h"

namespace crm::eventstore {
namespace {

using ::crm::testing::IsOk;
using ::crm::testing::IsOkAndHolds;

struct Ack {
  int64_t version = 0;
  int64_t position = 0;
};

void RecordAck(const std::string& line, std::map<std::string, Ack>& acked) {
  std::vector<std::string> parts = absl::StrSplit(line, ' ');
  ASSERT_EQ(parts.size(), 4u) << line;
  ASSERT_EQ(parts[0], "ack") << line;
  Ack ack;
  ASSERT_TRUE(absl::SimpleAtoi(parts[2], &ack.version) && absl::SimpleAtoi(parts[3], &ack.position))
      << line;
  Ack& latest = acked[parts[1]];
  if (ack.version > latest.version) latest = ack;
}

void VerifyStore(const std::string& dir, const std::map<std::string, Ack>& acked) {
  auto opened = EventStore::Open(dir);
  ASSERT_THAT(opened, IsOk());
  EventStore& store = **opened;

  // The log is gap-free from 1 to the last position.
  int64_t expected_position = 1;
  while (true) {
    auto page = store.ReadLog(expected_position, 4096);
    ASSERT_THAT(page, IsOk());
    if (page->empty()) break;
    for (const EventEnvelope& event : *page) ASSERT_EQ(event.position(), expected_position++);
  }
  EXPECT_EQ(store.LastPosition(), expected_position - 1);

  for (const auto& [stream, ack] : acked) {
    auto head = store.GetStreamHead(stream);
    ASSERT_THAT(head, IsOk());
    ASSERT_TRUE(head->has_value()) << stream << " lost entirely";
    const int64_t version = (*head)->version;
    EXPECT_GE(version, ack.version) << stream << ": an acknowledged append was lost";
    EXPECT_EQ(version % kEventsPerAppend, 0) << stream << ": partial batch";
    EXPECT_THAT(store.Get(Table::kState, stream),
                IsOkAndHolds(::testing::Optional(std::to_string(version))))
        << stream << ": state does not match the events";
    auto events = store.ReadStream(stream, 1, static_cast<size_t>(version) + 10);
    ASSERT_THAT(events, IsOk());
    ASSERT_EQ(static_cast<int64_t>(events->size()), version) << stream;
    for (int64_t v = 1; v <= version; ++v) {
      const EventEnvelope& event = (*events)[v - 1];
      ASSERT_EQ(event.stream_version(), v);
      ASSERT_EQ(event.payload().value(), CrashPayload(stream, v)) << stream << " v" << v;
    }
    auto acked_event = store.ReadLog(ack.position, 1);
    ASSERT_THAT(acked_event, IsOk());
    ASSERT_EQ(acked_event->size(), 1u);
    EXPECT_EQ((*acked_event)[0].stream_id(), stream);
    EXPECT_EQ((*acked_event)[0].stream_version(), ack.version);
  }
}

TEST(EventStoreCrashTest, EveryAcknowledgedAppendSurvivesSigkillAndNoBatchIsPartial) {
  crm::testing::TempDir dir;
  const std::string store_dir = dir.Sub("store");
  const unsigned seed = std::random_device{}();
  SCOPED_TRACE(::testing::Message() << "seed " << seed);
  std::mt19937 random(seed);
  std::map<std::string, Ack> acked;
  constexpr int kRuns = 30;
  for (int run = 0; run < kRuns; ++run) {
    SCOPED_TRACE(::testing::Message() << "run " << run);
    crm::testing::Subprocess child({CRM_CRASH_WRITER, store_dir, "8"});
    ASSERT_TRUE(child.started());
    ASSERT_EQ(child.ReadStdoutLine(), "ready");
    const int kill_after = std::uniform_int_distribution<int>(20, 1500)(random);
    for (int i = 0; i < kill_after; ++i) {
      std::optional<std::string> line = child.ReadStdoutLine();
      ASSERT_TRUE(line.has_value()) << "writer stopped reporting: " << child.DrainStderr();
      RecordAck(*line, acked);
    }
    child.Signal(SIGKILL);
    const int status = child.Wait();
    ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL)
        << "the writer died before it was killed";
    // Acks already in the pipe were acknowledged before the kill: they count too. The pipe
    // is closed now, so reading ends at EOF.
    while (std::optional<std::string> line = child.ReadStdoutLine(std::chrono::seconds(5))) {
      RecordAck(*line, acked);
    }
    VerifyStore(store_dir, acked);
    if (HasFatalFailure()) return;
  }
}

}  // namespace
}  // namespace crm::eventstore
