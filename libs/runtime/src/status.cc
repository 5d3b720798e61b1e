#include "crm/runtime/status.h"

#include "absl/strings/cord.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "crm/common/v1/error.pb.h"

namespace crm::runtime {
namespace {

// The type URL standard clients look for (grpcio's grpc_status, grpc-go's status.Details).
constexpr char kBadRequestType[] = "type.googleapis.com/google.rpc.BadRequest";

crm::common::v1::BadRequest ToProto(const std::vector<FieldViolation>& violations) {
  crm::common::v1::BadRequest bad_request;
  for (const auto& violation : violations) {
    auto* v = bad_request.add_field_violations();
    v->set_field(violation.field);
    v->set_description(violation.description);
  }
  return bad_request;
}

std::vector<FieldViolation> FromProto(const crm::common::v1::BadRequest& bad_request) {
  std::vector<FieldViolation> violations;
  for (const auto& v : bad_request.field_violations()) {
    violations.push_back({v.field(), v.description()});
  }
  return violations;
}

}  // namespace

absl::Status WithViolations(absl::Status status, const std::vector<FieldViolation>& violations) {
  if (!violations.empty()) {
    status.SetPayload(kBadRequestType, absl::Cord(ToProto(violations).SerializeAsString()));
  }
  return status;
}

absl::Status InvalidArgument(std::vector<FieldViolation> violations) {
  std::string message =
      absl::StrJoin(violations, "; ", [](std::string* out, const FieldViolation& v) {
        absl::StrAppend(out, v.field, ": ", v.description);
      });
  return WithViolations(absl::InvalidArgumentError(message), violations);
}

absl::Status InvalidField(std::string field, std::string description) {
  return InvalidArgument({{std::move(field), std::move(description)}});
}

std::vector<FieldViolation> Violations(const absl::Status& status) {
  auto payload = status.GetPayload(kBadRequestType);  // absl::optional in Debian's build
  crm::common::v1::BadRequest bad_request;
  if (!payload || !bad_request.ParseFromString(std::string(*payload))) return {};
  return FromProto(bad_request);
}

grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  switch (status.code()) {
    case absl::StatusCode::kInternal:
    case absl::StatusCode::kDataLoss:
    case absl::StatusCode::kUnknown:
      return grpc::Status(grpc::StatusCode::INTERNAL, "internal error");
    default:
      break;
  }
  const auto code = static_cast<grpc::StatusCode>(status.code());  // same numbering
  const std::string message(status.message());
  const std::vector<FieldViolation> violations = Violations(status);
  if (violations.empty()) return grpc::Status(code, message);
  crm::common::v1::RpcStatus details;
  details.set_code(static_cast<int32_t>(code));
  details.set_message(message);
  auto* any = details.add_details();
  any->set_type_url(kBadRequestType);
  any->set_value(ToProto(violations).SerializeAsString());
  return grpc::Status(code, message, details.SerializeAsString());
}

absl::Status FromGrpcStatus(const grpc::Status& status) {
  if (status.ok()) return absl::OkStatus();
  absl::Status result(static_cast<absl::StatusCode>(status.error_code()), status.error_message());
  crm::common::v1::RpcStatus details;
  if (!status.error_details().empty() && details.ParseFromString(status.error_details())) {
    for (const auto& any : details.details()) {
      crm::common::v1::BadRequest bad_request;
      if (any.type_url() == kBadRequestType && bad_request.ParseFromString(any.value())) {
        result = WithViolations(result, FromProto(bad_request));
      }
    }
  }
  return result;
}

}  // namespace crm::runtime
