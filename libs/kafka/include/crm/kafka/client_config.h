#pragma once

// Shared plumbing for librdkafka clients: settings maps, owning handles, error mapping.

#include <librdkafka/rdkafka.h>

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace crm::kafka {

// Debian's Abseil has its own string_view type; this bridges std::string_view into
// absl::StrCat and friends without a copy.
inline absl::string_view AsAbsl(std::string_view s) { return {s.data(), s.size()}; }

// librdkafka settings by name, e.g. {"linger.ms", "5"} (see librdkafka's CONFIGURATION.md).
using Settings = std::map<std::string, std::string, std::less<>>;

struct ConfDeleter {
  void operator()(rd_kafka_conf_t* conf) const { rd_kafka_conf_destroy(conf); }
};
using ConfPtr = std::unique_ptr<rd_kafka_conf_t, ConfDeleter>;

struct ClientDeleter {
  void operator()(rd_kafka_t* client) const { rd_kafka_destroy(client); }
};
using ClientPtr = std::unique_ptr<rd_kafka_t, ClientDeleter>;

// A fresh configuration whose librdkafka log and client errors go to spdlog instead of
// stderr. Fatal errors are logged as errors, the rest (mostly brokers unreachable, which
// librdkafka retries on its own) as warnings.
ConfPtr NewConf();

// Sets one setting; an unknown name or bad value is INVALID_ARGUMENT naming the setting.
absl::Status SetSetting(rd_kafka_conf_t* conf, std::string_view name, std::string_view value);
// Applies `settings` in order (later ones override earlier ones).
absl::Status ApplySettings(rd_kafka_conf_t* conf, const Settings& settings);

// Reads a setting back, as librdkafka will use it (aliases resolved, e.g. acks=all -> "-1").
absl::StatusOr<std::string> GetSetting(const rd_kafka_conf_t* conf, std::string_view name);
absl::StatusOr<std::string> GetSetting(const rd_kafka_t* client, std::string_view name);

// rd_kafka_new; takes ownership of `conf` (librdkafka does on success; we destroy it on
// failure).
absl::StatusOr<ClientPtr> NewClient(rd_kafka_type_t type, ConfPtr conf);

// The one mapping of librdkafka error codes to status codes: retriable transport trouble is
// UNAVAILABLE, full local queues RESOURCE_EXHAUSTED, and so on.
absl::StatusCode ToStatusCode(rd_kafka_resp_err_t err);
// A status with that code and `context: <librdkafka's description>`; OK for NO_ERROR.
absl::Status KafkaError(rd_kafka_resp_err_t err, std::string_view context);

}  // namespace crm::kafka
