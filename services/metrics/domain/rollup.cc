#include "domain/rollup.h"

namespace crm::metrics {
namespace {

constexpr int64_t kMicrosPerDay = int64_t{86'400'000'000};

int64_t DayStart(int64_t time_us) {
  const int64_t day = time_us >= 0 ? time_us / kMicrosPerDay : (time_us + 1) / kMicrosPerDay - 1;
  return day * kMicrosPerDay;
}

// map[key] += delta, dropping the entry when it reaches `zero`.
template <typename Map, typename Key, typename Value>
void AddTo(Map& map, const Key& key, const Value& delta) {
  auto it = map.try_emplace(key, Value()).first;
  it->second += delta;
  if (it->second == Value()) map.erase(it);
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

void Cell::Add(const Cell& other, int sign) {
  facts += sign * other.facts;
  for (const auto& [name, n] : other.counts) AddTo(counts, name, sign * n);
  for (const auto& [key, amount] : other.money) AddTo(money, key, sign * amount);
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
  auto it = days_.try_emplace({DayStart(fact.time_us), fact.dims}).first;
  it->second.Add(fact.cell, sign);
  if (it->second.facts == 0) days_.erase(it);  // every fact of the group was taken away
}

}  // namespace crm::metrics
