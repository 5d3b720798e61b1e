#include "crm/runtime/log.h"

#include <sstream>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace crm::runtime {
namespace {

TEST(LogTest, OneJsonObjectPerLineWithFields) {
  const std::string line = FormatLogLine("contact", spdlog::level::warn, "request",
                                         {{"method", "Create"}, {"duration_ms", 1.5}});
  EXPECT_EQ(line.find('\n'), std::string::npos);
  const auto parsed = nlohmann::json::parse(line);
  EXPECT_EQ(parsed["level"], "warning");
  EXPECT_EQ(parsed["service"], "contact");
  EXPECT_EQ(parsed["msg"], "request");
  EXPECT_EQ(parsed["method"], "Create");
  EXPECT_DOUBLE_EQ(parsed["duration_ms"].get<double>(), 1.5);
  EXPECT_TRUE(parsed["time"].get<std::string>().ends_with("Z"));
}

TEST(LogTest, HostileTextStaysOneValidLine) {
  const std::string line = FormatLogLine("svc", spdlog::level::info, "multi\nline \"quoted\"",
                                         {{"raw", std::string("bad utf8 \xff\xfe end")},
                                          {"msg", "fields cannot overwrite the message"}});
  EXPECT_EQ(line.find('\n'), std::string::npos);
  const auto parsed = nlohmann::json::parse(line);
  EXPECT_EQ(parsed["msg"], "multi\nline \"quoted\"");
  EXPECT_TRUE(parsed["raw"].get<std::string>().ends_with(" end"));
}

std::vector<std::string> Messages(const std::string& captured) {
  std::vector<std::string> messages;
  std::istringstream lines(captured);
  for (std::string line; std::getline(lines, line);) {
    const auto parsed = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    EXPECT_TRUE(parsed.is_object()) << line;
    if (parsed.is_object()) messages.push_back(parsed["msg"]);
  }
  return messages;
}

// Info lines wait in a buffer; a warning writes them and itself at once.
TEST(LogTest, AWarningWritesTheLinesBeforeIt) {
  ::testing::internal::CaptureStderr();
  ASSERT_TRUE(InitLogging("svc", "info").ok());
  LogInfo("first");
  spdlog::info("second, from plain spdlog");
  LogWarn("third");
  EXPECT_THAT(Messages(::testing::internal::GetCapturedStderr()),
              ::testing::ElementsAre("first", "second, from plain spdlog", "third"));
}

TEST(LogTest, FlushLogsWritesEveryLineWholeAndInOrder) {
  ::testing::internal::CaptureStderr();
  ASSERT_TRUE(InitLogging("svc", "info").ok());
  std::vector<std::string> logged;
  for (int i = 0; i < 5000; ++i) {  // several buffers full
    logged.push_back(absl::StrCat("line ", i));
    LogInfo(logged.back(), {{"padding", std::string(40, 'x')}});
  }
  FlushLogs();
  EXPECT_EQ(Messages(::testing::internal::GetCapturedStderr()), logged);
}

TEST(LogTest, ASecondInitLoggingKeepsTheLinesBeforeIt) {
  ::testing::internal::CaptureStderr();
  ASSERT_TRUE(InitLogging("svc", "info").ok());
  LogInfo("before");
  ASSERT_TRUE(InitLogging("svc", "info").ok());
  LogWarn("after");
  EXPECT_THAT(Messages(::testing::internal::GetCapturedStderr()),
              ::testing::ElementsAre("before", "after"));
}

TEST(LogTest, RefusesAnUnknownLevel) {
  EXPECT_FALSE(InitLogging("svc", "loud").ok());
  EXPECT_TRUE(InitLogging("svc", "warn").ok());
}

}  // namespace
}  // namespace crm::runtime
