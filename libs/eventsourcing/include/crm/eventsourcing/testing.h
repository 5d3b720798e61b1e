#pragma once

// Given/Then helpers for domain tests of any aggregate: states are folded exactly as the
// repository folds a stream.

#include <optional>
#include <string>
#include <vector>

#include "absl/time/civil_time.h"
#include "crm/common/field_violations.h"
#include "crm/eventsourcing/repository.h"
#include "crm/testing/testing.h"
#include "gtest/gtest.h"

namespace crm::eventsourcing::testing {

inline const absl::Time kMonday =
    absl::FromCivil(absl::CivilSecond(2026, 11, 16, 9, 0, 0), absl::UTCTimeZone());

template <typename Aggregate>
using Current = std::optional<Versioned<typename Aggregate::State>>;

// `current` after `events` recorded at `at`.
template <typename Aggregate>
Current<Aggregate> Apply(Current<Aggregate> current,
                         const std::vector<const google::protobuf::Message*>& events,
                         absl::Time at = kMonday) {
  for (const auto* event : events) {
    const int64_t version = current ? current->version + 1 : 1;
    if (!current) current.emplace();
    Aggregate::Evolve(current->state,
                      internal::Envelope({.stream_id = "id-1"}, at, *event, version));
    current->version = version;
  }
  return current;
}

// Given: the state after these events.
template <typename Aggregate>
Current<Aggregate> Given(const std::vector<const google::protobuf::Message*>& events) {
  return Apply<Aggregate>(std::nullopt, events);
}

// `current` after a decision that must have succeeded.
template <typename Aggregate>
Current<Aggregate> Then(Current<Aggregate> current, const absl::StatusOr<Events>& decided,
                        absl::Time at = kMonday) {
  EXPECT_TRUE(decided.ok()) << decided.status();
  if (!decided.ok()) return current;
  std::vector<const google::protobuf::Message*> events;
  for (const auto& event : *decided) events.push_back(event.get());
  return Apply<Aggregate>(std::move(current), events, at);
}

using ::crm::testing::Fields;  // the fields an error names

}  // namespace crm::eventsourcing::testing
