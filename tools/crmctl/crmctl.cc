// crmctl: the command line for people (and scripts, with -o json).
//
//   crmctl contact create-contact --given-name Ada --emails ada@example.com --request-id r1
//   crmctl metrics get-adoption-scorecard --period-kind iso-week
//   crmctl token --sub alice --scopes contacts:read,contacts:write
//   crmctl health 127.0.0.1:7001
//   crmctl list 127.0.0.1:7001 [SERVICE]
//   crmctl call 127.0.0.1:7001 crm.contact.v1.ContactService/GetContact '{...}'
//
// `crmctl <service> <method>` exists for every method of the four services, with flags
// generated from the request message (service_commands.h, request_flags.h). `call` works for
// any method of any server: it reads the method's types from the server's reflection service.
// Exit codes: 0 success, 1 the call failed (or not serving), 2 usage or input error.

#include <iostream>
#include <iterator>
#include <set>

#include "CLI/CLI.hpp"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "connection.h"
#include "crm/runtime/auth.h"
#include "crm/runtime/client.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/descriptor_database.h"
#include "google/protobuf/dynamic_message.h"
#include "google/protobuf/util/json_util.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "grpc/reflection/v1alpha/reflection.grpc.pb.h"
#include "grpcpp/grpcpp.h"
#include "nlohmann/json.hpp"
#include "service_commands.h"

namespace {

using crm::crmctl::Connection;
using crm::crmctl::Global;
using crm::crmctl::PrintError;

int UsageError(const std::string& message) { return crm::crmctl::UsageError(message); }

int Token(const crm::runtime::TokenClaims& claims, const std::string& secret) {
  auto token = crm::runtime::SignHs256(claims, secret);
  if (!token.ok()) return UsageError(std::string(token.status().message()));
  std::cout << *token << "\n";
  return 0;
}

int Health(const Global& global, Connection& c, const std::string& service) {
  auto channel = c.Channel();
  if (!channel.ok()) return UsageError(std::string(channel.status().message()));
  auto stub = grpc::health::v1::Health::NewStub(*channel);
  grpc::health::v1::HealthCheckRequest request;
  request.set_service(service);
  grpc::health::v1::HealthCheckResponse response;
  absl::Status status = crm::runtime::CallWithRetry(
      {.timeout = c.Timeout(), .idempotent = true},
      [&](grpc::ClientContext& context) { return stub->Check(&context, request, &response); });
  if (!status.ok()) return PrintError(global, status);
  const std::string state =
      grpc::health::v1::HealthCheckResponse::ServingStatus_Name(response.status());
  if (global.json()) {
    std::cout << nlohmann::json({{"status", state}}).dump() << "\n";
  } else {
    std::cout << state << "\n";
  }
  return response.status() == grpc::health::v1::HealthCheckResponse::SERVING ? 0 : 1;
}

// Descriptors fetched from a server's reflection service, dependencies included.
class RemoteSchema {
 public:
  explicit RemoteSchema(std::shared_ptr<grpc::Channel> channel, absl::Duration timeout)
      : stub_(grpc::reflection::v1alpha::ServerReflection::NewStub(std::move(channel))),
        timeout_(timeout) {}

  absl::StatusOr<std::vector<std::string>> ListServices() {
    grpc::reflection::v1alpha::ServerReflectionRequest request;
    request.set_list_services("");
    auto response = Ask(request);
    if (!response.ok()) return response.status();
    std::vector<std::string> names;
    for (const auto& service : response->list_services_response().service()) {
      names.push_back(service.name());
    }
    return names;
  }

  // Loads the file defining `symbol` and everything it imports.
  absl::StatusOr<const google::protobuf::DescriptorPool*> Load(const std::string& symbol) {
    grpc::reflection::v1alpha::ServerReflectionRequest request;
    request.set_file_containing_symbol(symbol);
    auto response = Ask(request);
    if (!response.ok()) return response.status();
    if (response->has_error_response()) {
      return absl::NotFoundError(absl::StrCat(symbol, " is not served at this address"));
    }
    std::vector<std::string> pending;
    auto add = [&](const grpc::reflection::v1alpha::ServerReflectionResponse& r) {
      for (const std::string& bytes : r.file_descriptor_response().file_descriptor_proto()) {
        google::protobuf::FileDescriptorProto file;
        if (!file.ParseFromString(bytes) || loaded_.contains(file.name())) continue;
        loaded_.insert(file.name());
        for (const std::string& dependency : file.dependency()) pending.push_back(dependency);
        database_.Add(file);
      }
    };
    add(*response);
    while (!pending.empty()) {
      const std::string name = pending.back();
      pending.pop_back();
      if (loaded_.contains(name)) continue;
      grpc::reflection::v1alpha::ServerReflectionRequest by_name;
      by_name.set_file_by_filename(name);
      auto dependency = Ask(by_name);
      if (!dependency.ok()) return dependency.status();
      add(*dependency);
    }
    return &pool_;
  }

