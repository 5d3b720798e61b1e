#include "domain/contact.h"

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
using ::testing::UnorderedElementsAre;
using namespace crm::contact::v1;  // NOLINT: the domain's own messages

const ContactLimits kLimits;

// Then: the single event a decision produced, as its concrete type.
template <typename Event>
Event Only(const absl::StatusOr<eventsourcing::Events>& events) {
  EXPECT_THAT(events, IsOk());
  Event event;
  if (!events.ok() || events->size() != 1) {
    ADD_FAILURE() << "expected exactly one event";
    return event;
  }
  const auto* typed = dynamic_cast<const Event*>(events->front().get());
  if (typed == nullptr) {
    ADD_FAILURE() << "unexpected event type " << events->front()->GetTypeName();
    return event;
  }
  return *typed;
}

Contact Ada() {
  Contact c;
  c.set_given_name("  Ada ");
  c.set_family_name("Lovelace");
  c.add_emails("Ada@Example.COM");
  c.add_emails("ada@example.com");
  c.add_phones("+44 (0) 20-7946 0958");
  c.set_owner_id("rep-1");
  c.set_region("south");
  c.set_account_id("acme");
  c.set_source_channel("web_form");
  c.add_tags("vip");
  (*c.mutable_attributes())["industry.code"] = "62";
  return c;
}

ContactCreated Created(const Contact& fields = Ada()) {
  return Only<ContactCreated>(DecideCreate(std::nullopt, kMonday, "c-1", fields, kLimits));
}

TEST(CreateContactTest, NormalisesAndRecordsTheWholeContact) {
  const ContactCreated created = Created();
  const Contact& c = created.contact();
  EXPECT_EQ(c.name(), "contacts/c-1");
  EXPECT_EQ(c.contact_id(), "c-1");
  EXPECT_EQ(c.given_name(), "Ada");
  EXPECT_THAT(c.emails(), ElementsAre("ada@example.com")) << "lower case, duplicates removed";
  EXPECT_THAT(c.phones(), ElementsAre("+442079460958"));
  EXPECT_EQ(c.source_channel(), "web_form");
  EXPECT_EQ(FromProto(c.create_time()), kMonday);
}

TEST(CreateContactTest, PhonesBecomeE164WithADefaultRegion) {
  ContactLimits in_britain;
  in_britain.default_phone_region = "GB";
  Contact fields = Ada();
  fields.clear_phones();
  fields.add_phones("020 7946 0958");      // national, in the default region
  fields.add_phones("+1 (650) 253-0000");  // international
  auto created = DecideCreate(std::nullopt, kMonday, "c-1", fields, in_britain);
  ASSERT_THAT(created, IsOk());
  const auto& contact = dynamic_cast<const ContactCreated&>(*created->front()).contact();
  EXPECT_THAT(contact.phones(), ElementsAre("+442079460958", "+16502530000"));

  fields.add_phones("12345");
  EXPECT_THAT(Fields(DecideCreate(std::nullopt, kMonday, "c-1", fields, in_britain).status()),
              ElementsAre("contact.phones[2]"));
  fields.set_phones(2, "+999 123");  // no such country code
  EXPECT_THAT(Fields(DecideCreate(std::nullopt, kMonday, "c-1", fields, kLimits).status()),
              ElementsAre("contact.phones[2]"));
  EXPECT_TRUE(IsSupportedPhoneRegion("GB"));
  EXPECT_FALSE(IsSupportedPhoneRegion("XX"));
}

