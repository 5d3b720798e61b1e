#pragma once

// A map of a few entries, kept sorted in one inline vector. A KPI cell holds two or three
// counts or sums, and the projection adds cells on every fact it files: a tree would spend a
// node allocation and pointer chasing on each, where this searches a few adjacent entries.
// Iteration is in key order, as a std::map's.

#include <algorithm>
#include <cstddef>
#include <utility>

#include "absl/container/inlined_vector.h"

namespace crm::metrics {

template <typename Key, typename Value, size_t kInline>
class SmallMap {
 public:
  using Entry = std::pair<Key, Value>;
  using iterator = typename absl::InlinedVector<Entry, kInline>::iterator;
  using const_iterator = typename absl::InlinedVector<Entry, kInline>::const_iterator;

  // The entry of `key`, value-initialized when new.
  iterator try_emplace(const Key& key) {
    auto it = LowerBound(key);
    if (it == entries_.end() || it->first != key) it = entries_.insert(it, Entry(key, Value()));
    return it;
  }
  Value& operator[](const Key& key) { return try_emplace(key)->second; }
  const_iterator find(const Key& key) const {
    auto it = std::lower_bound(entries_.begin(), entries_.end(), key,
                               [](const Entry& entry, const Key& k) { return entry.first < k; });
    return it != entries_.end() && it->first == key ? it : entries_.end();
  }
  void erase(iterator it) { entries_.erase(it); }

  iterator begin() { return entries_.begin(); }
  iterator end() { return entries_.end(); }
  const_iterator begin() const { return entries_.begin(); }
  const_iterator end() const { return entries_.end(); }
  bool empty() const { return entries_.empty(); }
  size_t size() const { return entries_.size(); }

  friend bool operator==(const SmallMap& a, const SmallMap& b) { return a.entries_ == b.entries_; }

 private:
  iterator LowerBound(const Key& key) {
    return std::lower_bound(entries_.begin(), entries_.end(), key,
                            [](const Entry& entry, const Key& k) { return entry.first < k; });
  }

  absl::InlinedVector<Entry, kInline> entries_;
};

}  // namespace crm::metrics
