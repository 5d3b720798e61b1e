#include "domain/account.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "crm/common/field_violations.h"
#include "crm/common/ids.h"
#include "crm/common/time.h"
#include "crm/contact/v1/events.pb.h"
#include "google/protobuf/util/field_mask_util.h"
#include "google/protobuf/util/message_differencer.h"

namespace crm::contact {
namespace {

using crm::contact::v1::AccountArchived;
using crm::contact::v1::AccountCreated;
using crm::contact::v1::AccountUpdated;

const std::vector<std::string>& SettableAccountFields() {
  static const auto* fields =
      new std::vector<std::string>{"display_name", "domain", "industry", "owner_id", "region"};
  return *fields;
}

// Trims and checks the `paths` of `input`; every offending field is named.
absl::StatusOr<Account> Normalize(const Account& input, const std::vector<std::string>& paths,
                                  const ContactLimits& limits) {
  std::vector<FieldViolation> invalid;
  std::vector<FieldViolation> too_large;
  Account out;
  auto text = [&](const std::string& path, const std::string& value, size_t max) {
    std::string trimmed(absl::StripAsciiWhitespace(value));
    if (trimmed.size() > max)
      too_large.push_back({"account." + path, absl::StrCat("longer than ", max, " bytes")});
    return trimmed;
  };
  for (const std::string& path : paths) {
    if (path == "display_name") {
      out.set_display_name(text(path, input.display_name(), limits.max_name));
    } else if (path == "domain") {
      out.set_domain(absl::AsciiStrToLower(text(path, input.domain(), limits.max_text)));
      if (!std::all_of(out.domain().begin(), out.domain().end(),
                       [](char c) { return absl::ascii_isalnum(c) || c == '.' || c == '-'; })) {
        invalid.push_back({"account.domain", "must be a domain name like example.com"});
      }
    } else if (path == "industry") {
      out.set_industry(text(path, input.industry(), limits.max_text));
    } else if (path == "owner_id") {
      out.set_owner_id(text(path, input.owner_id(), limits.max_text));
    } else if (path == "region") {
      out.set_region(text(path, input.region(), limits.max_text));
    } else {
      invalid.push_back({"account." + path, "is not a field that can be set"});
    }
  }
  if (absl::Status faults = FieldFaults(std::move(too_large), std::move(invalid)); !faults.ok()) {
    return faults;
  }
  return out;
}

}  // namespace

void AccountAggregate::Evolve(Account& state, const eventstore::EventEnvelope& event) {
  if (AccountCreated created; event.payload().UnpackTo(&created)) {
    state = created.account();
  } else if (AccountUpdated updated; event.payload().UnpackTo(&updated)) {
    state = updated.account();
  } else if (event.payload().Is<AccountArchived>()) {
    state.set_archived(true);
  } else if (event.payload().Is<v1::AccountRestored>()) {
    state.set_archived(false);
  }
  state.set_version(event.stream_version());
  *state.mutable_update_time() = event.occurred_at();
}

std::vector<std::string> AccountAggregate::IndexKeys(const std::string& id, const Account& state) {
  const std::string status = state.archived() ? "archived" : "live";
  std::vector<std::string> keys = {absl::StrCat("account/", status, "/all/", id)};
  if (!state.owner_id().empty())
    keys.push_back(absl::StrCat("account/", status, "/owner/", state.owner_id(), "/", id));
  if (!state.region().empty())
    keys.push_back(absl::StrCat("account/", status, "/region/", state.region(), "/", id));
  return keys;
}

absl::StatusOr<eventsourcing::Events> DecideCreateAccount(const CurrentAccount& current,
                                                          absl::Time occurred_at,
                                                          const std::string& account_id,
                                                          const Account& fields,
                                                          const ContactLimits& limits) {
  if (absl::Status id = ValidateId(account_id, "account_id"); !id.ok()) return id;
  if (current) return absl::AlreadyExistsError(absl::StrCat("account ", account_id, " exists"));
  absl::StatusOr<Account> account = Normalize(fields, SettableAccountFields(), limits);
  if (!account.ok()) return account.status();
  if (account->display_name().empty()) return InvalidField("account.display_name", "is required");
  account->set_name(absl::StrCat("accounts/", account_id));
  account->set_account_id(account_id);
  *account->mutable_create_time() = ToProto(occurred_at);
  auto created = std::make_unique<AccountCreated>();
  *created->mutable_account() = *std::move(account);
  return eventsourcing::Emit(std::move(created));
}

absl::StatusOr<eventsourcing::Events> DecideUpdateAccount(const CurrentAccount& current,
                                                          const Account& patch,
                                                          const google::protobuf::FieldMask& mask,
                                                          const ContactLimits& limits) {
  using google::protobuf::util::FieldMaskUtil;
  if (!current) return absl::NotFoundError("account not found");
  if (mask.paths().empty()) return InvalidField("update_mask", "name at least one field to update");
  const std::vector<std::string> paths(mask.paths().begin(), mask.paths().end());
  absl::StatusOr<Account> normalized = Normalize(patch, paths, limits);
  if (!normalized.ok()) return normalized.status();
  FieldMaskUtil::MergeOptions replace;
  replace.set_replace_message_fields(true);
  replace.set_replace_repeated_fields(true);
  Account after = current->state;
  FieldMaskUtil::MergeMessageTo(*normalized, mask, replace, &after);
  if (after.display_name().empty()) return InvalidField("account.display_name", "is required");
  if (google::protobuf::util::MessageDifferencer::Equals(after, current->state)) {
    return eventsourcing::Events();
  }
  auto updated = std::make_unique<AccountUpdated>();
  *updated->mutable_account() = std::move(after);
  for (const std::string& path : paths) updated->add_changed_fields(path);
  return eventsourcing::Emit(std::move(updated));
}

absl::StatusOr<eventsourcing::Events> DecideArchiveAccount(const CurrentAccount& current) {
  if (!current) return absl::NotFoundError("account not found");
  if (current->state.archived())
    return absl::FailedPreconditionError("account is already archived");
  auto archived = std::make_unique<AccountArchived>();
  archived->set_account_id(current->state.account_id());
  return eventsourcing::Emit(std::move(archived));
}

absl::StatusOr<eventsourcing::Events> DecideRestoreAccount(const CurrentAccount& current) {
  if (!current) return absl::NotFoundError("account not found");
  if (!current->state.archived()) return absl::FailedPreconditionError("account is not archived");
  auto restored = std::make_unique<v1::AccountRestored>();
  restored->set_account_id(current->state.account_id());
  return eventsourcing::Emit(std::move(restored));
}

}  // namespace crm::contact
