#include "domain/contact.h"

#include <algorithm>
#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "crm/common/field_violations.h"
#include "crm/common/ids.h"
#include "crm/common/time.h"
#include "crm/contact/v1/events.pb.h"
#include "google/protobuf/util/field_mask_util.h"
#include "google/protobuf/util/message_differencer.h"
#include "phonenumbers/phonenumberutil.h"

namespace crm::contact {
namespace {

using crm::contact::v1::ContactAbsorbedDuplicate;
using crm::contact::v1::ContactArchived;
using crm::contact::v1::ContactCreated;
using crm::contact::v1::ContactMergedInto;
using crm::contact::v1::ContactRestored;
using crm::contact::v1::ContactUpdated;

std::string Trim(const std::string& text) { return std::string(absl::StripAsciiWhitespace(text)); }

// RFC 5321's limit on a forward path.
constexpr size_t kMaxEmailBytes = 254;

bool IsIdChar(char c) { return absl::ascii_isalnum(c) || c == '-' || c == '_'; }

// A deliberately plain check: one '@', something before it, a dotted domain after it, no
// spaces or control characters. Delivery is the only real test of an address.
bool LooksLikeEmail(const std::string& email) {
  const size_t at = email.find('@');
  if (at == std::string::npos || at == 0 || email.find('@', at + 1) != std::string::npos)
    return false;
  const std::string domain = email.substr(at + 1);
  const size_t dot = domain.find('.');
  if (dot == std::string::npos || dot == 0 || domain.back() == '.') return false;
  return std::none_of(email.begin(), email.end(),
                      [](unsigned char c) { return c <= ' ' || c == 0x7f; });
}

std::optional<std::string> DigitsOnly(const std::string& raw);

// E.164 through libphonenumber: with the default region for national numbers, or for any
// number that starts with '+'. Otherwise a leading '+' and the digits are kept.
std::optional<std::string> NormalizePhone(const std::string& raw, const std::string& region) {
  using i18n::phonenumbers::PhoneNumberUtil;
  const std::string trimmed = Trim(raw);
  if (!region.empty() || absl::StartsWith(trimmed, "+")) {
    const PhoneNumberUtil* util = PhoneNumberUtil::GetInstance();
    i18n::phonenumbers::PhoneNumber number;
    if (util->Parse(trimmed, region.empty() ? "ZZ" : region, &number) !=
            PhoneNumberUtil::NO_PARSING_ERROR ||
        !util->IsValidNumber(number)) {
      return std::nullopt;
    }
    std::string e164;
    util->Format(number, PhoneNumberUtil::E164, &e164);
    return e164;
  }
  return DigitsOnly(raw);
}

// Keeps a leading '+' and the digits; separators people type ("(0) 12-34 56") go.
std::optional<std::string> DigitsOnly(const std::string& raw) {
  std::string phone;
  for (size_t i = 0; i < raw.size(); ++i) {
    const char c = raw[i];
    if (absl::ascii_isdigit(c)) {
      phone.push_back(c);
    } else if (c == '+' && phone.empty()) {
      phone.push_back(c);
    } else if (c != ' ' && c != '-' && c != '(' && c != ')' && c != '.' && c != '/') {
      return std::nullopt;
    }
  }
  const size_t digits = phone.size() - (absl::StartsWith(phone, "+") ? 1 : 0);
  if (digits < 6 || digits > 15) return std::nullopt;  // E.164 has at most 15 digits
  return phone;
}

class Checker {
 public:
  Checker(const ContactLimits& limits, std::string prefix)
      : limits_(limits), prefix_(std::move(prefix)) {}

  void Invalid(const std::string& field, std::string why) {
    invalid_.push_back({prefix_ + field, std::move(why)});
  }
  void TooLarge(const std::string& field, std::string why) {
    too_large_.push_back({prefix_ + field, std::move(why)});
  }
  std::string Text(const std::string& field, const std::string& value, size_t max) {
    std::string trimmed = Trim(value);
    if (trimmed.size() > max) TooLarge(field, absl::StrCat("longer than ", max, " bytes"));
    return trimmed;
  }
  absl::Status Result() const { return FieldFaults(too_large_, invalid_); }
  const ContactLimits& limits() const { return limits_; }

