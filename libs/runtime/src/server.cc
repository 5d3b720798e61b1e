#include "crm/runtime/server.h"

#include <signal.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "crm/common/files.h"
#include "crm/runtime/log.h"
#include "malformed_request.h"
#include "grpcpp/ext/proto_server_reflection_plugin.h"
#include "grpcpp/health_check_service_interface.h"
#include "grpcpp/support/server_interceptor.h"
#include "prometheus/counter.h"
#include "prometheus/exposer.h"
#include "prometheus/histogram.h"

namespace crm::runtime {
namespace {

absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> Credentials(const TlsOptions& tls) {
  if (tls.plaintext) return grpc::InsecureServerCredentials();
  grpc::SslServerCredentialsOptions ssl(
      tls.require_client_cert ? GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY
                              : GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE);
  grpc::SslServerCredentialsOptions::PemKeyCertPair pair;
  auto cert = ReadSettingFile(tls.cert_file, "tls_cert_file");
  if (!cert.ok()) return cert.status();
  auto key = ReadSettingFile(tls.key_file, "tls_key_file");
  if (!key.ok()) return key.status();
  pair.cert_chain = *cert;
  pair.private_key = *key;
  ssl.pem_key_cert_pairs.push_back(std::move(pair));
  if (!tls.client_ca_file.empty()) {
    auto ca = ReadSettingFile(tls.client_ca_file, "tls_client_ca_file");
    if (!ca.ok()) return ca.status();
    ssl.pem_root_certs = *ca;
  }
  return grpc::SslServerCredentials(ssl);
}

// RED metrics for every method, including health, reflection and calls refused before any
// handler ran.
class MetricsInterceptor final : public grpc::experimental::Interceptor {
 public:
  MetricsInterceptor(grpc::experimental::ServerRpcInfo* info,
                     prometheus::Family<prometheus::Counter>* requests,
                     prometheus::Family<prometheus::Histogram>* latency)
      : method_(info->method()), requests_(requests), latency_(latency), start_(absl::Now()) {}

  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(
            grpc::experimental::InterceptionHookPoints::PRE_SEND_STATUS)) {
      const grpc::Status status = methods->GetSendStatus();
      requests_->Add({{"method", method_}, {"code", CodeName(status.error_code())}}).Increment();
      latency_
          ->Add({{"method", method_}},
                prometheus::Histogram::BucketBoundaries{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                                        0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10})
          .Observe(absl::ToDoubleSeconds(absl::Now() - start_));
    }
    methods->Proceed();
  }

 private:
  static std::string CodeName(grpc::StatusCode code) {
    return absl::StatusCodeToString(static_cast<absl::StatusCode>(code));
  }
  std::string method_;
  prometheus::Family<prometheus::Counter>* requests_;
  prometheus::Family<prometheus::Histogram>* latency_;
  absl::Time start_;
};

class MetricsInterceptorFactory final
    : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  explicit MetricsInterceptorFactory(prometheus::Registry& registry)
      : requests_(&prometheus::BuildCounter()
                       .Name("crm_grpc_server_requests_total")
                       .Help("gRPC calls handled, by method and status code")
                       .Register(registry)),
        latency_(&prometheus::BuildHistogram()
                      .Name("crm_grpc_server_request_duration_seconds")
                      .Help("gRPC call latency from arrival to status, by method")
                      .Register(registry)) {}

  grpc::experimental::Interceptor* CreateServerInterceptor(
      grpc::experimental::ServerRpcInfo* info) override {
    return new MetricsInterceptor(info, requests_, latency_);
  }

 private:
  prometheus::Family<prometheus::Counter>* requests_;
  prometheus::Family<prometheus::Histogram>* latency_;
};

}  // namespace

void BlockShutdownSignals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
}

ServiceHost::ServiceHost(ServerOptions options)
    : options_(std::move(options)), registry_(std::make_shared<prometheus::Registry>()) {}

ServiceHost::~ServiceHost() { Shutdown(); }

