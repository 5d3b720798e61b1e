#pragma once

// Collects the faults of a request's fields while normalising them, so that one answer names
// every offending field: too long is RESOURCE_EXHAUSTED, malformed INVALID_ARGUMENT.

#include <string>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "crm/common/field_violations.h"
#include "crm/common/ids.h"

namespace crm {

class FieldChecker {
 public:
  // `value` without surrounding white space; a fault when longer than `max` bytes.
  std::string Text(const std::string& field, const std::string& value, size_t max) {
    std::string trimmed(absl::StripAsciiWhitespace(value));
    if (trimmed.size() > max) {
      too_large_.push_back({field, absl::StrCat("longer than ", max, " bytes")});
    }
    return trimmed;
  }
  // An optional record id: trimmed, checked when present.
  std::string Id(const std::string& field, const std::string& value) {
    std::string trimmed(absl::StripAsciiWhitespace(value));
    if (!trimmed.empty()) Append(invalid_, ValidateId(trimmed, field));
    return trimmed;
  }
  void Invalid(std::string field, std::string description) {
    invalid_.push_back({std::move(field), std::move(description)});
  }
  void TooLarge(std::string field, std::string description) {
    too_large_.push_back({std::move(field), std::move(description)});
  }
  // The violations of a failed check (ValidateId, ValidateDate, ...) as malformed fields.
  void Add(const absl::Status& status) { Append(invalid_, status); }
  bool HasInvalid() const { return !invalid_.empty(); }

  absl::Status Result() const { return FieldFaults(too_large_, invalid_); }

 private:
  std::vector<FieldViolation> too_large_;
  std::vector<FieldViolation> invalid_;
};

}  // namespace crm
