#pragma once

// `crmctl <service> <method> [flags]` for every method of the four services, generated from
// the service descriptors compiled into crmctl: nothing is written per method.

#include <memory>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/status/statusor.h"
#include "connection.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/message.h"
#include "request_flags.h"

namespace crm::crmctl {

struct ServiceEntry {
  std::string command;  // "contact"
  const google::protobuf::ServiceDescriptor* descriptor = nullptr;
  std::string default_address;  // DESIGN.md's local default, "127.0.0.1:7001"
  std::string address_env;      // "CRM_CONTACT_ADDRESS"
};

// contact, activity, pipeline and metrics.
const std::vector<ServiceEntry>& Services();

struct MethodCommand {
  const ServiceEntry* service = nullptr;
  const google::protobuf::MethodDescriptor* method = nullptr;
  CLI::App* command = nullptr;
  Connection connection;
  std::string json;  // the base request (--json)
  bool dry_run = false;
  std::unique_ptr<RequestFlags> flags;
};

class ServiceCommands {
 public:
  // Adds a subcommand per service to `app`, and one per method to each.
  explicit ServiceCommands(CLI::App& app);

  // The method the parsed command line chose, or null.
  MethodCommand* Parsed() const;
  const std::vector<std::unique_ptr<MethodCommand>>& methods() const { return methods_; }

 private:
  std::vector<std::unique_ptr<MethodCommand>> methods_;
};

// The request from --json and the flags; INVALID_ARGUMENT naming the flag.
absl::StatusOr<std::unique_ptr<google::protobuf::Message>> BuildRequest(
    const MethodCommand& command);

// Builds the request, calls the method, prints the answer. Returns the exit code.
int RunMethod(const Global& global, MethodCommand& command);

}  // namespace crm::crmctl
