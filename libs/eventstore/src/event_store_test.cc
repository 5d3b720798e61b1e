#include "crm/eventstore/event_store.h"

#include <barrier>
#include <latch>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "crm/common/time.h"
#include "crm/testing/testing.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace crm::eventstore {
namespace {

using ::crm::testing::IsOk;
using ::crm::testing::IsOkAndHolds;
using ::crm::testing::StatusIs;
using ::crm::testing::TempDir;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Pair;

const absl::Time kMonday =
    absl::FromCivil(absl::CivilSecond(2026, 11, 16, 9, 0, 0), absl::UTCTimeZone());

EventEnvelope Event(const std::string& type, absl::Time occurred_at, std::string data = "") {
  EventEnvelope event;
  event.mutable_payload()->set_type_url(absl::StrCat("type.googleapis.com/crm.test.v1.", type));
  event.mutable_payload()->set_value(std::move(data));
  *event.mutable_occurred_at() = ToProto(occurred_at);
  event.set_actor_id("alice");
  event.set_channel("web_form");
  return event;
}

AppendRequest Request(std::string stream_id, int64_t expected_version,
                      std::vector<EventEnvelope> events) {
  return AppendRequest{.stream_id = std::move(stream_id),
                       .stream_type = "contact",
                       .expected_version = expected_version,
                       .events = std::move(events)};
}

class EventStoreTest : public ::testing::Test {
 protected:
  void SetUp() override { Reopen(); }

  void Reopen(Options options = {}) {
    store_.reset();
    auto opened = EventStore::Open(dir_.Sub("store"), options, [this] { return now_; });
    ASSERT_THAT(opened, IsOk());
    store_ = *std::move(opened);
  }

  std::vector<int64_t> Versions(std::string_view stream_id) {
    auto events = store_->ReadStream(stream_id, 1, 1000);
    EXPECT_THAT(events, IsOk());
    std::vector<int64_t> versions;
    for (const auto& event : *events) versions.push_back(event.stream_version());
    return versions;
  }

