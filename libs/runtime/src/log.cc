#include "crm/runtime/log.h"

#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <mutex>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "spdlog/sinks/base_sink.h"

namespace crm::runtime {
namespace {

absl::Mutex g_mu;
std::string& ServiceName() {
  static auto* name = new std::string("crm");
  return *name;
}

constexpr char kStructuredLogger[] = "crm";

// One formatter for both loggers: the structured logger's messages arrive as finished JSON
// lines; plain spdlog calls (e.g. spdlog::warn in libs/kafka) become the same JSON lines.
class JsonFormatter final : public spdlog::formatter {
 public:
  explicit JsonFormatter(std::string service) : service_(std::move(service)) {}
  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
    const std::string_view payload(msg.payload.data(), msg.payload.size());
    if (msg.logger_name == kStructuredLogger) {
      dest.append(payload.data(), payload.data() + payload.size());
    } else {
      const std::string line = FormatLogLine(service_, msg.level, payload, {});
      dest.append(line.data(), line.data() + line.size());
    }
    dest.push_back('\n');
  }
  std::unique_ptr<spdlog::formatter> clone() const override {
    return std::make_unique<JsonFormatter>(service_);
  }

 private:
  std::string service_;
};

// Collects whole lines and writes them to stderr together: when the buffer fills, on a line
// at warn or above (flush_on), once a second (flush_every) and on FlushLogs(). Writing each
// line on its own cost a system call per request, on the event store's writer thread.
class BufferedStderrSink final : public spdlog::sinks::base_sink<std::mutex> {
 public:
  static constexpr size_t kBufferBytes = 64 * 1024;

  ~BufferedStderrSink() override {  // a second InitLogging replaces this sink
    std::lock_guard lock(mutex_);
    flush_();
  }

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    formatter_->format(msg, buffer_);
    if (buffer_.size() >= kBufferBytes) flush_();
  }

  void flush_() override {
    const char* data = buffer_.data();
    size_t left = buffer_.size();
    while (left > 0) {
      const ssize_t written = ::write(STDERR_FILENO, data, left);
      if (written < 0 && errno == EINTR) continue;
      if (written <= 0) break;  // stderr is gone: there is nowhere left to report it
      data += written;
      left -= static_cast<size_t>(written);
    }
    buffer_.clear();
  }

 private:
  spdlog::memory_buf_t buffer_;
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
  // Two loggers, one sink: structured lines arrive formatted, plain ones get formatted, and
  // both share one buffer, so lines never interleave.
  auto sink = std::make_shared<BufferedStderrSink>();
  sink->set_formatter(std::make_unique<JsonFormatter>(service));
  auto structured = std::make_shared<spdlog::logger>(kStructuredLogger, sink);
  auto plain = std::make_shared<spdlog::logger>("default", sink);
  for (auto* logger : {structured.get(), plain.get()}) {
    logger->set_level(parsed);
    logger->flush_on(spdlog::level::warn);
  }
  spdlog::drop(kStructuredLogger);  // a second InitLogging replaces the first
  spdlog::register_logger(structured);  // flush_every flushes the registered loggers
  {
    absl::MutexLock lock(&g_mu);
    ServiceName() = std::move(service);
    StructuredLogger() = std::move(structured);
  }
  spdlog::set_default_logger(std::move(plain));
  spdlog::flush_every(std::chrono::seconds(1));
  static std::once_flag at_exit;
  std::call_once(at_exit, [] { std::atexit(FlushLogs); });
  return absl::OkStatus();
}

void FlushLogs() {
  std::shared_ptr<spdlog::logger> logger;
  {
    absl::MutexLock lock(&g_mu);
    logger = StructuredLogger();
  }
  if (logger != nullptr) logger->flush();  // the sink both loggers share
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
