#pragma once

#include "absl/time/time.h"
#include "google/protobuf/timestamp.pb.h"

namespace crm {

inline google::protobuf::Timestamp ToProto(absl::Time time) {
  const int64_t nanos = absl::ToUnixNanos(time);
  google::protobuf::Timestamp ts;
  // Floor division so that times before 1970 keep nanos in [0, 1e9).
  int64_t seconds = nanos / 1'000'000'000;
  int64_t rest = nanos % 1'000'000'000;
  if (rest < 0) {
    rest += 1'000'000'000;
    --seconds;
  }
  ts.set_seconds(seconds);
  ts.set_nanos(static_cast<int32_t>(rest));
  return ts;
}

inline absl::Time FromProto(const google::protobuf::Timestamp& ts) {
  return absl::FromUnixSeconds(ts.seconds()) + absl::Nanoseconds(ts.nanos());
}

// The range google.protobuf.Timestamp allows: 0001-01-01 to 9999-12-31, nanos in [0, 1e9).
inline bool IsValidTimestamp(const google::protobuf::Timestamp& ts) {
  return ts.seconds() >= -62'135'596'800 && ts.seconds() <= 253'402'300'799 && ts.nanos() >= 0 &&
         ts.nanos() < 1'000'000'000;
}

}  // namespace crm