  TempDir dir_;
  absl::Time now_ = kMonday + absl::Hours(1);
  std::unique_ptr<EventStore> store_;
};

TEST_F(EventStoreTest, AppendFillsStoreFieldsAndReadsBack) {
  auto result = store_->Append(
      Request("c-1", kNoStream, {Event("Created", kMonday), Event("Renamed", kMonday)}));
  ASSERT_THAT(result, IsOk());
  EXPECT_EQ(result->first_version, 1);
  EXPECT_EQ(result->last_version, 2);
  EXPECT_EQ(result->first_position, 1);
  EXPECT_EQ(result->last_position, 2);
  EXPECT_EQ(result->recorded_at, now_);
  EXPECT_FALSE(result->replayed);

  auto events = store_->ReadStream("c-1", 1, 10);
  ASSERT_THAT(events, IsOk());
  ASSERT_EQ(events->size(), 2u);
  const EventEnvelope& second = (*events)[1];
  EXPECT_EQ(second.stream_id(), "c-1");
  EXPECT_EQ(second.stream_type(), "contact");
  EXPECT_EQ(second.stream_version(), 2);
  EXPECT_EQ(second.position(), 2);
  EXPECT_EQ(FromProto(second.recorded_at()), now_);
  EXPECT_EQ(FromProto(second.occurred_at()), kMonday);
  EXPECT_EQ(second.payload().type_url(), "type.googleapis.com/crm.test.v1.Renamed");
  EXPECT_EQ(second.actor_id(), "alice");
  EXPECT_EQ(second.event_id().size(), 36u) << "the store assigns a UUID when none is given";
  EXPECT_NE((*events)[0].event_id(), second.event_id());
  EXPECT_EQ(store_->LastPosition(), 2);
}

TEST_F(EventStoreTest, LogInterleavesStreamsByPosition) {
  ASSERT_THAT(store_->Append(Request("a", kNoStream, {Event("E", kMonday)})), IsOk());
  ASSERT_THAT(store_->Append(Request("b", kNoStream, {Event("E", kMonday)})), IsOk());
  ASSERT_THAT(store_->Append(Request("a", 1, {Event("E", kMonday)})), IsOk());

  auto log = store_->ReadLog(2, 10);
  ASSERT_THAT(log, IsOk());
  ASSERT_EQ(log->size(), 2u);
  EXPECT_EQ((*log)[0].stream_id(), "b");
  EXPECT_EQ((*log)[1].stream_id(), "a");
  EXPECT_EQ((*log)[1].stream_version(), 2);
  EXPECT_EQ((*log)[1].position(), 3);
  EXPECT_THAT(Versions("a"), ElementsAre(1, 2));
  auto from_two = store_->ReadStream("a", 2, 10);
  ASSERT_THAT(from_two, IsOk());
  ASSERT_EQ(from_two->size(), 1u);
  EXPECT_EQ((*from_two)[0].position(), 3);
  auto limited = store_->ReadLog(1, 2);
  ASSERT_THAT(limited, IsOk());
  EXPECT_EQ(limited->size(), 2u);
}

TEST_F(EventStoreTest, StreamIdThatPrefixesAnotherKeepsItsOwnEvents) {
  ASSERT_THAT(store_->Append(Request("ab", kNoStream, {Event("E", kMonday)})), IsOk());
  ASSERT_THAT(store_->Append(Request("a", kNoStream, {Event("E", kMonday)})), IsOk());
  EXPECT_THAT(Versions("a"), ElementsAre(1));
  EXPECT_THAT(Versions("ab"), ElementsAre(1));
  auto head = store_->GetStreamHead("a");
  ASSERT_THAT(head, IsOk());
  ASSERT_TRUE(head->has_value());
  EXPECT_EQ((*head)->version, 1);
  EXPECT_EQ((*head)->last_position, 2);
}

TEST_F(EventStoreTest, ExpectedVersionIsEnforced) {
  ASSERT_THAT(store_->Append(Request("c-1", kNoStream, {Event("Created", kMonday)})), IsOk());

  EXPECT_THAT(store_->Append(Request("c-1", kNoStream, {Event("Created", kMonday)})),
              StatusIs(absl::StatusCode::kAborted, HasSubstr("already exists")));
  EXPECT_THAT(store_->Append(Request("c-1", 2, {Event("Renamed", kMonday)})),
              StatusIs(absl::StatusCode::kAborted, HasSubstr("is at version 1, expected 2")));
  EXPECT_THAT(store_->Append(Request("c-2", 1, {Event("Renamed", kMonday)})),
              StatusIs(absl::StatusCode::kAborted, HasSubstr("is at version 0")));
  EXPECT_THAT(store_->Append(Request("c-1", 1, {Event("Renamed", kMonday)})), IsOk());
  EXPECT_THAT(store_->Append(Request("c-1", kAnyVersion, {Event("Renamed", kMonday)})), IsOk());
  EXPECT_THAT(Versions("c-1"), ElementsAre(1, 2, 3));
  EXPECT_EQ(store_->LastPosition(), 3) << "refused appends must not consume positions";

  // After a reopen the head is not cached: a command expecting a new stream finds the stream
  // by its first version and still reports the last one.
  Reopen();
  EXPECT_THAT(store_->Append(Request("c-1", kNoStream, {Event("Created", kMonday)})),
              StatusIs(absl::StatusCode::kAborted, HasSubstr("already exists (version 3)")));
  EXPECT_THAT(store_->Append(Request("c-3", kNoStream, {Event("Created", kMonday)})), IsOk());
}

TEST_F(EventStoreTest, ConcurrentWritersWithSameExpectedVersionExactlyOneWinsEachRound) {
  constexpr int kThreads = 16;
  constexpr int kRounds = 40;
  std::barrier round_start(kThreads);
  std::vector<std::vector<int>> wins(kThreads, std::vector<int>(kRounds, 0));
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int round = 0; round < kRounds; ++round) {
        round_start.arrive_and_wait();
        auto result = store_->Append(Request("hot", round, {Event("E", kMonday, absl::StrCat(t))}));
        if (result.ok()) {
          wins[t][round] = 1;
        } else {
          EXPECT_THAT(result, StatusIs(absl::StatusCode::kAborted));
        }
        round_start.arrive_and_wait();  // every writer has finished this round
      }
    });
  }
  for (auto& thread : threads) thread.join();

  for (int round = 0; round < kRounds; ++round) {
    int winners = 0;
    for (int t = 0; t < kThreads; ++t) winners += wins[t][round];
    EXPECT_EQ(winners, 1) << "round " << round;
  }
  auto events = store_->ReadStream("hot", 1, 1000);
  ASSERT_THAT(events, IsOk());
  ASSERT_EQ(events->size(), static_cast<size_t>(kRounds));
  for (int round = 0; round < kRounds; ++round) {
    const int winner = std::stoi((*events)[round].payload().value());
    EXPECT_EQ(wins[winner][round], 1) << "version " << round + 1 << " holds the winner's event";
  }
  EXPECT_EQ(store_->LastPosition(), kRounds);
}

