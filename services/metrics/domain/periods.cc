#include "domain/periods.h"

#include "absl/strings/str_format.h"
#include "crm/common/field_violations.h"
#include "crm/common/time.h"

namespace crm::metrics {
namespace {

absl::CivilDay MondayOf(absl::CivilDay day) {
  return absl::PrevWeekday(day + 1, absl::Weekday::monday);
}

}  // namespace

Period PeriodOf(PeriodKind kind, absl::Time t) {
  const absl::CivilSecond civil = absl::ToCivilSecond(t, absl::UTCTimeZone());
  if (kind == v1::PERIOD_KIND_MONTH) {
    const absl::CivilMonth month(civil);
    return {kind, absl::FromCivil(month, absl::UTCTimeZone()),
            absl::FromCivil(month + 1, absl::UTCTimeZone())};
  }
  const absl::CivilDay monday = MondayOf(absl::CivilDay(civil));
  return {v1::PERIOD_KIND_ISO_WEEK, absl::FromCivil(monday, absl::UTCTimeZone()),
          absl::FromCivil(monday + 7, absl::UTCTimeZone())};
}

std::string Period::Label() const {
  const absl::CivilDay first = absl::ToCivilDay(start, absl::UTCTimeZone());
  if (kind == v1::PERIOD_KIND_MONTH) {
    return absl::StrFormat("%04d-%02d", first.year(), first.month());
  }
  // The ISO week belongs to the year of its Thursday; week 1 holds the year's first Thursday.
  const absl::CivilDay thursday = first + 3;
  const absl::CivilDay january_first(thursday.year(), 1, 1);
  const int week = static_cast<int>((thursday - january_first) / 7) + 1;
  return absl::StrFormat("%04d-W%02d", thursday.year(), week);
}

v1::Period Period::ToProto() const {
  v1::Period period;
  period.set_kind(kind);
  *period.mutable_start_time() = crm::ToProto(start);
  *period.mutable_end_time() = crm::ToProto(end);
  period.set_label(Label());
  return period;
}

absl::StatusOr<std::vector<Period>> PeriodsOverlapping(PeriodKind kind, absl::Time start,
                                                       absl::Time end, size_t max_periods) {
  if (kind != v1::PERIOD_KIND_ISO_WEEK && kind != v1::PERIOD_KIND_MONTH) {
    return InvalidField("period_kind", "must be PERIOD_KIND_ISO_WEEK or PERIOD_KIND_MONTH");
  }
  if (end <= start) return InvalidField("end_time", "must be after start_time");
  std::vector<Period> periods;
  for (Period period = PeriodOf(kind, start); period.start < end;
       period = PeriodOf(kind, period.end)) {
    if (periods.size() == max_periods) {
      return InvalidField("end_time",
                          absl::StrFormat("the range spans more than %d periods", max_periods));
    }
    periods.push_back(period);
  }
  return periods;
}

}  // namespace crm::metrics
