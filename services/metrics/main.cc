// metrics-service: projections of the contact, activity and pipeline topics and the CRM KPIs
// over gRPC and Prometheus. Settings: see `metrics-service --help`.

#include "absl/strings/str_cat.h"
#include "crm/runtime/config.h"
#include "crm/runtime/log.h"
#include "crm/runtime/server.h"
#include "service/kpi_gauges.h"
#include "service/metrics_service.h"
#include "service/projector.h"

namespace {

int Fail(std::string_view what, const absl::Status& status) {
  crm::runtime::LogError(what, {{"error", status.ToString()}});
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  crm::runtime::BlockShutdownSignals();  // before any thread exists
  crm::runtime::ServerOptions options{.service = "metrics",
                                      .grpc_listen = "127.0.0.1:7004",
                                      .metrics_listen = "127.0.0.1:9104",
                                      .data_dir = "data/metrics"};
  crm::metrics::ProjectorOptions projector_options;
  bool per_rep_gauges = false;
  std::string session_timeout_ms = "6000";
  CLI::App app("metrics-service", "metrics-service");
  crm::runtime::AddServerFlags(app, options);
  app.add_option("--kafka-bootstrap", projector_options.bootstrap_servers,
                 "Kafka bootstrap.servers (host:port,...)")
      ->envname("CRM_KAFKA_BOOTSTRAP")
      ->required();
  app.add_option("--consumer-group", projector_options.group_prefix,
                 "Consumer group prefix; each replica needs its own (it reads every partition)")
      ->envname("CRM_CONSUMER_GROUP");
  app.add_option("--consumer-session-timeout-ms", session_timeout_ms,
                 "Kafka session.timeout.ms of the consumer")
      ->envname("CRM_CONSUMER_SESSION_TIMEOUT_MS");
  app.add_flag("--rebuild", projector_options.rebuild_at_start,
               "Rebuild every projection from offset 0 into a fresh column family at start; the "
               "current one answers until the rebuild has caught up")
      ->envname("CRM_REBUILD");
  app.add_flag("--kpi-gauges-per-rep", per_rep_gauges,
               "Also export behaviour KPIs per rep to Prometheus (one series per rep)")
      ->envname("CRM_KPI_GAUGES_PER_REP");
  crm::runtime::ParseOrExit(app, argc, argv,
                            [&] { return crm::runtime::ValidateServerOptions(options); });
  if (absl::Status status = crm::runtime::InitLogging(options.service, options.log_level);
      !status.ok()) {
    std::fprintf(stderr, "metrics-service: %s\n", std::string(status.message()).c_str());
    return 2;
  }
  projector_options.data_dir = options.data_dir;
  projector_options.consumer_settings = {{"session.timeout.ms", session_timeout_ms},
                                         {"heartbeat.interval.ms", "500"}};

  auto verifier = crm::runtime::TokenVerifier::Create(options.auth);
  if (!verifier.ok()) return Fail("cannot verify tokens", verifier.status());
  auto host = crm::runtime::ServiceHost::Create(options);
  if (!host.ok()) return Fail("cannot start", host.status());
  auto projector = crm::metrics::Projector::Start(projector_options);
  if (!projector.ok()) return Fail("cannot open the projections", projector.status());
  auto gauges = std::make_shared<crm::metrics::KpiGauges>(**projector, per_rep_gauges);
  (*host)->AddCollectable(gauges);

  crm::metrics::MetricsService service(
      **projector, std::shared_ptr<const crm::runtime::TokenVerifier>(std::move(*verifier)));
  if (absl::Status started = (*host)->Start({&service}); !started.ok()) {
    return Fail("cannot serve", started);
  }
  (*host)->SetServing(true);
  crm::runtime::LogInfo("projection loaded", {{"generation", (*projector)->Stats().generation}});

  // Waiting readers are answered at once rather than holding the shutdown until their waits
  // run out.
  (*host)->WaitForShutdownSignal([&projector] { (*projector)->EndWaits(); });
  (*projector)->Stop();
  host->reset();
  projector->reset();
  return 0;
}
