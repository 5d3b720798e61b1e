#pragma once

// How a callee's error reaches our caller: its code and field violations kept, its origin
// named for the logs, and a callee that did not answer in time reported as UNAVAILABLE (the
// dependency is down, DESIGN.md), not as the caller's own deadline.

#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace crm::clients::internal {

inline absl::Status CalleeStatus(const std::string& service, const std::string& method,
                                 absl::Status status) {
  if (status.ok() || status.code() == absl::StatusCode::kAlreadyExists) return status;
  const absl::StatusCode code = status.code() == absl::StatusCode::kDeadlineExceeded
                                    ? absl::StatusCode::kUnavailable
                                    : status.code();
  absl::Status named(code, absl::StrCat(service, " ", method, ": ", std::string(status.message())));
  status.ForEachPayload([&named](absl::string_view url, const absl::Cord& payload) {
    named.SetPayload(url, payload);
  });
  return named;
}

}  // namespace crm::clients::internal
