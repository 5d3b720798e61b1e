#pragma once

// Errors are absl::Status values everywhere; this is the one place they become gRPC statuses.
// Field violations travel as a google.rpc.BadRequest detail (wire-compatible mirror in
// crm/common/v1/error.proto), so standard gRPC clients can read which field was wrong.

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "crm/common/field_violations.h"
#include "grpcpp/support/status.h"

namespace crm::runtime {

// Field violations (crm/common/field_violations.h) are part of the runtime's vocabulary too.
using crm::FieldViolation;
using crm::InvalidArgument;
using crm::InvalidField;
using crm::Violations;
using crm::WithViolations;

// The single mapping to the wire. Internal failures (INTERNAL, DATA_LOSS, UNKNOWN) reach the
// client as INTERNAL with a generic message; the detail stays in the server log.
grpc::Status ToGrpcStatus(const absl::Status& status);
// For clients: the status a server sent, violations included.
absl::Status FromGrpcStatus(const grpc::Status& status);

}  // namespace crm::runtime
