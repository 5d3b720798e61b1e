#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "crm/runtime/auth.h"
#include "crm/testing/subprocess.h"
#include "crm/testing/testing.h"
#include "echo_process.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace {

using ::crm::testing::Subprocess;
using ::testing::HasSubstr;

constexpr char kSecret[] = "crmctl-test-secret-crmctl-test-secret";

struct Result {
  int exit_code = -1;
  std::string out;
  std::string err;
};

Result Crmctl(std::vector<std::string> args) {
  args.insert(args.begin(), CRM_CRMCTL);
  Subprocess process(args);
  Result result;
  while (auto line = process.ReadStdoutLine()) result.out += *line + "\n";
  result.err = process.DrainStderr();
  result.exit_code = process.WaitForExitCode().value_or(-1);
  return result;
}

class CrmctlTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(server_.serving()) << server_.process().DrainStderr();
    address_ = server_.address();
  }
  std::string TokenFor(const std::string& scopes) {
    Result minted = Crmctl({"token", "--sub", "alice", "--scopes", scopes, "--secret", kSecret});
    EXPECT_EQ(minted.exit_code, 0) << minted.err;
    return std::string(absl::StripAsciiWhitespace(minted.out));
  }

  crm::runtime::EchoProcess server_{CRM_ECHO_SERVER, kSecret};
  std::string address_;
};

TEST_F(CrmctlTest, TokenIsAcceptedByTheServicesVerifier) {
  Result minted =
      Crmctl({"token", "--sub", "importer", "--scopes", "contacts:write, pipeline:write", "--kind",
              "service", "--secret", kSecret});
  ASSERT_EQ(minted.exit_code, 0) << minted.err;
  auto verifier = crm::runtime::TokenVerifier::Create({.hs256_secret = kSecret});
  ASSERT_TRUE(verifier.ok());
  auto principal = (*verifier)->Verify(
      "Bearer " + std::string(absl::StripAsciiWhitespace(minted.out)), absl::Now());
  ASSERT_TRUE(principal.ok()) << principal.status();
  EXPECT_EQ(principal->subject, "importer");
  EXPECT_TRUE(principal->scopes.contains("pipeline:write"));
  EXPECT_EQ(principal->kind, crm::common::v1::ACTOR_KIND_SERVICE);
}

TEST_F(CrmctlTest, HealthAndList) {
  Result health = Crmctl({"health", address_, "--plaintext"});
  EXPECT_EQ(health.exit_code, 0) << health.err;
  EXPECT_EQ(health.out, "SERVING\n");

  Result services = Crmctl({"list", address_, "--plaintext"});
  EXPECT_EQ(services.exit_code, 0) << services.err;
  EXPECT_THAT(services.out, HasSubstr("crm.runtime.testing.v1.EchoService\n"));
  Result methods = Crmctl({"list", address_, "--plaintext", "crm.runtime.testing.v1.EchoService"});
  EXPECT_THAT(methods.out,
              HasSubstr("crm.runtime.testing.v1.EchoService/Echo(crm.runtime.testing."
                        "v1.EchoRequest) returns (crm.runtime.testing.v1.EchoResponse)"));
}

TEST_F(CrmctlTest, CallsAnyMethodWithJson) {
  Result echoed = Crmctl({"call", address_, "--plaintext", "--token", TokenFor("contacts:read"),
                          "crm.runtime.testing.v1.EchoService/Echo", R"({"text": "hello"})"});
  ASSERT_EQ(echoed.exit_code, 0) << echoed.err;
  const auto answer = nlohmann::json::parse(echoed.out);
  EXPECT_EQ(answer["text"], "hello");
  EXPECT_EQ(answer["actor_id"], "alice");
}

TEST_F(CrmctlTest, ErrorsAreClearAndMachineReadable) {
  Result refused = Crmctl({"call", address_, "--plaintext", "--token", TokenFor("contacts:write"),
                           "crm.runtime.testing.v1.EchoService/Refuse", "{}"});
  EXPECT_EQ(refused.exit_code, 1);
  EXPECT_THAT(refused.err, HasSubstr("INVALID_ARGUMENT"));
  EXPECT_THAT(refused.err, HasSubstr("\n  text: must not be empty\n"));

  Result as_json =
      Crmctl({"-o", "json", "call", address_, "--plaintext", "--token", TokenFor("contacts:write"),
              "crm.runtime.testing.v1.EchoService/Refuse"});
  EXPECT_EQ(as_json.exit_code, 1);
  const auto error = nlohmann::json::parse(as_json.out)["error"];
  EXPECT_EQ(error["code"], "INVALID_ARGUMENT");
  EXPECT_EQ(error["field_violations"][1]["field"], "delay_ms");

  Result no_token =
      Crmctl({"call", address_, "--plaintext", "crm.runtime.testing.v1.EchoService/Echo"});
  EXPECT_EQ(no_token.exit_code, 1);
  EXPECT_THAT(no_token.err, HasSubstr("UNAUTHENTICATED"));

  Result bad_json = Crmctl({"call", address_, "--plaintext",
                            "crm.runtime.testing.v1.EchoService/Echo", R"({"txet": 1})"});
  EXPECT_EQ(bad_json.exit_code, 2);
  EXPECT_THAT(bad_json.err, HasSubstr("crm.runtime.testing.v1.EchoRequest"));

  Result no_method =
      Crmctl({"call", address_, "--plaintext", "crm.runtime.testing.v1.EchoService/Nope"});
  EXPECT_EQ(no_method.exit_code, 2);
  EXPECT_THAT(no_method.err, HasSubstr("no method Nope"));

  Result usage = Crmctl({"token", "--sub", "alice"});
  EXPECT_EQ(usage.exit_code, 2);
  EXPECT_THAT(usage.err, HasSubstr("--scopes"));
}

}  // namespace
