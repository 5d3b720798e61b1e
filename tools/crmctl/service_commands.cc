#include "service_commands.h"

#include <iostream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "crm/activity/v1/activity_service.pb.h"
#include "crm/activity/v1/events.pb.h"
#include "crm/contact/v1/contact_service.pb.h"
#include "crm/contact/v1/events.pb.h"
#include "crm/metrics/v1/metrics_service.pb.h"
#include "crm/pipeline/v1/events.pb.h"
#include "crm/pipeline/v1/pipeline_service.pb.h"
#include "render.h"

namespace crm::crmctl {
namespace {

namespace pb = google::protobuf;

constexpr char kFooter[] =
    "Flags: --<field> in kebab case; nested fields --<field>.<subfield>; the fields of the\n"
    "request's one nested message also without its prefix (the request's own fields win).\n"
    "Repeated fields: repeat the flag. Enums: short name (won) or full name. Bools: --x or\n"
    "--x=false. Times: RFC 3339 or YYYY-MM-DD. Durations: 30s. Field masks: a,b. Maps:\n"
    "key=value. Lists of messages: JSON or field=value,field=value. Money: integer minor\n"
    "units. --json gives a base request that the flags override. See tools/crmctl/README.md.";

const pb::ServiceDescriptor* ServiceOf(const pb::Descriptor* request, const char* name) {
  return request->file()->FindServiceByName(name);
}

// Reads that may be retried when the service is unavailable; commands only with request_id.
bool Idempotent(const pb::MethodDescriptor* method, const pb::Message& request) {
  for (const char* read : {"Get", "List", "Find", "Query", "Validate"}) {
    if (absl::StartsWith(method->name(), read)) return true;
  }
  const pb::FieldDescriptor* request_id = request.GetDescriptor()->FindFieldByName("request_id");
  return request_id != nullptr && !request_id->is_repeated() &&
         request_id->cpp_type() == pb::FieldDescriptor::CPPTYPE_STRING &&
         !request.GetReflection()->GetString(request, request_id).empty();
}

std::unique_ptr<pb::Message> New(const pb::Descriptor* type) {
  return std::unique_ptr<pb::Message>(
      pb::MessageFactory::generated_factory()->GetPrototype(type)->New());
}

}  // namespace

const std::vector<ServiceEntry>& Services() {
  // The event payload types are linked in (and so are in the generated pool) for the
  // google.protobuf.Any payloads of the event history answers.
  static const bool events_linked = crm::contact::v1::ContactCreated::descriptor() != nullptr &&
                                    crm::activity::v1::ActivityLogged::descriptor() != nullptr &&
                                    crm::pipeline::v1::LeadCaptured::descriptor() != nullptr;
  (void)events_linked;
  static const auto* services = new std::vector<ServiceEntry>{
      {"contact", ServiceOf(crm::contact::v1::CreateContactRequest::descriptor(), "ContactService"),
       "127.0.0.1:7001", "CRM_CONTACT_ADDRESS"},
      {"activity",
       ServiceOf(crm::activity::v1::LogActivityRequest::descriptor(), "ActivityService"),
       "127.0.0.1:7002", "CRM_ACTIVITY_ADDRESS"},
      {"pipeline",
       ServiceOf(crm::pipeline::v1::CaptureLeadRequest::descriptor(), "PipelineService"),
       "127.0.0.1:7003", "CRM_PIPELINE_ADDRESS"},
      {"metrics", ServiceOf(crm::metrics::v1::QueryKpiRequest::descriptor(), "MetricsService"),
       "127.0.0.1:7004", "CRM_METRICS_ADDRESS"},
  };
  return *services;
}

ServiceCommands::ServiceCommands(CLI::App& app) {
  std::set<std::string> reserved = ConnectionFlagNames();
  reserved.insert({"json", "dry-run"});
  for (const ServiceEntry& service : Services()) {
    CLI::App* service_command = app.add_subcommand(
        service.command, absl::StrCat(service.descriptor->full_name(), " at ",
                                      service.default_address, " (", service.address_env, ")"));
    service_command->require_subcommand(1);
    service_command->fallthrough();
    for (int i = 0; i < service.descriptor->method_count(); ++i) {
      const pb::MethodDescriptor* method = service.descriptor->method(i);
      auto command = std::make_unique<MethodCommand>();
      command->service = &service;
      command->method = method;
      command->command = service_command->add_subcommand(
          CommandName(method->name()),
          absl::StrCat(method->name(), ": ", method->input_type()->name(), " -> ",
                       method->output_type()->name()));
      command->command->fallthrough();
      command->command->footer(kFooter);
      command->flags =
          std::make_unique<RequestFlags>(method->input_type(), *command->command, reserved);
      command->command
          ->add_option("--json", command->json,
                       "the request as proto3 JSON (- reads stdin); flags override its fields")
          ->group("Request");
      command->command
          ->add_flag("--dry-run", command->dry_run, "print the request as JSON, do not call")
          ->group("Request");
      AddConnectionFlags(*command->command, command->connection,
                         {.positional_address = false,
                          .default_address = service.default_address,
                          .address_env = service.address_env});
      methods_.push_back(std::move(command));
    }
  }
}

MethodCommand* ServiceCommands::Parsed() const {
  for (const auto& method : methods_) {
    if (method->command->parsed()) return method.get();
  }
  return nullptr;
}

absl::StatusOr<std::unique_ptr<pb::Message>> BuildRequest(const MethodCommand& command) {
  std::unique_ptr<pb::Message> request = New(command.method->input_type());
  if (absl::Status filled = command.flags->Fill(command.json, *request); !filled.ok()) {
    return filled;
  }
  return request;
}

int RunMethod(const Global& global, MethodCommand& command) {
  auto request = BuildRequest(command);
  if (!request.ok()) return UsageError(request.status().message());
  if (command.dry_run) {
    auto json = ToJson(**request, /*with_defaults=*/false);
    if (!json.ok()) return UsageError(json.status().message());
    std::cout << *json;
    return kExitOk;
  }
  auto channel = command.connection.Channel();
  if (!channel.ok()) return UsageError(channel.status().message());
  std::unique_ptr<pb::Message> response = New(command.method->output_type());
  const std::string path =
      absl::StrCat("/", command.service->descriptor->full_name(), "/", command.method->name());
  absl::Status status = UnaryCall(*channel, path, **request, *response,
                                  {.bearer_token = command.connection.token,
                                   .timeout = command.connection.Timeout(),
                                   .idempotent = Idempotent(command.method, **request)});
  if (!status.ok()) {
    return PrintError(global, status,
                      [&](absl::string_view field) { return command.flags->FlagFor(field); });
  }
  if (global.json()) {
    auto json = ToJson(*response);
    if (!json.ok()) return PrintError(global, json.status());
    std::cout << *json;
  } else {
    std::cout << RenderText(*response);
  }
  return kExitOk;
}

}  // namespace crm::crmctl
