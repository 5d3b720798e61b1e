#include "crm/testing/fault_proxy.h"

#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "crm/runtime/auth.h"
#include "crm/runtime/server.h"
#include "crm/runtime/status.h"
#include "crm/testing/testing.h"
#include "echo_process.h"
#include "echo_service.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace crm::testing {
namespace {

using ::crm::runtime::EchoService;
using ::crm::runtime::FieldViolation;
using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::testing::Not;
using EchoStub = crm::runtime::testing::v1::EchoService::Stub;
using crm::runtime::testing::v1::EchoRequest;
using crm::runtime::testing::v1::EchoResponse;

constexpr char kSecret[] = "fault-proxy-test-secret-fault-proxy-test";
constexpr char kEcho[] = "/crm.runtime.testing.v1.EchoService/Echo";
constexpr char kSlow[] = "/crm.runtime.testing.v1.EchoService/Slow";
constexpr char kRefuse[] = "/crm.runtime.testing.v1.EchoService/Refuse";

std::string Bearer(std::vector<std::string> scopes) {
  auto token = crm::runtime::SignHs256({.subject = "alice", .scopes = std::move(scopes)}, kSecret);
  EXPECT_THAT(token, IsOk());
  return "Bearer " + token.value_or("");
}

// The echo service on a real ServiceHost in this process: handled() shows what reached it.
struct Target {
  Target() {
    crm::runtime::ServerOptions options{.service = "echo",
                                        .grpc_listen = "127.0.0.1:0",
                                        .metrics_listen = "127.0.0.1:0",
                                        .tls = {.plaintext = true},
                                        .auth = {.hs256_secret = kSecret}};
    auto verifier = crm::runtime::TokenVerifier::Create(options.auth);
    EXPECT_THAT(verifier, IsOk());
    service = std::make_unique<EchoService>(
        std::shared_ptr<const crm::runtime::TokenVerifier>(std::move(*verifier)));
    auto created = crm::runtime::ServiceHost::Create(std::move(options));
    EXPECT_THAT(created, IsOk());
    host = std::move(*created);
    EXPECT_THAT(host->Start({service.get()}), IsOk());
  }
  std::string address() const { return absl::StrCat("127.0.0.1:", host->grpc_port()); }

