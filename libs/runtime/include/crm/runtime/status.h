#pragma once

// Errors are absl::Status values everywhere; this is the one place they become gRPC statuses.
// Field violations travel as a google.rpc.BadRequest detail (wire-compatible mirror in
// crm/common/v1/error.proto), so standard gRPC clients can read which field was wrong.

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "grpcpp/support/status.h"

namespace crm::runtime {

struct FieldViolation {
  std::string field;        // "contact.emails[0]"
  std::string description;  // "must be a valid email address"
  bool operator==(const FieldViolation&) const = default;
};

// INVALID_ARGUMENT naming every offending field. The message lists them too, for humans.
absl::Status InvalidArgument(std::vector<FieldViolation> violations);
absl::Status InvalidField(std::string field, std::string description);

// Any status may carry violations (e.g. RESOURCE_EXHAUSTED for one oversized field).
absl::Status WithViolations(absl::Status status, const std::vector<FieldViolation>& violations);
std::vector<FieldViolation> Violations(const absl::Status& status);

// The single mapping to the wire. Internal failures (INTERNAL, DATA_LOSS, UNKNOWN) reach the
// client as INTERNAL with a generic message; the detail stays in the server log.
grpc::Status ToGrpcStatus(const absl::Status& status);
// For clients: the status a server sent, violations included.
absl::Status FromGrpcStatus(const grpc::Status& status);

}  // namespace crm::runtime
