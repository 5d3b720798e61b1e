#pragma once

// The pure part of a load run, unit tested without gRPC: the command mix and the open model's
// schedule with its coordinated-omission correction. Times are nanoseconds of a steady clock.

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace crm::loadgen {

struct MixEntry {
  std::string method;
  double weight = 0;
};

// The default mix: the shares of the commands `make demo` sends (its --dry-run counts at the
// default scale), rounded to percent, plus reads. See README.md.
const std::vector<MixEntry>& DemoMix();

// "demo", or "Method=weight,Method=weight" with methods from `known` and positive weights.
absl::StatusOr<std::vector<MixEntry>> ParseMix(absl::string_view text,
                                               const std::vector<std::string>& known);

// Picks an entry of a mix by weight from a uniform draw u in [0, 1).
class MixPicker {
 public:
  explicit MixPicker(const std::vector<MixEntry>& mix);
  int Pick(double u) const;

 private:
  std::vector<double> cumulative_;  // normalised to end at 1
};

// The open model: request i is due at start + i / rate, whatever happened to earlier ones.
class OpenSchedule {
 public:
  OpenSchedule(int64_t start_ns, double rate_per_second)
      : start_ns_(start_ns), interval_ns_(1e9 / rate_per_second) {}

  int64_t Intended(int64_t i) const;
  // How many requests are due at `now_ns` (those with Intended(i) <= now_ns).
  int64_t DueBy(int64_t now_ns) const;

 private:
  int64_t start_ns_;
  double interval_ns_;
};

// Coordinated-omission correction: a request's latency counts from when it was meant to be
// sent, so a stall that delays the sender is charged to every request it held back, as users
// arriving at a steady rate would see it. In the closed model intended == actual send time.
inline int64_t CorrectedLatencyNs(int64_t intended_ns, int64_t done_ns) {
  return done_ns - intended_ns;
}

}  // namespace crm::loadgen
