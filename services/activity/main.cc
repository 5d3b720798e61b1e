// activity-service: activities from every channel, tasks and customer cases. Settings: see
// `activity-service --help`.

#include "crm/clients/contact_client.h"
#include "crm/clients/pipeline_client.h"
#include "crm/runtime/config.h"
#include "crm/service/command_service.h"
#include "service/activity_service.h"

int main(int argc, char** argv) {
  crm::runtime::ChannelOptions contact_service{.target = "127.0.0.1:7001"};
  crm::runtime::ChannelOptions pipeline_service{.target = "127.0.0.1:7003"};
  int contact_cache_ttl_ms = 0;
  return crm::service::RunCommandService(
      argc, argv,
      {.name = "activity",
       .topic = "crm.activity.events.v1",
       .grpc_listen = "127.0.0.1:7002",
       .metrics_listen = "127.0.0.1:9102",
       .add_flags =
           [&](CLI::App& app) {
             crm::runtime::AddPeerFlags(app, "contact", contact_service);
             crm::runtime::AddPeerFlags(app, "pipeline", pipeline_service);
             app.add_option("--contact-cache-ttl-ms", contact_cache_ttl_ms,
                            "Keep contact-service's answer about a live contact this long (0: "
                            "ask every time; archives and merges show up after at most the TTL)")
                 ->envname("CRM_CONTACT_CACHE_TTL_MS")
                 ->check(CLI::Range(0, 3'600'000));
           },
       .make_services = [&](crm::service::CommandServiceContext& context)
           -> absl::StatusOr<std::vector<std::unique_ptr<grpc::Service>>> {
         auto contacts = crm::runtime::MakeChannel(contact_service);
         if (!contacts.ok()) return contacts.status();
         auto pipeline = crm::runtime::MakeChannel(pipeline_service);
         if (!pipeline.ok()) return pipeline.status();
         std::vector<std::unique_ptr<grpc::Service>> services;
         services.push_back(std::make_unique<crm::activity::ActivityService>(
             context.store, context.verifier,
             std::make_shared<crm::clients::ContactClient>(*contacts),
             std::make_shared<crm::clients::PipelineClient>(*pipeline),
             crm::activity::ActivityLimits{}, crm::eventsourcing::BusinessTimeBounds{},
             absl::Milliseconds(contact_cache_ttl_ms)));
         return services;
       }});
}
