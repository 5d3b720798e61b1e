#include "crm/runtime/client.h"

#include "crm/runtime/status.h"
#include "crm/testing/testing.h"
#include "gtest/gtest.h"

namespace crm::runtime {
namespace {

using ::crm::testing::StatusIs;

CallOptions Fast(bool idempotent) {
  return CallOptions{.timeout = absl::Milliseconds(300),
                     .idempotent = idempotent,
                     .max_attempts = 4,
                     .initial_backoff = absl::Milliseconds(1),
                     .max_backoff = absl::Milliseconds(2)};
}

TEST(CallWithRetryTest, RetriesUnavailableOnlyForIdempotentCalls) {
  int attempts = 0;
  auto always_down = [&](grpc::ClientContext&) {
    ++attempts;
    return grpc::Status(grpc::StatusCode::UNAVAILABLE, "down");
  };
  EXPECT_THAT(CallWithRetry(Fast(true), always_down), StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_EQ(attempts, 4);
  attempts = 0;
  EXPECT_THAT(CallWithRetry(Fast(false), always_down), StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_EQ(attempts, 1);
}

TEST(CallWithRetryTest, StopsAtSuccessAndNeverRetriesOtherErrors) {
  int attempts = 0;
  auto second_time_lucky = [&](grpc::ClientContext&) {
    return ++attempts < 2 ? grpc::Status(grpc::StatusCode::UNAVAILABLE, "down") : grpc::Status::OK;
  };
  EXPECT_TRUE(CallWithRetry(Fast(true), second_time_lucky).ok());
  EXPECT_EQ(attempts, 2);
  attempts = 0;
  auto refused = [&](grpc::ClientContext&) {
    ++attempts;
    return ToGrpcStatus(InvalidField("name", "required"));
  };
  absl::Status status = CallWithRetry(Fast(true), refused);
  EXPECT_THAT(status, StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_EQ(Violations(status).size(), 1u) << "violations survive the client side";
  EXPECT_EQ(attempts, 1);
}

TEST(CallWithRetryTest, EveryAttemptHasADeadline) {
  std::vector<std::chrono::system_clock::time_point> deadlines;
  CallWithRetry(Fast(true), [&](grpc::ClientContext& context) {
    deadlines.push_back(context.deadline());
    return grpc::Status(grpc::StatusCode::UNAVAILABLE, "down");
  }).IgnoreError();
  ASSERT_EQ(deadlines.size(), 4u);
  for (const auto& deadline : deadlines) {
    EXPECT_LT(deadline, std::chrono::system_clock::now() + std::chrono::seconds(1));
  }
}

}  // namespace
}  // namespace crm::runtime
