#pragma once

// A log-linear latency histogram (HdrHistogram's layout, much smaller): values below 128 are
// exact, above that every power of two is split into 128 equal buckets, so a bucket is at most
// 1/128 of its lower bound wide and its midpoint is within 1/256 (0.4%) of any value in it.
// Fixed size, so histograms of different threads and phases merge by adding counts.

#include <cstdint>
#include <vector>

namespace crm::loadgen {

class Histogram {
 public:
  static constexpr int kSubBits = 7;  // 128 buckets per power of two
  static constexpr int kSub = 1 << kSubBits;
  static constexpr int kMaxExponent = 40;  // values up to 2^41 - 1 (25 days in microseconds)
  static constexpr int64_t kMaxValue = (int64_t{2} << kMaxExponent) - 1;

  Histogram();

  // Records a value (negative as 0, larger than kMaxValue as kMaxValue).
  void Record(int64_t value, int64_t count = 1);
  void Merge(const Histogram& other);

  int64_t count() const { return count_; }
  int64_t min() const { return count_ == 0 ? 0 : min_; }
  int64_t max() const { return max_; }
  double mean() const { return count_ == 0 ? 0 : static_cast<double>(sum_) / count_; }

  // The nearest-rank quantile (q in [0, 1]): the representative of the bucket holding the
  // ceil(q * count)-th smallest value, clamped to the exact min and max. 0 when empty.
  int64_t Quantile(double q) const;

  // Bucket layout, public for the tests.
  static int BucketOf(int64_t value);
  static int64_t BucketLow(int bucket);
  static int64_t BucketWidth(int bucket);
  // The bucket's midpoint (its only value when the width is 1).
  static int64_t Representative(int bucket) { return BucketLow(bucket) + BucketWidth(bucket) / 2; }

 private:
  std::vector<int64_t> counts_;
  int64_t count_ = 0;
  int64_t sum_ = 0;
  int64_t min_ = 0;
  int64_t max_ = 0;
};

}  // namespace crm::loadgen
