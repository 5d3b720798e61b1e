#pragma once

// A small thread-safe cache of answers from another service, each kept for a fixed time (a
// TTL of zero turns it off). Bounded: when full it starts over, which keeps it simple and its
// memory fixed. For facts that may be a little stale by choice (see docs/decisions.md).

#include <functional>
#include <optional>
#include <string>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace crm::clients {

template <typename Value>
class TtlCache {
 public:
  explicit TtlCache(absl::Duration ttl, size_t max_entries = 100'000,
                    std::function<absl::Time()> clock = absl::Now)
      : ttl_(ttl), max_entries_(max_entries), clock_(std::move(clock)) {}

  bool enabled() const { return ttl_ > absl::ZeroDuration(); }

  std::optional<Value> Get(const std::string& key) const {
    if (!enabled()) return std::nullopt;
    absl::MutexLock lock(&mu_);
    auto found = entries_.find(key);
    if (found == entries_.end() || found->second.second <= clock_()) return std::nullopt;
    return found->second.first;
  }

  void Put(const std::string& key, Value value) {
    if (!enabled()) return;
    const absl::Time expires = clock_() + ttl_;
    absl::MutexLock lock(&mu_);
    if (entries_.size() >= max_entries_ && !entries_.contains(key)) entries_.clear();
    entries_.insert_or_assign(key, std::make_pair(std::move(value), expires));
  }

 private:
  const absl::Duration ttl_;
  const size_t max_entries_;
  const std::function<absl::Time()> clock_;
  mutable absl::Mutex mu_;
  absl::flat_hash_map<std::string, std::pair<Value, absl::Time>> entries_ ABSL_GUARDED_BY(mu_);
};

}  // namespace crm::clients