 private:
  const ContactLimits& limits_;
  const std::string prefix_;
  std::vector<FieldViolation> invalid_;
  std::vector<FieldViolation> too_large_;
};

void NormalizeField(const std::string& path, const Contact& in, Contact& out, Checker& check) {
  const ContactLimits& limits = check.limits();
  if (path == "given_name") {
    out.set_given_name(check.Text(path, in.given_name(), limits.max_name));
  } else if (path == "family_name") {
    out.set_family_name(check.Text(path, in.family_name(), limits.max_name));
  } else if (path == "emails") {
    if (static_cast<size_t>(in.emails_size()) > limits.max_emails) {
      check.TooLarge(path, absl::StrCat("more than ", limits.max_emails, " emails"));
    }
    out.clear_emails();
    std::set<std::string> seen;
    for (int i = 0; i < in.emails_size(); ++i) {
      const std::string email = absl::AsciiStrToLower(Trim(in.emails(i)));
      if (email.size() > kMaxEmailBytes) {
        check.TooLarge(absl::StrCat("emails[", i, "]"),
                       absl::StrCat("longer than ", kMaxEmailBytes, " bytes"));
      } else if (!LooksLikeEmail(email)) {
        check.Invalid(absl::StrCat("emails[", i, "]"),
                      "must be an email address like name@example.com");
      } else if (seen.insert(email).second) {
        out.add_emails(email);
      }
    }
  } else if (path == "phones") {
    if (static_cast<size_t>(in.phones_size()) > limits.max_phones) {
      check.TooLarge(path, absl::StrCat("more than ", limits.max_phones, " phone numbers"));
    }
    out.clear_phones();
    std::set<std::string> seen;
    for (int i = 0; i < in.phones_size(); ++i) {
      const std::optional<std::string> phone =
          NormalizePhone(in.phones(i), limits.default_phone_region);
      if (!phone) {
        check.Invalid(
            absl::StrCat("phones[", i, "]"),
            limits.default_phone_region.empty() && !absl::StartsWith(Trim(in.phones(i)), "+")
                ? "must be a phone number: 6 to 15 digits, an optional leading +"
                : "must be a valid phone number (international with +, or national in " +
                      limits.default_phone_region + ")");
      } else if (seen.insert(*phone).second) {
        out.add_phones(*phone);
      }
    }
  } else if (path == "account_id") {
    out.set_account_id(check.Text(path, in.account_id(), limits.max_text));
  } else if (path == "owner_id") {
    out.set_owner_id(check.Text(path, in.owner_id(), limits.max_text));
  } else if (path == "region") {
    out.set_region(check.Text(path, in.region(), limits.max_text));
  } else if (path == "source_channel") {
    out.set_source_channel(check.Text(path, in.source_channel(), limits.max_text));
  } else if (path == "lifecycle_stage") {
    if (!crm::contact::v1::LifecycleStage_IsValid(in.lifecycle_stage())) {
      check.Invalid(path, "unknown lifecycle stage");
    }
    out.set_lifecycle_stage(in.lifecycle_stage());
  } else if (path == "marketing_consent") {
    out.set_marketing_consent(in.marketing_consent());
  } else if (path == "tags") {
    if (static_cast<size_t>(in.tags_size()) > limits.max_tags) {
      check.TooLarge(path, absl::StrCat("more than ", limits.max_tags, " tags"));
    }
    out.clear_tags();
    std::set<std::string> seen;
    for (int i = 0; i < in.tags_size(); ++i) {
      const std::string tag = Trim(in.tags(i));
      if (tag.empty()) {
        check.Invalid(absl::StrCat("tags[", i, "]"), "must not be empty");
      } else if (tag.size() > limits.max_tag) {
        check.TooLarge(absl::StrCat("tags[", i, "]"),
                       absl::StrCat("longer than ", limits.max_tag, " bytes"));
      } else if (seen.insert(tag).second) {
        out.add_tags(tag);
      }
    }
  } else if (path == "attributes") {
    if (static_cast<size_t>(in.attributes_size()) > limits.max_attributes) {
      check.TooLarge(path, absl::StrCat("more than ", limits.max_attributes, " attributes"));
    }
    out.clear_attributes();
    for (const auto& [key, value] : in.attributes()) {
      const std::string field = absl::StrCat("attributes[", key, "]");
      if (key.empty() || key.size() > limits.max_attribute_key ||
          !std::all_of(key.begin(), key.end(), [](char c) { return IsIdChar(c) || c == '.'; })) {
        check.Invalid(field, absl::StrCat("keys are 1 to ", limits.max_attribute_key,
                                          " letters, digits, '.', '-' or '_'"));
      } else if (value.size() > limits.max_attribute_value) {
        check.TooLarge(field, absl::StrCat("longer than ", limits.max_attribute_value, " bytes"));
      } else {
        (*out.mutable_attributes())[key] = value;
      }
    }
  } else {
    check.Invalid(path, "is not a field that can be set");
  }
}

absl::Status LiveContact(const Current& current, const char* doing) {
  if (!current) return absl::NotFoundError("contact not found");
  if (!current->state.merged_into_contact_id().empty()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "contact was merged into ", current->state.merged_into_contact_id(), "; cannot ", doing));
  }
  return absl::OkStatus();
}

}  // namespace

