#pragma once

// What KPI facts add up to, and daily sums of them. A fact is what one record adds to a KPI:
// counts, samples and money under the KPI's dimension values, at a time. The projection keeps
// every KPI's facts summed per UTC day and dimension values while records change, so a query
// adds up sums instead of visiting every record: its cost follows the days and groups asked
// for, not the data. Periods (ISO weeks and months, UTC) are whole days, so a day lies in
// exactly one of them.
//
// Two kinds of KPI use them:
// - Event KPIs count what happened in a period: a fact sits at the time it happened, and a
//   query adds up the days of its periods.
// - State KPIs (completeness, pipeline value, open cases) ask what held at an instant. Their
//   facts are changes: a record entering a state adds the state's cell at that time, leaving it
//   adds the negated cell. The state at T is every change before T: the running total of all
//   changes minus the days from T on. That is exact when T starts a day or when every change
//   of T's day is before T; otherwise (a change dated later on the same day) the KPI visits
//   its records.

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/btree_map.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/node_hash_set.h"
#include "absl/functional/function_ref.h"
#include "domain/sketch.h"
#include "domain/small_map.h"

namespace crm::metrics {

// Relative error of every seconds quantile (days are exact).
inline constexpr double kQuantileRelativeError = 0.01;

// An exact sum of money and how many facts added to it, so that a sum of 0 is still listed
// for its currency while facts hold it.
struct MoneySum {
  __int128 sum = 0;
  int64_t facts = 0;
  friend bool operator==(const MoneySum&, const MoneySum&) = default;
};

// What the facts of one group add up to.
struct Cell {
  int64_t facts = 0;  // how many facts were added here (a fact may add nothing else)
  SmallMap<std::string, int64_t, 3> counts;
  absl::btree_map<std::string, Sketch> sketches;
  // (measure, currency) -> exact sum in minor units
  SmallMap<std::pair<std::string, std::string>, MoneySum, 2> money;

  void Count(const std::string& name, int64_t n = 1) { counts[name] += n; }
  void Sample(const std::string& name, double value, bool exact = false);
  void Money(const std::string& name, const std::string& currency, __int128 amount);
  // Adds (sign 1) or takes away (sign -1) what `other` holds. A count, sum or sketch that
  // reaches zero on the way down is dropped.
  void Add(const Cell& other, int sign = 1);
  bool empty() const { return facts == 0 && counts.empty() && sketches.empty() && money.empty(); }

  friend bool operator==(const Cell&, const Cell&) = default;
};

using DimValues = std::vector<std::string>;

struct Fact {
  int64_t time_us = 0;
  DimValues dims;  // in the order of the KPI's dimensions
  Cell cell;
  friend bool operator==(const Fact&, const Fact&) = default;
};

// One KPI's facts summed per UTC day and per UTC month, by dimension values.
class Rollup {
 public:
  // A state rollup also keeps the total of all its facts and the latest time of each day.
  explicit Rollup(bool state = false) : state_(state) {}
  // Sums are keyed by the addresses of the rollup's own groups, which a move keeps.
  Rollup(Rollup&&) = default;
  Rollup& operator=(Rollup&&) = default;

  // Adds (sign 1) or takes away (sign -1) a fact added before.
  void Add(const Fact& fact, int sign);

  // A group: its dimension values, interned (one copy per distinct tuple, kept while the
  // rollup lives), so that a fact hashes its strings once and its day, month and total are
  // found by the address.
  using Group = const DimValues*;
  // Sums by group.
  using Sums = absl::flat_hash_map<Group, Cell>;

  // Calls fn(day start, dimension values, sum) for the days starting in [from_us, to_us), in
  // the order of the days.
  template <typename Fn>
  void ForEachDay(int64_t from_us, int64_t to_us, Fn fn) const {
    ForEachDaySum(from_us, to_us,
                  [&](int64_t day, Group group, const Cell& sum) { fn(day, *group, sum); });
  }

  // The same for the months starting in [from_us, to_us), from the monthly sums.
  template <typename Fn>
  void ForEachMonth(int64_t from_us, int64_t to_us, Fn fn) const {
    for (auto month = months_.lower_bound(from_us); month != months_.end() && month->first < to_us;
         ++month) {
      for (const auto& [group, sum] : month->second) fn(month->first, *group, sum);
    }
  }

  // State rollups: calls fn(group, sum) for sums that hold exactly the facts of the days
  // starting in [from_us, to_us), whole months from monthly sums and the rest by day, so a
  // range costs its months and its days at the edges rather than all its days.
  void ForEachSum(int64_t from_us, int64_t to_us,
                  absl::FunctionRef<void(Group, const Cell&)> fn) const;
  // State rollups: the sum of every fact, by group.
  const Sums& totals() const { return totals_; }
  // State rollups: whether the facts before `instant_us` are exactly the days before the
  // first day starting at or after it (no fact of its day was ever dated at or after it).
  bool DaysDecide(int64_t instant_us) const;

 private:
  // Calls fn(day start, group, sum) for the days starting in [from_us, to_us), in order.
  template <typename Fn>
  void ForEachDaySum(int64_t from_us, int64_t to_us, Fn fn) const {
    for (auto day = days_.lower_bound(from_us); day != days_.end() && day->first < to_us; ++day) {
      for (const auto& [group, sum] : day->second) fn(day->first, group, sum);
    }
  }

  bool state_;
  absl::node_hash_set<DimValues> groups_;  // node-based: a group's address never changes
  // Keyed by time first and by group within it: a fact finds its sum by one integer search
  // and one hash of an address, and a query walks its days in order.
  absl::btree_map<int64_t, Sums> days_;
  absl::btree_map<int64_t, Sums> months_;  // by month start
  Sums totals_;
  // Day start -> the latest time of a fact ever added on it (never lowered, so that it costs
  // no bookkeeping of what was taken away; a day it overstates is visited, not misread).
  absl::btree_map<int64_t, int64_t> latest_;
  std::pair<int64_t, int64_t> month_of_day_{1, 0};  // the last day Add() saw, and its month
};

}  // namespace crm::metrics
