#pragma once

// Structured logs: one JSON object per line on stderr (time, level, service, msg, fields).
// spdlog does the level filtering and thread-safe writing; nlohmann::json does the escaping.
// Lines are written in batches: at once from warn up, else within a second (FlushLogs() for
// a line that someone waits for, e.g. "serving").

#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "nlohmann/json.hpp"
#include "spdlog/spdlog.h"

namespace crm::runtime {

// Configures the process-wide logger. `level`: trace, debug, info, warn, error, off.
absl::Status InitLogging(std::string service, std::string_view level);

// Writes the lines logged so far (also done at exit).
void FlushLogs();

void Log(spdlog::level::level_enum level, std::string_view message, nlohmann::json fields = {});
inline void LogInfo(std::string_view message, nlohmann::json fields = {}) {
  Log(spdlog::level::info, message, std::move(fields));
}
inline void LogWarn(std::string_view message, nlohmann::json fields = {}) {
  Log(spdlog::level::warn, message, std::move(fields));
}
inline void LogError(std::string_view message, nlohmann::json fields = {}) {
  Log(spdlog::level::err, message, std::move(fields));
}

// The JSON line itself (exposed for tests).
std::string FormatLogLine(std::string_view service, spdlog::level::level_enum level,
                          std::string_view message, const nlohmann::json& fields);

}  // namespace crm::runtime