bool IsSupportedPhoneRegion(const std::string& region) {
  std::set<std::string> regions;
  i18n::phonenumbers::PhoneNumberUtil::GetInstance()->GetSupportedRegions(&regions);
  return regions.contains(region);
}

const std::vector<std::string>& SettableContactFields() {
  static const auto* fields = new std::vector<std::string>{
      "given_name",      "family_name",       "emails", "phones",
      "account_id",      "owner_id",          "region", "source_channel",
      "lifecycle_stage", "marketing_consent", "tags",   "attributes"};
  return *fields;
}

absl::StatusOr<Contact> NormalizeContactFields(const Contact& input,
                                               const std::vector<std::string>& paths,
                                               const ContactLimits& limits,
                                               const std::string& prefix) {
  Checker check(limits, prefix);
  Contact out;
  for (const std::string& path : paths) NormalizeField(path, input, out, check);
  if (absl::Status status = check.Result(); !status.ok()) return status;
  return out;
}

void ContactAggregate::Evolve(Contact& state, const eventstore::EventEnvelope& event) {
  const google::protobuf::Timestamp& when = event.occurred_at();
  if (ContactCreated created; event.payload().UnpackTo(&created)) {
    state = created.contact();
  } else if (ContactUpdated updated; event.payload().UnpackTo(&updated)) {
    state = updated.contact();
  } else if (ContactAbsorbedDuplicate absorbed; event.payload().UnpackTo(&absorbed)) {
    state = absorbed.contact();
  } else if (event.payload().Is<ContactArchived>()) {
    state.set_archived(true);
  } else if (event.payload().Is<ContactRestored>()) {
    state.set_archived(false);
  } else if (ContactMergedInto merged; event.payload().UnpackTo(&merged)) {
    state.set_merged_into_contact_id(merged.winner_contact_id());
  }
  state.set_version(event.stream_version());
  *state.mutable_update_time() = when;
}

