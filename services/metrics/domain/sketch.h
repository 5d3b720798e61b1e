#pragma once

// Quantiles of non-negative samples from a mergeable sketch (DDSketch-style logarithmic
// buckets): any reported quantile is within `relative_error` of the exact nearest-rank
// quantile (KPIS.md: the value at rank ceil(q x n) of the sorted sample). The buckets hold
// counts only, so the result depends on the multiset of samples, not on their order: a
// rebuild gives identical figures, and sketches of groups merge into the sketch of the union.
// Exact() buckets whole numbers one per value (relative error 0), e.g. whole days.

#include <cstdint>
#include <optional>

#include "absl/container/btree_map.h"

namespace crm::metrics {

class Sketch {
 public:
  static Sketch Logarithmic(double relative_error) { return Sketch(relative_error); }
  static Sketch Exact() { return Sketch(0); }

  // Negative samples count as 0. A negative `times` takes samples added before away again.
  void Add(double value, int64_t times = 1);
  // Adds (sign 1) or takes away (sign -1) the samples of `other`.
  void Merge(const Sketch& other, int sign = 1);

  int64_t count() const { return count_; }
  double relative_error() const { return relative_error_; }
  // The nearest-rank quantile at `percent` (1..100); nullopt when empty.
  std::optional<double> Quantile(int percent) const;

  friend bool operator==(const Sketch& a, const Sketch& b) {
    return a.relative_error_ == b.relative_error_ && a.zeros_ == b.zeros_ &&
           a.count_ == b.count_ && a.buckets_ == b.buckets_;
  }

 private:
  explicit Sketch(double relative_error);
  int32_t BucketOf(double value) const;
  double ValueOf(int32_t bucket) const;
  void AddToBucket(int32_t bucket, int64_t n);

  double relative_error_;
  double gamma_ = 0;
  double log_gamma_ = 0;
  int64_t zeros_ = 0;  // samples below the smallest bucket
  int64_t count_ = 0;
  absl::btree_map<int32_t, int64_t> buckets_;
};

}  // namespace crm::metrics
