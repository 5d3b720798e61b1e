#include "crm/service/command_service.h"

#include "absl/strings/str_cat.h"
#include "crm/eventstore/probe.h"
#include "crm/kafka/probe.h"
#include "crm/kafka/relay.h"
#include "crm/runtime/config.h"
#include "crm/runtime/log.h"
#include "crm/runtime/server.h"

namespace crm::service {
namespace {

int Fail(std::string_view what, const absl::Status& status) {
  runtime::LogError(what, {{"error", status.ToString()}});
  return 1;
}

}  // namespace

int RunCommandService(int argc, char** argv, const CommandServiceSpec& spec) {
  runtime::BlockShutdownSignals();  // before any thread exists
  runtime::ServerOptions options{.service = spec.name,
                                 .grpc_listen = spec.grpc_listen,
                                 .metrics_listen = spec.metrics_listen,
                                 .data_dir = absl::StrCat("data/", spec.name)};
  std::string kafka_bootstrap;
  absl::Duration relay_stop_timeout = absl::Seconds(10);
  CLI::App app(absl::StrCat(spec.name, "-service"), absl::StrCat(spec.name, "-service"));
  runtime::AddServerFlags(app, options);
  app.add_option("--kafka-bootstrap", kafka_bootstrap, "Kafka bootstrap.servers (host:port,...)")
      ->envname("CRM_KAFKA_BOOTSTRAP")
      ->required();
  app.add_option_function<std::string>(
         "--relay-stop-timeout",
         [&](const std::string& text) {
           if (!absl::ParseDuration(text, &relay_stop_timeout)) {
             throw CLI::ValidationError("--relay-stop-timeout", "expects a duration such as 10s");
           }
         },
         "on shutdown, how long the relay may take to publish what is stored")
      ->envname("CRM_RELAY_STOP_TIMEOUT")
      ->default_str("10s");
  if (spec.add_flags) spec.add_flags(app);
  runtime::ParseOrExit(app, argc, argv, [&] { return runtime::ValidateServerOptions(options); });
  if (absl::Status status = runtime::InitLogging(options.service, options.log_level);
      !status.ok()) {
    std::fprintf(stderr, "%s: %s\n", app.get_name().c_str(), std::string(status.message()).c_str());
    return 2;
  }

  auto verifier = runtime::TokenVerifier::Create(options.auth);
  if (!verifier.ok()) return Fail("cannot verify tokens", verifier.status());
  auto host = runtime::ServiceHost::Create(options);
  if (!host.ok()) return Fail("cannot start", host.status());

  eventstore::EventStoreProbe store_probe((*host)->registry());
  auto store = eventstore::EventStore::Open(options.data_dir, {.observer = &store_probe});
  if (!store.ok()) return Fail("cannot open the event store", store.status());
  auto relay = kafka::Relay::Start(
      store->get(), {.topic = spec.topic,
                     .producer = {.bootstrap_servers = kafka_bootstrap, .client_id = spec.name},
                     .stop_timeout = relay_stop_timeout});
  if (!relay.ok()) return Fail("cannot start the relay", relay.status());
  auto relay_probe = std::make_shared<kafka::RelayProbe>(
      spec.topic, [relay = relay->get()] { return relay->Stats(); });
  (*host)->AddCollectable(relay_probe);

  CommandServiceContext context{
      .store = **store,
      .verifier = std::shared_ptr<const runtime::TokenVerifier>(std::move(*verifier)),
      .registry = (*host)->registry()};
  auto services = spec.make_services(context);
  if (!services.ok()) return Fail("cannot build the services", services.status());
  std::vector<grpc::Service*> raw;
  for (auto& service : *services) raw.push_back(service.get());
  if (absl::Status started = (*host)->Start(raw); !started.ok())
    return Fail("cannot serve", started);
  (*host)->SetServing(true);  // storage is open and the relay runs

  (*host)->WaitForShutdownSignal();  // returns once in-flight calls are done
  if (absl::Status stopped = (*relay)->Stop(); !stopped.ok()) {
    runtime::LogWarn("relay stopped early", {{"error", stopped.ToString()}});
  }
  runtime::LogInfo("stopped", {{"relay_checkpoint", (*relay)->Stats().checkpoint},
                               {"log_position", (*store)->LastPosition()}});
  services->clear();
  host->reset();  // metrics endpoint off before the relay it reads goes away
  relay->reset();
  store->reset();  // closes RocksDB
  return 0;
}

}  // namespace crm::service