std::vector<std::string> ContactAggregate::IndexKeys(const std::string& id, const Contact& state) {
  // A merged contact is not live: it leaves every list and duplicate lookup.
  if (!state.merged_into_contact_id().empty()) return {};
  const std::string status = state.archived() ? "archived" : "live";
  std::vector<std::string> keys = {absl::StrCat("contact/", status, "/all/", id)};
  auto add = [&](const char* dimension, const std::string& value) {
    if (!value.empty())
      keys.push_back(absl::StrCat("contact/", status, "/", dimension, "/", value, "/", id));
  };
  add("owner", state.owner_id());
  add("account", state.account_id());
  add("region", state.region());
  if (state.lifecycle_stage() != crm::contact::v1::LIFECYCLE_STAGE_UNSPECIFIED) {
    add("stage", crm::contact::v1::LifecycleStage_Name(state.lifecycle_stage()));
  }
  // Duplicate lookups cover live and archived contacts alike.
  for (const std::string& email : state.emails())
    keys.push_back(absl::StrCat("contact/email/", email, "/", id));
  for (const std::string& phone : state.phones())
    keys.push_back(absl::StrCat("contact/phone/", phone, "/", id));
  if (!state.account_id().empty()) {
    keys.push_back(absl::StrCat("contact/name/", state.account_id(), "/",
                                absl::AsciiStrToLower(state.given_name()), " ",
                                absl::AsciiStrToLower(state.family_name()), "/", id));
  }
  return keys;
}

absl::StatusOr<eventsourcing::Events> DecideCreate(const Current& current, absl::Time occurred_at,
                                                   const std::string& contact_id,
                                                   const Contact& fields,
                                                   const ContactLimits& limits) {
  if (absl::Status id = ValidateId(contact_id, "contact_id"); !id.ok()) return id;
  if (current) return absl::AlreadyExistsError(absl::StrCat("contact ", contact_id, " exists"));
  absl::StatusOr<Contact> contact = NormalizeContactFields(fields, SettableContactFields(), limits);
  // Report every fault at once: a missing name beside whatever else is wrong.
  if (Trim(fields.given_name()).empty() && Trim(fields.family_name()).empty()) {
    std::vector<FieldViolation> violations =
        contact.ok() ? std::vector<FieldViolation>() : Violations(contact.status());
    violations.push_back({"contact.given_name", "a given or a family name is required"});
    violations.push_back({"contact.family_name", "a given or a family name is required"});
    if (!contact.ok() && contact.status().code() == absl::StatusCode::kResourceExhausted) {
      return WithViolations(contact.status(), violations);
    }
    return InvalidArgument(std::move(violations));
  }
  if (!contact.ok()) return contact.status();
  contact->set_name(absl::StrCat("contacts/", contact_id));
  contact->set_contact_id(contact_id);
  *contact->mutable_create_time() = ToProto(occurred_at);
  auto created = std::make_unique<ContactCreated>();
  *created->mutable_contact() = *std::move(contact);
  return eventsourcing::Emit(std::move(created));
}

absl::StatusOr<eventsourcing::Events> DecideUpdate(const Current& current, const Contact& patch,
                                                   const google::protobuf::FieldMask& mask,
                                                   const ContactLimits& limits) {
  using google::protobuf::util::FieldMaskUtil;
  if (absl::Status live = LiveContact(current, "update it"); !live.ok()) return live;
  if (mask.paths().empty()) return InvalidField("update_mask", "name at least one field to update");
  const std::vector<std::string> paths(mask.paths().begin(), mask.paths().end());
  absl::StatusOr<Contact> normalized = NormalizeContactFields(patch, paths, limits);
  if (!normalized.ok()) return normalized.status();

  FieldMaskUtil::MergeOptions replace;  // masked fields are replaced, lists included
  replace.set_replace_message_fields(true);
  replace.set_replace_repeated_fields(true);
  std::vector<std::string> changed;
  for (const std::string& path : paths) {
    google::protobuf::FieldMask one;
    one.add_paths(path);
    Contact old_value;
    Contact new_value;
    FieldMaskUtil::MergeMessageTo(current->state, one, replace, &old_value);
    FieldMaskUtil::MergeMessageTo(*normalized, one, replace, &new_value);
    if (!google::protobuf::util::MessageDifferencer::Equals(old_value, new_value))
      changed.push_back(path);
  }
  Contact after = current->state;
  FieldMaskUtil::MergeMessageTo(*normalized, mask, replace, &after);
  if (after.given_name().empty() && after.family_name().empty()) {
    return InvalidArgument({{"contact.given_name", "a given or a family name is required"},
                            {"contact.family_name", "a given or a family name is required"}});
  }
  if (changed.empty()) return eventsourcing::Events();
  auto updated = std::make_unique<ContactUpdated>();
  *updated->mutable_contact() = std::move(after);
  for (std::string& path : changed) updated->add_changed_fields(std::move(path));
  return eventsourcing::Emit(std::move(updated));
}

