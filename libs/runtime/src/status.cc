#include "crm/runtime/status.h"

#include "crm/common/v1/error.pb.h"

namespace crm::runtime {

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
  any->set_type_url(kBadRequestTypeUrl);
  any->set_value(ToBadRequest(violations).SerializeAsString());
  return grpc::Status(code, message, details.SerializeAsString());
}

absl::Status FromGrpcStatus(const grpc::Status& status) {
  if (status.ok()) return absl::OkStatus();
  absl::Status result(static_cast<absl::StatusCode>(status.error_code()), status.error_message());
  crm::common::v1::RpcStatus details;
  if (!status.error_details().empty() && details.ParseFromString(status.error_details())) {
    for (const auto& any : details.details()) {
      crm::common::v1::BadRequest bad_request;
      if (any.type_url() == kBadRequestTypeUrl && bad_request.ParseFromString(any.value())) {
        result = WithViolations(result, FromBadRequest(bad_request));
      }
    }
  }
  return result;
}

}  // namespace crm::runtime
