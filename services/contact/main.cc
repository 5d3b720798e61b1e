// contact-service: accounts and contacts. Settings: see `contact-service --help`.

#include "crm/service/command_service.h"
#include "service/contact_service.h"

int main(int argc, char** argv) {
  crm::contact::ContactLimits limits;
  return crm::service::RunCommandService(
      argc, argv,
      {.name = "contact",
       .topic = "crm.contact.events.v1",
       .grpc_listen = "127.0.0.1:7001",
       .metrics_listen = "127.0.0.1:9101",
       .add_flags =
           [&limits](CLI::App& app) {
             app.add_option("--default-phone-region", limits.default_phone_region,
                            "ISO 3166 region for phone numbers without a country code (e.g. GB); "
                            "phones are then stored in E.164")
                 ->envname("CRM_DEFAULT_PHONE_REGION")
                 ->check([](const std::string& region) {
                   return crm::contact::IsSupportedPhoneRegion(region)
                              ? std::string()
                              : "not a region libphonenumber knows (use e.g. GB, US, DE)";
                 });
           },
       .make_services = [&limits](crm::service::CommandServiceContext& context)
           -> absl::StatusOr<std::vector<std::unique_ptr<grpc::Service>>> {
         std::vector<std::unique_ptr<grpc::Service>> services;
         services.push_back(std::make_unique<crm::contact::ContactService>(
             context.store, context.verifier, limits));
         return services;
       }});
}