absl::StatusOr<eventsourcing::Events> DecideArchive(const Current& current) {
  if (absl::Status live = LiveContact(current, "archive it"); !live.ok()) return live;
  if (current->state.archived())
    return absl::FailedPreconditionError("contact is already archived");
  auto archived = std::make_unique<ContactArchived>();
  archived->set_contact_id(current->state.contact_id());
  return eventsourcing::Emit(std::move(archived));
}

absl::StatusOr<eventsourcing::Events> DecideRestore(const Current& current) {
  if (absl::Status live = LiveContact(current, "restore it"); !live.ok()) return live;
  if (!current->state.archived()) return absl::FailedPreconditionError("contact is not archived");
  auto restored = std::make_unique<ContactRestored>();
  restored->set_contact_id(current->state.contact_id());
  return eventsourcing::Emit(std::move(restored));
}

absl::StatusOr<eventsourcing::Events> DecideMergeInto(const Current& loser,
                                                      const std::string& winner_id) {
  if (absl::Status live = LiveContact(loser, "merge it again"); !live.ok()) return live;
  if (loser->state.contact_id() == winner_id) {
    return InvalidField("loser_contact_id", "a contact cannot be merged into itself");
  }
  auto merged = std::make_unique<ContactMergedInto>();
  merged->set_contact_id(loser->state.contact_id());
  merged->set_winner_contact_id(winner_id);
  merged->set_source_channel(loser->state.source_channel());
  return eventsourcing::Emit(std::move(merged));
}

absl::StatusOr<eventsourcing::Events> DecideAbsorb(const Current& winner, const Contact& loser,
                                                   const ContactLimits& limits) {
  if (absl::Status live = LiveContact(winner, "merge into it"); !live.ok()) return live;
  if (winner->state.contact_id() == loser.contact_id()) {
    return InvalidField("loser_contact_id", "a contact cannot be merged into itself");
  }
  Contact after = winner->state;
  // The winner keeps its values; the loser only fills gaps and adds what is missing.
  auto fill = [](std::string* mine, const std::string& theirs) {
    if (mine->empty()) *mine = theirs;
  };
  fill(after.mutable_given_name(), loser.given_name());
  fill(after.mutable_family_name(), loser.family_name());
  fill(after.mutable_account_id(), loser.account_id());
  fill(after.mutable_owner_id(), loser.owner_id());
  fill(after.mutable_region(), loser.region());
  after.mutable_emails()->MergeFrom(loser.emails());
  after.mutable_phones()->MergeFrom(loser.phones());
  after.mutable_tags()->MergeFrom(loser.tags());
  for (const auto& [key, value] : loser.attributes())
    after.mutable_attributes()->insert({key, value});
  // Re-normalise: removes the duplicates the union created and enforces the limits.
  absl::StatusOr<Contact> normalized = NormalizeContactFields(
      after, {"emails", "phones", "tags", "attributes"}, limits, "merged contact.");
  if (!normalized.ok()) return normalized.status();
  *after.mutable_emails() = normalized->emails();
  *after.mutable_phones() = normalized->phones();
  *after.mutable_tags() = normalized->tags();
  *after.mutable_attributes() = normalized->attributes();
  auto absorbed = std::make_unique<ContactAbsorbedDuplicate>();
  *absorbed->mutable_contact() = std::move(after);
  absorbed->set_loser_contact_id(loser.contact_id());
  return eventsourcing::Emit(std::move(absorbed));
}

}  // namespace crm::contact
