#include "crm/clients/ttl_cache.h"

#include "gtest/gtest.h"

namespace crm::clients {
namespace {

TEST(TtlCacheTest, AnswersUntilTheTtlPasses) {
  absl::Time now = absl::FromUnixSeconds(1000);
  TtlCache<int> cache(absl::Seconds(5), 100, [&now] { return now; });
  EXPECT_EQ(cache.Get("c1"), std::nullopt);
  cache.Put("c1", 7);
  EXPECT_EQ(cache.Get("c1"), 7);
  now += absl::Seconds(4);
  EXPECT_EQ(cache.Get("c1"), 7);
  now += absl::Seconds(1);
  EXPECT_EQ(cache.Get("c1"), std::nullopt);
}

TEST(TtlCacheTest, ZeroTtlIsOff) {
  TtlCache<int> cache(absl::ZeroDuration());
  EXPECT_FALSE(cache.enabled());
  cache.Put("c1", 7);
  EXPECT_EQ(cache.Get("c1"), std::nullopt);
}

TEST(TtlCacheTest, StartsOverWhenFull) {
  TtlCache<int> cache(absl::Hours(1), 2);
  cache.Put("a", 1);
  cache.Put("b", 2);
  cache.Put("b", 3);  // replacing does not count as growing
  EXPECT_EQ(cache.Get("a"), 1);
  cache.Put("c", 4);
  EXPECT_EQ(cache.Get("a"), std::nullopt);
  EXPECT_EQ(cache.Get("c"), 4);
}

}  // namespace
}  // namespace crm::clients
