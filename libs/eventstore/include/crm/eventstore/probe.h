#pragma once

// The event store's Prometheus metrics (crm_eventstore_*), fed by its CommitObserver hook.

#include "crm/eventstore/event_store.h"
#include "prometheus/counter.h"
#include "prometheus/histogram.h"
#include "prometheus/registry.h"

namespace crm::eventstore {

class EventStoreProbe final : public CommitObserver {
 public:
  explicit EventStoreProbe(prometheus::Registry& registry);

  void OnGroupCommitted(size_t events, absl::Duration write,
                        const std::vector<absl::Duration>& command_latencies) override;

 private:
  prometheus::Histogram& append_seconds_;
  prometheus::Histogram& fsync_seconds_;
  prometheus::Histogram& group_commands_;
  prometheus::Counter& events_total_;
  prometheus::Counter& commands_total_;
};

}  // namespace crm::eventstore
