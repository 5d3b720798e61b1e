#include "crm/kafka/client_config.h"

#include <string>

#include "crm/testing/testing.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace crm::kafka {
namespace {

using ::crm::testing::IsOkAndHolds;
using ::crm::testing::StatusIs;
using ::testing::AllOf;
using ::testing::HasSubstr;

// Suite names carry the module in lower case: ctest -R filters are case-sensitive.

struct MappingCase {
  rd_kafka_resp_err_t err;
  absl::StatusCode code;
};

TEST(kafka_client_config, MapsEveryErrorClassToOneStatusCode) {
  const MappingCase cases[] = {
      {RD_KAFKA_RESP_ERR_NO_ERROR, absl::StatusCode::kOk},
      {RD_KAFKA_RESP_ERR__QUEUE_FULL, absl::StatusCode::kResourceExhausted},
      {RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE, absl::StatusCode::kInvalidArgument},
      {RD_KAFKA_RESP_ERR__MSG_TIMED_OUT, absl::StatusCode::kDeadlineExceeded},
      {RD_KAFKA_RESP_ERR__TIMED_OUT, absl::StatusCode::kDeadlineExceeded},
      {RD_KAFKA_RESP_ERR__TRANSPORT, absl::StatusCode::kUnavailable},
      {RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN, absl::StatusCode::kUnavailable},
      {RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION, absl::StatusCode::kUnavailable},
      {RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS, absl::StatusCode::kUnavailable},
      {RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART, absl::StatusCode::kNotFound},
      {RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC, absl::StatusCode::kNotFound},
      {RD_KAFKA_RESP_ERR__INVALID_ARG, absl::StatusCode::kInvalidArgument},
      {RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED, absl::StatusCode::kPermissionDenied},
      {RD_KAFKA_RESP_ERR_SASL_AUTHENTICATION_FAILED, absl::StatusCode::kUnauthenticated},
      {RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS, absl::StatusCode::kAlreadyExists},
      {RD_KAFKA_RESP_ERR__PURGE_QUEUE, absl::StatusCode::kCancelled},
      {RD_KAFKA_RESP_ERR__PURGE_INFLIGHT, absl::StatusCode::kCancelled},
      {RD_KAFKA_RESP_ERR__FATAL, absl::StatusCode::kFailedPrecondition},
      {RD_KAFKA_RESP_ERR_UNSUPPORTED_VERSION, absl::StatusCode::kUnimplemented},
      {RD_KAFKA_RESP_ERR_INVALID_TXN_STATE, absl::StatusCode::kInternal},
  };
  for (const MappingCase& c : cases) {
    EXPECT_EQ(ToStatusCode(c.err), c.code) << rd_kafka_err2name(c.err);
  }
}

TEST(kafka_client_config, KafkaErrorNamesContextAndError) {
  EXPECT_THAT(KafkaError(RD_KAFKA_RESP_ERR_NO_ERROR, "produce"), crm::testing::IsOk());
  EXPECT_THAT(KafkaError(RD_KAFKA_RESP_ERR__MSG_TIMED_OUT, "delivery"),
              StatusIs(absl::StatusCode::kDeadlineExceeded,
                       AllOf(HasSubstr("delivery"), HasSubstr("_MSG_TIMED_OUT"))));
}

TEST(kafka_client_config, UnknownSettingIsInvalidArgumentNamingIt) {
  ConfPtr conf = NewConf();
  EXPECT_THAT(SetSetting(conf.get(), "no.such.setting", "1"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("no.such.setting")));
}

TEST(kafka_client_config, BadValueIsInvalidArgumentNamingSettingAndValue) {
  ConfPtr conf = NewConf();
  EXPECT_THAT(
      ApplySettings(conf.get(), {{"linger.ms", "5"}, {"acks", "maybe"}}),
      StatusIs(absl::StatusCode::kInvalidArgument, AllOf(HasSubstr("acks"), HasSubstr("maybe"))));
}

TEST(kafka_client_config, ReadsBackEffectiveSettings) {
  ConfPtr conf = NewConf();
  ASSERT_THAT(ApplySettings(conf.get(), {{"linger.ms", "7"}, {"enable.idempotence", "true"}}),
              crm::testing::IsOk());
  EXPECT_THAT(GetSetting(conf.get(), "linger.ms"), IsOkAndHolds("7"));
  EXPECT_THAT(GetSetting(conf.get(), "enable.idempotence"), IsOkAndHolds("true"));
  EXPECT_THAT(GetSetting(conf.get(), "no.such.setting"), StatusIs(absl::StatusCode::kNotFound));
}

}  // namespace
}  // namespace crm::kafka
