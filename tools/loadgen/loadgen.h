#pragma once

// crm-loadgen: drives the running services over gRPC (callback API, many calls in flight from
// a few threads) with a mix of commands, at a target rate (open model) or a fixed concurrency
// (closed model), and measures latency per method, errors by code and event-to-KPI lag.

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "histogram.h"
#include "nlohmann/json.hpp"
#include "plan.h"

namespace crm::loadgen {

struct Options {
  std::string contact_address = "127.0.0.1:7001";
  std::string activity_address = "127.0.0.1:7002";
  std::string pipeline_address = "127.0.0.1:7003";
  std::string metrics_address = "127.0.0.1:7004";
  std::string token;
  bool plaintext = true;  // else TLS, with ca_file (or the system roots)
  std::string ca_file;
  double rate = 0;      // requests per second (open model), or
  int concurrency = 0;  // calls in flight (closed model)
  absl::Duration duration = absl::Seconds(30);
  absl::Duration warmup = absl::Seconds(5);
  absl::Duration timeout = absl::Seconds(10);  // deadline of each command
  std::vector<MixEntry> mix;
  int max_in_flight = 4096;  // open model: the sender waits beyond this (and the wait counts)
  int connections = 2;       // channels per service
  int setup_accounts = 20;
  int setup_contacts = 200;
  double lag_samples_per_second = 20;
  absl::Duration lag_max_wait = absl::Seconds(10);
  std::string id_prefix;  // of ids and request ids; default lg<random>
  uint64_t seed = 0;
};

// Methods the mix can name.
const std::vector<std::string>& KnownMethods();

// Whether the mix is only HealthCheck (grpc.health.v1.Health/Check on contact-service): no
// token, no setup records, no lag samples.
bool OnlyHealthChecks(const std::vector<MixEntry>& mix);

struct MethodResult {
  Histogram latency_us;  // successful and failed calls
  int64_t ok = 0;
  std::map<std::string, int64_t> errors;  // by gRPC code name
  int64_t errors_total() const;
};

struct Results {
  std::string mode;  // "open" or "closed"
  double target_rate = 0;
  int concurrency = 0;
  double seconds = 0;  // measured window: from its start to the last answer of a call in it
  std::map<std::string, MethodResult> methods;
  int64_t substituted = 0;  // follow-ups sent as their creating command (no record was free)
  std::vector<std::string> first_errors;
  // Event-to-KPI lag: acknowledgement to the first QueryKpi answer that includes the write.
  Histogram lag_us;
  int64_t lag_timeouts = 0;
  std::map<std::string, int64_t> lag_errors;
  int64_t lag_skipped = 0;  // samples not taken because too many lag queries were waiting
};

absl::StatusOr<Results> Run(const Options& options);

void PrintTable(const Results& results, std::ostream& out);
nlohmann::json ToJson(const Results& results);

}  // namespace crm::loadgen
