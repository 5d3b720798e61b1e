#include "crm/eventsourcing/repository.h"

#include <future>
#include <thread>

#include "absl/synchronization/notification.h"
#include "crm/eventsourcing/testing/v1/tally.pb.h"
#include "crm/testing/testing.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace crm::eventsourcing {
namespace {

using ::crm::testing::IsOk;
using ::crm::testing::IsOkAndHolds;
using ::crm::testing::StatusIs;
using ::crm::testing::TempDir;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using namespace crm::eventsourcing::testing::v1;  // NOLINT: test protos

// The toy aggregate: pure Evolve and IndexKeys, as a domain would write them.
struct Tally {
  using State = TallyState;
  static constexpr char kStreamType[] = "tally";
  static void Evolve(State& state, const eventstore::EventEnvelope& event) {
    TallyOpened opened;
    TallyAdded added;
    TallyReassigned reassigned;
    if (event.payload().UnpackTo(&opened)) state.set_owner(opened.owner());
    if (event.payload().UnpackTo(&added)) state.set_total(state.total() + added.amount());
    if (event.payload().UnpackTo(&reassigned)) state.set_owner(reassigned.owner());
  }
  static std::vector<std::string> IndexKeys(const std::string& id, const State& state) {
    return {absl::StrCat("tally/by_owner/", state.owner(), "/", id)};
  }
};

// Pure deciders.
Repository<Tally>::Decide Open(std::string owner) {
  return [owner](const Repository<Tally>::Current& current, absl::Time) -> absl::StatusOr<Events> {
    if (current) return absl::AlreadyExistsError("tally exists");
    Events events;
    auto opened = std::make_unique<TallyOpened>();
    opened->set_owner(owner);
    events.push_back(std::move(opened));
    return events;
  };
}
Repository<Tally>::Decide Add(int64_t amount, int* calls = nullptr) {
  return [amount, calls](const Repository<Tally>::Current& current,
                         absl::Time) -> absl::StatusOr<Events> {
    if (calls) ++*calls;
    if (!current) return absl::NotFoundError("no tally");
    if (amount <= 0) return absl::InvalidArgumentError("amount: must be positive");
    Events events;
    auto added = std::make_unique<TallyAdded>();
    added->set_amount(amount);
    events.push_back(std::move(added));
    return events;
  };
}
Repository<Tally>::Decide Reassign(std::string owner) {
  return [owner](const Repository<Tally>::Current&, absl::Time) -> absl::StatusOr<Events> {
    Events events;
    auto reassigned = std::make_unique<TallyReassigned>();
    reassigned->set_owner(owner);
    events.push_back(std::move(reassigned));
    return events;
  };
}

const absl::Time kNow =
    absl::FromCivil(absl::CivilSecond(2026, 11, 16, 12, 0, 0), absl::UTCTimeZone());

class RepositoryTest : public ::testing::Test {
 protected:
  RepositoryTest()
      : store_(*eventstore::EventStore::Open(dir_.Sub("store"), {}, [this] { return now_; })),
        repository_(*store_, {}, [this] { return now_; }) {}

  absl::StatusOr<CommandResult<TallyState>> Run(CommandMeta meta,
                                                Repository<Tally>::Decide decide) {
    std::promise<absl::StatusOr<CommandResult<TallyState>>> result;
    repository_.Handle(
        std::move(meta), std::move(decide),
        [&](absl::StatusOr<CommandResult<TallyState>> r) { result.set_value(std::move(r)); });
    return result.get_future().get();
  }
  CommandMeta Meta(std::string id = "t-1") {
    return CommandMeta{.stream_id = std::move(id), .actor_id = "alice", .channel = "web_form"};
  }
  std::vector<std::string> Index(const std::string& prefix) {
    std::vector<std::string> keys;
    auto rows = store_->Scan(eventstore::Table::kIndex, {.prefix = prefix}, 100);
    EXPECT_THAT(rows, IsOk());
    for (const auto& [key, value] : *rows) keys.push_back(key);
    return keys;
  }

