#pragma once

// Money is int64 minor units; arithmetic that would wrap is an error, never a silent wrap.

#include <cstdint>
#include <optional>
#include <string>

#include "absl/strings/ascii.h"

namespace crm {

inline std::optional<int64_t> CheckedMultiply(int64_t a, int64_t b) {
  int64_t product;
  if (__builtin_mul_overflow(a, b, &product)) return std::nullopt;
  return product;
}

inline std::optional<int64_t> CheckedAdd(int64_t a, int64_t b) {
  int64_t sum;
  if (__builtin_add_overflow(a, b, &sum)) return std::nullopt;
  return sum;
}

// Three upper-case ASCII letters (ISO 4217 alphabetic form; the code list itself changes, so
// only the form is checked).
inline bool IsCurrencyCode(const std::string& code) {
  return code.size() == 3 && absl::ascii_isupper(static_cast<unsigned char>(code[0])) &&
         absl::ascii_isupper(static_cast<unsigned char>(code[1])) &&
         absl::ascii_isupper(static_cast<unsigned char>(code[2]));
}

}  // namespace crm
