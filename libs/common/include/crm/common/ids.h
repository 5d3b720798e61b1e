#pragma once

// Record ids chosen by clients (or derived for them): short, URL- and key-safe.

#include <algorithm>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "crm/common/field_violations.h"

namespace crm {

inline constexpr size_t kMaxIdBytes = 64;

// INVALID_ARGUMENT on `field` unless `id` is 1..max letters, digits, '-' and '_' (ids are parts
// of store keys and resource names, so '/' and the like are never allowed).
inline absl::Status ValidateId(const std::string& id, const std::string& field,
                               size_t max = kMaxIdBytes) {
  const bool ok = !id.empty() && id.size() <= max && std::all_of(id.begin(), id.end(), [](char c) {
    return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_';
  });
  if (ok) return absl::OkStatus();
  return InvalidField(field, absl::StrCat("must be 1 to ", max, " letters, digits, '-' or '_'"));
}

}  // namespace crm