TEST_F(EventStoreTest, RetryWithSameRequestIdReturnsOriginalResultAndWritesNothing) {
  AppendRequest create = Request("c-1", kNoStream, {Event("Created", kMonday)});
  create.request_id = "req-1";
  create.writes = {{Table::kState, "c-1", "v1"}};
  auto first = store_->Append(create);
  ASSERT_THAT(first, IsOk());

  now_ += absl::Minutes(5);
  AppendRequest retry = create;
  retry.writes = {{Table::kState, "c-1", "something else"}};
  auto second = store_->Append(retry);
  ASSERT_THAT(second, IsOk());
  EXPECT_TRUE(second->replayed);
  EXPECT_EQ(second->first_position, first->first_position);
  EXPECT_EQ(second->last_version, first->last_version);
  EXPECT_EQ(second->recorded_at, first->recorded_at);
  EXPECT_EQ(store_->LastPosition(), 1);
  EXPECT_THAT(store_->Get(Table::kState, "c-1"),
              IsOkAndHolds(::testing::Optional(std::string("v1"))));

  Reopen();
  auto after_restart = store_->Append(create);
  ASSERT_THAT(after_restart, IsOk());
  EXPECT_TRUE(after_restart->replayed);
  EXPECT_EQ(after_restart->first_position, 1);
  EXPECT_EQ(store_->LastPosition(), 1);
}

TEST_F(EventStoreTest, FindRequestReturnsTheRecordedResult) {
  EXPECT_THAT(store_->FindRequest("req-1"), IsOkAndHolds(std::nullopt));
  AppendRequest create =
      Request("c-1", kNoStream, {Event("Created", kMonday), Event("E", kMonday)});
  create.request_id = "req-1";
  ASSERT_THAT(store_->Append(create), IsOk());
  auto found = store_->FindRequest("req-1");
  ASSERT_THAT(found, IsOk());
  ASSERT_TRUE(found->has_value());
  EXPECT_EQ((*found)->stream_id, "c-1");
  EXPECT_EQ((*found)->last_version, 2);
  EXPECT_TRUE((*found)->replayed);
}

TEST_F(EventStoreTest, RequestIdReusedForADifferentCommandIsRefused) {
  AppendRequest create = Request("c-1", kNoStream, {Event("Created", kMonday)});
  create.request_id = "req-1";
  create.request_fingerprint = "digest-a";
  ASSERT_THAT(store_->Append(create), IsOk());
  AppendRequest other = Request("c-2", kNoStream, {Event("Created", kMonday)});
  other.request_id = "req-1";
  other.request_fingerprint = "digest-b";
  EXPECT_THAT(store_->Append(other),
              StatusIs(absl::StatusCode::kAlreadyExists, HasSubstr("req-1")));
  EXPECT_EQ(store_->LastPosition(), 1);
}

