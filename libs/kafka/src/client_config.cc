#include "crm/kafka/client_config.h"

#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "spdlog/spdlog.h"

namespace crm::kafka {
namespace {

// librdkafka logs from its own threads with syslog levels; spdlog is thread-safe.
void LogToSpdlog(const rd_kafka_t* client, int level, const char* facility, const char* text) {
  const char* name = client != nullptr ? rd_kafka_name(client) : "";
  spdlog::level::level_enum spd_level = spdlog::level::debug;
  if (level <= 2) {
    spd_level = spdlog::level::critical;
  } else if (level == 3) {
    spd_level = spdlog::level::err;
  } else if (level == 4) {
    spd_level = spdlog::level::warn;
  } else if (level <= 6) {
    spd_level = spdlog::level::info;
  }
  spdlog::log(spd_level, "librdkafka {} [{}]: {}", name, facility, text);
}

void LogClientError(rd_kafka_t* client, int err, const char* reason, void* /*opaque*/) {
  const auto code = static_cast<rd_kafka_resp_err_t>(err);
  if (code == RD_KAFKA_RESP_ERR__FATAL) {
    char fatal[512] = "";
    rd_kafka_fatal_error(client, fatal, sizeof(fatal));
    spdlog::error("kafka client {}: fatal error: {} ({})", rd_kafka_name(client), fatal, reason);
    return;
  }
  // Connection failures are already in librdkafka's own log; don't say them twice.
  const auto level =
      code == RD_KAFKA_RESP_ERR__TRANSPORT ? spdlog::level::debug : spdlog::level::warn;
  spdlog::log(level, "kafka client {}: {}: {}", rd_kafka_name(client), rd_kafka_err2name(code),
              reason);
}

}  // namespace

ConfPtr NewConf() {
  ConfPtr conf(rd_kafka_conf_new());
  rd_kafka_conf_set_log_cb(conf.get(), &LogToSpdlog);
  rd_kafka_conf_set_error_cb(conf.get(), &LogClientError);
  return conf;
}

absl::Status SetSetting(rd_kafka_conf_t* conf, std::string_view name, std::string_view value) {
  char errstr[512];
  const std::string name_str(name);
  const std::string value_str(value);
  if (rd_kafka_conf_set(conf, name_str.c_str(), value_str.c_str(), errstr, sizeof(errstr)) !=
      RD_KAFKA_CONF_OK) {
    return absl::InvalidArgumentError(
        absl::StrCat("kafka setting ", AsAbsl(name), "=", AsAbsl(value), ": ", errstr));
  }
  return absl::OkStatus();
}

absl::Status ApplySettings(rd_kafka_conf_t* conf, const Settings& settings) {
  for (const auto& [name, value] : settings) {
    if (absl::Status status = SetSetting(conf, name, value); !status.ok()) return status;
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> GetSetting(const rd_kafka_conf_t* conf, std::string_view name) {
  const std::string name_str(name);
  size_t size = 0;
  if (rd_kafka_conf_get(conf, name_str.c_str(), nullptr, &size) != RD_KAFKA_CONF_OK) {
    return absl::NotFoundError(absl::StrCat("kafka setting ", AsAbsl(name), ": unknown"));
  }
  std::string value(size, '\0');
  if (rd_kafka_conf_get(conf, name_str.c_str(), value.data(), &size) != RD_KAFKA_CONF_OK) {
    return absl::NotFoundError(absl::StrCat("kafka setting ", AsAbsl(name), ": unknown"));
  }
  value.resize(size > 0 ? size - 1 : 0);  // size counts the terminating NUL
  return value;
}

absl::StatusOr<std::string> GetSetting(const rd_kafka_t* client, std::string_view name) {
  return GetSetting(rd_kafka_conf(const_cast<rd_kafka_t*>(client)), name);
}

absl::StatusOr<ClientPtr> NewClient(rd_kafka_type_t type, ConfPtr conf) {
  char errstr[512];
  rd_kafka_t* client = rd_kafka_new(type, conf.get(), errstr, sizeof(errstr));
  if (client == nullptr) {
    // A setting that only fails in combination (e.g. idempotence with acks=1) lands here.
    return absl::InvalidArgumentError(absl::StrCat("kafka client: ", errstr));
  }
  conf.release();  // owned by the client now
  return ClientPtr(client);
}

absl::StatusCode ToStatusCode(rd_kafka_resp_err_t err) {
  switch (err) {
    case RD_KAFKA_RESP_ERR_NO_ERROR:
      return absl::StatusCode::kOk;
    case RD_KAFKA_RESP_ERR__QUEUE_FULL:  // the one "wait and retry locally" code
      return absl::StatusCode::kResourceExhausted;
    case RD_KAFKA_RESP_ERR__TIMED_OUT:
    case RD_KAFKA_RESP_ERR__TIMED_OUT_QUEUE:
    case RD_KAFKA_RESP_ERR__MSG_TIMED_OUT:
    case RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT:
      return absl::StatusCode::kDeadlineExceeded;
    case RD_KAFKA_RESP_ERR__TRANSPORT:
    case RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN:
    case RD_KAFKA_RESP_ERR__RESOLVE:
    case RD_KAFKA_RESP_ERR__WAIT_COORD:
    case RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE:
    case RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION:
    case RD_KAFKA_RESP_ERR_BROKER_NOT_AVAILABLE:
    case RD_KAFKA_RESP_ERR_REPLICA_NOT_AVAILABLE:
    case RD_KAFKA_RESP_ERR_NETWORK_EXCEPTION:
    case RD_KAFKA_RESP_ERR_COORDINATOR_LOAD_IN_PROGRESS:
    case RD_KAFKA_RESP_ERR_COORDINATOR_NOT_AVAILABLE:
    case RD_KAFKA_RESP_ERR_NOT_COORDINATOR:
    case RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS:
    case RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS_AFTER_APPEND:
    case RD_KAFKA_RESP_ERR_KAFKA_STORAGE_ERROR:
      return absl::StatusCode::kUnavailable;
    case RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC:
    case RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION:
    case RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART:
    case RD_KAFKA_RESP_ERR__UNKNOWN_BROKER:
    case RD_KAFKA_RESP_ERR__UNKNOWN_GROUP:
    case RD_KAFKA_RESP_ERR__NOENT:
      return absl::StatusCode::kNotFound;
    case RD_KAFKA_RESP_ERR__INVALID_ARG:
    case RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE:
    case RD_KAFKA_RESP_ERR_RECORD_LIST_TOO_LARGE:
    case RD_KAFKA_RESP_ERR_INVALID_MSG_SIZE:
    case RD_KAFKA_RESP_ERR_INVALID_MSG:
    case RD_KAFKA_RESP_ERR_INVALID_CONFIG:
    case RD_KAFKA_RESP_ERR_INVALID_REQUIRED_ACKS:
    case RD_KAFKA_RESP_ERR_INVALID_PARTITIONS:
    case RD_KAFKA_RESP_ERR_INVALID_REPLICATION_FACTOR:
      return absl::StatusCode::kInvalidArgument;
    case RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED:
    case RD_KAFKA_RESP_ERR_GROUP_AUTHORIZATION_FAILED:
    case RD_KAFKA_RESP_ERR_CLUSTER_AUTHORIZATION_FAILED:
    case RD_KAFKA_RESP_ERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED:
      return absl::StatusCode::kPermissionDenied;
    case RD_KAFKA_RESP_ERR__AUTHENTICATION:
    case RD_KAFKA_RESP_ERR_SASL_AUTHENTICATION_FAILED:
      return absl::StatusCode::kUnauthenticated;
    case RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS:
      return absl::StatusCode::kAlreadyExists;
    case RD_KAFKA_RESP_ERR__PURGE_QUEUE:
    case RD_KAFKA_RESP_ERR__PURGE_INFLIGHT:
    case RD_KAFKA_RESP_ERR__DESTROY:
      return absl::StatusCode::kCancelled;
    case RD_KAFKA_RESP_ERR__FATAL:
    case RD_KAFKA_RESP_ERR__FENCED:
    case RD_KAFKA_RESP_ERR__STATE:
    case RD_KAFKA_RESP_ERR__GAPLESS_GUARANTEE:
      return absl::StatusCode::kFailedPrecondition;
    case RD_KAFKA_RESP_ERR__NOT_IMPLEMENTED:
    case RD_KAFKA_RESP_ERR__UNSUPPORTED_FEATURE:
    case RD_KAFKA_RESP_ERR_UNSUPPORTED_VERSION:
      return absl::StatusCode::kUnimplemented;
    default:
      return absl::StatusCode::kInternal;
  }
}

absl::Status KafkaError(rd_kafka_resp_err_t err, std::string_view context) {
  if (err == RD_KAFKA_RESP_ERR_NO_ERROR) return absl::OkStatus();
  return absl::Status(ToStatusCode(err), absl::StrCat(AsAbsl(context), ": ", rd_kafka_err2name(err),
                                                      " (", rd_kafka_err2str(err), ")"));
}

}  // namespace crm::kafka