TEST(CreateContactTest, NamesEveryOffendingField) {
  Contact bad = Ada();
  bad.clear_given_name();
  bad.clear_family_name();
  EXPECT_THAT(Fields(DecideCreate(std::nullopt, kMonday, "c-1", bad, kLimits).status()),
              ElementsAre("contact.given_name", "contact.family_name"));

  bad = Ada();
  bad.set_emails(1, "not an email");
  bad.add_phones("call me");
  (*bad.mutable_attributes())["bad key!"] = "x";
  bad.set_lifecycle_stage(static_cast<LifecycleStage>(99));
  auto refused = DecideCreate(std::nullopt, kMonday, "c-1", bad, kLimits);
  EXPECT_THAT(refused, StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(Fields(refused.status()),
              UnorderedElementsAre("contact.emails[1]", "contact.phones[1]",
                                   "contact.attributes[bad key!]", "contact.lifecycle_stage"));

  EXPECT_THAT(Fields(DecideCreate(std::nullopt, kMonday, "c/1", Ada(), kLimits).status()),
              ElementsAre("contact_id"));
}

TEST(CreateContactTest, OversizedFieldsAreResourceExhausted) {
  Contact big = Ada();
  big.set_family_name(std::string(kLimits.max_name + 1, 'x'));
  for (size_t i = 0; i <= kLimits.max_tags; ++i) big.add_tags("t" + std::to_string(i));
  big.add_emails(std::string(243, 'e') + "@example.com");  // 255 bytes: one over RFC 5321's 254
  auto refused = DecideCreate(std::nullopt, kMonday, "c-1", big, kLimits);
  EXPECT_THAT(refused, StatusIs(absl::StatusCode::kResourceExhausted));
  EXPECT_THAT(Fields(refused.status()),
              UnorderedElementsAre("contact.family_name", "contact.tags", "contact.emails[2]"));
}

TEST(CreateContactTest, AnExistingContactCannotBeCreatedAgain) {
  const ContactCreated created = Created();
  EXPECT_THAT(
      DecideCreate(testing::Given<ContactAggregate>({&created}), kMonday, "c-1", Ada(), kLimits),
      StatusIs(absl::StatusCode::kAlreadyExists));
}

TEST(EvolveTest, EventsBuildTheStateWithVersionAndUpdateTime) {
  const ContactCreated created = Created();
  ContactArchived archived;
  archived.set_contact_id("c-1");
  const Current state = testing::Given<ContactAggregate>({&created, &archived});
  EXPECT_EQ(state->version, 2);
  EXPECT_EQ(state->state.version(), 2);
  EXPECT_TRUE(state->state.archived());
  EXPECT_EQ(state->state.emails(0), "ada@example.com");
  EXPECT_EQ(FromProto(state->state.update_time()), kMonday);
}

TEST(UpdateContactTest, ReplacesOnlyMaskedFieldsAndRecordsWhatChanged) {
  const ContactCreated created = Created();
  Contact patch;
  patch.set_owner_id("rep-2");
  patch.set_region("south");        // same as before: not a change
  patch.set_given_name("ignored");  // not in the mask
  patch.add_emails("ADA@work.example");
  google::protobuf::FieldMask mask;
  for (const char* path : {"owner_id", "region", "emails"}) mask.add_paths(path);
  const ContactUpdated updated = Only<ContactUpdated>(
      DecideUpdate(testing::Given<ContactAggregate>({&created}), patch, mask, kLimits));
  EXPECT_THAT(updated.changed_fields(), ElementsAre("owner_id", "emails"));
  EXPECT_EQ(updated.contact().owner_id(), "rep-2");
  EXPECT_EQ(updated.contact().given_name(), "Ada");
  EXPECT_THAT(updated.contact().emails(), ElementsAre("ada@work.example")) << "lists are replaced";
  EXPECT_THAT(updated.contact().phones(), ElementsAre("+442079460958"));
}

TEST(UpdateContactTest, ClearingAFieldIsAChangeAndNoChangeIsNoEvent) {
  const ContactCreated created = Created();
  google::protobuf::FieldMask mask;
  mask.add_paths("owner_id");
  const ContactUpdated cleared = Only<ContactUpdated>(
      DecideUpdate(testing::Given<ContactAggregate>({&created}), Contact(), mask, kLimits));
  EXPECT_EQ(cleared.contact().owner_id(), "");

  Contact same;
  same.set_owner_id("rep-1");
  auto nothing = DecideUpdate(testing::Given<ContactAggregate>({&created}), same, mask, kLimits);
  ASSERT_THAT(nothing, IsOk());
  EXPECT_THAT(*nothing, IsEmpty());
}

TEST(UpdateContactTest, RefusesBadMasksAndNamelessResults) {
  const ContactCreated created = Created();
  EXPECT_THAT(
      Fields(DecideUpdate(testing::Given<ContactAggregate>({&created}), Contact(), {}, kLimits)
                 .status()),
      ElementsAre("update_mask"));
  google::protobuf::FieldMask mask;
  mask.add_paths("version");
  EXPECT_THAT(
      Fields(DecideUpdate(testing::Given<ContactAggregate>({&created}), Contact(), mask, kLimits)
                 .status()),
      ElementsAre("contact.version"));
  google::protobuf::FieldMask names;
  names.add_paths("given_name");
  names.add_paths("family_name");
  EXPECT_THAT(DecideUpdate(testing::Given<ContactAggregate>({&created}), Contact(), names, kLimits),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(DecideUpdate(std::nullopt, Contact(), names, kLimits),
              StatusIs(absl::StatusCode::kNotFound));
}

TEST(ArchiveRestoreTest, OnlyLegalTransitions) {
  const ContactCreated created = Created();
  const ContactArchived archived =
      Only<ContactArchived>(DecideArchive(testing::Given<ContactAggregate>({&created})));
  EXPECT_EQ(archived.contact_id(), "c-1");
  EXPECT_THAT(DecideArchive(testing::Given<ContactAggregate>({&created, &archived})),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_THAT(DecideRestore(testing::Given<ContactAggregate>({&created})),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  const ContactRestored restored =
      Only<ContactRestored>(DecideRestore(testing::Given<ContactAggregate>({&created, &archived})));
  EXPECT_FALSE(
      testing::Given<ContactAggregate>({&created, &archived, &restored})->state.archived());
  EXPECT_THAT(DecideArchive(std::nullopt), StatusIs(absl::StatusCode::kNotFound));
}

TEST(MergeTest, TheLoserIsMarkedAndCannotChangeAnyMore) {
  const ContactCreated created = Created();
  const ContactMergedInto merged =
      Only<ContactMergedInto>(DecideMergeInto(testing::Given<ContactAggregate>({&created}), "c-2"));
  EXPECT_EQ(merged.winner_contact_id(), "c-2");
  EXPECT_EQ(merged.source_channel(), "web_form") << "duplicate_rate counts by creation channel";
  const Current after = testing::Given<ContactAggregate>({&created, &merged});
  EXPECT_EQ(after->state.merged_into_contact_id(), "c-2");
  google::protobuf::FieldMask mask;
  mask.add_paths("owner_id");
  EXPECT_THAT(DecideUpdate(after, Contact(), mask, kLimits),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_THAT(DecideArchive(after), StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_THAT(DecideMergeInto(after, "c-3"), StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_THAT(Fields(DecideMergeInto(testing::Given<ContactAggregate>({&created}), "c-1").status()),
              ElementsAre("loser_contact_id"));
}

TEST(MergeTest, TheWinnerKeepsItsValuesAndGainsWhatItLacks) {
  Contact winner_fields = Ada();
  winner_fields.clear_owner_id();
  const ContactCreated winner = Created(winner_fields);
  Contact loser;
  loser.set_contact_id("c-9");
  loser.set_given_name("Augusta");
  loser.set_owner_id("rep-7");
  loser.add_emails("ada@example.com");
  loser.add_emails("countess@example.org");
  loser.add_tags("vip");
  loser.add_tags("speaker");
  const ContactAbsorbedDuplicate absorbed = Only<ContactAbsorbedDuplicate>(
      DecideAbsorb(testing::Given<ContactAggregate>({&winner}), loser, kLimits));
  EXPECT_EQ(absorbed.loser_contact_id(), "c-9");
  const Contact& c = absorbed.contact();
  EXPECT_EQ(c.given_name(), "Ada") << "the winner's value stays";
  EXPECT_EQ(c.owner_id(), "rep-7") << "a gap is filled";
  EXPECT_THAT(c.emails(), ElementsAre("ada@example.com", "countess@example.org"));
  EXPECT_THAT(c.tags(), ElementsAre("vip", "speaker"));
}

TEST(IndexKeysTest, ListsAndDuplicateLookupsFollowTheState) {
  const ContactCreated created = Created();
  const Current live = testing::Given<ContactAggregate>({&created});
  EXPECT_THAT(
      ContactAggregate::IndexKeys("c-1", live->state),
      UnorderedElementsAre("contact/live/all/c-1", "contact/live/owner/rep-1/c-1",
                           "contact/live/account/acme/c-1", "contact/live/region/south/c-1",
                           "contact/email/ada@example.com/c-1", "contact/phone/+442079460958/c-1",
                           "contact/name/acme/ada lovelace/c-1"));
  ContactArchived archived;
  const Current archived_state = testing::Given<ContactAggregate>({&created, &archived});
  EXPECT_THAT(ContactAggregate::IndexKeys("c-1", archived_state->state),
              ::testing::Contains("contact/archived/all/c-1"));
  Contact customer = Ada();
  customer.set_lifecycle_stage(LIFECYCLE_STAGE_CUSTOMER);
  const ContactCreated created_customer = Created(customer);
  EXPECT_THAT(ContactAggregate::IndexKeys(
                  "c-1", testing::Given<ContactAggregate>({&created_customer})->state),
              ::testing::Contains("contact/live/stage/LIFECYCLE_STAGE_CUSTOMER/c-1"));
  ContactMergedInto merged;
  merged.set_winner_contact_id("c-2");
  EXPECT_THAT(ContactAggregate::IndexKeys(
                  "c-1", testing::Given<ContactAggregate>({&created, &merged})->state),
              IsEmpty());
}

}  // namespace
}  // namespace crm::contact
