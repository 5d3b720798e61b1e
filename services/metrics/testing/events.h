#pragma once

// Test support: event envelopes as the command services write them, and a generated CRM
// history (contacts, leads, opportunities, activities, tasks, cases) for replay tests and
// benchmarks.

#include <cstdint>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/time/time.h"
#include "crm/events/v1/envelope.pb.h"
#include "google/protobuf/message.h"

namespace crm::metrics::testing {

struct EventOptions {
  absl::Time recorded_at = absl::InfinitePast();  // default: occurred_at
  std::string actor = "rep-1";
  bool service_actor = false;
  std::string channel;
};

// Appends events with consecutive stream versions, as one event store would.
class EventLog {
 public:
  const events::v1::EventEnvelope& Add(const std::string& stream,
                                       const google::protobuf::Message& payload,
                                       absl::Time occurred_at, EventOptions options = {});
  const std::vector<events::v1::EventEnvelope>& events() const { return events_; }

 private:
  std::vector<events::v1::EventEnvelope> events_;
  absl::flat_hash_map<std::string, int64_t> versions_;
};

// The topic a stream's events are published to.
std::string TopicOf(const events::v1::EventEnvelope& event);

// A reproducible history of about `count` events starting at `start`, over roughly 12 weeks:
// 40 reps in 4 regions, late and on-time logging, merges, reopenings, several currencies.
std::vector<events::v1::EventEnvelope> GenerateHistory(int count, uint64_t seed, absl::Time start);

}  // namespace crm::metrics::testing
