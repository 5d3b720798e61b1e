#include "crm/runtime/config.h"

#include <cstdlib>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace crm::runtime {
namespace {

using ::testing::HasSubstr;

// Parses argv as a service would; returns the CLI11 error text, or "" on success.
std::string Parse(ServerOptions& options, std::vector<std::string> args) {
  CLI::App app("test", "svc");
  AddServerFlags(app, options);
  std::vector<char*> argv = {const_cast<char*>("svc")};
  for (auto& arg : args) argv.push_back(arg.data());
  try {
    app.parse(static_cast<int>(argv.size()), argv.data());
  } catch (const CLI::ParseError& e) {
    return e.what();
  }
  return "";
}

class ConfigTest : public ::testing::Test {
 protected:
  void TearDown() override {
    for (const char* name : {"CRM_GRPC_LISTEN", "CRM_SHUTDOWN_GRACE", "CRM_PLAINTEXT"}) {
      ::unsetenv(name);
    }
  }
};

TEST_F(ConfigTest, FlagsAndEnvironmentWithFlagsWinning) {
  ::setenv("CRM_GRPC_LISTEN", "0.0.0.0:7101", 1);
  ::setenv("CRM_SHUTDOWN_GRACE", "3s", 1);
  ::setenv("CRM_PLAINTEXT", "true", 1);
  ServerOptions from_env;
  EXPECT_EQ(Parse(from_env, {}), "");
  EXPECT_EQ(from_env.grpc_listen, "0.0.0.0:7101");
  EXPECT_EQ(from_env.shutdown_grace, absl::Seconds(3));
  EXPECT_TRUE(from_env.tls.plaintext);

  ServerOptions from_flag;
  EXPECT_EQ(Parse(from_flag, {"--grpc-listen", "127.0.0.1:7201", "--max-message-bytes", "65536"}),
            "");
  EXPECT_EQ(from_flag.grpc_listen, "127.0.0.1:7201");
  EXPECT_EQ(from_flag.max_message_bytes, 65536);
}

TEST_F(ConfigTest, BadValuesNameTheSetting) {
  ServerOptions options;
  EXPECT_THAT(Parse(options, {"--max-message-bytes", "lots"}), HasSubstr("--max-message-bytes"));
  EXPECT_THAT(Parse(options, {"--max-message-bytes", "10"}), HasSubstr("--max-message-bytes"));
  EXPECT_THAT(Parse(options, {"--shutdown-grace", "soon"}), HasSubstr("--shutdown-grace"));
  EXPECT_THAT(Parse(options, {"--log-level", "loud"}), HasSubstr("--log-level"));
  EXPECT_THAT(Parse(options, {"--tls-cert-file", "/nonexistent.pem"}),
              HasSubstr("--tls-cert-file"));
  ::setenv("CRM_SHUTDOWN_GRACE", "-1s", 1);
  EXPECT_THAT(Parse(options, {}), HasSubstr("--shutdown-grace"));
}

TEST_F(ConfigTest, CrossSettingChecks) {
  ServerOptions options;
  EXPECT_THAT(ValidateServerOptions(options).message(), HasSubstr("--tls-cert-file"));
  options.tls.plaintext = true;
  EXPECT_THAT(ValidateServerOptions(options).message(), HasSubstr("--jwt-hs256-secret"));
  options.auth.hs256_secret = "s";
  EXPECT_TRUE(ValidateServerOptions(options).ok());
  options.tls.require_client_cert = true;
  EXPECT_THAT(ValidateServerOptions(options).message(), HasSubstr("--tls-client-ca-file"));
}

}  // namespace
}  // namespace crm::runtime
