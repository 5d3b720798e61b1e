#include "crm/runtime/log.h"

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

TEST(LogTest, RefusesAnUnknownLevel) {
  EXPECT_FALSE(InitLogging("svc", "loud").ok());
  EXPECT_TRUE(InitLogging("svc", "warn").ok());
}

}  // namespace
}  // namespace crm::runtime
