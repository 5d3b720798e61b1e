#pragma once

// The contact aggregate: pure validation, decisions and evolution, no I/O. The service wires
// it to eventsourcing::Repository.

#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "crm/contact/v1/contact.pb.h"
#include "crm/eventsourcing/repository.h"
#include "google/protobuf/field_mask.pb.h"

namespace crm::contact {

using crm::contact::v1::Contact;
using Current = std::optional<eventsourcing::Versioned<Contact>>;

// Size limits of one contact (the store has its own, looser, limit per event).
struct ContactLimits {
  size_t max_name = 200;
  size_t max_text = 128;  // owner, region, account, channel
  size_t max_emails = 10;
  size_t max_phones = 10;
  size_t max_tags = 50;
  size_t max_tag = 64;
  size_t max_attributes = 50;
  size_t max_attribute_key = 64;
  size_t max_attribute_value = 1024;
  // ISO 3166 region ("GB") for numbers given without a country code; with one, phones are
  // validated and stored in E.164. Numbers starting with '+' are always checked that way.
  std::string default_phone_region;
};

// True when libphonenumber knows the region (for validating the setting at start).
bool IsSupportedPhoneRegion(const std::string& region);

// The fields a client may set (paths of UpdateContact's update_mask).
const std::vector<std::string>& SettableContactFields();

// Validates and normalises the `paths` of `input` (trimmed; emails lower case and unique;
// phones reduced to '+' and digits; tags unique). Every offending field is named, under
// `prefix` ("contact."). Sizes over a limit are RESOURCE_EXHAUSTED, other faults
// INVALID_ARGUMENT.
absl::StatusOr<Contact> NormalizeContactFields(const Contact& input,
                                               const std::vector<std::string>& paths,
                                               const ContactLimits& limits,
                                               const std::string& prefix = "contact.");

struct ContactAggregate {
  using State = Contact;
  static constexpr char kStreamType[] = "contact";
  static void Evolve(Contact& state, const eventstore::EventEnvelope& event);
  // Read-model index entries of one contact (listing filters, duplicate lookups).
  static std::vector<std::string> IndexKeys(const std::string& id, const Contact& state);
};

// Decisions. `current` is the contact's state before the command, `occurred_at` the command's
// business time.
absl::StatusOr<eventsourcing::Events> DecideCreate(const Current& current, absl::Time occurred_at,
                                                   const std::string& contact_id,
                                                   const Contact& fields,
                                                   const ContactLimits& limits);
// Replaces the masked fields; no events when nothing changes.
absl::StatusOr<eventsourcing::Events> DecideUpdate(const Current& current, const Contact& patch,
                                                   const google::protobuf::FieldMask& mask,
                                                   const ContactLimits& limits);
absl::StatusOr<eventsourcing::Events> DecideArchive(const Current& current);
absl::StatusOr<eventsourcing::Events> DecideRestore(const Current& current);
// On the loser's stream: it becomes merged into the winner.
absl::StatusOr<eventsourcing::Events> DecideMergeInto(const Current& loser,
                                                      const std::string& winner_id);
// On the winner's stream: it gains the loser's missing emails, phones, tags and attributes and
// any field it lacks.
absl::StatusOr<eventsourcing::Events> DecideAbsorb(const Current& winner, const Contact& loser,
                                                   const ContactLimits& limits);

}  // namespace crm::contact
