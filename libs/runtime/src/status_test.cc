#include "crm/runtime/status.h"

#include "crm/common/v1/error.pb.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace crm::runtime {
namespace {

using ::testing::ElementsAre;

struct MappingCase {
  absl::StatusCode from;
  grpc::StatusCode to;
  bool keeps_message;
};

// The one mapping to the wire, code by code.
TEST(ToGrpcStatusTest, MapsEveryCode) {
  const std::vector<MappingCase> cases = {
      {absl::StatusCode::kOk, grpc::StatusCode::OK, true},
      {absl::StatusCode::kCancelled, grpc::StatusCode::CANCELLED, true},
      {absl::StatusCode::kUnknown, grpc::StatusCode::INTERNAL, false},
      {absl::StatusCode::kInvalidArgument, grpc::StatusCode::INVALID_ARGUMENT, true},
      {absl::StatusCode::kDeadlineExceeded, grpc::StatusCode::DEADLINE_EXCEEDED, true},
      {absl::StatusCode::kNotFound, grpc::StatusCode::NOT_FOUND, true},
      {absl::StatusCode::kAlreadyExists, grpc::StatusCode::ALREADY_EXISTS, true},
      {absl::StatusCode::kPermissionDenied, grpc::StatusCode::PERMISSION_DENIED, true},
      {absl::StatusCode::kResourceExhausted, grpc::StatusCode::RESOURCE_EXHAUSTED, true},
      {absl::StatusCode::kFailedPrecondition, grpc::StatusCode::FAILED_PRECONDITION, true},
      {absl::StatusCode::kAborted, grpc::StatusCode::ABORTED, true},
      {absl::StatusCode::kOutOfRange, grpc::StatusCode::OUT_OF_RANGE, true},
      {absl::StatusCode::kUnimplemented, grpc::StatusCode::UNIMPLEMENTED, true},
      {absl::StatusCode::kInternal, grpc::StatusCode::INTERNAL, false},
      {absl::StatusCode::kUnavailable, grpc::StatusCode::UNAVAILABLE, true},
      {absl::StatusCode::kDataLoss, grpc::StatusCode::INTERNAL, false},
      {absl::StatusCode::kUnauthenticated, grpc::StatusCode::UNAUTHENTICATED, true},
  };
  for (const auto& c : cases) {
    const absl::Status status(c.from, c.from == absl::StatusCode::kOk ? "" : "secret detail");
    const grpc::Status mapped = ToGrpcStatus(status);
    EXPECT_EQ(mapped.error_code(), c.to) << absl::StatusCodeToString(c.from);
    if (c.from == absl::StatusCode::kOk) continue;
    EXPECT_EQ(mapped.error_message() == "secret detail", c.keeps_message)
        << absl::StatusCodeToString(c.from) << ": internal details must not leak";
  }
}

TEST(ToGrpcStatusTest, FieldViolationsTravelAsGoogleRpcBadRequest) {
  const grpc::Status mapped = ToGrpcStatus(
      InvalidArgument({{"contact.email", "must be an email address"}, {"owner_id", "required"}}));
  EXPECT_EQ(mapped.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(mapped.error_message(), "contact.email: must be an email address; owner_id: required");

  // Decode the trailer bytes as a standard client would: google.rpc.Status with an Any.
  crm::common::v1::RpcStatus details;
  ASSERT_TRUE(details.ParseFromString(mapped.error_details()));
  EXPECT_EQ(details.code(), 3);
  ASSERT_EQ(details.details_size(), 1);
  EXPECT_EQ(details.details(0).type_url(), "type.googleapis.com/google.rpc.BadRequest");
  crm::common::v1::BadRequest bad_request;
  ASSERT_TRUE(bad_request.ParseFromString(details.details(0).value()));
  ASSERT_EQ(bad_request.field_violations_size(), 2);
  EXPECT_EQ(bad_request.field_violations(1).field(), "owner_id");
}

TEST(FromGrpcStatusTest, RoundTripsViolations) {
  const absl::Status original =
      WithViolations(absl::ResourceExhaustedError("too big"), {{"body", "longer than 64 KiB"}});
  const absl::Status back = FromGrpcStatus(ToGrpcStatus(original));
  EXPECT_EQ(back.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(back.message(), "too big");
  EXPECT_THAT(Violations(back), ElementsAre(FieldViolation{"body", "longer than 64 KiB"}));
  EXPECT_TRUE(Violations(absl::NotFoundError("x")).empty());
  EXPECT_TRUE(FromGrpcStatus(grpc::Status::OK).ok());
}

}  // namespace
}  // namespace crm::runtime
