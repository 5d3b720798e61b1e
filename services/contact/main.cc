// contact-service: accounts and contacts. Settings: see `contact-service --help`.

#include "crm/service/command_service.h"
#include "service/contact_service.h"

int main(int argc, char** argv) {
  return crm::service::RunCommandService(
      argc, argv,
      {.name = "contact",
       .topic = "crm.contact.events.v1",
       .grpc_listen = "127.0.0.1:7001",
       .metrics_listen = "127.0.0.1:9101",
       .make_services = [](crm::service::CommandServiceContext& context)
           -> absl::StatusOr<std::vector<std::unique_ptr<grpc::Service>>> {
         std::vector<std::unique_ptr<grpc::Service>> services;
         services.push_back(
             std::make_unique<crm::contact::ContactService>(context.store, context.verifier));
         return services;
       }});
}
