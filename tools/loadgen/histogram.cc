#include "histogram.h"

#include <algorithm>
#include <bit>
#include <cmath>

namespace crm::loadgen {

namespace {
// Buckets 0..127 hold 0..127 exactly; then 128 buckets per exponent 7..kMaxExponent.
constexpr int kBuckets = Histogram::kSub * (Histogram::kMaxExponent - Histogram::kSubBits + 2);
}  // namespace

Histogram::Histogram() : counts_(kBuckets, 0) {}

int Histogram::BucketOf(int64_t value) {
  value = std::clamp<int64_t>(value, 0, kMaxValue);
  if (value < kSub) return static_cast<int>(value);
  const int exponent = std::bit_width(static_cast<uint64_t>(value)) - 1;  // >= kSubBits
  const int shift = exponent - kSubBits;
  const int sub = static_cast<int>(value >> shift) - kSub;  // 0..127
  return kSub + (exponent - kSubBits) * kSub + sub;
}

int64_t Histogram::BucketLow(int bucket) {
  if (bucket < kSub) return bucket;
  const int shift = (bucket - kSub) / kSub;
  const int sub = (bucket - kSub) % kSub;
  return static_cast<int64_t>(kSub + sub) << shift;
}

int64_t Histogram::BucketWidth(int bucket) {
  return bucket < kSub ? 1 : int64_t{1} << ((bucket - kSub) / kSub);
}

void Histogram::Record(int64_t value, int64_t count) {
  if (count <= 0) return;
  value = std::clamp<int64_t>(value, 0, kMaxValue);
  counts_[BucketOf(value)] += count;
  min_ = count_ == 0 ? value : std::min(min_, value);
  max_ = std::max(max_, value);
  count_ += count;
  sum_ += value * count;
}

void Histogram::Merge(const Histogram& other) {
  if (other.count_ == 0) return;
  for (size_t i = 0; i < counts_.size(); ++i) counts_[i] += other.counts_[i];
  min_ = count_ == 0 ? other.min_ : std::min(min_, other.min_);
  max_ = std::max(max_, other.max_);
  count_ += other.count_;
  sum_ += other.sum_;
}

int64_t Histogram::Quantile(double q) const {
  if (count_ == 0) return 0;
  // The epsilon keeps 0.99 * 1000 (989.9999... or 990.0000...1 in binary) at rank 990.
  const auto rank = std::clamp<int64_t>(
      static_cast<int64_t>(std::ceil(std::clamp(q, 0.0, 1.0) * static_cast<double>(count_) - 1e-9)),
      1, count_);
  int64_t seen = 0;
  for (size_t i = 0; i < counts_.size(); ++i) {
    seen += counts_[i];
    if (seen >= rank) return std::clamp(Representative(static_cast<int>(i)), min_, max_);
  }
  return max_;
}

}  // namespace crm::loadgen
