#pragma once

// Shared by the crash writer and the crash test: the exact bytes of each event, so the test
// can check that what survived is what was written.

#include <cstdint>
#include <string>

#include "absl/strings/str_cat.h"

namespace crm::eventstore {

inline constexpr int kEventsPerAppend = 3;

inline std::string CrashPayload(const std::string& stream, int64_t version) {
  std::string payload = absl::StrCat(stream, "@", version, ":");
  payload.resize(512, static_cast<char>('a' + version % 26));
  return payload;
}

}  // namespace crm::eventstore
