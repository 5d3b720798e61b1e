#pragma once

// What every crmctl command that talks to a service shares: the connection flags, the
// channel, one unary call by method path, and how a failed call is printed.

#include <functional>
#include <memory>
#include <set>
#include <string>

#include "CLI/CLI.hpp"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "crm/runtime/client.h"
#include "google/protobuf/message.h"
#include "grpcpp/grpcpp.h"

namespace crm::crmctl {

// Exit codes.
inline constexpr int kExitOk = 0;
inline constexpr int kExitFailed = 1;  // the call failed, or the service is not serving
inline constexpr int kExitUsage = 2;   // usage or input error

struct Global {
  std::string output = "text";  // or "json"
  bool json() const { return output == "json"; }
};

struct Connection {
  std::string address;
  crm::runtime::ChannelOptions channel;
  bool plaintext = false;
  bool tls = false;
  CLI::Option* plaintext_option = nullptr;
  std::string timeout = "10s";
  std::string token;

  absl::Duration Timeout() const;
  // --plaintext (or CRM_PLAINTEXT) when given; else --tls; else plaintext exactly when the
  // address is on loopback and no certificate file is given (the `make run` setup).
  bool Plaintext() const;
  absl::StatusOr<std::shared_ptr<grpc::Channel>> Channel();
};

struct ConnectionFlagOptions {
  bool positional_address = true;  // `crmctl health ADDRESS`; else --address
  std::string default_address;     // for --address
  std::string address_env;         // for --address, e.g. CRM_CONTACT_ADDRESS
  bool with_token = true;
};

void AddConnectionFlags(CLI::App& command, Connection& connection,
                        const ConnectionFlagOptions& options);

// The flags AddConnectionFlags adds, without "--" (request fields must not take them).
const std::set<std::string>& ConnectionFlagNames();

// True for 127.0.0.0/8, ::1, localhost and unix sockets.
bool IsLoopback(absl::string_view target);

// Calls `path` ("/package.Service/Method") with serialized messages; retries UNAVAILABLE only
// when `options.idempotent`.
absl::Status UnaryCall(const std::shared_ptr<grpc::Channel>& channel, const std::string& path,
                       const google::protobuf::Message& request,
                       google::protobuf::Message& response,
                       const crm::runtime::CallOptions& options);

// Prints a failed call: text on stderr (one line per offending field, with its flag when
// `flag_for` names one), or JSON on stdout with -o json. Returns kExitFailed.
int PrintError(const Global& global, const absl::Status& status,
               const std::function<std::string(absl::string_view field)>& flag_for = nullptr);

// "crmctl: <message>" on stderr; returns kExitUsage.
int UsageError(absl::string_view message);

// Proto3 JSON with the proto field names; every field, or only those set.
absl::StatusOr<std::string> ToJson(const google::protobuf::Message& message,
                                   bool with_defaults = true);

}  // namespace crm::crmctl
