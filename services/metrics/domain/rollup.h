#pragma once

// What KPI facts add up to, and daily sums of them. A fact is what one record adds to a KPI:
// counts, samples and money under the KPI's dimension values, at a time. The KPIs whose facts
// depend on one record alone (domain/facts.h) keep them summed per UTC day and dimension
// values while records change (Projection), so a query adds up the sums of its days instead
// of visiting every record: its cost follows the days and groups asked for, not the data.
// Periods (ISO weeks and months, UTC) are whole days, so a day lies in exactly one of them.

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/btree_map.h"
#include "domain/sketch.h"

namespace crm::metrics {

// Relative error of every seconds quantile (days are exact).
inline constexpr double kQuantileRelativeError = 0.01;

// What the facts of one group add up to.
struct Cell {
  int64_t facts = 0;  // how many facts were added here (a fact may add nothing else)
  absl::btree_map<std::string, int64_t> counts;
  absl::btree_map<std::string, Sketch> sketches;
  // (measure, currency) -> exact sum in minor units
  absl::btree_map<std::pair<std::string, std::string>, __int128> money;

  void Count(const std::string& name, int64_t n = 1) { counts[name] += n; }
  void Sample(const std::string& name, double value, bool exact = false);
  void Money(const std::string& name, const std::string& currency, __int128 amount) {
    money[{name, currency}] += amount;
  }
  // Adds (sign 1) or takes away (sign -1) what `other` holds. A count or sum that reaches 0
  // on the way down is dropped (so daily sums must not need a sum of 0 to be listed).
  void Add(const Cell& other, int sign = 1);
};

using DimValues = std::vector<std::string>;

struct Fact {
  int64_t time_us = 0;
  DimValues dims;  // in the order of the KPI's dimensions
  Cell cell;
};

// One KPI's facts summed per UTC day and dimension values.
class Rollup {
 public:
  // Adds (sign 1) or takes away (sign -1) a fact added before.
  void Add(const Fact& fact, int sign);

  // Calls fn(day start, dimension values, sum) for the days starting in [from_us, to_us), in
  // order.
  template <typename Fn>
  void ForEachDay(int64_t from_us, int64_t to_us, Fn fn) const {
    for (auto it = days_.lower_bound({from_us, DimValues()});
         it != days_.end() && it->first.first < to_us; ++it) {
      fn(it->first.first, it->first.second, it->second);
    }
  }

 private:
  absl::btree_map<std::pair<int64_t, DimValues>, Cell> days_;
};

}  // namespace crm::metrics
