#pragma once

// The process of a command service (contact, activity, pipeline): flags, logs, the event
// store, the outbox relay to the service's topic, the gRPC host with health, reflection and
// metrics, and the shutdown order. A service's main() is one call:
//
//   int main(int argc, char** argv) {
//     return crm::service::RunCommandService(argc, argv, {
//         .name = "contact", .topic = "crm.contact.events.v1",
//         .grpc_listen = "127.0.0.1:7001", .metrics_listen = "127.0.0.1:9101",
//         .make_services = [](crm::service::CommandServiceContext& context) { ... }});
//   }

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/status/statusor.h"
#include "crm/eventstore/event_store.h"
#include "crm/runtime/auth.h"
#include "grpcpp/grpcpp.h"
#include "grpcpp/impl/codegen/service_type.h"
#include "prometheus/registry.h"

namespace crm::service {

// What a service's handlers are built from. Everything outlives the services.
struct CommandServiceContext {
  eventstore::EventStore& store;
  std::shared_ptr<const runtime::TokenVerifier> verifier;
  prometheus::Registry& registry;
};

using ServiceFactory = std::function<absl::StatusOr<std::vector<std::unique_ptr<grpc::Service>>>(
    CommandServiceContext&)>;

struct CommandServiceSpec {
  std::string name;            // "contact": logs, metrics, default data folder data/<name>
  std::string topic;           // "crm.contact.events.v1"
  std::string grpc_listen;     // default of --grpc-listen
  std::string metrics_listen;  // default of --metrics-listen
  std::function<void(CLI::App&)> add_flags;  // the service's own settings, if any
  ServiceFactory make_services;
};

// Parses flags and CRM_* variables, opens the store, starts the relay and serves; health is
// SERVING once storage and relay are up. On SIGTERM/SIGINT: NOT_SERVING, drain calls, flush
// the relay (bounded), close RocksDB. Returns the exit code: 0 after a clean stop, 1 when
// start-up failed (logged), 2 for bad settings.
int RunCommandService(int argc, char** argv, const CommandServiceSpec& spec);

}  // namespace crm::service