TEST_F(EventStoreTest, ConcurrentRetriesOfOneRequestWriteOnce) {
  constexpr int kThreads = 24;
  std::latch start(kThreads);
  std::vector<absl::StatusOr<AppendResult>> results(kThreads, absl::UnknownError("not run"));
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      AppendRequest request = Request("c-1", kNoStream, {Event("Created", kMonday)});
      request.request_id = "req-1";
      start.arrive_and_wait();
      results[t] = store_->Append(std::move(request));
    });
  }
  for (auto& thread : threads) thread.join();
  int originals = 0;
  for (const auto& result : results) {
    ASSERT_THAT(result, IsOk());
    EXPECT_EQ(result->first_position, 1);
    originals += result->replayed ? 0 : 1;
  }
  EXPECT_EQ(originals, 1);
  EXPECT_EQ(store_->LastPosition(), 1);
}

TEST_F(EventStoreTest, BusinessTimeNeverGoesBackwardsWithinAStream) {
  ASSERT_THAT(store_->Append(Request("c-1", kNoStream, {Event("Created", kMonday)})), IsOk());
  EXPECT_THAT(store_->Append(Request("c-1", 1, {Event("Renamed", kMonday - absl::Seconds(1))})),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("occurred_at")));
  EXPECT_THAT(store_->Append(Request("c-1", 1, {Event("Renamed", kMonday)})), IsOk());
  // Late facts on another stream are normal.
  EXPECT_THAT(
      store_->Append(Request("c-2", kNoStream, {Event("Created", kMonday - absl::Hours(24 * 30))})),
      IsOk());
  EXPECT_THAT(store_->Append(Request(
                  "c-3", kNoStream,
                  {Event("Created", kMonday), Event("Renamed", kMonday - absl::Seconds(1))})),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("events[1].occurred_at")));
  EXPECT_EQ(store_->LastPosition(), 3);
}

TEST_F(EventStoreTest, RecordTimeNeverGoesBackwardsEvenIfTheClockDoes) {
  ASSERT_THAT(store_->Append(Request("a", kNoStream, {Event("E", kMonday)})), IsOk());
  const absl::Time first = now_;
  now_ -= absl::Minutes(10);
  auto result = store_->Append(Request("b", kNoStream, {Event("E", kMonday)}));
  ASSERT_THAT(result, IsOk());
  EXPECT_EQ(result->recorded_at, first);
}

TEST_F(EventStoreTest, CallerWritesCommitOnlyWithTheirEvents) {
  AppendRequest create = Request("c-1", kNoStream, {Event("Created", kMonday)});
  create.writes = {{Table::kState, "contact/c-1", "v1"}, {Table::kIndex, "by_owner/alice/c-1", ""}};
  ASSERT_THAT(store_->Append(create), IsOk());

  AppendRequest stale = Request("c-1", kNoStream, {Event("Created", kMonday)});
  stale.writes = {{Table::kState, "contact/c-1", "overwritten"},
                  {Table::kIndex, "by_owner/alice/c-1", std::nullopt}};
  EXPECT_THAT(store_->Append(stale), StatusIs(absl::StatusCode::kAborted));
  EXPECT_THAT(store_->Get(Table::kState, "contact/c-1"),
              IsOkAndHolds(::testing::Optional(std::string("v1"))));
  EXPECT_THAT(store_->Get(Table::kIndex, "by_owner/alice/c-1"),
              IsOkAndHolds(::testing::Optional(std::string())));

  AppendRequest reassign = Request("c-1", 1, {Event("Reassigned", kMonday)});
  reassign.writes = {{Table::kIndex, "by_owner/alice/c-1", std::nullopt},
                     {Table::kIndex, "by_owner/bob/c-1", ""}};
  ASSERT_THAT(store_->Append(reassign), IsOk());
  EXPECT_THAT(store_->Get(Table::kIndex, "by_owner/alice/c-1"), IsOkAndHolds(std::nullopt));
  EXPECT_THAT(store_->Get(Table::kState, "by_owner/bob/c-1"), IsOkAndHolds(std::nullopt))
      << "tables are separate";
}

