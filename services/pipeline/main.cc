// pipeline-service: pipelines, leads and opportunities. Settings: see `pipeline-service --help`.

#include "crm/clients/contact_client.h"
#include "crm/runtime/config.h"
#include "crm/service/command_service.h"
#include "service/pipeline_service.h"

int main(int argc, char** argv) {
  crm::runtime::ChannelOptions contact_service{.target = "127.0.0.1:7001"};
  return crm::service::RunCommandService(
      argc, argv,
      {.name = "pipeline",
       .topic = "crm.pipeline.events.v1",
       .grpc_listen = "127.0.0.1:7003",
       .metrics_listen = "127.0.0.1:9103",
       .add_flags =
           [&contact_service](CLI::App& app) {
             crm::runtime::AddPeerFlags(app, "contact", contact_service);
           },
       .make_services = [&contact_service](crm::service::CommandServiceContext& context)
           -> absl::StatusOr<std::vector<std::unique_ptr<grpc::Service>>> {
         auto channel = crm::runtime::MakeChannel(contact_service);
         if (!channel.ok()) return channel.status();
         std::vector<std::unique_ptr<grpc::Service>> services;
         services.push_back(std::make_unique<crm::pipeline::PipelineService>(
             context.store, context.verifier,
             std::make_shared<crm::clients::ContactClient>(*channel)));
         return services;
       }});
}