absl::StatusOr<std::unique_ptr<ServiceHost>> ServiceHost::Create(ServerOptions options) {
  // Debian's abseil is built without NDEBUG, which turns on its lock-order graph: every Mutex
  // lock updates a global graph (a few percent of a busy service's CPU in perf). Tests keep
  // it; a serving process does not pay for it.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  std::unique_ptr<ServiceHost> host(new ServiceHost(std::move(options)));
  try {  // civetweb reports bind failures as exceptions; they stop here
    host->exposer_ = std::make_unique<prometheus::Exposer>(host->options_.metrics_listen);
  } catch (const std::exception& e) {
    return absl::UnavailableError(absl::StrCat("metrics_listen: cannot serve /metrics on ",
                                               host->options_.metrics_listen, ": ", e.what()));
  }
  host->exposer_->RegisterCollectable(host->registry_);
  const std::vector<int> ports = host->exposer_->GetListeningPorts();
  host->metrics_port_ = ports.empty() ? 0 : ports.front();
  return host;
}

void ServiceHost::AddCollectable(const std::shared_ptr<prometheus::Collectable>& collectable) {
  exposer_->RegisterCollectable(collectable);
}

absl::Status ServiceHost::Start(const std::vector<grpc::Service*>& services) {
  auto credentials = Credentials(options_.tls);
  if (!credentials.ok()) return credentials.status();
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  builder.AddListeningPort(options_.grpc_listen, *credentials, &grpc_port_);
  for (grpc::Service* service : services) builder.RegisterService(service);
  builder.SetMaxReceiveMessageSize(static_cast<int>(options_.max_message_bytes));
  builder.SetMaxSendMessageSize(static_cast<int>(options_.max_message_bytes));
  // Keep idle connections alive through NATs and notice dead peers; tolerate clients that
  // ping every 10 s.
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIME_MS, 60'000);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 20'000);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, 10'000);
  std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> interceptors;
  // First: it rewrites the status of an unparsable request before the metrics count it.
  interceptors.push_back(std::make_unique<MalformedRequestInterceptorFactory>());
  interceptors.push_back(std::make_unique<MetricsInterceptorFactory>(*registry_));
  builder.experimental().SetInterceptorCreators(std::move(interceptors));
  server_ = builder.BuildAndStart();
  if (server_ == nullptr || grpc_port_ == 0) {
    return absl::UnavailableError(
        absl::StrCat("grpc_listen: cannot serve gRPC on ", options_.grpc_listen));
  }
  SetServing(false);
  LogInfo("serving", {{"grpc_port", grpc_port_},
                      {"metrics_port", metrics_port_},
                      {"tls", !options_.tls.plaintext},
                      {"mtls", options_.tls.require_client_cert}});
  FlushLogs();  // supervisors and tests wait for this line
  return absl::OkStatus();
}

void ServiceHost::SetServing(bool serving) {
  if (server_ != nullptr) server_->GetHealthCheckService()->SetServingStatus(serving);
}

void ServiceHost::Shutdown() {
  std::call_once(shutdown_once_, [this] {
    if (server_ == nullptr) return;
    LogInfo("draining", {{"drain_delay_ms", absl::ToInt64Milliseconds(options_.drain_delay)},
                         {"grace_ms", absl::ToInt64Milliseconds(options_.shutdown_grace)}});
    SetServing(false);
    absl::SleepFor(options_.drain_delay);  // let load balancers see NOT_SERVING first
    server_->Shutdown(std::chrono::system_clock::now() +
                      absl::ToChronoMilliseconds(options_.shutdown_grace));
    server_->Wait();
    LogInfo("stopped serving");
  });
}

void ServiceHost::WaitForShutdownSignal(const std::function<void()>& before_shutdown) {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  int signal = 0;
  sigwait(&set, &signal);
  LogInfo("shutdown signal", {{"signal", signal == SIGTERM ? "SIGTERM" : "SIGINT"}});
  if (before_shutdown) before_shutdown();
  Shutdown();
}

}  // namespace crm::runtime
