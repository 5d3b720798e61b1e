#include "crm/testing/fault_proxy.h"

#include <chrono>
#include <utility>

#include "absl/strings/str_cat.h"
#include "grpcpp/client_context.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "grpcpp/security/server_credentials.h"
#include "grpcpp/server_builder.h"
#include "grpcpp/support/channel_arguments.h"

namespace crm::testing {
namespace {

// Calls still running when the proxy is destroyed get this long before they are cancelled.
constexpr auto kShutdownGrace = std::chrono::seconds(5);

// Metadata that is copied across the proxy. Pseudo-headers and transport headers belong to each
// hop (gRPC sets them itself; copying them would duplicate or contradict them), and the status
// details (grpc-status-details-bin) travel inside grpc::Status, which the server side turns back
// into that header, so copying it too would send it twice.
bool Forwarded(grpc::string_ref key) {
  return !key.starts_with(":") && !key.starts_with("grpc-") && key != "user-agent" && key != "te" &&
         key != "content-type";
}

std::string ToString(grpc::string_ref ref) { return std::string(ref.data(), ref.size()); }

}  // namespace

// One call through the proxy: reads the request, then either answers with an injected status or
// forwards the request and answers with whatever the target answered.
class FaultProxy::Call final : public grpc::ServerGenericBidiReactor {
 public:
  Call(FaultProxy* proxy, grpc::GenericCallbackServerContext* context)
      : proxy_(proxy), context_(context) {
    StartRead(&request_);  // unary: exactly one request message
  }

  void OnReadDone(bool ok) override {
    if (!ok) {  // the caller went away before sending its request
      Finish(grpc::Status(grpc::StatusCode::CANCELLED, "fault proxy: no request"));
      return;
    }
    if (std::optional<grpc::Status> injected = proxy_->Admit(context_->method())) {
      Finish(*injected);
      return;
    }
    for (const auto& [key, value] : context_->client_metadata()) {
      if (Forwarded(key)) upstream_.AddMetadata(ToString(key), ToString(value));
    }
    // The target must give up when the caller does, as it would without the proxy.
    upstream_.set_deadline(context_->deadline());
    proxy_->stub_.UnaryCall(&upstream_, context_->method(), grpc::StubOptions(), &request_,
                            &response_, [this](grpc::Status status) { Answer(std::move(status)); });
  }

  // The caller cancelled (or the proxy is shutting down): cancel the forwarded call too, whose
  // completion then finishes this one.
  void OnCancel() override { upstream_.TryCancel(); }

  void OnDone() override { delete this; }

 private:
  void Answer(grpc::Status status) {
    for (const auto& [key, value] : upstream_.GetServerInitialMetadata()) {
      if (Forwarded(key)) context_->AddInitialMetadata(ToString(key), ToString(value));
    }
    for (const auto& [key, value] : upstream_.GetServerTrailingMetadata()) {
      if (Forwarded(key)) context_->AddTrailingMetadata(ToString(key), ToString(value));
    }
    // `status` carries the code, message and binary details as received.
    if (status.ok()) {
      StartWriteAndFinish(&response_, grpc::WriteOptions(), status);
    } else {
      Finish(status);
    }
  }

  FaultProxy* const proxy_;
  grpc::GenericCallbackServerContext* const context_;
  grpc::ClientContext upstream_;
  grpc::ByteBuffer request_;
  grpc::ByteBuffer response_;
};

class FaultProxy::Service final : public grpc::CallbackGenericService {
 public:
  explicit Service(FaultProxy* proxy) : proxy_(proxy) {}

  grpc::ServerGenericBidiReactor* CreateReactor(
      grpc::GenericCallbackServerContext* context) override {
    return new Call(proxy_, context);
  }

 private:
  FaultProxy* const proxy_;
};

namespace {

std::shared_ptr<grpc::Channel> TargetChannel(const std::string& target) {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(-1);  // size limits are the target's and the caller's business
  return grpc::CreateCustomChannel(target, grpc::InsecureChannelCredentials(), args);
}

}  // namespace

FaultProxy::FaultProxy(const std::string& target)
    : stub_(TargetChannel(target)), service_(std::make_unique<Service>(this)) {}

absl::StatusOr<std::unique_ptr<FaultProxy>> FaultProxy::Start(const std::string& target) {
  if (target.empty()) return absl::InvalidArgumentError("fault proxy: empty target");
  std::unique_ptr<FaultProxy> proxy(new FaultProxy(target));
  grpc::ServerBuilder builder;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &proxy->port_);
  builder.RegisterCallbackGenericService(proxy->service_.get());
  builder.SetMaxReceiveMessageSize(-1);
  proxy->server_ = builder.BuildAndStart();
  if (proxy->server_ == nullptr || proxy->port_ == 0) {
    return absl::UnavailableError("fault proxy: cannot listen on 127.0.0.1");
  }
  return proxy;
}

FaultProxy::~FaultProxy() {
  // Returns once every call's reactor is done, so none outlives stub_ or the rule tables.
  if (server_ != nullptr) server_->Shutdown(std::chrono::system_clock::now() + kShutdownGrace);
}

std::string FaultProxy::address() const { return absl::StrCat("127.0.0.1:", port_); }

void FaultProxy::FailCalls(const std::string& method, int pass, int count, grpc::Status status) {
  absl::MutexLock lock(&mu_);
  rules_[method] = Rule{.pass = pass, .fail = count, .status = std::move(status)};
}

int FaultProxy::calls(const std::string& method) const {
  absl::MutexLock lock(&mu_);
  auto it = calls_.find(method);
  return it == calls_.end() ? 0 : it->second;
}

std::optional<grpc::Status> FaultProxy::Admit(const std::string& method) {
  absl::MutexLock lock(&mu_);
  ++calls_[method];
  auto it = rules_.find(method);
  if (it == rules_.end()) return std::nullopt;
  Rule& rule = it->second;
  if (rule.pass > 0) {
    --rule.pass;
    return std::nullopt;
  }
  if (rule.fail <= 0) {
    rules_.erase(it);
    return std::nullopt;
  }
  grpc::Status status = rule.status;
  if (--rule.fail == 0) rules_.erase(it);
  return status;
}

}  // namespace crm::testing
