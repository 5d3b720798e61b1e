#include "crm/runtime/log.h"

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "spdlog/sinks/stdout_sinks.h"

namespace crm::runtime {
namespace {

absl::Mutex g_mu;
std::string& ServiceName() {
  static auto* name = new std::string("crm");
  return *name;
}

// Formats plain spdlog calls (e.g. spdlog::warn in libs/kafka) as the same JSON lines.
class JsonFormatter final : public spdlog::formatter {
 public:
  explicit JsonFormatter(std::string service) : service_(std::move(service)) {}
  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
    const std::string line = FormatLogLine(
        service_, msg.level, std::string_view(msg.payload.data(), msg.payload.size()), {});
    dest.append(line.data(), line.data() + line.size());
    dest.push_back('\n');
  }
  std::unique_ptr<spdlog::formatter> clone() const override {
    return std::make_unique<JsonFormatter>(service_);
  }

 private:
  std::string service_;
};

std::shared_ptr<spdlog::logger>& StructuredLogger() {
  static auto* logger = new std::shared_ptr<spdlog::logger>();
  return *logger;
}

}  // namespace

std::string FormatLogLine(std::string_view service, spdlog::level::level_enum level,
                          std::string_view message, const nlohmann::json& fields) {
  nlohmann::json line = {
      {"time", absl::FormatTime("%Y-%m-%dT%H:%M:%E6SZ", absl::Now(), absl::UTCTimeZone())},
      {"level", std::string(spdlog::level::to_string_view(level).data(),
                            spdlog::level::to_string_view(level).size())},
      {"service", std::string(service)},
      {"msg", std::string(message)},
  };
  if (fields.is_object()) {
    for (const auto& [key, value] : fields.items()) {
      if (!line.contains(key)) line[key] = value;
    }
  }
  // Invalid UTF-8 (e.g. from a client) is replaced rather than throwing.
  return line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

absl::Status InitLogging(std::string service, std::string_view level) {
  const auto parsed = spdlog::level::from_str(std::string(level));
  if (parsed == spdlog::level::off && level != "off") {
    return absl::InvalidArgumentError(absl::StrCat(
        "log_level: ", std::string(level), " is not one of trace, debug, info, warn, error, off"));
  }
  // Two loggers on stderr: structured lines arrive formatted, plain ones get formatted. Each
  // needs its own sink, because spdlog keeps the formatter in the sink; stdio writes each
  // line with one locked fwrite, so lines never interleave.
  auto structured =
      std::make_shared<spdlog::logger>("crm", std::make_shared<spdlog::sinks::stderr_sink_mt>());
  structured->set_pattern("%v");
  auto plain = std::make_shared<spdlog::logger>("default",
                                                std::make_shared<spdlog::sinks::stderr_sink_mt>());
  plain->set_formatter(std::make_unique<JsonFormatter>(service));
  for (auto* logger : {structured.get(), plain.get()}) {
    logger->set_level(parsed);
    logger->flush_on(spdlog::level::info);
  }
  {
    absl::MutexLock lock(&g_mu);
    ServiceName() = std::move(service);
    StructuredLogger() = std::move(structured);
  }
  spdlog::set_default_logger(std::move(plain));
  return absl::OkStatus();
}

void Log(spdlog::level::level_enum level, std::string_view message, nlohmann::json fields) {
  std::shared_ptr<spdlog::logger> logger;
  std::string service;
  {
    absl::MutexLock lock(&g_mu);
    logger = StructuredLogger();
    service = ServiceName();
  }
  if (logger == nullptr) {  // before InitLogging: plain spdlog
    spdlog::log(level, "{}", FormatLogLine(service, level, message, fields));
    return;
  }
  if (!logger->should_log(level)) return;
  logger->log(level, "{}", FormatLogLine(service, level, message, fields));
}

}  // namespace crm::runtime
