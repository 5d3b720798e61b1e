#include "crm/eventstore/probe.h"

namespace crm::eventstore {
namespace {

const prometheus::Histogram::BucketBoundaries kLatencyBuckets = {
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1};

}  // namespace

EventStoreProbe::EventStoreProbe(prometheus::Registry& registry)
    : append_seconds_(prometheus::BuildHistogram()
                          .Name("crm_eventstore_append_duration_seconds")
                          .Help("From a command's arrival at the store to its durability")
                          .Register(registry)
                          .Add({}, kLatencyBuckets)),
      fsync_seconds_(prometheus::BuildHistogram()
                         .Name("crm_eventstore_fsync_duration_seconds")
                         .Help("Synced RocksDB write of one group of commands")
                         .Register(registry)
                         .Add({}, kLatencyBuckets)),
      group_commands_(prometheus::BuildHistogram()
                          .Name("crm_eventstore_group_commit_commands")
                          .Help("Commands made durable by one fsync")
                          .Register(registry)
                          .Add({}, prometheus::Histogram::BucketBoundaries{1, 2, 4, 8, 16, 32, 64,
                                                                           128, 256, 512, 1024})),
      events_total_(prometheus::BuildCounter()
                        .Name("crm_eventstore_events_appended_total")
                        .Help("Events made durable")
                        .Register(registry)
                        .Add({})),
      commands_total_(prometheus::BuildCounter()
                          .Name("crm_eventstore_commands_committed_total")
                          .Help("Appends made durable (retries answered from records excluded)")
                          .Register(registry)
                          .Add({})) {}

void EventStoreProbe::OnGroupCommitted(size_t events, absl::Duration write,
                                       const std::vector<absl::Duration>& command_latencies) {
  fsync_seconds_.Observe(absl::ToDoubleSeconds(write));
  group_commands_.Observe(static_cast<double>(command_latencies.size()));
  events_total_.Increment(static_cast<double>(events));
  commands_total_.Increment(static_cast<double>(command_latencies.size()));
  for (absl::Duration latency : command_latencies) {
    append_seconds_.Observe(absl::ToDoubleSeconds(latency));
  }
}

}  // namespace crm::eventstore
