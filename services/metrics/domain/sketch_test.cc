#include "domain/sketch.h"

#include <algorithm>
#include <random>
#include <vector>

#include "gtest/gtest.h"

namespace crm::metrics {
namespace {

// The exact nearest-rank quantile: rank ceil(p/100 x n) of the sorted sample.
double NearestRank(std::vector<double> sample, int percent) {
  std::sort(sample.begin(), sample.end());
  const size_t rank = (percent * sample.size() + 99) / 100;
  return sample[std::max<size_t>(rank, 1) - 1];
}

TEST(SketchTest, QuantilesAreWithinTheStatedRelativeError) {
  std::mt19937_64 dice(3);
  std::vector<double> sample;
  Sketch sketch = Sketch::Logarithmic(0.01);
  for (int i = 0; i < 20'000; ++i) {
    // Seconds from under a second to weeks, heavy-tailed like logging delays.
    const double value = std::exp(static_cast<double>(dice() % 1'400'000) / 100'000.0) - 1;
    sample.push_back(value);
    sketch.Add(value);
  }
  for (int percent : {1, 10, 50, 90, 99, 100}) {
    const double exact = NearestRank(sample, percent);
    EXPECT_NEAR(*sketch.Quantile(percent), exact, exact * 0.01 + 1e-6) << percent;
  }
}

TEST(SketchTest, MergedSketchesEqualTheSketchOfTheUnionInAnyOrder) {
  Sketch a = Sketch::Logarithmic(0.01), b = Sketch::Logarithmic(0.01),
         all = Sketch::Logarithmic(0.01);
  for (int i = 1; i <= 1000; ++i) {
    (i % 3 == 0 ? a : b).Add(i * 1.7);
    all.Add((1001 - i) * 1.7);
  }
  a.Merge(b);
  for (int percent : {50, 90}) EXPECT_EQ(a.Quantile(percent), all.Quantile(percent));
  EXPECT_EQ(a.count(), 1000);
}

TEST(SketchTest, ExactSketchCountsWholeNumbersAndZeros) {
  Sketch days = Sketch::Exact();
  for (double d : {0.0, 8.0, 6.0, 9.0}) days.Add(d);
  EXPECT_EQ(*days.Quantile(50), 6);  // [0, 6, 8, 9], rank 2
  EXPECT_EQ(*days.Quantile(25), 0);  // rank 1
  EXPECT_EQ(*days.Quantile(100), 9);
  EXPECT_FALSE(Sketch::Exact().Quantile(50).has_value());
}

TEST(SketchTest, SamplesTakenAwayAreAsIfNeverAdded) {
  Sketch kept = Sketch::Logarithmic(0.01);
  Sketch changed = Sketch::Logarithmic(0.01);
  for (double v : {0.0, 3.0, 40.0, 500.0}) {
    kept.Add(v);
    changed.Add(v);
  }
  changed.Add(7000.0);
  changed.Add(0.0);
  Sketch gone = Sketch::Logarithmic(0.01);
  gone.Add(7000.0);
  gone.Add(0.0);
  changed.Merge(gone, -1);
  EXPECT_EQ(changed.count(), 4);
  // [0, 3, 40, 500]: rank 4 is 500 again, not 7000.
  for (int percent : {25, 50, 75, 100}) EXPECT_EQ(changed.Quantile(percent), kept.Quantile(percent));
  changed.Add(3.0, -1);
  EXPECT_NEAR(*changed.Quantile(50), 40, 0.4);  // [0, 40, 500], rank 2
}

}  // namespace
}  // namespace crm::metrics