TEST_F(EventStoreTest, ScanPagesThroughAPrefixInKeyOrder) {
  AppendRequest request = Request("s", kNoStream, {Event("E", kMonday)});
  for (std::string key :
       {"owner/bob/3", "owner/alice/2", "owner/alice/1", "owner/alicex/9", "other/1"}) {
    request.writes.push_back({Table::kIndex, key, absl::StrCat("v:", key)});
  }
  ASSERT_THAT(store_->Append(request), IsOk());

  auto page1 = store_->Scan(Table::kIndex, {.prefix = "owner/alice/"}, 1);
  ASSERT_THAT(page1, IsOk());
  EXPECT_THAT(*page1, ElementsAre(Pair("owner/alice/1", "v:owner/alice/1")));
  auto page2 = store_->Scan(Table::kIndex,
                            {.prefix = "owner/alice/", .start_after = page1->back().first}, 10);
  ASSERT_THAT(page2, IsOk());
  EXPECT_THAT(*page2, ElementsAre(Pair("owner/alice/2", "v:owner/alice/2")));
  auto resume_before_prefix =
      store_->Scan(Table::kIndex, {.prefix = "owner/alice/", .start_after = "a"}, 10);
  ASSERT_THAT(resume_before_prefix, IsOk());
  EXPECT_EQ(resume_before_prefix->size(), 2u);
  auto all_owners = store_->Scan(Table::kIndex, {.prefix = "owner/"}, 10);
  ASSERT_THAT(all_owners, IsOk());
  EXPECT_EQ(all_owners->size(), 4u);
}

TEST_F(EventStoreTest, MalformedRequestsAreRefusedAndStoreNothing) {
  auto refused = [&](AppendRequest request) { return store_->Append(std::move(request)); };
  EXPECT_THAT(refused(Request("", kNoStream, {Event("E", kMonday)})),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("stream_id")));
  EXPECT_THAT(refused(Request(std::string("a\0b", 3), kNoStream, {Event("E", kMonday)})),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("stream_id")));
  EXPECT_THAT(refused(Request(std::string(300, 'x'), kNoStream, {Event("E", kMonday)})),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("stream_id")));
  EXPECT_THAT(refused(Request("a", kNoStream, {})),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("events")));
  EXPECT_THAT(refused(Request("a", -2, {Event("E", kMonday)})),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("expected_version")));
  AppendRequest no_type = Request("a", kNoStream, {Event("E", kMonday)});
  no_type.events[0].mutable_payload()->clear_type_url();
  EXPECT_THAT(refused(no_type),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("events[0].payload")));
  AppendRequest no_time = Request("a", kNoStream, {Event("E", kMonday)});
  no_time.events[0].clear_occurred_at();
  EXPECT_THAT(refused(no_time),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("events[0].occurred_at")));
  AppendRequest no_type_name = Request("a", kNoStream, {Event("E", kMonday)});
  no_type_name.stream_type.clear();
  EXPECT_THAT(refused(no_type_name),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("stream_type")));
  EXPECT_THAT(refused(Request("a", kNoStream, {Event("E", kMonday, std::string(2u << 20, 'x'))})),
              StatusIs(absl::StatusCode::kResourceExhausted, HasSubstr("events[0]")));
  AppendRequest empty_key = Request("a", kNoStream, {Event("E", kMonday)});
  empty_key.writes = {{Table::kState, "", "v"}};
  EXPECT_THAT(refused(empty_key),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("writes[0].key")));

  EXPECT_EQ(store_->LastPosition(), 0);
  auto head = store_->GetStreamHead("a");
  ASSERT_THAT(head, IsOk());
  EXPECT_FALSE(head->has_value());
}

