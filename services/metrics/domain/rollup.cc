#include "domain/rollup.h"

#include <algorithm>
#include <limits>

#include "absl/time/civil_time.h"
#include "absl/time/time.h"

namespace crm::metrics {
namespace {

constexpr int64_t kMicrosPerDay = int64_t{86'400'000'000};

int64_t DayStart(int64_t time_us) {
  const int64_t day = time_us >= 0 ? time_us / kMicrosPerDay : (time_us + 1) / kMicrosPerDay - 1;
  return day * kMicrosPerDay;
}

int64_t DayCeil(int64_t time_us) {
  const int64_t start = DayStart(time_us);
  return start == time_us ? start : start + kMicrosPerDay;
}

// The start of the month holding `time_us` (UTC).
int64_t MonthStart(int64_t time_us) {
  const absl::CivilMonth month(
      absl::ToCivilSecond(absl::FromUnixMicros(time_us), absl::UTCTimeZone()));
  return absl::ToUnixMicros(absl::FromCivil(month, absl::UTCTimeZone()));
}

int64_t MonthCeil(int64_t time_us) {
  const absl::CivilMonth month(
      absl::ToCivilSecond(absl::FromUnixMicros(time_us), absl::UTCTimeZone()));
  const int64_t start = absl::ToUnixMicros(absl::FromCivil(month, absl::UTCTimeZone()));
  return start == time_us ? start
                          : absl::ToUnixMicros(absl::FromCivil(month + 1, absl::UTCTimeZone()));
}

// map[key] += delta, dropping the entry when it reaches zero.
template <typename Map, typename Key>
void AddTo(Map& map, const Key& key, int64_t delta) {
  auto it = map.try_emplace(key);
  it->second += delta;
  if (it->second == 0) map.erase(it);
}

template <typename Map>
void AddTo(Map& money, const std::pair<std::string, std::string>& key, const MoneySum& delta,
           int sign) {
  auto it = money.try_emplace(key);
  it->second.sum += sign * delta.sum;
  it->second.facts += sign * delta.facts;
  if (it->second.facts == 0 && it->second.sum == 0) money.erase(it);
}

void AddCell(Rollup::Sums& sums, Rollup::Group group, const Cell& cell, int sign) {
  auto it = sums.try_emplace(group).first;
  it->second.Add(cell, sign);
  if (it->second.empty()) sums.erase(it);  // every fact of the group was taken away
}

void AddCell(absl::btree_map<int64_t, Rollup::Sums>& by_time, int64_t time, Rollup::Group group,
             const Cell& cell, int sign) {
  auto it = by_time.try_emplace(time).first;
  AddCell(it->second, group, cell, sign);
  if (it->second.empty()) by_time.erase(it);
}

}  // namespace

void Cell::Sample(const std::string& name, double value, bool exact) {
  auto it = sketches.find(name);
  if (it == sketches.end()) {
    it = sketches
             .emplace(name, exact ? Sketch::Exact() : Sketch::Logarithmic(kQuantileRelativeError))
             .first;
  }
  it->second.Add(value);
}

void Cell::Money(const std::string& name, const std::string& currency, __int128 amount) {
  MoneySum& sum = money[{name, currency}];
  sum.sum += amount;
  sum.facts += 1;
}

void Cell::Add(const Cell& other, int sign) {
  facts += sign * other.facts;
  for (const auto& [name, n] : other.counts) AddTo(counts, name, sign * n);
  for (const auto& [key, sum] : other.money) AddTo(money, key, sum, sign);
  for (const auto& [name, sketch] : other.sketches) {
    auto it = sketches.try_emplace(name, sketch.relative_error() == 0
                                             ? Sketch::Exact()
                                             : Sketch::Logarithmic(sketch.relative_error()))
                  .first;
    it->second.Merge(sketch, sign);
    if (it->second.count() == 0) sketches.erase(it);
  }
}

void Rollup::Add(const Fact& fact, int sign) {
  const Group group = &*groups_.insert(fact.dims).first;
  const int64_t day = DayStart(fact.time_us);
  AddCell(days_, day, group, fact.cell, sign);
  if (day != month_of_day_.first) month_of_day_ = {day, MonthStart(day)};
  AddCell(months_, month_of_day_.second, group, fact.cell, sign);
  if (!state_) return;
  AddCell(totals_, group, fact.cell, sign);
  int64_t& latest = latest_.try_emplace(day, fact.time_us).first->second;
  latest = std::max(latest, fact.time_us);
}

void Rollup::ForEachSum(int64_t from_us, int64_t to_us,
                        absl::FunctionRef<void(Group, const Cell&)> fn) const {
  constexpr int64_t kEnd = std::numeric_limits<int64_t>::max();
  auto days = [&](int64_t from, int64_t to) {
    ForEachDaySum(from, to, [&](int64_t, Group group, const Cell& sum) { fn(group, sum); });
  };
  const int64_t first_day = DayCeil(from_us);
  const int64_t end_day = to_us == kEnd ? kEnd : DayCeil(to_us);
  const int64_t first_month = MonthCeil(first_day);
  if (first_month >= end_day) return days(first_day, end_day);
  // Whole months run from first_month up to the start of the month holding end_day.
  const int64_t end_month = end_day == kEnd ? kEnd : MonthStart(end_day);
  days(first_day, first_month);
  for (auto month = months_.lower_bound(first_month);
       month != months_.end() && month->first < end_month; ++month) {
    for (const auto& [group, sum] : month->second) fn(group, sum);
  }
  if (end_month != kEnd) days(end_month, end_day);
}

bool Rollup::DaysDecide(int64_t instant_us) const {
  const int64_t day = DayStart(instant_us);
  if (day == instant_us) return true;
  auto it = latest_.find(day);
  return it == latest_.end() || it->second < instant_us;
}

}  // namespace crm::metrics