  TempDir dir_;
  absl::Time now_ = kNow;
  std::unique_ptr<eventstore::EventStore> store_;
  Repository<Tally> repository_;
};

TEST_F(RepositoryTest, CommandsAppendEventsWithTheNewStateAndIndexInOneBatch) {
  auto opened = Run(Meta(), Open("alice"));
  ASSERT_THAT(opened, IsOk());
  EXPECT_EQ(opened->after.version, 1);
  EXPECT_EQ(opened->after.state.owner(), "alice");
  auto added = Run(Meta(), Add(5));
  ASSERT_THAT(added, IsOk());
  EXPECT_EQ(added->after.state.total(), 5);
  EXPECT_EQ(added->append.last_position, 2);

  auto loaded = repository_.Load("t-1");
  ASSERT_THAT(loaded, IsOk());
  EXPECT_EQ((*loaded)->version, 2);
  EXPECT_EQ((*loaded)->state.total(), 5);
  EXPECT_THAT(Index("tally/by_owner/"), ElementsAre("tally/by_owner/alice/t-1"));

  auto events = store_->ReadStream("tally/t-1", 1, 10);
  ASSERT_THAT(events, IsOk());
  const auto& event = (*events)[1];
  EXPECT_EQ(event.payload().type_url(),
            "type.googleapis.com/crm.eventsourcing.testing.v1.TallyAdded");
  EXPECT_EQ(event.actor_id(), "alice");
  EXPECT_EQ(event.channel(), "web_form");
  EXPECT_EQ(event.stream_type(), "tally");
  EXPECT_EQ(event.stream_id(), "tally/t-1") << "streams are namespaced by aggregate type";
  EXPECT_EQ(FromProto(event.occurred_at()), kNow) << "business time defaults to now";
}

TEST_F(RepositoryTest, ReassignMovesTheIndexEntry) {
  ASSERT_THAT(Run(Meta(), Open("alice")), IsOk());
  ASSERT_THAT(Run(Meta(), Reassign("bob")), IsOk());
  EXPECT_THAT(Index("tally/by_owner/"), ElementsAre("tally/by_owner/bob/t-1"));
}

TEST_F(RepositoryTest, RefusalsStoreNothing) {
  ASSERT_THAT(Run(Meta(), Open("alice")), IsOk());
  EXPECT_THAT(Run(Meta(), Add(-1)),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("amount")));
  EXPECT_THAT(Run(Meta("t-2"), Add(1)), StatusIs(absl::StatusCode::kNotFound));
  CommandMeta stale = Meta();
  stale.expected_version = 7;
  EXPECT_THAT(Run(stale, Add(1)), StatusIs(absl::StatusCode::kAborted, HasSubstr("version 1")));
  EXPECT_EQ(store_->LastPosition(), 1);
}

TEST_F(RepositoryTest, BusinessTimeIsBoundedAndNeverGoesBackwardsInAStream) {
  CommandMeta future = Meta();
  future.occurred_at = kNow + absl::Minutes(6);
  EXPECT_THAT(Run(future, Open("alice")),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("occurred_at")));
  CommandMeta ancient = Meta();
  ancient.occurred_at = kNow - absl::Hours(24 * 401);
  EXPECT_THAT(Run(ancient, Open("alice")),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("occurred_at")));

  CommandMeta yesterday = Meta();
  yesterday.occurred_at = kNow - absl::Hours(24);
  ASSERT_THAT(Run(yesterday, Open("alice")), IsOk()) << "late facts are normal";
  CommandMeta earlier = Meta();
  earlier.occurred_at = kNow - absl::Hours(48);
  EXPECT_THAT(Run(earlier, Add(1)), StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_EQ(store_->LastPosition(), 1);
}

TEST_F(RepositoryTest, ARetriedRequestGetsItsFirstAnswerWithoutDecidingAgain) {
  ASSERT_THAT(Run(Meta(), Open("alice")), IsOk());
  CommandMeta add = Meta();
  add.request_id = "req-add";
  add.request_fingerprint = "digest-a";
  int decides = 0;
  auto first = Run(add, Add(5, &decides));
  ASSERT_THAT(first, IsOk());
  ASSERT_THAT(Run(Meta(), Add(100)), IsOk());  // someone else changes it afterwards

  auto retry = Run(add, Add(5, &decides));
  ASSERT_THAT(retry, IsOk());
  EXPECT_EQ(decides, 1);
  EXPECT_TRUE(retry->append.replayed);
  EXPECT_EQ(retry->after.version, 2);
  EXPECT_EQ(retry->after.state.total(), 5) << "the state the first attempt produced";
  EXPECT_EQ(store_->LastPosition(), 3);

  CommandMeta changed = add;
  changed.request_fingerprint = "digest-b";
  EXPECT_THAT(Run(changed, Add(7, &decides)),
              StatusIs(absl::StatusCode::kAlreadyExists, HasSubstr("different request")));
  EXPECT_EQ(decides, 1);

  CommandMeta elsewhere = Meta("t-9");
  elsewhere.request_id = "req-add";
  EXPECT_THAT(Run(elsewhere, Open("x")),
              StatusIs(absl::StatusCode::kAlreadyExists, HasSubstr("request_id")));
}

