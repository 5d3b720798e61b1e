#pragma once

// The account (organisation) aggregate: pure validation, decisions and evolution.

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "crm/contact/v1/contact.pb.h"
#include "crm/eventsourcing/repository.h"
#include "domain/contact.h"
#include "google/protobuf/field_mask.pb.h"

namespace crm::contact {

using crm::contact::v1::Account;
using CurrentAccount = std::optional<eventsourcing::Versioned<Account>>;

struct AccountAggregate {
  using State = Account;
  static constexpr char kStreamType[] = "account";
  static void Evolve(Account& state, const eventstore::EventEnvelope& event);
  static std::vector<std::string> IndexKeys(const std::string& id, const Account& state);
};

// Settable paths: display_name, domain, industry, owner_id, region.
absl::StatusOr<eventsourcing::Events> DecideCreateAccount(const CurrentAccount& current,
                                                          absl::Time occurred_at,
                                                          const std::string& account_id,
                                                          const Account& fields,
                                                          const ContactLimits& limits);
absl::StatusOr<eventsourcing::Events> DecideUpdateAccount(const CurrentAccount& current,
                                                          const Account& patch,
                                                          const google::protobuf::FieldMask& mask,
                                                          const ContactLimits& limits);
absl::StatusOr<eventsourcing::Events> DecideArchiveAccount(const CurrentAccount& current);
absl::StatusOr<eventsourcing::Events> DecideRestoreAccount(const CurrentAccount& current);

}  // namespace crm::contact
