#include "crm/runtime/client.h"

#include "absl/random/random.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "crm/common/files.h"
#include "crm/runtime/status.h"

namespace crm::runtime {

absl::StatusOr<std::shared_ptr<grpc::Channel>> MakeChannel(const ChannelOptions& options) {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(static_cast<int>(options.max_message_bytes));
  args.SetMaxSendMessageSize(static_cast<int>(options.max_message_bytes));
  args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, 60'000);
  args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 20'000);
  if (options.plaintext) {
    return grpc::CreateCustomChannel(options.target, grpc::InsecureChannelCredentials(), args);
  }
  grpc::SslCredentialsOptions ssl;
  if (!options.ca_file.empty()) {
    auto ca = ReadSettingFile(options.ca_file, "ca_file");
    if (!ca.ok()) return ca.status();
    ssl.pem_root_certs = *ca;
  }
  if (!options.cert_file.empty() || !options.key_file.empty()) {
    auto cert = ReadSettingFile(options.cert_file, "cert_file");
    if (!cert.ok()) return cert.status();
    auto key = ReadSettingFile(options.key_file, "key_file");
    if (!key.ok()) return key.status();
    ssl.pem_cert_chain = *cert;
    ssl.pem_private_key = *key;
  }
  if (!options.server_name.empty()) {
    args.SetSslTargetNameOverride(options.server_name);
  }
  return grpc::CreateCustomChannel(options.target, grpc::SslCredentials(ssl), args);
}

absl::Status CallWithRetry(const CallOptions& options,
                           const std::function<grpc::Status(grpc::ClientContext&)>& rpc) {
  thread_local absl::BitGen random;
  absl::Duration backoff = options.initial_backoff;
  absl::Status last;
  for (int attempt = 1; attempt <= std::max(1, options.max_attempts); ++attempt) {
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(absl::Now() + options.timeout));
    if (!options.bearer_token.empty()) {
      context.AddMetadata("authorization", absl::StrCat("Bearer ", options.bearer_token));
    }
    last = FromGrpcStatus(rpc(context));
    if (last.ok() || !options.idempotent || last.code() != absl::StatusCode::kUnavailable) {
      return last;
    }
    if (attempt < options.max_attempts) {
      // Full jitter: spreads retries of many callers over the whole backoff window.
      absl::SleepFor(backoff * absl::Uniform(random, 0.0, 1.0));
      backoff = std::min(backoff * 2, options.max_backoff);
    }
  }
  return last;
}

}  // namespace crm::runtime