TEST_F(EventStoreTest, EverythingSurvivesReopenAndPositionsContinue) {
  ASSERT_THAT(store_->Append(Request("c-1", kNoStream,
                                     {Event("Created", kMonday), Event("Renamed", kMonday)})),
              IsOk());
  ASSERT_THAT(store_->PutCheckpoint("relay", 1), IsOk());
  Reopen();
  EXPECT_EQ(store_->LastPosition(), 2);
  EXPECT_THAT(store_->GetCheckpoint("relay"), IsOkAndHolds(1));
  EXPECT_THAT(store_->GetCheckpoint("never-set"), IsOkAndHolds(0));
  EXPECT_THAT(store_->Append(Request("c-1", 1, {Event("E", kMonday)})),
              StatusIs(absl::StatusCode::kAborted));
  auto next = store_->Append(Request("c-1", 2, {Event("E", kMonday)}));
  ASSERT_THAT(next, IsOk());
  EXPECT_EQ(next->first_position, 3);
  EXPECT_THAT(Versions("c-1"), ElementsAre(1, 2, 3));
}

TEST_F(EventStoreTest, WaitForAppendWakesOnAppendAndTimesOutOtherwise) {
  EXPECT_EQ(store_->WaitForAppend(0, absl::Now() + absl::Milliseconds(20)), 0);
  std::atomic<int64_t> seen{-1};
  std::thread waiter([&] { seen = store_->WaitForAppend(0, absl::Now() + absl::Seconds(30)); });
  ASSERT_THAT(store_->Append(Request("a", kNoStream, {Event("E", kMonday)})), IsOk());
  waiter.join();
  EXPECT_EQ(seen.load(), 1);
}

// Holds the writer inside its first group (the clock is read while staging) until Release(),
// so a test can queue more commands and know exactly how they are grouped.
class HeldClock {
 public:
  Clock clock() {
    return [this] {
      if (calls_.fetch_add(1) == 0) {
        held_.Notify();
        release_.WaitForNotification();
      }
      return kMonday;
    };
  }
  void WaitUntilHeld() { held_.WaitForNotification(); }
  void Release() { release_.Notify(); }

 private:
  std::atomic<int> calls_{0};
  absl::Notification held_;
  absl::Notification release_;
};

TEST(EventStoreGroupCommitTest, CommandsQueuedDuringACommitShareTheNextOne) {
  TempDir dir;
  HeldClock held;
  auto store = EventStore::Open(dir.Sub("store"), {}, held.clock());
  ASSERT_THAT(store, IsOk());

  constexpr int kQueued = 10;
  std::atomic<int> done{0};
  auto append = [&](int i) {
    (*store)->AppendAsync(Request(absl::StrCat("s", i), kNoStream, {Event("E", kMonday)}),
                          [&](absl::StatusOr<AppendResult> result) {
                            EXPECT_THAT(result, IsOk());
                            done.fetch_add(1);
                          });
  };
  append(0);
  held.WaitUntilHeld();
  for (int i = 1; i <= kQueued; ++i) append(i);
  held.Release();
  ASSERT_TRUE(crm::testing::WaitFor([&] { return done.load() == kQueued + 1; }));

  EXPECT_EQ((*store)->stats().groups_committed, 2u);
  EXPECT_EQ((*store)->stats().commands_committed, static_cast<uint64_t>(kQueued + 1));
  EXPECT_EQ((*store)->LastPosition(), kQueued + 1);
}

