#pragma once

// Errors that name the offending fields, for domain code (no gRPC here). The runtime's
// ToGrpcStatus turns the attached violations into a google.rpc.BadRequest status detail.

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/cord.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "crm/common/v1/error.pb.h"

namespace crm {

struct FieldViolation {
  std::string field;        // "contact.emails[0]"
  std::string description;  // "must be a valid email address"
  bool operator==(const FieldViolation&) const = default;
};

// The type URL standard clients look for (grpcio's grpc_status, grpc-go's status.Details).
inline constexpr char kBadRequestTypeUrl[] = "type.googleapis.com/google.rpc.BadRequest";

inline crm::common::v1::BadRequest ToBadRequest(const std::vector<FieldViolation>& violations) {
  crm::common::v1::BadRequest bad_request;
  for (const auto& violation : violations) {
    auto* v = bad_request.add_field_violations();
    v->set_field(violation.field);
    v->set_description(violation.description);
  }
  return bad_request;
}

inline std::vector<FieldViolation> FromBadRequest(const crm::common::v1::BadRequest& bad_request) {
  std::vector<FieldViolation> violations;
  for (const auto& v : bad_request.field_violations())
    violations.push_back({v.field(), v.description()});
  return violations;
}

// Any status may carry violations (e.g. RESOURCE_EXHAUSTED for one oversized field).
inline absl::Status WithViolations(absl::Status status,
                                   const std::vector<FieldViolation>& violations) {
  if (!violations.empty()) {
    status.SetPayload(kBadRequestTypeUrl, absl::Cord(ToBadRequest(violations).SerializeAsString()));
  }
  return status;
}

// INVALID_ARGUMENT naming every offending field; the message lists them too, for humans.
inline absl::Status InvalidArgument(std::vector<FieldViolation> violations) {
  std::string message =
      absl::StrJoin(violations, "; ", [](std::string* out, const FieldViolation& v) {
        absl::StrAppend(out, v.field, ": ", v.description);
      });
  return WithViolations(absl::InvalidArgumentError(message), violations);
}

inline absl::Status InvalidField(std::string field, std::string description) {
  return InvalidArgument({{std::move(field), std::move(description)}});
}

// FAILED_PRECONDITION naming the field whose reference does not hold (no such live record).
inline absl::Status FailedField(std::string field, std::string description) {
  absl::Status status = absl::FailedPreconditionError(absl::StrCat(field, ": ", description));
  return WithViolations(std::move(status), {{std::move(field), std::move(description)}});
}

// NOT_FOUND naming the field that refers to a record nobody has.
inline absl::Status NotFoundField(std::string field, std::string description) {
  absl::Status status = absl::NotFoundError(absl::StrCat(field, ": ", description));
  return WithViolations(std::move(status), {{std::move(field), std::move(description)}});
}

inline std::vector<FieldViolation> Violations(const absl::Status& status) {
  auto payload = status.GetPayload(kBadRequestTypeUrl);  // absl::optional in Debian's build
  crm::common::v1::BadRequest bad_request;
  if (!payload || !bad_request.ParseFromString(std::string(*payload))) return {};
  return FromBadRequest(bad_request);
}

// Adds the violations a failed check named (nothing for OK), to report every fault at once.
inline void Append(std::vector<FieldViolation>& violations, const absl::Status& status) {
  if (status.ok()) return;
  for (FieldViolation& v : Violations(status)) violations.push_back(std::move(v));
}

// The verdict of a validation: RESOURCE_EXHAUSTED when any field is too large (every fault
// named), else INVALID_ARGUMENT when any is malformed, else OK.
inline absl::Status FieldFaults(std::vector<FieldViolation> too_large,
                                std::vector<FieldViolation> invalid) {
  if (!too_large.empty()) {
    too_large.insert(too_large.end(), invalid.begin(), invalid.end());
    return WithViolations(absl::ResourceExhaustedError(too_large.front().field + ": too large"),
                          too_large);
  }
  if (!invalid.empty()) return InvalidArgument(std::move(invalid));
  return absl::OkStatus();
}

}  // namespace crm