TEST_F(RepositoryTest, StateAsOfABusinessTimeOrAVersion) {
  CommandMeta monday = Meta();
  monday.occurred_at = kNow - absl::Hours(48);
  ASSERT_THAT(Run(monday, Open("alice")), IsOk());
  CommandMeta tuesday = Meta();
  tuesday.occurred_at = kNow - absl::Hours(24);
  ASSERT_THAT(Run(tuesday, Add(3)), IsOk());
  ASSERT_THAT(Run(Meta(), Add(4)), IsOk());

  auto before_anything = repository_.LoadAsOf("t-1", kNow - absl::Hours(72));
  ASSERT_THAT(before_anything, IsOk());
  EXPECT_FALSE(before_anything->has_value());
  auto on_tuesday = repository_.LoadAsOf("t-1", kNow - absl::Hours(24));
  ASSERT_THAT(on_tuesday, IsOk());
  EXPECT_EQ((*on_tuesday)->state.total(), 3);
  EXPECT_EQ((*on_tuesday)->version, 2);
  auto version_one = repository_.LoadVersion("t-1", 1);
  ASSERT_THAT(version_one, IsOk());
  EXPECT_EQ((*version_one)->state.total(), 0);
}

TEST_F(RepositoryTest, ConcurrentCommandsNeverLoseOrDoubleAnUpdate) {
  ASSERT_THAT(Run(Meta(), Open("alice")), IsOk());
  constexpr int kThreads = 8;
  constexpr int kEach = 10;
  std::vector<std::thread> threads;
  std::atomic<int> succeeded{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < kEach; ++i) {
        auto result = Run(Meta(), Add(1));
        if (result.ok()) {
          ++succeeded;
        } else {
          EXPECT_THAT(result, StatusIs(absl::StatusCode::kAborted));  // only ever a lost race
        }
      }
    });
  }
  for (auto& thread : threads) thread.join();
  auto loaded = repository_.Load("t-1");
  ASSERT_THAT(loaded, IsOk());
  EXPECT_EQ((*loaded)->state.total(), succeeded.load());
  EXPECT_EQ((*loaded)->version, 1 + succeeded.load());
}

// Two commands loaded at the same version meet in one group: the store refuses the second
// (stale version) and the repository runs it again on the new state.
TEST(RepositoryRaceTest, ALostRaceIsDecidedAgainOnTheNewState) {
  TempDir dir;
  absl::Notification held;
  absl::Notification release;
  std::atomic<int> clock_calls{0};
  auto clock = [&] {
    if (clock_calls.fetch_add(1) == 1) {  // the second group: the one after Open
      held.Notify();
      release.WaitForNotification();
    }
    return kNow;
  };
  auto store = eventstore::EventStore::Open(dir.Sub("store"), {}, clock);
  ASSERT_THAT(store, IsOk());
  Repository<Tally> repository(**store, {}, [] { return kNow; });
  auto run = [&](Repository<Tally>::Decide decide, std::promise<absl::Status>& done) {
    repository.Handle(
        CommandMeta{.stream_id = "t-1", .actor_id = "alice"}, std::move(decide),
        [&done](absl::StatusOr<CommandResult<TallyState>> r) { done.set_value(r.status()); });
  };
  std::promise<absl::Status> opened;
  run(Open("alice"), opened);
  ASSERT_THAT(opened.get_future().get(), IsOk());

  // Hold the writer in a group of its own, then queue two Adds that both loaded version 1.
  std::promise<absl::Status> blocker;
  run(Reassign("bob"), blocker);
  held.WaitForNotification();
  int decides = 0;
  std::promise<absl::Status> first, second;
  run(Add(1, &decides), first);
  run(Add(1, &decides), second);
  release.Notify();
  EXPECT_THAT(blocker.get_future().get(), IsOk());
  EXPECT_THAT(first.get_future().get(), IsOk());
  EXPECT_THAT(second.get_future().get(), IsOk());
  EXPECT_GE(decides, 3) << "at least one Add lost a race and was decided again";
  auto loaded = repository.Load("t-1");
  ASSERT_THAT(loaded, IsOk());
  EXPECT_EQ((*loaded)->state.total(), 2);
  EXPECT_EQ((*loaded)->state.owner(), "bob");
}

}  // namespace
}  // namespace crm::eventsourcing