TEST(EventStoreGroupCommitTest, ACommandRefusedInAGroupDoesNotAffectItsNeighbours) {
  TempDir dir;
  HeldClock held;
  auto store = EventStore::Open(dir.Sub("store"), {}, held.clock());
  ASSERT_THAT(store, IsOk());

  absl::Mutex mu;
  std::vector<absl::StatusCode> codes(4, absl::StatusCode::kUnknown);
  std::atomic<int> done{0};
  auto append = [&](int slot, AppendRequest request) {
    (*store)->AppendAsync(std::move(request), [&, slot](absl::StatusOr<AppendResult> result) {
      absl::MutexLock lock(&mu);
      codes[slot] = result.status().code();
      done.fetch_add(1);
    });
  };
  append(0, Request("warmup", kNoStream, {Event("E", kMonday)}));
  held.WaitUntilHeld();
  // One group: a create, a conflicting create of the same stream, an update that relies on the
  // first create being staged, and an unrelated create.
  append(1, Request("x", kNoStream, {Event("Created", kMonday)}));
  append(2, Request("x", kNoStream, {Event("Created", kMonday)}));
  append(3, Request("x", 1, {Event("Renamed", kMonday)}));
  held.Release();
  ASSERT_TRUE(crm::testing::WaitFor([&] { return done.load() == 4; }));

  EXPECT_THAT(codes, ElementsAre(absl::StatusCode::kOk, absl::StatusCode::kOk,
                                 absl::StatusCode::kAborted, absl::StatusCode::kOk));
  EXPECT_EQ((*store)->stats().groups_committed, 2u);
  auto events = (*store)->ReadStream("x", 1, 10);
  ASSERT_THAT(events, IsOk());
  ASSERT_EQ(events->size(), 2u);
  EXPECT_EQ((*events)[1].payload().type_url(), "type.googleapis.com/crm.test.v1.Renamed");
  EXPECT_EQ((*events)[1].position(), 3);
}

// A group's writes reach RocksDB sorted by key; two writes of one key keep their order.
TEST(EventStoreGroupCommitTest, TheLaterWriteOfAKeyInAGroupWins) {
  TempDir dir;
  HeldClock held;
  auto store = EventStore::Open(dir.Sub("store"), {}, held.clock());
  ASSERT_THAT(store, IsOk());

  std::atomic<int> done{0};
  auto append = [&](AppendRequest request) {
    (*store)->AppendAsync(std::move(request), [&](absl::StatusOr<AppendResult> result) {
      EXPECT_THAT(result, IsOk());
      done.fetch_add(1);
    });
  };
  append(Request("warmup", kNoStream, {Event("E", kMonday)}));
  held.WaitUntilHeld();
  AppendRequest create = Request("x", kNoStream, {Event("Created", kMonday)});
  create.writes = {{Table::kState, "x", "v1"}, {Table::kIndex, "owner/bob/x", ""}};
  AppendRequest other = Request("y", kNoStream, {Event("Created", kMonday)});
  other.writes = {{Table::kState, "y", "v1"}, {Table::kIndex, "owner/alice/y", ""}};
  AppendRequest reassign = Request("x", 1, {Event("Reassigned", kMonday)});
  reassign.writes = {{Table::kState, "x", "v2"},
                     {Table::kIndex, "owner/bob/x", std::nullopt},
                     {Table::kIndex, "owner/carol/x", ""}};
  AppendRequest back = Request("x", 2, {Event("Reassigned", kMonday)});
  back.writes = {{Table::kState, "x", "v3"},
                 {Table::kIndex, "owner/carol/x", std::nullopt},
                 {Table::kIndex, "owner/bob/x", ""}};
  append(std::move(create));
  append(std::move(other));
  append(std::move(reassign));
  append(std::move(back));
  held.Release();
  ASSERT_TRUE(crm::testing::WaitFor([&] { return done.load() == 5; }));

  EXPECT_EQ((*store)->stats().groups_committed, 2u);
  EXPECT_THAT((*store)->Get(Table::kState, "x"),
              IsOkAndHolds(::testing::Optional(std::string("v3"))));
  auto owners = (*store)->Scan(Table::kIndex, {.prefix = "owner/"}, 10);
  ASSERT_THAT(owners, IsOk());
  EXPECT_THAT(*owners, ElementsAre(Pair("owner/alice/y", ""), Pair("owner/bob/x", "")));
  auto log = (*store)->ReadLog(2, 10);  // still in arrival order
  ASSERT_THAT(log, IsOk());
  ASSERT_EQ(log->size(), 4u);
  EXPECT_EQ((*log)[0].stream_id(), "x");
  EXPECT_EQ((*log)[1].stream_id(), "y");
  EXPECT_EQ((*log)[3].stream_version(), 3);
}

}  // namespace
}  // namespace crm::eventstore
