#pragma once

// Given/Then helpers shared by the contact-service domain tests.

#include <optional>
#include <string>
#include <vector>

#include "absl/time/civil_time.h"
#include "crm/common/field_violations.h"
#include "crm/eventsourcing/repository.h"

namespace crm::contact::testing {

inline const absl::Time kMonday =
    absl::FromCivil(absl::CivilSecond(2026, 11, 16, 9, 0, 0), absl::UTCTimeZone());

// Given: the state after these events, folded as the repository folds a stream.
template <typename Aggregate>
std::optional<eventsourcing::Versioned<typename Aggregate::State>> Given(
    const std::vector<const google::protobuf::Message*>& events) {
  std::optional<eventsourcing::Versioned<typename Aggregate::State>> current;
  int64_t version = 0;
  for (const auto* event : events) {
    if (!current) current.emplace();
    Aggregate::Evolve(current->state, eventsourcing::internal::Envelope(
                                          {.stream_id = "id-1"}, kMonday, *event, ++version));
    current->version = version;
  }
  return current;
}

// The fields an error names.
inline std::vector<std::string> Fields(const absl::Status& status) {
  std::vector<std::string> fields;
  for (const auto& v : Violations(status)) fields.push_back(v.field);
  return fields;
}

}  // namespace crm::contact::testing
