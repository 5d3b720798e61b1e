// crmctl: the command line for people (and scripts, with -o json).
//
//   crmctl token --sub alice --scopes contacts:read,contacts:write
//   crmctl health 127.0.0.1:7001 --plaintext
//   crmctl list 127.0.0.1:7001 --plaintext [SERVICE]
//   crmctl call 127.0.0.1:7001 --plaintext crm.contact.v1.ContactService/GetContact '{...}'
//
// `call` works for every method of every service: it reads the method's types from the
// server's reflection service, converts the JSON request, and prints the answer as JSON.
// Exit codes: 0 success, 1 the call failed (or not serving), 2 usage or input error.

#include <cstdio>
#include <future>
#include <iostream>
#include <iterator>
#include <set>

#include "CLI/CLI.hpp"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "crm/runtime/auth.h"
#include "crm/runtime/client.h"
#include "crm/runtime/status.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/descriptor_database.h"
#include "google/protobuf/dynamic_message.h"
#include "google/protobuf/util/json_util.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "grpc/reflection/v1alpha/reflection.grpc.pb.h"
#include "grpcpp/generic/generic_stub.h"
#include "grpcpp/grpcpp.h"
#include "nlohmann/json.hpp"

namespace {

using crm::runtime::ChannelOptions;

struct Global {
  std::string output = "text";
};

struct Connection {
  std::string address;
  ChannelOptions channel;
  std::string timeout = "10s";
  std::string token;

  absl::Duration Timeout() const {
    absl::Duration parsed = absl::Seconds(10);
    absl::ParseDuration(timeout, &parsed);
    return parsed;
  }
};

void AddConnectionFlags(CLI::App& command, Connection& c, bool with_token) {
  command.add_option("address", c.address, "service address host:port")->required();
  command.add_flag("--plaintext", c.channel.plaintext, "no TLS (local development)")
      ->envname("CRM_PLAINTEXT");
  command.add_option("--ca-file", c.channel.ca_file, "CA of the server certificate (PEM)")
      ->envname("CRM_CA_FILE")
      ->check(CLI::ExistingFile);
  command.add_option("--cert-file", c.channel.cert_file, "client certificate for mTLS (PEM)")
      ->envname("CRM_CERT_FILE")
      ->check(CLI::ExistingFile);
  command.add_option("--key-file", c.channel.key_file, "client key for mTLS (PEM)")
      ->envname("CRM_KEY_FILE")
      ->check(CLI::ExistingFile);
  command.add_option("--server-name", c.channel.server_name,
                     "expected name in the server certificate");
  command.add_option("--timeout", c.timeout, "deadline of the call, e.g. 500ms, 10s")
      ->capture_default_str()
      ->check([](const std::string& text) {
        absl::Duration ignored;
        return absl::ParseDuration(text, &ignored) ? "" : "expects a duration such as 10s";
      });
  if (with_token) {
    command.add_option("--token", c.token, "bearer token (see `crmctl token`)")
        ->envname("CRM_TOKEN");
  }
}

// Prints a failed call: text on stderr, or JSON on stdout with -o json. Returns exit code 1.
int PrintError(const Global& global, const absl::Status& status) {
  const auto violations = crm::runtime::Violations(status);
  if (global.output == "json") {
    nlohmann::json error = {{"code", absl::StatusCodeToString(status.code())},
                            {"message", std::string(status.message())}};
    error["field_violations"] = nlohmann::json::array();
    for (const auto& v : violations) {
      error["field_violations"].push_back({{"field", v.field}, {"description", v.description}});
    }
    std::cout << nlohmann::json({{"error", error}}).dump(2) << "\n";
  } else {
    std::cerr << "crmctl: " << absl::StatusCodeToString(status.code()) << ": " << status.message()
              << "\n";
    for (const auto& v : violations) std::cerr << "  " << v.field << ": " << v.description << "\n";
  }
  return 1;
}

int UsageError(const std::string& message) {
  std::cerr << "crmctl: " << message << "\n";
  return 2;
}

absl::StatusOr<std::shared_ptr<grpc::Channel>> Channel(Connection& c) {
  c.channel.target = c.address;
  return crm::runtime::MakeChannel(c.channel);
}

int Token(const crm::runtime::TokenClaims& claims, const std::string& secret) {
  auto token = crm::runtime::SignHs256(claims, secret);
  if (!token.ok()) return UsageError(std::string(token.status().message()));
  std::cout << *token << "\n";
  return 0;
}

int Health(const Global& global, Connection& c, const std::string& service) {
  auto channel = Channel(c);
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
  if (global.output == "json") {
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
  auto channel = Channel(c);
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
  if (global.output == "json") {
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

  auto channel = Channel(c);
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

  grpc::GenericStub stub(*channel);
  const std::string path = absl::StrCat("/", service, "/", method);
  grpc::ByteBuffer response_bytes;
  absl::Status status = crm::runtime::CallWithRetry(
      {.bearer_token = c.token, .timeout = c.Timeout()}, [&](grpc::ClientContext& context) {
        grpc::Slice slice(request->SerializeAsString());
        grpc::ByteBuffer request_bytes(&slice, 1);
        std::promise<grpc::Status> done;
        stub.UnaryCall(&context, path, grpc::StubOptions(), &request_bytes, &response_bytes,
                       [&done](grpc::Status s) { done.set_value(std::move(s)); });
        return done.get_future().get();
      });
  if (!status.ok()) return PrintError(global, status);
  std::vector<grpc::Slice> slices;
  std::string bytes;
  if (response_bytes.Dump(&slices).ok()) {
    for (const auto& slice : slices)
      bytes.append(reinterpret_cast<const char*>(slice.begin()), slice.size());
  }
  if (!response->ParseFromString(bytes))
    return PrintError(global, absl::DataLossError("unreadable response"));
  std::string out;
  google::protobuf::util::JsonPrintOptions options;
  options.add_whitespace = true;
  options.always_print_primitive_fields = true;
  options.preserve_proto_field_names = true;
  if (!google::protobuf::util::MessageToJsonString(*response, &out, options).ok()) {
    return PrintError(global, absl::InternalError("cannot print the answer as JSON"));
  }
  std::cout << out;
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app("crmctl: command line for the CRM services", "crmctl");
  app.require_subcommand(1);
  Global global;
  app.add_option("-o,--output", global.output, "text or json")
      ->check(CLI::IsMember({"text", "json"}))
      ->capture_default_str();

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
  AddConnectionFlags(*health, health_connection, /*with_token=*/false);
  health->add_option("--service", health_service, "a service name; empty = the whole server");

  Connection list_connection;
  std::string list_service;
  auto* list = app.add_subcommand("list", "list the services of a server, or the methods of one");
  AddConnectionFlags(*list, list_connection, /*with_token=*/false);
  list->add_option("service", list_service, "e.g. crm.contact.v1.ContactService");

  Connection call_connection;
  std::string method;
  std::string json = "{}";
  auto* call =
      app.add_subcommand("call", "call any method with a JSON request; prints the JSON answer");
  AddConnectionFlags(*call, call_connection, /*with_token=*/true);
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
  return Call(global, call_connection, method, json);
}
