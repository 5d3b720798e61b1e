#include "domain/periods.h"

#include "crm/common/field_violations.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace crm::metrics {
namespace {

absl::Time Utc(int y, int m, int d, int h = 0) {
  return absl::FromCivil(absl::CivilHour(y, m, d, h), absl::UTCTimeZone());
}

TEST(PeriodsTest, IsoWeeksStartOnMondayAndBelongToTheYearOfTheirThursday) {
  // Sunday 2027-01-03 23:00 is in the week of Monday 2026-12-28, ISO week 2026-W53.
  const Period week = PeriodOf(v1::PERIOD_KIND_ISO_WEEK, Utc(2027, 1, 3, 23));
  EXPECT_EQ(week.start, Utc(2026, 12, 28));
  EXPECT_EQ(week.end, Utc(2027, 1, 4));
  EXPECT_EQ(week.Label(), "2026-W53");
  // Monday 2024-12-30 starts 2025-W01.
  EXPECT_EQ(PeriodOf(v1::PERIOD_KIND_ISO_WEEK, Utc(2024, 12, 31)).Label(), "2025-W01");
  // The end instant belongs to the next week (half-open).
  EXPECT_EQ(PeriodOf(v1::PERIOD_KIND_ISO_WEEK, Utc(2027, 1, 4)).start, Utc(2027, 1, 4));
}

TEST(PeriodsTest, MonthsAreCalendarMonthsInUtc) {
  const Period month = PeriodOf(v1::PERIOD_KIND_MONTH, Utc(2028, 2, 29, 23));
  EXPECT_EQ(month.start, Utc(2028, 2, 1));
  EXPECT_EQ(month.end, Utc(2028, 3, 1));
  EXPECT_EQ(month.Label(), "2028-02");
}

TEST(PeriodsTest, RangesListEveryOverlappingPeriodAndAreBounded) {
  auto periods = PeriodsOverlapping(v1::PERIOD_KIND_MONTH, Utc(2026, 1, 15), Utc(2026, 3, 1), 10);
  ASSERT_TRUE(periods.ok());
  ASSERT_EQ(periods->size(), 2u);  // January and February; March starts at the end
  EXPECT_EQ((*periods)[1].Label(), "2026-02");
  EXPECT_EQ(
      Violations(PeriodsOverlapping(v1::PERIOD_KIND_ISO_WEEK, Utc(2026, 1, 1), Utc(2027, 1, 1), 10)
                     .status())[0]
          .field,
      "end_time");
  EXPECT_EQ(Violations(PeriodsOverlapping(v1::PERIOD_KIND_UNSPECIFIED, Utc(2026, 1, 1),
                                          Utc(2027, 1, 1), 10)
                           .status())[0]
                .field,
            "period_kind");
}

}  // namespace
}  // namespace crm::metrics
