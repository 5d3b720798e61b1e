#include "domain/sketch.h"

#include <algorithm>
#include <cmath>

namespace crm::metrics {
namespace {
// Logarithmic buckets start here: smaller samples (a microsecond) count as zero.
constexpr double kMinPositive = 1e-6;
}  // namespace

Sketch::Sketch(double relative_error) : relative_error_(relative_error) {
  if (relative_error_ > 0) {
    gamma_ = (1 + relative_error_) / (1 - relative_error_);
    log_gamma_ = std::log(gamma_);
  }
}

int32_t Sketch::BucketOf(double value) const {
  if (relative_error_ == 0) return static_cast<int32_t>(std::floor(value));
  // Bucket i holds (gamma^(i-1), gamma^i]; its midpoint in relative terms is within
  // relative_error of every value in it.
  return static_cast<int32_t>(std::ceil(std::log(value) / log_gamma_));
}

double Sketch::ValueOf(int32_t bucket) const {
  if (relative_error_ == 0) return bucket;
  return 2 * std::pow(gamma_, bucket) / (gamma_ + 1);
}

void Sketch::Add(double value, int64_t times) {
  count_ += times;
  if (!(value >= (relative_error_ == 0 ? 1.0 : kMinPositive))) {
    zeros_ += times;
    return;
  }
  AddToBucket(BucketOf(value), times);
}

void Sketch::Merge(const Sketch& other, int sign) {
  count_ += sign * other.count_;
  zeros_ += sign * other.zeros_;
  for (const auto& [bucket, n] : other.buckets_) AddToBucket(bucket, sign * n);
}

void Sketch::AddToBucket(int32_t bucket, int64_t n) {
  auto it = buckets_.try_emplace(bucket, 0).first;
  it->second += n;
  if (it->second == 0) buckets_.erase(it);  // an empty bucket is no bucket
}

std::optional<double> Sketch::Quantile(int percent) const {
  if (count_ == 0) return std::nullopt;
  // ceil(percent/100 x n) in integers: no floating-point rounding in the rank.
  const int64_t rank = std::max<int64_t>(1, (percent * count_ + 99) / 100);
  int64_t seen = zeros_;
  if (rank <= seen) return 0.0;
  for (const auto& [bucket, n] : buckets_) {
    seen += n;
    if (rank <= seen) return ValueOf(bucket);
  }
  return ValueOf(buckets_.rbegin()->first);
}

}  // namespace crm::metrics
