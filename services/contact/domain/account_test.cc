#include "domain/account.h"

#include "crm/common/field_violations.h"
#include "crm/common/time.h"
#include "crm/contact/v1/events.pb.h"
#include "crm/testing/testing.h"
#include "domain/testing.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace crm::contact {
namespace {

using ::crm::contact::testing::Fields;
using ::crm::contact::testing::kMonday;
using ::crm::testing::IsOk;
using ::crm::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::IsEmpty;
using namespace crm::contact::v1;  // NOLINT: the domain's own messages

const ContactLimits kLimits;

Account Acme() {
  Account a;
  a.set_display_name(" Acme Corp ");
  a.set_domain("ACME.example");
  a.set_owner_id("rep-1");
  a.set_region("south");
  return a;
}

AccountCreated Created() {
  auto events = DecideCreateAccount(std::nullopt, kMonday, "acme", Acme(), kLimits);
  EXPECT_THAT(events, IsOk());
  return *dynamic_cast<const AccountCreated*>(events->front().get());
}

TEST(AccountTest, CreateNormalisesAndNeedsAName) {
  const AccountCreated created = Created();
  EXPECT_EQ(created.account().name(), "accounts/acme");
  EXPECT_EQ(created.account().display_name(), "Acme Corp");
  EXPECT_EQ(created.account().domain(), "acme.example");
  Account nameless = Acme();
  nameless.clear_display_name();
  nameless.set_domain("not a domain");
  EXPECT_THAT(
      Fields(DecideCreateAccount(std::nullopt, kMonday, "acme", nameless, kLimits).status()),
      ElementsAre("account.domain"));
  nameless.set_domain("acme.example");
  EXPECT_THAT(
      Fields(DecideCreateAccount(std::nullopt, kMonday, "acme", nameless, kLimits).status()),
      ElementsAre("account.display_name"));
  EXPECT_THAT(DecideCreateAccount(testing::Given<AccountAggregate>({&created}), kMonday, "acme",
                                  Acme(), kLimits),
              StatusIs(absl::StatusCode::kAlreadyExists));
}

TEST(AccountTest, UpdateArchiveAndIndexes) {
  const AccountCreated created = Created();
  Account patch;
  patch.set_region("north");
  google::protobuf::FieldMask mask;
  mask.add_paths("region");
  auto updated =
      DecideUpdateAccount(testing::Given<AccountAggregate>({&created}), patch, mask, kLimits);
  ASSERT_THAT(updated, IsOk());
  const auto& event = *dynamic_cast<const AccountUpdated*>(updated->front().get());
  EXPECT_EQ(event.account().region(), "north");
  EXPECT_EQ(event.account().owner_id(), "rep-1");
  patch.set_region("south");
  auto unchanged =
      DecideUpdateAccount(testing::Given<AccountAggregate>({&created}), patch, mask, kLimits);
  ASSERT_THAT(unchanged, IsOk());
  EXPECT_THAT(*unchanged, IsEmpty());

  EXPECT_THAT(
      AccountAggregate::IndexKeys("acme", testing::Given<AccountAggregate>({&created})->state),
      ElementsAre("account/live/all/acme", "account/live/owner/rep-1/acme",
                  "account/live/region/south/acme"));
  AccountArchived archived;
  const CurrentAccount gone = testing::Given<AccountAggregate>({&created, &archived});
  EXPECT_TRUE(gone->state.archived());
  EXPECT_THAT(DecideArchiveAccount(gone), StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_EQ(AccountAggregate::IndexKeys("acme", gone->state).front(), "account/archived/all/acme");
  EXPECT_THAT(DecideRestoreAccount(testing::Given<AccountAggregate>({&created})),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  auto restored = DecideRestoreAccount(gone);
  ASSERT_THAT(restored, IsOk());
  const auto& restored_event = dynamic_cast<const AccountRestored&>(*restored->front());
  EXPECT_FALSE(
      testing::Given<AccountAggregate>({&created, &archived, &restored_event})->state.archived());
}

}  // namespace
}  // namespace crm::contact
