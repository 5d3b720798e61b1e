#pragma once

// KPI periods (KPIS.md): ISO weeks (Monday 00:00 UTC, half-open) and calendar months (UTC).

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "crm/metrics/v1/metrics_service.pb.h"

namespace crm::metrics {

using v1::PeriodKind;

struct Period {
  PeriodKind kind = v1::PERIOD_KIND_UNSPECIFIED;
  absl::Time start;
  absl::Time end;

  bool Contains(absl::Time t) const { return start <= t && t < end; }
  // "2026-W47" (the ISO week-numbering year) or "2026-11".
  std::string Label() const;
  v1::Period ToProto() const;
  friend bool operator==(const Period&, const Period&) = default;
};

// The period of `kind` holding `t`.
Period PeriodOf(PeriodKind kind, absl::Time t);

// Every period of `kind` overlapping [start, end), in order; INVALID_ARGUMENT (naming the
// request's fields) when the range is empty or the kind unknown, and when it spans more than
// `max_periods`.
absl::StatusOr<std::vector<Period>> PeriodsOverlapping(PeriodKind kind, absl::Time start,
                                                       absl::Time end, size_t max_periods);

inline int64_t ToMicros(absl::Time t) { return absl::ToUnixMicros(t); }
inline absl::Time FromMicros(int64_t us) { return absl::FromUnixMicros(us); }

}  // namespace crm::metrics
