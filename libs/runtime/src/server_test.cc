#include "crm/runtime/server.h"

#include <fstream>
#include <future>
#include <iterator>
#include <sstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "crm/runtime/call.h"
#include "crm/runtime/client.h"
#include "crm/runtime/status.h"
#include "crm/testing/subprocess.h"
#include "crm/testing/testing.h"
#include "echo_process.h"
#include "echo_service.h"
#include "gmock/gmock.h"
#include "grpcpp/generic/generic_stub.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace crm::runtime {
namespace {

using ::crm::testing::IsOk;
using ::crm::testing::StatusIs;
using ::crm::testing::Subprocess;
using ::crm::testing::TempDir;
using ::crm::testing::WaitFor;
using ::testing::HasSubstr;
using EchoStub = crm::runtime::testing::v1::EchoService::Stub;
using crm::runtime::testing::v1::EchoRequest;
using crm::runtime::testing::v1::EchoResponse;
using grpc::health::v1::HealthCheckResponse;

constexpr char kSecret[] = "server-test-secret-server-test-secret";

std::string Token(std::vector<std::string> scopes, absl::Time issued_at = absl::Now()) {
  auto token =
      SignHs256({.subject = "alice", .scopes = std::move(scopes), .issued_at = issued_at}, kSecret);
  EXPECT_THAT(token, IsOk());
  return token.value_or("");
}

ServerOptions PlaintextOptions() {
  return ServerOptions{.service = "echo",
                       .grpc_listen = "127.0.0.1:0",
                       .metrics_listen = "127.0.0.1:0",
                       .tls = {.plaintext = true},
                       .auth = {.hs256_secret = kSecret}};
}

// A host with the echo service, started.
struct Running {
  explicit Running(ServerOptions options) {
    auto verifier = TokenVerifier::Create(options.auth);
    EXPECT_THAT(verifier, IsOk());
    service =
        std::make_unique<EchoService>(std::shared_ptr<const TokenVerifier>(std::move(*verifier)));
    auto created = ServiceHost::Create(std::move(options));
    EXPECT_THAT(created, IsOk());
    host = std::move(*created);
    EXPECT_THAT(host->Start({service.get()}), IsOk());
  }
  std::string address() const { return absl::StrCat("127.0.0.1:", host->grpc_port()); }
  std::shared_ptr<grpc::Channel> Plaintext() const {
    return grpc::CreateChannel(address(), grpc::InsecureChannelCredentials());
  }

