#include "domain/common.h"

#include "absl/strings/str_format.h"

namespace crm::activity {
namespace {

// Seconds from 0001-01-01 to the Unix epoch: valid timestamps start at year 1.
constexpr int64_t kYearOneToEpochSeconds = 62135596800;
constexpr int64_t kMaxKey = 999999999999999999;  // 18 digits hold year 9999 in microseconds

int64_t Micros(absl::Time time) {
  return absl::ToUnixMicros(time) + kYearOneToEpochSeconds * 1000000;
}

}  // namespace

std::string PersonId(FieldChecker& check, const std::string& field, const std::string& value,
                     const ActivityLimits& limits) {
  std::string id = check.Text(field, value, limits.max_text);
  if (id.find('/') != std::string::npos) check.Invalid(field, "must not contain '/'");
  return id;
}

std::string TimeKey(absl::Time time) { return absl::StrFormat("%018d", Micros(time)); }

std::string InvertedTimeKey(absl::Time time) {
  return absl::StrFormat("%018d", kMaxKey - Micros(time));
}

}  // namespace crm::activity