  std::unique_ptr<EchoService> service;
  std::unique_ptr<crm::runtime::ServiceHost> host;
};

std::unique_ptr<EchoStub> StubTo(const std::string& address) {
  return crm::runtime::testing::v1::EchoService::NewStub(
      grpc::CreateChannel(address, grpc::InsecureChannelCredentials()));
}

struct Result {
  grpc::Status status;
  EchoResponse response;
  std::multimap<std::string, std::string> trailers;
};

enum class Rpc { kEcho, kSlow, kRefuse };

Result Call(EchoStub& stub, Rpc rpc, const std::string& authorization,
            const std::string& text = "hi", int delay_ms = 0) {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
  if (!authorization.empty()) context.AddMetadata("authorization", authorization);
  EchoRequest request;
  request.set_text(text);
  request.set_delay_ms(delay_ms);
  Result result;
  switch (rpc) {
    case Rpc::kEcho:
      result.status = stub.Echo(&context, request, &result.response);
      break;
    case Rpc::kSlow:
      result.status = stub.Slow(&context, request, &result.response);
      break;
    case Rpc::kRefuse:
      result.status = stub.Refuse(&context, request, &result.response);
      break;
  }
  for (const auto& [key, value] : context.GetServerTrailingMetadata()) {
    result.trailers.emplace(std::string(key.data(), key.size()),
                            std::string(value.data(), value.size()));
  }
  return result;
}

std::unique_ptr<FaultProxy> StartProxy(const std::string& target) {
  auto proxy = FaultProxy::Start(target);
  EXPECT_THAT(proxy, IsOk());
  if (!proxy.ok()) return nullptr;
  EXPECT_NE((*proxy)->address(), "127.0.0.1:0");
  return std::move(*proxy);
}

TEST(FaultProxyTest, ForwardsCallsWithTheAuthorizationHeader) {
  Target target;
  auto proxy = StartProxy(target.address());
  ASSERT_NE(proxy, nullptr);
  auto stub = StubTo(proxy->address());

  Result ok = Call(*stub, Rpc::kEcho, Bearer({"contacts:read"}), "through the proxy");
  ASSERT_TRUE(ok.status.ok()) << ok.status.error_message();
  EXPECT_EQ(ok.response.text(), "through the proxy");
  EXPECT_EQ(ok.response.actor_id(), "alice") << "the target saw the forwarded token";

  // Without a token the target refuses: the header, not the proxy, decided the first answer.
  EXPECT_EQ(Call(*stub, Rpc::kEcho, "").status.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(target.service->handled(), 1);
  EXPECT_EQ(proxy->calls(kEcho), 2);
  EXPECT_EQ(proxy->calls(kRefuse), 0);
}

TEST(FaultProxyTest, TargetErrorsKeepCodeMessageAndDetails) {
  Target target;
  auto proxy = StartProxy(target.address());
  ASSERT_NE(proxy, nullptr);
  const std::string token = Bearer({"contacts:write"});

  Result direct = Call(*StubTo(target.address()), Rpc::kRefuse, token);
  Result proxied = Call(*StubTo(proxy->address()), Rpc::kRefuse, token);

  ASSERT_EQ(direct.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(proxied.status.error_code(), direct.status.error_code());
  EXPECT_EQ(proxied.status.error_message(), direct.status.error_message());
  ASSERT_THAT(direct.status.error_details(), Not(IsEmpty()));
  EXPECT_EQ(proxied.status.error_details(), direct.status.error_details());
  EXPECT_THAT(crm::runtime::Violations(crm::runtime::FromGrpcStatus(proxied.status)),
              ElementsAre(FieldViolation{"text", "must not be empty"},
                          FieldViolation{"delay_ms", "must be positive"}));
  // Exactly one details header, as the target sent it, not a second copy from the proxy.
  EXPECT_EQ(direct.trailers.count("grpc-status-details-bin"), 1u);
  EXPECT_EQ(proxied.trailers.count("grpc-status-details-bin"), 1u);
  EXPECT_EQ(target.service->handled(), 2);
  EXPECT_EQ(proxy->calls(kRefuse), 1);
}

TEST(FaultProxyTest, FailsTheChosenCallsWithoutReachingTheTarget) {
  Target target;
  auto proxy = StartProxy(target.address());
  ASSERT_NE(proxy, nullptr);
  auto stub = StubTo(proxy->address());
  const std::string token = Bearer({"contacts:read"});
  proxy->FailCalls(kEcho, /*pass=*/1, /*count=*/1,
                   grpc::Status(grpc::StatusCode::UNAVAILABLE, "injected by the test"));

  Result first = Call(*stub, Rpc::kEcho, token, "first");
  ASSERT_TRUE(first.status.ok()) << first.status.error_message();
  EXPECT_EQ(first.response.text(), "first");
  EXPECT_EQ(target.service->handled(), 1);

  Result second = Call(*stub, Rpc::kEcho, token, "second");
  EXPECT_EQ(second.status.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(second.status.error_message(), "injected by the test");
  EXPECT_EQ(target.service->handled(), 1) << "the failed call never reached the target";

  // Another method is not affected by the rule.
  EXPECT_TRUE(Call(*stub, Rpc::kSlow, token, "other method").status.ok());
  EXPECT_EQ(target.service->handled(), 2);

  Result third = Call(*stub, Rpc::kEcho, token, "third");
  ASSERT_TRUE(third.status.ok()) << third.status.error_message();
  EXPECT_EQ(third.response.text(), "third");
  EXPECT_EQ(target.service->handled(), 3);

  EXPECT_EQ(proxy->calls(kEcho), 3);
  EXPECT_EQ(proxy->calls(kSlow), 1);
  EXPECT_EQ(proxy->calls(kRefuse), 0);
}

TEST(FaultProxyTest, DestructionLetsCallsInFlightFinish) {
  Target target;
  auto proxy = StartProxy(target.address());
  ASSERT_NE(proxy, nullptr);
  auto stub = StubTo(proxy->address());
  Result slow;
  std::thread caller([&] {
    slow = Call(*stub, Rpc::kSlow, Bearer({"contacts:read"}), "in flight", /*delay_ms=*/500);
  });
  // Destroy the proxy only once the call is running at the target.
  EXPECT_TRUE(WaitFor([&] { return target.service->handled() == 1; }));
  proxy.reset();
  caller.join();
  EXPECT_TRUE(slow.status.ok()) << slow.status.error_message();
  EXPECT_EQ(slow.response.text(), "in flight");
}

// The intended use: the target is a real service binary in its own process.
TEST(FaultProxyTest, ProxiesAServiceProcess) {
  crm::runtime::EchoProcess echo(CRM_ECHO_SERVER, kSecret);
  ASSERT_TRUE(echo.serving()) << echo.process().DrainStderr();
  auto proxy = StartProxy(echo.address());
  ASSERT_NE(proxy, nullptr);
  auto stub = StubTo(proxy->address());
  const std::string token = Bearer({"contacts:read"});
  proxy->FailCalls(kEcho, /*pass=*/0, /*count=*/1,
                   grpc::Status(grpc::StatusCode::UNAVAILABLE, "target down"));

  EXPECT_EQ(Call(*stub, Rpc::kEcho, token).status.error_code(), grpc::StatusCode::UNAVAILABLE);
  Result ok = Call(*stub, Rpc::kEcho, token, "from a process");
  ASSERT_TRUE(ok.status.ok()) << ok.status.error_message();
  EXPECT_EQ(ok.response.text(), "from a process");
  EXPECT_EQ(ok.response.actor_id(), "alice");
  EXPECT_EQ(proxy->calls(kEcho), 2);
}

}  // namespace
}  // namespace crm::testing
