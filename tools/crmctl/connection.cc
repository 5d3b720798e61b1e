#include "connection.h"

#include <future>
#include <iostream>
#include <set>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "crm/runtime/status.h"
#include "google/protobuf/util/json_util.h"
#include "grpcpp/generic/generic_stub.h"
#include "nlohmann/json.hpp"

namespace crm::crmctl {

absl::Duration Connection::Timeout() const {
  absl::Duration parsed = absl::Seconds(10);
  absl::ParseDuration(timeout, &parsed);
  return parsed;
}

bool Connection::Plaintext() const {
  if (plaintext_option != nullptr && plaintext_option->count() > 0) return plaintext;
  if (tls) return false;
  return IsLoopback(address) && channel.ca_file.empty() && channel.cert_file.empty();
}

absl::StatusOr<std::shared_ptr<grpc::Channel>> Connection::Channel() {
  channel.target = address;
  channel.plaintext = Plaintext();
  return crm::runtime::MakeChannel(channel);
}

void AddConnectionFlags(CLI::App& command, Connection& c, const ConnectionFlagOptions& options) {
  const std::string group = "Connection";
  if (options.positional_address) {
    command.add_option("address", c.address, "service address host:port")->required();
  } else {
    c.address = options.default_address;
    command.add_option("--address", c.address, "service address host:port")
        ->envname(options.address_env)
        ->capture_default_str()
        ->group(group);
  }
  c.plaintext_option =
      command
          .add_flag("--plaintext", c.plaintext,
                    "no TLS (default on for a loopback address without --ca-file/--cert-file)")
          ->envname("CRM_PLAINTEXT")
          ->group(group);
  command.add_flag("--tls", c.tls, "TLS even on a loopback address")
      ->excludes(c.plaintext_option)
      ->group(group);
  command.add_option("--ca-file", c.channel.ca_file, "CA of the server certificate (PEM)")
      ->envname("CRM_CA_FILE")
      ->check(CLI::ExistingFile)
      ->group(group);
  command.add_option("--cert-file", c.channel.cert_file, "client certificate for mTLS (PEM)")
      ->envname("CRM_CERT_FILE")
      ->check(CLI::ExistingFile)
      ->group(group);
  command.add_option("--key-file", c.channel.key_file, "client key for mTLS (PEM)")
      ->envname("CRM_KEY_FILE")
      ->check(CLI::ExistingFile)
      ->group(group);
  command
      .add_option("--server-name", c.channel.server_name, "expected name in the server certificate")
      ->group(group);
  command.add_option("--timeout", c.timeout, "deadline of the call, e.g. 500ms, 10s")
      ->capture_default_str()
      ->check([](const std::string& text) {
        absl::Duration ignored;
        return absl::ParseDuration(text, &ignored) ? "" : "expects a duration such as 10s";
      })
      ->group(group);
  if (options.with_token) {
    command.add_option("--token", c.token, "bearer token (see `crmctl token`)")
        ->envname("CRM_TOKEN")
        ->group(group);
  }
}

const std::set<std::string>& ConnectionFlagNames() {
  static const auto* names = new std::set<std::string>{
      "address",     "plaintext", "tls",   "ca-file", "cert-file", "key-file",
      "server-name", "timeout",   "token", "help",    "output"};
  return *names;
}

bool IsLoopback(absl::string_view target) {
  if (absl::StartsWith(target, "unix:")) return true;
  absl::ConsumePrefix(&target, "dns:///");
  absl::ConsumePrefix(&target, "ipv4:");
  absl::ConsumePrefix(&target, "ipv6:");
  absl::string_view host = target;
  if (absl::StartsWith(target, "[")) {
    host = target.substr(1, target.find(']') - 1);
  } else if (const size_t colon = target.rfind(':');
             colon != absl::string_view::npos && target.find(':') == colon) {
    host = target.substr(0, colon);
  }
  return host == "localhost" || absl::StartsWith(host, "127.") || host == "::1";
}

absl::Status UnaryCall(const std::shared_ptr<grpc::Channel>& channel, const std::string& path,
                       const google::protobuf::Message& request,
                       google::protobuf::Message& response,
                       const crm::runtime::CallOptions& options) {
  grpc::GenericStub stub(channel);
  grpc::ByteBuffer response_bytes;
  absl::Status status = crm::runtime::CallWithRetry(options, [&](grpc::ClientContext& context) {
    grpc::Slice slice(request.SerializeAsString());
    grpc::ByteBuffer request_bytes(&slice, 1);
    std::promise<grpc::Status> done;
    stub.UnaryCall(&context, path, grpc::StubOptions(), &request_bytes, &response_bytes,
                   [&done](grpc::Status s) { done.set_value(std::move(s)); });
    return done.get_future().get();
  });
  if (!status.ok()) return status;
  std::vector<grpc::Slice> slices;
  std::string bytes;
  if (response_bytes.Dump(&slices).ok()) {
    for (const auto& slice : slices) {
      bytes.append(reinterpret_cast<const char*>(slice.begin()), slice.size());
    }
  }
  if (!response.ParseFromString(bytes)) return absl::DataLossError("unreadable response");
  return absl::OkStatus();
}

int PrintError(const Global& global, const absl::Status& status,
               const std::function<std::string(absl::string_view field)>& flag_for) {
  const auto violations = crm::runtime::Violations(status);
  if (global.json()) {
    nlohmann::json error = {{"code", absl::StatusCodeToString(status.code())},
                            {"message", std::string(status.message())}};
    error["field_violations"] = nlohmann::json::array();
    for (const auto& v : violations) {
      error["field_violations"].push_back({{"field", v.field}, {"description", v.description}});
    }
    std::cout << nlohmann::json({{"error", error}}).dump(2) << "\n";
  } else {
    std::cerr << "crmctl: " << absl::StatusCodeToString(status.code()) << ": " << status.message()
              << "\n";
    for (const auto& v : violations) {
      const std::string flag = flag_for ? flag_for(v.field) : "";
      std::cerr << "  " << v.field << (flag.empty() ? "" : absl::StrCat(" (", flag, ")")) << ": "
                << v.description << "\n";
    }
  }
  return kExitFailed;
}

int UsageError(absl::string_view message) {
  std::cerr << "crmctl: " << message << "\n";
  return kExitUsage;
}

absl::StatusOr<std::string> ToJson(const google::protobuf::Message& message, bool with_defaults) {
  std::string out;
  google::protobuf::util::JsonPrintOptions options;
  options.add_whitespace = true;
  options.always_print_primitive_fields = with_defaults;
  options.preserve_proto_field_names = true;
  if (!google::protobuf::util::MessageToJsonString(message, &out, options).ok()) {
    return absl::InternalError("cannot print the answer as JSON");
  }
  return out;
}

}  // namespace crm::crmctl
