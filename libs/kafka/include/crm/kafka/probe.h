#pragma once

// Prometheus metrics of the outbox relay and of consumers (crm_relay_*, crm_consumer_*), read
// from their Stats() at scrape time. Register with ServiceHost::AddCollectable; the relay or
// consumer must outlive the host's metrics endpoint.

#include <functional>

#include "crm/kafka/consumer.h"
#include "crm/kafka/relay.h"
#include "prometheus/collectable.h"

namespace crm::kafka {

class RelayProbe final : public prometheus::Collectable {
 public:
  RelayProbe(std::string topic, std::function<RelayStats()> stats)
      : topic_(std::move(topic)), stats_(std::move(stats)) {}
  std::vector<prometheus::MetricFamily> Collect() const override;

 private:
  std::string topic_;
  std::function<RelayStats()> stats_;
};

class ConsumerProbe final : public prometheus::Collectable {
 public:
  ConsumerProbe(std::string group, std::function<ConsumerStats()> stats)
      : group_(std::move(group)), stats_(std::move(stats)) {}
  std::vector<prometheus::MetricFamily> Collect() const override;

 private:
  std::string group_;
  std::function<ConsumerStats()> stats_;
};

}  // namespace crm::kafka
