#include "crm/kafka/probe.h"

#include "prometheus/client_metric.h"
#include "prometheus/metric_family.h"
#include "prometheus/metric_type.h"

namespace crm::kafka {
namespace {

prometheus::MetricFamily Family(std::string name, std::string help, prometheus::MetricType type) {
  return prometheus::MetricFamily{std::move(name), std::move(help), type, {}};
}

void AddValue(prometheus::MetricFamily& family, std::vector<prometheus::ClientMetric::Label> labels,
              double value) {
  prometheus::ClientMetric metric;
  metric.label = std::move(labels);
  if (family.type == prometheus::MetricType::Counter) {
    metric.counter.value = value;
  } else {
    metric.gauge.value = value;
  }
  family.metric.push_back(std::move(metric));
}

}  // namespace

std::vector<prometheus::MetricFamily> RelayProbe::Collect() const {
  const RelayStats s = stats_();
  using prometheus::MetricType;
  const std::vector<prometheus::ClientMetric::Label> labels = {{"topic", topic_}};
  struct Row {
    const char* name;
    const char* help;
    MetricType type;
    double value;
  };
  const Row rows[] = {
      {"crm_relay_lag_events", "Durable events not yet confirmed by Kafka", MetricType::Gauge,
       static_cast<double>(s.lag_events)},
      {"crm_relay_lag_seconds", "Age of the oldest durable event not yet confirmed by Kafka",
       MetricType::Gauge, s.lag_seconds()},
      {"crm_relay_checkpoint_position", "Log position up to which Kafka confirmed every event",
       MetricType::Gauge, static_cast<double>(s.checkpoint)},
      {"crm_relay_log_position", "Last durable position of the event log", MetricType::Gauge,
       static_cast<double>(s.last_position)},
      {"crm_relay_in_flight_events", "Events produced beyond the checkpoint, not yet confirmed",
       MetricType::Gauge, static_cast<double>(s.in_flight)},
      {"crm_relay_produced_total", "Records handed to the producer, re-sends included",
       MetricType::Counter, static_cast<double>(s.produced)},
      {"crm_relay_delivered_total", "Deliveries Kafka confirmed", MetricType::Counter,
       static_cast<double>(s.delivered)},
      {"crm_relay_delivery_errors_total", "Failed deliveries and produce calls",
       MetricType::Counter, static_cast<double>(s.errors)},
      {"crm_relay_rewinds_total", "Republications from the checkpoint after errors",
       MetricType::Counter, static_cast<double>(s.rewinds)},
      {"crm_relay_producer_restarts_total", "Producers replaced after fatal errors",
       MetricType::Counter, static_cast<double>(s.producer_restarts)},
  };
  std::vector<prometheus::MetricFamily> families;
  for (const Row& row : rows) {
    families.push_back(Family(row.name, row.help, row.type));
    AddValue(families.back(), labels, row.value);
  }
  return families;
}

std::vector<prometheus::MetricFamily> ConsumerProbe::Collect() const {
  const ConsumerStats s = stats_();
  auto lag = Family("crm_consumer_lag_events",
                    "Records in a partition not yet returned to the consumer (high watermark - "
                    "position)",
                    prometheus::MetricType::Gauge);
  for (const PartitionLag& p : s.partitions) {
    AddValue(lag,
             {{"group", group_}, {"topic", p.topic}, {"partition", std::to_string(p.partition)}},
             static_cast<double>(p.lag));
  }
  auto consumed = Family("crm_consumer_messages_total", "Messages returned to the consumer",
                         prometheus::MetricType::Counter);
  AddValue(consumed, {{"group", group_}}, static_cast<double>(s.messages));
  return {std::move(lag), std::move(consumed)};
}

}  // namespace crm::kafka
