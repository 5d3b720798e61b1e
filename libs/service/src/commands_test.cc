#include "crm/service/commands.h"

#include "crm/common/time.h"
#include "crm/testing/testing.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace crm::service {
namespace {

using ::crm::testing::IsOk;
using ::crm::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::Field;
using ::testing::IsEmpty;
using ::testing::Not;

class ScanIndexPageTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto store = eventstore::EventStore::Open(dir_.Sub("store"), {});
    ASSERT_THAT(store, IsOk());
    store_ = *std::move(store);
  }

  // Index entries are written with an event, as the repository writes them.
  void Index(const std::vector<std::string>& keys) {
    eventstore::EventEnvelope event;
    event.mutable_payload()->set_type_url("type.googleapis.com/crm.test.v1.Indexed");
    *event.mutable_occurred_at() = ToProto(absl::Now());
    eventstore::AppendRequest request{.stream_id = absl::StrCat("s/", ++streams_),
                                      .stream_type = "s",
                                      .expected_version = eventstore::kAnyVersion,
                                      .events = {event}};
    for (const std::string& key : keys)
      request.writes.push_back({eventstore::Table::kIndex, key, ""});
    ASSERT_THAT(store_->Append(std::move(request)), IsOk());
  }

  // Every page of a listing; ids taken unless `skip` says otherwise, done past `stop`.
  std::vector<std::vector<std::string>> Pages(const std::vector<std::string>& prefixes,
                                              int page_size, const std::string& start_after = "",
                                              const std::string& skip = "",
                                              const std::string& stop = "") {
    std::vector<std::vector<std::string>> pages;
    std::string token;
    for (int guard = 0; guard < 50; ++guard) {
      std::vector<std::string> page;
      auto next = ScanIndexPage(
          *store_, prefixes, token, page_size,
          [&](const std::string& key, const std::string& id) -> absl::StatusOr<Offer> {
            if (!stop.empty() && key > stop) return Offer::kDone;
            if (id == skip) return Offer::kSkipped;
            page.push_back(id);
            return Offer::kTaken;
          },
          start_after);
      EXPECT_THAT(next, IsOk());
      pages.push_back(page);
      if (!next.ok() || next->empty()) break;
      token = *next;
    }
    return pages;
  }

  crm::testing::TempDir dir_;
  std::unique_ptr<eventstore::EventStore> store_;
  int streams_ = 0;
};

TEST_F(ScanIndexPageTest, PagesWalkPrefixesInKeyOrderWithoutGapsOrRepeats) {
  Index({"x/archived/a1", "x/live/b1", "x/live/b2", "x/live/b3", "y/other/z"});
  EXPECT_THAT(Pages({"x/archived/", "x/live/"}, 2),
              ElementsAre(ElementsAre("a1", "b1"), ElementsAre("b2", "b3"), IsEmpty()));
  EXPECT_THAT(Pages({"x/live/"}, 10), ElementsAre(ElementsAre("b1", "b2", "b3")));
  EXPECT_THAT(Pages({"x/live/"}, 10, "", "b2"), ElementsAre(ElementsAre("b1", "b3")));
}

TEST_F(ScanIndexPageTest, ARangeStartsAfterAKeyAndStopsWhenTheOfferIsDone) {
  Index({"d/2026-01-01/o1", "d/2026-02-01/o2", "d/2026-02-15/o3", "d/2026-03-01/o4"});
  EXPECT_THAT(Pages({"d/"}, 10, "d/2026-02-01", "", "d/2026-02-15~"),
              ElementsAre(ElementsAre("o2", "o3")));
}

TEST_F(ScanIndexPageTest, ASparseFilterAnswersShortPagesInsteadOfScanningEverything) {
  std::vector<std::string> keys;
  for (int i = 0; i < 30; ++i) keys.push_back(absl::StrCat("k/", 100 + i));
  Index(keys);
  int offered = 0;
  auto next = ScanIndexPage(*store_, {"k/"}, "", 2,
                            [&](const std::string&, const std::string&) -> absl::StatusOr<Offer> {
                              ++offered;
                              return Offer::kSkipped;
                            });
  ASSERT_THAT(next, IsOk());
  EXPECT_EQ(offered, 20) << "at most 10 x page_size keys per page";
  EXPECT_THAT(*next, Not(IsEmpty()));
  EXPECT_THAT(ScanIndexPage(*store_, {"k/"}, "%%%", 2,
                            [](const std::string&, const std::string&) -> absl::StatusOr<Offer> {
                              return Offer::kTaken;
                            }),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST_F(ScanIndexPageTest, ATokenOfAnotherListingIsRefusedNamingPageToken) {
  Index({"x/live/b1", "x/live/b2", "y/other/z1", "y/other/z2"});
  auto take = [](const std::string&, const std::string&) -> absl::StatusOr<Offer> {
    return Offer::kTaken;
  };
  auto from_y = ScanIndexPage(*store_, {"y/other/"}, "", 1, take);
  ASSERT_THAT(from_y, IsOk());
  ASSERT_THAT(*from_y, Not(IsEmpty()));
  EXPECT_THAT(ScanIndexPage(*store_, {"y/other/"}, *from_y, 1, take), IsOk());
  for (const std::string& token : {*from_y, EncodePageToken("forged-token")}) {
    auto refused = ScanIndexPage(*store_, {"x/live/"}, token, 1, take);
    EXPECT_THAT(refused, StatusIs(absl::StatusCode::kInvalidArgument));
    EXPECT_THAT(Violations(refused.status()), ElementsAre(Field(&FieldViolation::field, "page_token")));
  }
}

TEST(CommandsTest, IdsDerivedFromRequestsAreStableAndDistinctPerKind) {
  EXPECT_EQ(IdForCreate("c-", "contact", "r1"), IdForCreate("c-", "contact", "r1"));
  EXPECT_NE(IdForCreate("c-", "contact", "r1"), IdForCreate("c-", "contact", "r2"));
  EXPECT_NE(IdForCreate("x-", "contact", "r1").substr(2),
            IdForCreate("x-", "lead", "r1").substr(2));
  EXPECT_NE(IdForCreate("c-", "contact", ""), IdForCreate("c-", "contact", ""))
      << "random without a request id";
  EXPECT_EQ(DerivedId("o-", "seed").size(), 2u + 24u);
  EXPECT_THAT(ValidateId(DerivedId("o-", "seed"), "id"), IsOk());
}

TEST(CommandsTest, PageSizesAreBounded) {
  EXPECT_THAT(PageSize(0, 50, 500), ::crm::testing::IsOkAndHolds(50));
  EXPECT_THAT(PageSize(500, 50, 500), ::crm::testing::IsOkAndHolds(500));
  EXPECT_THAT(PageSize(501, 50, 500), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(PageSize(-1, 50, 500), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(DecodePageToken(EncodePageToken("a/b/c")), ::crm::testing::IsOkAndHolds("a/b/c"));
}

}  // namespace
}  // namespace crm::service