  std::unique_ptr<EchoService> service;
  std::unique_ptr<ServiceHost> host;
};

grpc::Status Call(EchoStub& stub, const std::string& token, EchoResponse* response = nullptr,
                  const std::string& text = "hi", bool refuse = false) {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  if (!token.empty()) context.AddMetadata("authorization", token);
  EchoRequest request;
  request.set_text(text);
  EchoResponse ignored;
  return refuse ? stub.Refuse(&context, request, response ? response : &ignored)
                : stub.Echo(&context, request, response ? response : &ignored);
}

HealthCheckResponse::ServingStatus Health(const std::shared_ptr<grpc::Channel>& channel) {
  auto stub = grpc::health::v1::Health::NewStub(channel);
  grpc::ClientContext context;  // no token: health is open
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  grpc::health::v1::HealthCheckRequest request;
  HealthCheckResponse response;
  const grpc::Status status = stub->Check(&context, request, &response);
  EXPECT_TRUE(status.ok()) << status.error_message();
  return response.status();
}

TEST(ServiceHostTest, HealthFollowsStartServeAndDrain) {
  ServerOptions options = PlaintextOptions();
  options.drain_delay = absl::Seconds(2);
  Running running(options);
  auto channel = running.Plaintext();
  EXPECT_EQ(Health(channel), HealthCheckResponse::NOT_SERVING) << "not serving until told";
  running.host->SetServing(true);
  EXPECT_EQ(Health(channel), HealthCheckResponse::SERVING);

  std::thread shutdown([&] { running.host->Shutdown(); });
  EXPECT_TRUE(WaitFor([&] { return Health(channel) == HealthCheckResponse::NOT_SERVING; }))
      << "draining reports NOT_SERVING while still answering";
  shutdown.join();
}

TEST(ServiceHostTest, AuthFailuresNeverReachTheHandler) {
  Running running(PlaintextOptions());
  auto stub = crm::runtime::testing::v1::EchoService::NewStub(running.Plaintext());
  const std::string valid = Token({"contacts:read"});
  const std::string forged = *SignHs256({.subject = "mallory", .scopes = {"admin"}}, "guessed");
  struct Case {
    std::string name;
    std::string header;
    bool refuse;
    grpc::StatusCode code;
  };
  const std::vector<Case> cases = {
      {"no token", "", false, grpc::StatusCode::UNAUTHENTICATED},
      {"garbled", "Bearer abc.def", false, grpc::StatusCode::UNAUTHENTICATED},
      {"not bearer", "Basic abc", false, grpc::StatusCode::UNAUTHENTICATED},
      {"expired", "Bearer " + Token({"contacts:read"}, absl::Now() - absl::Hours(13)), false,
       grpc::StatusCode::UNAUTHENTICATED},
      {"forged", "Bearer " + forged, false, grpc::StatusCode::UNAUTHENTICATED},
      {"wrong scope", "Bearer " + valid, true, grpc::StatusCode::PERMISSION_DENIED},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(Call(*stub, c.header, nullptr, "hi", c.refuse).error_code(), c.code) << c.name;
  }
  EXPECT_EQ(running.service->handled(), 0);

  EchoResponse response;
  ASSERT_TRUE(Call(*stub, "Bearer " + valid, &response).ok());
  EXPECT_EQ(response.actor_id(), "alice") << "the actor comes from the token";
  EXPECT_EQ(response.actor_kind(), crm::common::v1::ACTOR_KIND_USER);
  EXPECT_EQ(running.service->handled(), 1);
}

TEST(ServiceHostTest, FieldViolationsReachTheClientInStatusDetails) {
  Running running(PlaintextOptions());
  auto stub = crm::runtime::testing::v1::EchoService::NewStub(running.Plaintext());
  const grpc::Status status = Call(*stub, "Bearer " + Token({"contacts:write"}), nullptr, "", true);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  const auto violations = Violations(FromGrpcStatus(status));
  ASSERT_EQ(violations.size(), 2u);
  EXPECT_EQ(violations[0].field, "text");
  EXPECT_EQ(violations[1].field, "delay_ms");
}

TEST(ServiceHostTest, OversizedMessageIsResourceExhausted) {
  ServerOptions options = PlaintextOptions();
  options.max_message_bytes = 64 << 10;
  Running running(options);
  auto stub = crm::runtime::testing::v1::EchoService::NewStub(running.Plaintext());
  const std::string token = "Bearer " + Token({"contacts:read"});
  EXPECT_EQ(Call(*stub, token, nullptr, std::string(100 << 10, 'x')).error_code(),
            grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_EQ(running.service->handled(), 0);
  EXPECT_TRUE(Call(*stub, token, nullptr, std::string(32 << 10, 'x')).ok());
}

// The raw bytes of an EchoRequest whose string `marker` was made invalid UTF-8 (0xFF never is).
std::string WithInvalidUtf8(const EchoRequest& request, const std::string& marker) {
  std::string bytes = request.SerializeAsString();
  const size_t at = bytes.find(marker);
  EXPECT_NE(at, std::string::npos);
  bytes[at] = '\xff';
  return bytes;
}

// Sends `bytes` as the body of Echo, as a client with its own serializer would.
grpc::Status CallWithBytes(const std::shared_ptr<grpc::Channel>& channel, const std::string& token,
                           const std::string& bytes) {
  grpc::GenericStub stub(channel);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  context.AddMetadata("authorization", token);
  grpc::Slice slice(bytes);
  grpc::ByteBuffer request(&slice, 1);
  grpc::ByteBuffer response;
  std::promise<grpc::Status> done;
  stub.UnaryCall(&context, "/crm.runtime.testing.v1.EchoService/Echo", grpc::StubOptions(),
                 &request, &response, [&done](grpc::Status status) { done.set_value(status); });
  return done.get_future().get();
}

TEST(ServiceHostTest, UnparsableRequestIsInvalidArgumentNamingTheField) {
  Running running(PlaintextOptions());
  const std::string token = "Bearer " + Token({"contacts:read"});
  struct Case {
    std::string name;
    EchoRequest request;
    std::string marker;
    std::string field;
  };
  std::vector<Case> cases(3);
  cases[0] = {"top-level string", {}, "MARK-text", "text"};
  cases[0].request.set_text("MARK-text");
  cases[1] = {"repeated string of a nested message", {}, "MARK-tag", "detail.tags"};
  cases[1].request.mutable_detail()->add_tags("ok");
  cases[1].request.mutable_detail()->add_tags("MARK-tag");
  cases[2] = {"map value", {}, "MARK-label", "detail.labels"};
  (*cases[2].request.mutable_detail()->mutable_labels())["k"] = "MARK-label";
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    const grpc::Status status =
        CallWithBytes(running.Plaintext(), token, WithInvalidUtf8(c.request, c.marker));
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << status.error_message();
    const auto violations = Violations(FromGrpcStatus(status));
    ASSERT_EQ(violations.size(), 1u) << status.error_message();
    EXPECT_EQ(violations[0].field, c.field);
    EXPECT_THAT(violations[0].description, HasSubstr("UTF-8"));
  }

  // Bytes that are no message at all: a truncated varint in a tag.
  const grpc::Status garbage =
      CallWithBytes(running.Plaintext(), token, std::string("\xff\xff\xff\xff\x0f", 5));
  EXPECT_EQ(garbage.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(garbage.error_message(), HasSubstr("crm.runtime.testing.v1.EchoRequest"));
  EXPECT_TRUE(Violations(FromGrpcStatus(garbage)).empty());

  EXPECT_EQ(running.service->handled(), 0);  // no handler saw any of them
  auto stub = crm::runtime::testing::v1::EchoService::NewStub(running.Plaintext());
  EXPECT_TRUE(Call(*stub, token).ok());  // and the server serves on
}

TEST(ServiceHostTest, MetricsEndpointIsScrapableAndPassesPromtool) {
  Running running(PlaintextOptions());
  auto stub = crm::runtime::testing::v1::EchoService::NewStub(running.Plaintext());
  ASSERT_TRUE(Call(*stub, "Bearer " + Token({"contacts:read"})).ok());
  EXPECT_EQ(Call(*stub, "").error_code(), grpc::StatusCode::UNAUTHENTICATED);

  auto body = crm::testing::HttpGet(running.host->metrics_port(), "/metrics");
  ASSERT_TRUE(body.has_value());
  EXPECT_THAT(*body, HasSubstr("crm_grpc_server_requests_total{code=\"OK\",method=\"/crm.runtime."
                               "testing.v1.EchoService/Echo\"} 1"));
  EXPECT_THAT(*body, HasSubstr("code=\"UNAUTHENTICATED\""));
  EXPECT_THAT(*body, HasSubstr("crm_grpc_server_request_duration_seconds_bucket"));

  Subprocess promtool({"/usr/bin/promtool", "check", "metrics"}, /*with_stdin=*/true);
  ASSERT_TRUE(promtool.started());
  promtool.WriteStdin(*body);
  promtool.CloseStdin();
  const auto exit_code = promtool.WaitForExitCode();
  EXPECT_EQ(exit_code, 0) << promtool.DrainStderr();
}

// Certificates made by the openssl command line for one test: a CA, a server certificate for
// 127.0.0.1/localhost and a client certificate, all signed by the CA.
class Certificates {
 public:
  explicit Certificates(const TempDir& dir) : dir_(dir) {
    Run({"req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=test-ca",
         "-keyout", Path("ca.key"), "-out", Path("ca.pem")});
    Issue("server", "localhost", "subjectAltName=DNS:localhost,IP:127.0.0.1");
    Issue("client", "activity-service", "extendedKeyUsage=clientAuth");
  }
  std::string Path(const std::string& name) const { return dir_.Sub(name); }

 private:
  void Issue(const std::string& name, const std::string& cn, const std::string& extension) {
    std::ofstream(Path(name + ".ext")) << extension << "\n";
    Run({"req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=" + cn, "-keyout",
         Path(name + ".key"), "-out", Path(name + ".csr")});
    Run({"x509", "-req", "-in", Path(name + ".csr"), "-CA", Path("ca.pem"), "-CAkey",
         Path("ca.key"), "-CAcreateserial", "-days", "1", "-extfile", Path(name + ".ext"), "-out",
         Path(name + ".pem")});
  }
  void Run(std::vector<std::string> args) {
    args.insert(args.begin(), "/usr/bin/openssl");
    Subprocess openssl(args);
    ASSERT_EQ(openssl.WaitForExitCode(), 0) << openssl.DrainStderr();
  }
  const TempDir& dir_;
};

absl::Status EchoOver(const ChannelOptions& channel_options, const std::string& token) {
  auto channel = MakeChannel(channel_options);
  if (!channel.ok()) return channel.status();
  auto stub = crm::runtime::testing::v1::EchoService::NewStub(*channel);
  EchoRequest request;
  EchoResponse response;
  return CallWithRetry(
      {.bearer_token = token, .timeout = absl::Seconds(5)},
      [&](grpc::ClientContext& context) { return stub->Echo(&context, request, &response); });
}

TEST(ServiceHostTest, MutualTlsAcceptsOnlyClientsWithACertificateFromTheCa) {
  TempDir dir;
  Certificates certs(dir);
  ASSERT_FALSE(::testing::Test::HasFatalFailure());
  ServerOptions options = PlaintextOptions();
  options.tls = {.cert_file = certs.Path("server.pem"),
                 .key_file = certs.Path("server.key"),
                 .client_ca_file = certs.Path("ca.pem"),
                 .require_client_cert = true};
  Running running(options);
  const std::string token = Token({"contacts:read"});
  const ChannelOptions with_cert{.target = running.address(),
                                 .ca_file = certs.Path("ca.pem"),
                                 .cert_file = certs.Path("client.pem"),
                                 .key_file = certs.Path("client.key")};
  EXPECT_THAT(EchoOver(with_cert, token), IsOk());

  ChannelOptions without_cert = with_cert;
  without_cert.cert_file.clear();
  without_cert.key_file.clear();
  EXPECT_THAT(EchoOver(without_cert, token), StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_THAT(EchoOver({.target = running.address(), .plaintext = true}, token),
              StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_EQ(running.service->handled(), 1);
}

TEST(ServiceHostTest, TlsClientRefusesAServerFromAnotherCa) {
  TempDir server_dir;
  TempDir other_dir;
  Certificates server_certs(server_dir);
  Certificates other_certs(other_dir);
  ASSERT_FALSE(::testing::Test::HasFatalFailure());
  ServerOptions options = PlaintextOptions();
  options.tls = {.cert_file = server_certs.Path("server.pem"),
                 .key_file = server_certs.Path("server.key")};
  Running running(options);
  const std::string token = Token({"contacts:read"});
  EXPECT_THAT(
      EchoOver({.target = running.address(), .ca_file = server_certs.Path("ca.pem")}, token),
      IsOk());
  EXPECT_THAT(EchoOver({.target = running.address(), .ca_file = other_certs.Path("ca.pem")}, token),
              StatusIs(absl::StatusCode::kUnavailable));
}

// The real binary: SIGTERM while a slow call runs lets it finish, then the process exits 0.
TEST(ServiceProcessTest, SigtermDrainsInFlightCallsAndExitsZero) {
  EchoProcess echo(CRM_ECHO_SERVER, kSecret, {"--shutdown-grace", "10s"});
  ASSERT_TRUE(echo.serving()) << echo.process().DrainStderr();
  Subprocess& server = echo.process();
  auto stub = crm::runtime::testing::v1::EchoService::NewStub(
      grpc::CreateChannel(echo.address(), grpc::InsecureChannelCredentials()));
  grpc::Status slow_status;
  EchoResponse slow_response;
  std::thread slow([&] {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
    context.AddMetadata("authorization", "Bearer " + Token({"contacts:read"}));
    EchoRequest request;
    request.set_text("still here");
    request.set_delay_ms(1500);
    slow_status = stub->Slow(&context, request, &slow_response);
  });
  ASSERT_TRUE(server.WaitForStderr("slow call started").has_value());
  server.Signal(SIGTERM);
  slow.join();
  EXPECT_TRUE(slow_status.ok()) << slow_status.error_message();
  EXPECT_EQ(slow_response.text(), "still here");
  EXPECT_EQ(server.WaitForExitCode(), 0);
}

// Serving processes allocate with tcmalloc (crm_allocator, docs/decisions.md 58); a
// sanitizer build keeps the sanitizer's own allocator.
TEST(ServiceProcessTest, AllocatesWithTcmalloc) {
  EchoProcess echo(CRM_ECHO_SERVER, kSecret);
  ASSERT_TRUE(echo.serving()) << echo.process().DrainStderr();
  std::ifstream maps(absl::StrCat("/proc/", echo.process().pid(), "/maps"));
  const std::string mapped((std::istreambuf_iterator<char>(maps)),
                           std::istreambuf_iterator<char>());
  ASSERT_THAT(mapped, HasSubstr("libc.so"));  // the file was read
#if defined(__SANITIZE_ADDRESS__)
  EXPECT_THAT(mapped, ::testing::Not(HasSubstr("libtcmalloc")));
#else
  EXPECT_THAT(mapped, HasSubstr("libtcmalloc_minimal"));
#endif
}

TEST(ServiceProcessTest, LogsAreOneJsonObjectPerLine) {
  Subprocess server({CRM_ECHO_SERVER, "--plaintext", "--jwt-hs256-secret", kSecret});
  auto serving = server.WaitForStderr("serving");
  ASSERT_TRUE(serving.has_value());
  const auto first = nlohmann::json::parse(*serving);
  EXPECT_EQ(first["msg"], "serving");
  EXPECT_EQ(first["service"], "echo");
  EXPECT_TRUE(first["grpc_port"].is_number());
  server.Signal(SIGTERM);
  ASSERT_EQ(server.WaitForExitCode(), 0);
  std::vector<std::string> messages;
  std::istringstream rest(server.DrainStderr());
  for (std::string line; std::getline(rest, line);) {
    const auto parsed = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    ASSERT_TRUE(parsed.is_object()) << line;
    for (const char* field : {"time", "level", "service", "msg"}) {
      EXPECT_TRUE(parsed.contains(field)) << field << " missing in " << line;
    }
    messages.push_back(parsed["msg"]);
  }
  EXPECT_THAT(messages,
              ::testing::IsSupersetOf({"shutdown signal", "draining", "stopped serving"}));
}

TEST(ServiceProcessTest, ABadSettingStopsTheProcessWithOneLineNamingIt) {
  Subprocess bad_value({CRM_ECHO_SERVER, "--plaintext", "--jwt-hs256-secret", kSecret,
                        "--max-message-bytes", "lots"});
  EXPECT_EQ(bad_value.WaitForExitCode(), 2);
  const std::string bad_value_error = bad_value.DrainStderr();
  EXPECT_THAT(bad_value_error, HasSubstr("--max-message-bytes"));
  EXPECT_EQ(std::count(bad_value_error.begin(), bad_value_error.end(), '\n'), 1) << bad_value_error;

  Subprocess no_tls({CRM_ECHO_SERVER, "--jwt-hs256-secret", kSecret});
  EXPECT_EQ(no_tls.WaitForExitCode(), 2);
  EXPECT_THAT(no_tls.DrainStderr(), HasSubstr("--tls-cert-file"));
}

}  // namespace
}  // namespace crm::runtime