 private:
  absl::StatusOr<grpc::reflection::v1alpha::ServerReflectionResponse> Ask(
      const grpc::reflection::v1alpha::ServerReflectionRequest& request) {
    grpc::reflection::v1alpha::ServerReflectionResponse response;
    absl::Status status = crm::runtime::CallWithRetry(
        {.timeout = timeout_, .idempotent = true}, [&](grpc::ClientContext& context) {
          auto stream = stub_->ServerReflectionInfo(&context);
          if (!stream->Write(request) || !stream->Read(&response)) {
            stream->WritesDone();
            grpc::Status finished = stream->Finish();
            return finished.ok() ? grpc::Status(grpc::StatusCode::UNAVAILABLE,
                                                "reflection stream ended early")
                                 : finished;
          }
          stream->WritesDone();
          return stream->Finish();
        });
    if (!status.ok()) return status;
    return response;
  }

  std::unique_ptr<grpc::reflection::v1alpha::ServerReflection::Stub> stub_;
  absl::Duration timeout_;
  google::protobuf::SimpleDescriptorDatabase database_;
  google::protobuf::DescriptorPool pool_{&database_};
  std::set<std::string> loaded_;
};

int List(const Global& global, Connection& c, const std::string& service) {
  auto channel = c.Channel();
  if (!channel.ok()) return UsageError(std::string(channel.status().message()));
  RemoteSchema schema(*channel, c.Timeout());
  std::vector<std::string> lines;
  if (service.empty()) {
    auto names = schema.ListServices();
    if (!names.ok()) return PrintError(global, names.status());
    lines = *names;
  } else {
    auto pool = schema.Load(service);
    if (!pool.ok()) return PrintError(global, pool.status());
    const auto* descriptor = (*pool)->FindServiceByName(service);
    if (descriptor == nullptr) return UsageError(absl::StrCat("no service ", service));
    for (int i = 0; i < descriptor->method_count(); ++i) {
      const auto* method = descriptor->method(i);
      lines.push_back(absl::StrCat(service, "/", method->name(), "(",
                                   method->input_type()->full_name(), ") returns (",
                                   method->output_type()->full_name(), ")"));
    }
  }
  if (global.json()) {
    std::cout << nlohmann::json(lines).dump(2) << "\n";
  } else {
    for (const auto& line : lines) std::cout << line << "\n";
  }
  return 0;
}

int Call(const Global& global, Connection& c, std::string method_name, std::string json) {
  // Accept "pkg.Service/Method" and "pkg.Service.Method".
  const size_t slash = method_name.find('/');
  const size_t split = slash != std::string::npos ? slash : method_name.rfind('.');
  if (split == std::string::npos || split == 0) {
    return UsageError(
        "method must be package.Service/Method, e.g. crm.contact.v1.ContactService/GetContact");
  }
  const std::string service = method_name.substr(0, split);
  const std::string method = method_name.substr(split + 1);
  if (json == "-") json.assign(std::istreambuf_iterator<char>(std::cin), {});

  auto channel = c.Channel();
  if (!channel.ok()) return UsageError(std::string(channel.status().message()));
  RemoteSchema schema(*channel, c.Timeout());
  auto pool = schema.Load(service);
  if (!pool.ok()) return PrintError(global, pool.status());
  const auto* descriptor = (*pool)->FindMethodByName(absl::StrCat(service, ".", method));
  if (descriptor == nullptr) {
    return UsageError(absl::StrCat("no method ", method, " in ", service, " (see: crmctl list ",
                                   c.address, " ", service, ")"));
  }
  google::protobuf::DynamicMessageFactory factory(*pool);
  std::unique_ptr<google::protobuf::Message> request(
      factory.GetPrototype(descriptor->input_type())->New());
  std::unique_ptr<google::protobuf::Message> response(
      factory.GetPrototype(descriptor->output_type())->New());
  if (auto parsed = google::protobuf::util::JsonStringToMessage(json, request.get());
      !parsed.ok()) {
    return UsageError(absl::StrCat("request is not a valid ", descriptor->input_type()->full_name(),
                                   " in JSON: ", parsed.message().as_string()));
  }

  absl::Status status =
      crm::crmctl::UnaryCall(*channel, absl::StrCat("/", service, "/", method), *request, *response,
                             {.bearer_token = c.token, .timeout = c.Timeout()});
  if (!status.ok()) return PrintError(global, status);
  auto out = crm::crmctl::ToJson(*response);
  if (!out.ok()) return PrintError(global, out.status());
  std::cout << *out;
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app("crmctl: command line for the CRM services", "crmctl");
  app.require_subcommand(1);
  app.fallthrough();  // -o json also after the subcommand
  Global global;
  app.add_option("-o,--output", global.output, "text or json")
      ->check(CLI::IsMember({"text", "json"}))
      ->capture_default_str();

  // crmctl <service> <method> [flags]: every method of the four services.
  crm::crmctl::ServiceCommands services(app);

  crm::runtime::TokenClaims claims;
  std::string scopes;
  std::string secret;
  std::string ttl = "12h";
  auto* token = app.add_subcommand("token", "mint a development token (HS256, dev secret)");
  token->add_option("--sub", claims.subject, "subject: the user or integration")->required();
  token
      ->add_option("--scopes", scopes,
                   "comma-separated: contacts:read, contacts:write, activities:read, "
                   "activities:write, pipeline:read, pipeline:write, metrics:read, admin")
      ->required();
  token->add_option("--kind", claims.kind, "user or service")
      ->check(CLI::IsMember({"user", "service"}))
      ->capture_default_str();
  token->add_option("--ttl", ttl, "lifetime, e.g. 1h")
      ->capture_default_str()
      ->check([](const std::string& t) {
        absl::Duration ignored;
        return absl::ParseDuration(t, &ignored) ? "" : "expects a duration such as 12h";
      });
  token->add_option("--secret", secret, "HS256 secret")
      ->envname("CRM_JWT_HS256_SECRET")
      ->required();
  token->add_option("--issuer", claims.issuer, "iss claim")
      ->envname("CRM_JWT_ISSUER")
      ->capture_default_str();
  token->add_option("--audience", claims.audience, "aud claim")
      ->envname("CRM_JWT_AUDIENCE")
      ->capture_default_str();

  Connection health_connection;
  std::string health_service;
  auto* health =
      app.add_subcommand("health", "ask a service whether it is serving (grpc.health.v1)");
  crm::crmctl::AddConnectionFlags(*health, health_connection, {.with_token = false});
  health->add_option("--service", health_service, "a service name; empty = the whole server");

  Connection list_connection;
  std::string list_service;
  auto* list = app.add_subcommand("list", "list the services of a server, or the methods of one");
  crm::crmctl::AddConnectionFlags(*list, list_connection, {.with_token = false});
  list->add_option("service", list_service, "e.g. crm.contact.v1.ContactService");

  Connection call_connection;
  std::string method;
  std::string json = "{}";
  auto* call =
      app.add_subcommand("call", "call any method with a JSON request; prints the JSON answer");
  crm::crmctl::AddConnectionFlags(*call, call_connection, {});
  call->add_option("method", method, "package.Service/Method")->required();
  call->add_option("request", json, "the request as JSON; - reads stdin")->capture_default_str();

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);
    std::cerr << "crmctl: " << e.what() << "\n(see crmctl --help)\n";
    return 2;
  }
  if (token->parsed()) {
    absl::ParseDuration(ttl, &claims.ttl);
    claims.issued_at = absl::Now();
    for (absl::string_view s : absl::StrSplit(scopes, ',', absl::SkipWhitespace())) {
      claims.scopes.emplace_back(s);
    }
    return Token(claims, secret);
  }
  if (health->parsed()) return Health(global, health_connection, health_service);
  if (list->parsed()) return List(global, list_connection, list_service);
  if (call->parsed()) return Call(global, call_connection, method, json);
  if (auto* chosen = services.Parsed()) return crm::crmctl::RunMethod(global, *chosen);
  return UsageError("no command (see crmctl --help)");
}
