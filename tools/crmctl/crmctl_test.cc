// crmctl as people use it: the binary against the echo test service and against the real
// contact-service; and in process, the flags generated for every method and the tables.

#include <algorithm>
#include <csignal>
#include <cstdlib>

#include "CLI/CLI.hpp"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "connection.h"
#include "crm/activity/v1/activity_service.pb.h"
#include "crm/contact/v1/contact_service.pb.h"
#include "crm/kafka/mock_cluster.h"
#include "crm/metrics/v1/metrics_service.pb.h"
#include "crm/pipeline/v1/pipeline_service.pb.h"
#include "crm/runtime/auth.h"
#include "crm/testing/service_process.h"
#include "crm/testing/subprocess.h"
#include "crm/testing/testing.h"
#include "echo_process.h"
#include "gmock/gmock.h"
#include "google/protobuf/text_format.h"
#include "google/protobuf/util/message_differencer.h"
#include "google/protobuf/util/time_util.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "render.h"
#include "request_flags.h"
#include "service_commands.h"

namespace {

namespace pb = google::protobuf;
namespace metrics = crm::metrics::v1;
using ::crm::testing::IsOk;
using ::crm::testing::StatusIs;
using ::crm::testing::Subprocess;
using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::MatchesRegex;
using ::testing::StartsWith;

constexpr char kSecret[] = "crmctl-test-secret-crmctl-test-secret";

struct Result {
  int exit_code = -1;
  std::string out;
  std::string err;
};

Result Crmctl(std::vector<std::string> args) {
  args.insert(args.begin(), CRM_CRMCTL);
  Subprocess process(args);
  Result result;
  while (auto line = process.ReadStdoutLine()) result.out += *line + "\n";
  result.err = process.DrainStderr();
  result.exit_code = process.WaitForExitCode().value_or(-1);
  return result;
}

class CrmctlTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(server_.serving()) << server_.process().DrainStderr();
    address_ = server_.address();
  }
  std::string TokenFor(const std::string& scopes) {
    Result minted = Crmctl({"token", "--sub", "alice", "--scopes", scopes, "--secret", kSecret});
    EXPECT_EQ(minted.exit_code, 0) << minted.err;
    return std::string(absl::StripAsciiWhitespace(minted.out));
  }

  crm::runtime::EchoProcess server_{CRM_ECHO_SERVER, kSecret};
  std::string address_;
};

TEST_F(CrmctlTest, TokenIsAcceptedByTheServicesVerifier) {
  Result minted =
      Crmctl({"token", "--sub", "importer", "--scopes", "contacts:write, pipeline:write", "--kind",
              "service", "--secret", kSecret});
  ASSERT_EQ(minted.exit_code, 0) << minted.err;
  auto verifier = crm::runtime::TokenVerifier::Create({.hs256_secret = kSecret});
  ASSERT_TRUE(verifier.ok());
  auto principal = (*verifier)->Verify(
      "Bearer " + std::string(absl::StripAsciiWhitespace(minted.out)), absl::Now());
  ASSERT_TRUE(principal.ok()) << principal.status();
  EXPECT_EQ(principal->subject, "importer");
  EXPECT_TRUE(principal->scopes.contains("pipeline:write"));
  EXPECT_EQ(principal->kind, crm::common::v1::ACTOR_KIND_SERVICE);
}

TEST_F(CrmctlTest, HealthAndList) {
  Result health = Crmctl({"health", address_, "--plaintext"});
  EXPECT_EQ(health.exit_code, 0) << health.err;
  EXPECT_EQ(health.out, "SERVING\n");
  Result loopback = Crmctl({"health", address_});
  EXPECT_EQ(loopback.exit_code, 0) << "plaintext is the default on loopback: " << loopback.err;
  Result tls = Crmctl({"health", address_, "--tls", "--timeout", "2s"});
  EXPECT_EQ(tls.exit_code, 1) << "the echo server speaks no TLS";

  Result services = Crmctl({"list", address_, "--plaintext"});
  EXPECT_EQ(services.exit_code, 0) << services.err;
  EXPECT_THAT(services.out, HasSubstr("crm.runtime.testing.v1.EchoService\n"));
  Result methods = Crmctl({"list", address_, "--plaintext", "crm.runtime.testing.v1.EchoService"});
  EXPECT_THAT(methods.out,
              HasSubstr("crm.runtime.testing.v1.EchoService/Echo(crm.runtime.testing."
                        "v1.EchoRequest) returns (crm.runtime.testing.v1.EchoResponse)"));
}

TEST_F(CrmctlTest, CallsAnyMethodWithJson) {
  Result echoed = Crmctl({"call", address_, "--plaintext", "--token", TokenFor("contacts:read"),
                          "crm.runtime.testing.v1.EchoService/Echo", R"({"text": "hello"})"});
  ASSERT_EQ(echoed.exit_code, 0) << echoed.err;
  const auto answer = nlohmann::json::parse(echoed.out);
  EXPECT_EQ(answer["text"], "hello");
  EXPECT_EQ(answer["actor_id"], "alice");
}

TEST_F(CrmctlTest, ErrorsAreClearAndMachineReadable) {
  Result refused = Crmctl({"call", address_, "--plaintext", "--token", TokenFor("contacts:write"),
                           "crm.runtime.testing.v1.EchoService/Refuse", "{}"});
  EXPECT_EQ(refused.exit_code, 1);
  EXPECT_THAT(refused.err, HasSubstr("INVALID_ARGUMENT"));
  EXPECT_THAT(refused.err, HasSubstr("\n  text: must not be empty\n"));

  Result as_json =
      Crmctl({"-o", "json", "call", address_, "--plaintext", "--token", TokenFor("contacts:write"),
              "crm.runtime.testing.v1.EchoService/Refuse"});
  EXPECT_EQ(as_json.exit_code, 1);
  const auto error = nlohmann::json::parse(as_json.out)["error"];
  EXPECT_EQ(error["code"], "INVALID_ARGUMENT");
  EXPECT_EQ(error["field_violations"][1]["field"], "delay_ms");

  Result no_token =
      Crmctl({"call", address_, "--plaintext", "crm.runtime.testing.v1.EchoService/Echo"});
  EXPECT_EQ(no_token.exit_code, 1);
  EXPECT_THAT(no_token.err, HasSubstr("UNAUTHENTICATED"));

  Result bad_json = Crmctl({"call", address_, "--plaintext",
                            "crm.runtime.testing.v1.EchoService/Echo", R"({"txet": 1})"});
  EXPECT_EQ(bad_json.exit_code, 2);
  EXPECT_THAT(bad_json.err, HasSubstr("crm.runtime.testing.v1.EchoRequest"));

  Result no_method =
      Crmctl({"call", address_, "--plaintext", "crm.runtime.testing.v1.EchoService/Nope"});
  EXPECT_EQ(no_method.exit_code, 2);
  EXPECT_THAT(no_method.err, HasSubstr("no method Nope"));

  Result usage = Crmctl({"token", "--sub", "alice"});
  EXPECT_EQ(usage.exit_code, 2);
  EXPECT_THAT(usage.err, HasSubstr("--scopes"));
}

// --- generated commands: every method, flags into requests ----------------------------------

// Parses a crmctl command line in process, as main() does; returns the request it builds.
absl::StatusOr<std::unique_ptr<pb::Message>> RequestOf(std::vector<std::string> args) {
  CLI::App app;
  app.fallthrough();
  std::string output;
  app.add_option("-o,--output", output);
  crm::crmctl::ServiceCommands commands(app);
  std::reverse(args.begin(), args.end());  // CLI11 takes the arguments last first
  try {
    app.parse(args);
  } catch (const CLI::ParseError& e) {
    return absl::InvalidArgumentError(e.what());
  }
  const crm::crmctl::MethodCommand* chosen = commands.Parsed();
  if (chosen == nullptr) return absl::InvalidArgumentError("no method chosen");
  return crm::crmctl::BuildRequest(*chosen);
}

MATCHER_P(EqualsProto, text, "equals the message " + std::string(text)) {
  std::unique_ptr<pb::Message> expected(arg.New());
  if (!pb::TextFormat::ParseFromString(text, expected.get())) {
    *result_listener << "the expected text does not parse as " << arg.GetTypeName();
    return false;
  }
  pb::util::MessageDifferencer differencer;
  std::string report;
  differencer.ReportDifferencesToString(&report);
  if (differencer.Compare(*expected, arg)) return true;
  *result_listener << "differences:\n" << report << "actual: " << arg.ShortDebugString();
  return false;
}

TEST(GeneratedCommands, EveryMethodOfTheFourServicesHasASubcommand) {
  CLI::App app;
  crm::crmctl::ServiceCommands commands(app);
  // Listed here, not taken from crmctl, so that a service crmctl forgot fails the test.
  const std::vector<std::pair<std::string, const pb::ServiceDescriptor*>> services = {
      {"contact", crm::contact::v1::CreateContactRequest::descriptor()->file()->FindServiceByName(
                      "ContactService")},
      {"activity", crm::activity::v1::LogActivityRequest::descriptor()->file()->FindServiceByName(
                       "ActivityService")},
      {"pipeline", crm::pipeline::v1::CaptureLeadRequest::descriptor()->file()->FindServiceByName(
                       "PipelineService")},
      {"metrics", crm::metrics::v1::QueryKpiRequest::descriptor()->file()->FindServiceByName(
                      "MetricsService")}};
  int methods = 0;
  for (const auto& [name, service] : services) {
    ASSERT_NE(service, nullptr) << name;
    const auto matching =
        app.get_subcommands([&](const CLI::App* command) { return command->get_name() == name; });
    ASSERT_EQ(matching.size(), 1u) << "no subcommand " << name;
    CLI::App* service_command = matching.front();
    EXPECT_EQ(service_command->get_subcommands({}).size(),
              static_cast<size_t>(service->method_count()))
        << name;
    for (int i = 0; i < service->method_count(); ++i) {
      const pb::MethodDescriptor* method = service->method(i);
      ++methods;
      const std::string command_name = crm::crmctl::CommandName(method->name());
      EXPECT_EQ(service_command
                    ->get_subcommands([&](const CLI::App* command) {
                      return command->get_name() == command_name;
                    })
                    .size(),
                1u)
          << "crmctl " << name << " " << command_name << " for " << method->full_name();
    }
  }
  EXPECT_EQ(methods, static_cast<int>(commands.methods().size()));

  // Every field of every request can be given as a flag (or, for a nested message, its fields).
  for (const auto& command : commands.methods()) {
    const pb::Descriptor* request = command->method->input_type();
    for (int i = 0; i < request->field_count(); ++i) {
      const auto& flags = command->flags->flags();
      EXPECT_TRUE(std::any_of(flags.begin(), flags.end(),
                              [&](const crm::crmctl::FieldFlag& flag) {
                                return flag.path.front() == request->field(i);
                              }))
          << request->field(i)->full_name() << " has no flag";
    }
  }
}

TEST(GeneratedCommands, NestedRepeatedMapEnumAndTimeFlags) {
  auto request = RequestOf({"contact",
                            "create-contact",
                            "--given-name",
                            "Ada",
                            "--contact.family-name",
                            "Lovelace",
                            "--emails",
                            "ada@example.com",
                            "--contact.emails",
                            "ada@work.example",
                            "--attributes",
                            "job_title=CTO",
                            "--attributes",
                            "team=a=b",
                            "--lifecycle-stage",
                            "former-customer",
                            "--marketing-consent",
                            "--request-id",
                            "r1",
                            "--occurred-at",
                            "2026-11-20T14:00:00Z",
                            "--contact-id",
                            "c-ada",
                            "--contact.contact-id",
                            "ignored-by-the-service"});
  ASSERT_THAT(request, IsOk());
  EXPECT_THAT(**request, EqualsProto(R"pb(
    contact_id: "c-ada"
    contact {
      contact_id: "ignored-by-the-service"
      given_name: "Ada"
      family_name: "Lovelace"
      emails: [ "ada@example.com", "ada@work.example" ]
      attributes { key: "job_title" value: "CTO" }
      attributes { key: "team" value: "a=b" }
      lifecycle_stage: LIFECYCLE_STAGE_FORMER_CUSTOMER
      marketing_consent: true
    }
    request_id: "r1"
    occurred_at { seconds: 1795183200 }
  )pb"));
}

TEST(GeneratedCommands, EnumsByShortOrFullName) {
  auto won =
      RequestOf({"pipeline", "close-opportunity", "--opportunity-id", "o1", "--outcome", "won"});
  ASSERT_THAT(won, IsOk());
  EXPECT_THAT(**won, EqualsProto(R"pb(opportunity_id: "o1" outcome: OPPORTUNITY_STATUS_WON)pb"));
  auto lost =
      RequestOf({"pipeline", "close-opportunity", "--opportunity-id", "o1", "--outcome",
                 "OPPORTUNITY_STATUS_LOST", "--reason", "price", "--expected-version", "4"});
  ASSERT_THAT(lost, IsOk());
  EXPECT_THAT(**lost, EqualsProto(R"pb(opportunity_id: "o1"
                                       outcome: OPPORTUNITY_STATUS_LOST
                                       reason: "price"
                                       expected_version: 4)pb"));
  auto types = RequestOf(
      {"activity", "list-timeline", "--contact-id", "c1", "--types", "visit", "--types", "CALL"});
  ASSERT_THAT(types, IsOk());
  EXPECT_THAT(**types, EqualsProto(R"pb(contact_id: "c1"
                                        types: [ ACTIVITY_TYPE_VISIT, ACTIVITY_TYPE_CALL ])pb"));
}

TEST(GeneratedCommands, KpiQueryWithTimesDurationsAndListsOfMessages) {
  auto request = RequestOf({"metrics",
                            "query-kpi",
                            "--kpi",
                            "win_rate",
                            "--period-kind",
                            "month",
                            "--start-time",
                            "2026-11-01T00:00:00Z",
                            "--end-time",
                            "2026-12-01",
                            "--group-by",
                            "owner",
                            "--group-by",
                            "region",
                            "--filters",
                            "dimension=region,values=south,values=north",
                            "--filters",
                            R"({"dimension": "owner", "values": ["rep-1"]})",
                            "--max-wait",
                            "30s",
                            "--consistency.min-versions",
                            "stream=activity/act-1,version=3"});
  ASSERT_THAT(request, IsOk());
  EXPECT_THAT(**request, EqualsProto(R"pb(
    kpi: "win_rate"
    period_kind: PERIOD_KIND_MONTH
    start_time { seconds: 1793491200 }
    end_time { seconds: 1796083200 }
    filters {
      dimension: "region"
      values: [ "south", "north" ]
    }
    filters { dimension: "owner" values: "rep-1" }
    group_by: [ "owner", "region" ]
    consistency {
      min_versions { stream: "activity/act-1" version: 3 }
      max_wait { seconds: 30 }
    }
  )pb"));
}

TEST(GeneratedCommands, MasksDatesDeepNestingAndJsonBase) {
  auto update = RequestOf({"contact", "update-contact", "--contact.contact-id", "c1", "--region",
                           "south", "--update-mask", "region, ownerId", "--expected-version", "2"});
  ASSERT_THAT(update, IsOk());
  EXPECT_THAT(**update, EqualsProto(R"pb(contact { contact_id: "c1" region: "south" }
                                         update_mask { paths: [ "region", "owner_id" ] }
                                         expected_version: 2)pb"));

  auto lead = RequestOf({"pipeline", "capture-lead", "--source", "webinar", "--person.email",
                         "grace@example.com", "--lead.company.display-name", "Navy"});
  ASSERT_THAT(lead, IsOk());
  EXPECT_THAT(**lead, EqualsProto(R"pb(lead {
                                         source: "webinar"
                                         person { email: "grace@example.com" }
                                         company { display_name: "Navy" }
                                       })pb"));

  auto opportunities = RequestOf({"pipeline", "list-opportunities", "--status", "open",
                                  "--expected-close-from", "2027-01-31"});
  ASSERT_THAT(opportunities, IsOk());
  EXPECT_THAT(**opportunities,
              EqualsProto(R"pb(status: OPPORTUNITY_STATUS_OPEN
                               expected_close_from { year: 2027 month: 1 day: 31 })pb"));

  auto stages = RequestOf({"pipeline", "define-pipeline", "--pipeline-id", "sales", "--stages",
                           "stage-id=new,display_name=New,probabilityBps=1000", "--stages",
                           R"({"stageId": "won", "probabilityBps": 10000})"});
  ASSERT_THAT(stages, IsOk());
  EXPECT_THAT(**stages,
              EqualsProto(R"pb(pipeline_id: "sales"
                               stages { stage_id: "new" display_name: "New" probability_bps: 1000 }
                               stages { stage_id: "won" probability_bps: 10000 })pb"));

  // --json is the base; flags replace its fields.
  auto based =
      RequestOf({"contact", "get-contact", "--json", R"({"contactId": "c1", "asOfVersion": 3})",
                 "--as-of-version", "5", "--resolve-merged=false"});
  ASSERT_THAT(based, IsOk());
  EXPECT_THAT(**based,
              EqualsProto(R"pb(contact_id: "c1" as_of_version: 5 resolve_merged: false)pb"));
  const auto& get = dynamic_cast<const crm::contact::v1::GetContactRequest&>(**based);
  EXPECT_TRUE(get.has_resolve_merged()) << "explicitly false, not unset";
}

TEST(GeneratedCommands, BadValuesNameTheFlag) {
  const std::vector<std::pair<std::vector<std::string>, std::vector<std::string>>> cases = {
      {{"pipeline", "close-opportunity", "--outcome", "wonn"},
       {"--outcome: unknown value \"wonn\"", "open, won, lost"}},
      {{"metrics", "query-kpi", "--start-time", "yesterday"},
       {"--start-time: expects an RFC 3339"}},
      {{"metrics", "query-kpi", "--max-wait", "30"}, {"--max-wait: expects a duration"}},
      {{"contact", "list-contacts", "--page-size", "ten"}, {"--page-size: expects"}},
      {{"contact", "create-contact", "--attributes", "job_title"},
       {"--attributes: expects key=value"}},
      {{"contact", "get-contact", "--resolve-merged=maybe"},
       {"--resolve-merged: expects true or false"}},
      {{"pipeline", "list-opportunities", "--expected-close-to", "2027-02-30"},
       {"--expected-close-to: expects a date"}},
      {{"pipeline", "define-pipeline", "--stages", "id=new"},
       {"--stages: no field \"id\" in crm.pipeline.v1.Stage", "stage_id"}},
      {{"contact", "get-contact", "--json", "{\"contactId\": 1, \"nope\": 2}"},
       {"--json: not a valid crm.contact.v1.GetContactRequest"}},
  };
  for (const auto& [args, messages] : cases) {
    auto request = RequestOf(args);
    ASSERT_THAT(request, StatusIs(absl::StatusCode::kInvalidArgument)) << args[2];
    for (const std::string& message : messages) {
      EXPECT_THAT(std::string(request.status().message()), HasSubstr(message));
    }
  }
}

TEST(GeneratedCommands, ErrorsOnTheCommandLineExitWithTwo) {
  Result bad_enum = Crmctl({"pipeline", "close-opportunity", "--outcome", "wonn", "--dry-run"});
  EXPECT_EQ(bad_enum.exit_code, 2);
  EXPECT_THAT(bad_enum.err, HasSubstr("crmctl: --outcome: unknown value \"wonn\""));
  Result unknown_flag = Crmctl({"pipeline", "close-opportunity", "--outcomes", "won"});
  EXPECT_EQ(unknown_flag.exit_code, 2);
  Result no_method = Crmctl({"pipeline"});
  EXPECT_EQ(no_method.exit_code, 2);

  Result dry_run = Crmctl({"pipeline", "close-opportunity", "--opportunity-id", "o1", "--outcome",
                           "won", "--dry-run", "-o", "json"});
  ASSERT_EQ(dry_run.exit_code, 0) << dry_run.err;
  EXPECT_EQ(nlohmann::json::parse(dry_run.out),
            nlohmann::json({{"opportunity_id", "o1"}, {"outcome", "OPPORTUNITY_STATUS_WON"}}));

  Result help = Crmctl({"metrics", "--help"});
  EXPECT_EQ(help.exit_code, 0);
  EXPECT_THAT(help.out, AllOf(HasSubstr("get-adoption-scorecard"),
                              HasSubstr("get-business-dashboard"), HasSubstr("query-kpi")));
}

TEST(GeneratedCommands, FlagNamesOfErrorFields) {
  CLI::App app;
  crm::crmctl::ServiceCommands commands(app);
  auto find = [&](const std::string& method) {
    for (const auto& command : commands.methods()) {
      if (command->method->full_name() == method) return command.get();
    }
    return static_cast<crm::crmctl::MethodCommand*>(nullptr);
  };
  const auto* create = find("crm.contact.v1.ContactService.CreateContact");
  ASSERT_NE(create, nullptr);
  EXPECT_EQ(create->flags->FlagFor("contact.emails[1]"), "--emails");
  EXPECT_EQ(create->flags->FlagFor("contact.attributes[job title]"), "--attributes");
  EXPECT_EQ(create->flags->FlagFor("contact_id"), "--contact-id");
  EXPECT_EQ(create->flags->FlagFor("contact.contact_id"), "--contact.contact-id");
  const auto* define = find("crm.pipeline.v1.PipelineService.DefinePipeline");
  ASSERT_NE(define, nullptr);
  EXPECT_EQ(define->flags->FlagFor("stages[2].probability_bps"), "--stages");
}

TEST(GeneratedCommands, FieldsNeverTakeCrmctlsOwnFlags) {
  // A field named like one of crmctl's flags is --request.<name>; its nested fields keep their
  // dotted names, and the main message's fields lose the alias that would collide.
  CLI::App app;
  crm::crmctl::RequestFlags flags(crm::contact::v1::CreateContactRequest::descriptor(), app,
                                  {"request-id", "given-name"});
  std::vector<std::string> names;
  for (const auto& flag : flags.flags()) {
    names.push_back(flag.alias.empty() ? flag.name : flag.alias + "|" + flag.name);
  }
  EXPECT_THAT(names,
              ::testing::IsSupersetOf({"request.request-id", "contact-id", "contact.contact-id",
                                       "contact.given-name", "emails|contact.emails"}));
  EXPECT_THAT(names, ::testing::Not(::testing::Contains("request-id")));
}

TEST(Connection, PlaintextByDefaultOnlyOnLoopback) {
  EXPECT_TRUE(crm::crmctl::IsLoopback("127.0.0.1:7001"));
  EXPECT_TRUE(crm::crmctl::IsLoopback("localhost:7001"));
  EXPECT_TRUE(crm::crmctl::IsLoopback("[::1]:7001"));
  EXPECT_TRUE(crm::crmctl::IsLoopback("dns:///localhost:7001"));
  EXPECT_FALSE(crm::crmctl::IsLoopback("crm.example.com:443"));
  EXPECT_FALSE(crm::crmctl::IsLoopback("10.0.0.7:7001"));
  crm::crmctl::Connection local{.address = "127.0.0.1:7001"};
  EXPECT_TRUE(local.Plaintext());
  local.tls = true;
  EXPECT_FALSE(local.Plaintext());
  crm::crmctl::Connection remote{.address = "crm.example.com:443"};
  EXPECT_FALSE(remote.Plaintext());
}

// --- a generated command against the real contact-service --------------------------------

class ContactServiceCommandsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto cluster = crm::kafka::MockCluster::Start(1);
    ASSERT_THAT(cluster, IsOk());
    cluster_ = *std::move(cluster);
    ASSERT_THAT(cluster_->CreateTopic("crm.contact.events.v1", 1, 1), IsOk());
    service_ = std::make_unique<crm::testing::ServiceProcess>(std::vector<std::string>{
        CRM_CONTACT_SERVICE, "--plaintext", "--jwt-hs256-secret", kSecret, "--grpc-listen",
        "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0", "--data-dir", dir_.Sub("contact"),
        "--kafka-bootstrap", cluster_->bootstrap_servers()});
    ASSERT_TRUE(service_->serving()) << service_->process().DrainStderr();
    token_ = *crm::runtime::SignHs256(
        {.subject = "rep-1", .scopes = {"contacts:read", "contacts:write"}}, kSecret);
  }
  void TearDown() override {
    if (service_ != nullptr) service_->process().Signal(SIGTERM);
  }

  crm::testing::TempDir dir_;
  std::unique_ptr<crm::kafka::MockCluster> cluster_;
  std::unique_ptr<crm::testing::ServiceProcess> service_;
  std::string token_;
};

TEST_F(ContactServiceCommandsTest, CreateGetListAndFieldErrors) {
  // No --plaintext: the loopback default.
  Result created = Crmctl({"contact",
                           "create-contact",
                           "--address",
                           service_->address(),
                           "--token",
                           token_,
                           "--given-name",
                           "Ada",
                           "--family-name",
                           "Lovelace",
                           "--emails",
                           "ADA@Example.com",
                           "--attributes",
                           "job_title=CTO",
                           "--lifecycle-stage",
                           "customer",
                           "--request-id",
                           "r1",
                           "-o",
                           "json"});
  ASSERT_EQ(created.exit_code, 0) << created.err;
  const auto contact = nlohmann::json::parse(created.out);
  const std::string id = contact["contact_id"];
  EXPECT_THAT(id, StartsWith("c-"));
  EXPECT_EQ(contact["emails"], nlohmann::json::array({"ada@example.com"}));
  EXPECT_EQ(contact["lifecycle_stage"], "LIFECYCLE_STAGE_CUSTOMER");
  EXPECT_EQ(contact["owner_id"], "rep-1");
  EXPECT_EQ(contact["version"], "1");

  // The address from the environment; text output as key: value lines.
  ASSERT_EQ(::setenv("CRM_CONTACT_ADDRESS", service_->address().c_str(), 1), 0);
  Result got = Crmctl({"contact", "get-contact", "--token", token_, "--contact-id", id});
  ::unsetenv("CRM_CONTACT_ADDRESS");
  ASSERT_EQ(got.exit_code, 0) << got.err;
  EXPECT_THAT(got.out, HasSubstr("\ncontact_id:      " + id + "\n"));
  EXPECT_THAT(got.out, HasSubstr("\ngiven_name:      Ada\n"));
  EXPECT_THAT(got.out, HasSubstr("\nemails:          ada@example.com\n"));
  EXPECT_THAT(got.out, HasSubstr("\nlifecycle_stage: customer\n"));
  EXPECT_THAT(got.out, HasSubstr("\nattributes:      job_title=CTO\n"));

  Result listed =
      Crmctl({"contact", "list-contacts", "--address", service_->address(), "--token", token_});
  ASSERT_EQ(listed.exit_code, 0) << listed.err;
  EXPECT_THAT(listed.out,
              MatchesRegex("contact_id +given_name +family_name +emails +owner_id +"
                           "lifecycle_stage +version\n"
                           "-+( +-+)+\n" +
                           id + " +Ada +Lovelace +ada@example.com +rep-1 +customer +1\n"));

  Result invalid = Crmctl({"contact", "create-contact", "--address", service_->address(), "--token",
                           token_, "--given-name", "Bob", "--emails", "not-an-email"});
  EXPECT_EQ(invalid.exit_code, 1);
  EXPECT_THAT(invalid.err, HasSubstr("INVALID_ARGUMENT"));
  EXPECT_THAT(invalid.err, HasSubstr("\n  contact.emails[0] (--emails): "));
}

// --- tables ------------------------------------------------------------------------------

pb::Timestamp Time(const std::string& text) {
  pb::Timestamp time;
  EXPECT_TRUE(pb::util::TimeUtil::FromString(text, &time)) << text;
  return time;
}

metrics::Measure Count(const std::string& name, int64_t count) {
  metrics::Measure measure;
  measure.set_name(name);
  measure.set_count(count);
  return measure;
}

metrics::Measure Ratio(const std::string& name, int64_t numerator, int64_t denominator,
                       const std::string& currency = "", double scale = 1) {
  metrics::Measure measure;
  measure.set_name(name);
  measure.set_currency_code(currency);
  measure.mutable_ratio()->set_numerator(numerator);
  measure.mutable_ratio()->set_denominator(denominator);
  if (denominator != 0) {
    measure.mutable_ratio()->set_value(static_cast<double>(numerator) / denominator * scale);
  }
  return measure;
}

metrics::Measure Quantile(const std::string& name, double value, int64_t count) {
  metrics::Measure measure;
  measure.set_name(name);
  measure.mutable_quantile()->set_value(value);
  measure.mutable_quantile()->set_relative_error(0.01);
  measure.mutable_quantile()->set_count(count);
  return measure;
}

metrics::Measure Money(const std::string& name, int64_t amount_minor, const std::string& currency) {
  metrics::Measure measure;
  measure.set_name(name);
  measure.set_currency_code(currency);
  measure.set_amount_minor(amount_minor);
  return measure;
}

metrics::KpiResult Kpi(const std::string& name,
                       const std::vector<std::pair<std::vector<std::pair<std::string, std::string>>,
                                                   std::vector<metrics::Measure>>>& rows) {
  metrics::KpiResult result;
  result.mutable_definition()->set_name(name);
  for (const auto& [dimensions, measures] : rows) {
    metrics::KpiRow* row = result.add_rows();
    for (const auto& [dimension, value] : dimensions) {
      metrics::Dimension* d = row->add_dimensions();
      d->set_name(dimension);
      d->set_value(value);
    }
    for (const auto& measure : measures) *row->add_measures() = measure;
  }
  return result;
}

TEST(Tables, MeasuresInTheirUnits) {
  EXPECT_EQ(crm::crmctl::MeasureText(Count("count", 1234567)), "1,234,567");
  EXPECT_EQ(crm::crmctl::MeasureText(Money("amount", -1050, "EUR")), "EUR -10.50");
  EXPECT_EQ(crm::crmctl::MeasureText(Money("amount", 1500, "JPY")), "JPY 1,500");
  EXPECT_EQ(crm::crmctl::MeasureText(Money("amount", 1234, "BHD")), "BHD 1.234");
  EXPECT_EQ(crm::crmctl::MeasureText(Ratio("ratio", 2, 3)), "66.7% (2/3)");
  EXPECT_EQ(crm::crmctl::MeasureText(Ratio("ratio", 2, 3), /*compact=*/true), "67% (2/3)");
  EXPECT_EQ(crm::crmctl::MeasureText(Ratio("ratio", 0, 0)), "-") << "no data";
  EXPECT_EQ(crm::crmctl::MeasureText(Ratio("per_100", 1, 40, "", 100)), "2.5 per 100 (1/40)");
  EXPECT_EQ(crm::crmctl::MeasureText(Ratio("amount_ratio", 150000, 200000, "EUR")),
            "75.0% (EUR 1,500.00/2,000.00)");
  EXPECT_EQ(crm::crmctl::MeasureText(Quantile("p50_seconds", 45, 3)), "45s (n=3)");
  EXPECT_EQ(crm::crmctl::MeasureText(Quantile("p90_seconds", 2 * 86400 + 43200, 3)), "2.5d (n=3)");
  EXPECT_EQ(crm::crmctl::MeasureText(Quantile("p50_days", 12, 1200), true), "12d");
  EXPECT_EQ(crm::crmctl::MeasureText(metrics::Measure()), "-");
}

TEST(Tables, AdoptionScorecardRepsByKpis) {
  metrics::GetAdoptionScorecardResponse card;
  card.mutable_period()->set_kind(metrics::PERIOD_KIND_ISO_WEEK);
  *card.mutable_period()->mutable_start_time() = Time("2026-11-16T00:00:00Z");
  *card.mutable_period()->mutable_end_time() = Time("2026-11-23T00:00:00Z");
  card.mutable_period()->set_label("2026-W47");
  // rep-0 only has a stale deal: its column still comes after the others (merged order).
  metrics::RepScorecard* rep0 = card.add_reps();
  rep0->set_rep_id("rep-0");
  *rep0->add_measures() = Count("stale_opportunities.count", 1);
  metrics::RepScorecard* rep1 = card.add_reps();
  rep1->set_rep_id("rep-1");
  *rep1->add_measures() = Count("activities_logged.count", 12);
  *rep1->add_measures() = Count("visit_report_compliance.compliant", 3);  // inside the ratio
  *rep1->add_measures() = Count("visit_report_compliance.visits", 4);
  *rep1->add_measures() = Ratio("visit_report_compliance.ratio", 3, 4);
  *rep1->add_measures() = Quantile("logging_delay_seconds.p50_seconds", 5400, 12);
  *rep1->add_measures() = Ratio("tasks_on_time_ratio.ratio", 1, 2);
  *rep1->add_measures() = Count("stale_opportunities.count", 2);
  metrics::RepScorecard* rep2 = card.add_reps();
  rep2->set_rep_id("rep-2");
  *rep2->add_measures() = Count("activities_logged.count", 3);
  *rep2->add_measures() = Ratio("visit_report_compliance.ratio", 0, 0);
  *rep2->add_measures() = Quantile("logging_delay_seconds.p50_seconds", 45, 3);
  *card.add_team() = Kpi("activities_logged", {{{}, {Count("count", 15)}}});
  *card.add_team() = Kpi("visit_report_compliance", {{{}, {Ratio("ratio", 3, 4)}}});
  *card.add_team() = Kpi("logging_delay_seconds",
                         {{{}, {Quantile("p50_seconds", 300, 15), Ratio("within_24h", 14, 15)}}});
  *card.add_team() = Kpi("active_reps", {});
  metrics::Receipt* receipt = card.mutable_receipt();
  *receipt->mutable_compute_time() = Time("2026-11-20T14:00:00Z");
  *receipt->mutable_applied_through_time() = Time("2026-11-20T13:59:58Z");
  receipt->set_generation(1);
  metrics::TopicPosition* activity = receipt->add_positions();
  activity->set_topic("crm.activity.events.v1");
  activity->set_next_offset(120);
  metrics::TopicPosition* contact = receipt->add_positions();
  contact->set_topic("crm.contact.events.v1");
  contact->set_next_offset(50);

  EXPECT_EQ(crm::crmctl::RenderScorecard(card),
            "ADOPTION SCORECARD  2026-W47 (2026-11-16 to 2026-11-22)\n"
            "\n"
            "rep    activities  visit reports <=48h  log delay p50  tasks on time  stale deals\n"
            "-----  ----------  -------------------  -------------  -------------  -----------\n"
            "rep-0           0                    -              -              -            1\n"
            "rep-1          12            75% (3/4)           1.5h      50% (1/2)            2\n"
            "rep-2           3                    -            45s              -            0\n"
            "\n"
            "TEAM\n"
            "kpi                      measure              value\n"
            "-----------------------  -----------  -------------\n"
            "activities_logged        count                   15\n"
            "visit_report_compliance  ratio          75.0% (3/4)\n"
            "logging_delay_seconds    p50_seconds      5m (n=15)\n"
            "                         within_24h   93.3% (14/15)\n"
            "active_reps                                 no data\n"
            "\n"
            "receipt: computed 2026-11-20T14:00:00Z, events through 2026-11-20T13:59:58Z, lag 0 "
            "events, generation 1\n"
            "positions (next offset): crm.activity.events.v1/0=120, crm.contact.events.v1/0=50\n");
  // RenderText picks the scorecard's table for its type.
  EXPECT_EQ(crm::crmctl::RenderText(card), crm::crmctl::RenderScorecard(card));
}

TEST(Tables, BusinessDashboardKpiRowsWithDimensionsAndMeasures) {
  metrics::GetBusinessDashboardResponse board;
  board.mutable_period()->set_kind(metrics::PERIOD_KIND_MONTH);
  *board.mutable_period()->mutable_start_time() = Time("2026-11-01T00:00:00Z");
  *board.mutable_period()->mutable_end_time() = Time("2026-12-01T00:00:00Z");
  board.mutable_period()->set_label("2026-11");
  *board.add_kpis() = Kpi("leads_captured", {{{{"source", "webinar"}}, {Count("count", 1234)}},
                                             {{{"source", ""}}, {Count("count", 7)}}});
  *board.add_kpis() = Kpi("win_rate", {{{},
                                        {Count("won", 3), Count("lost", 1), Ratio("ratio", 3, 4),
                                         Ratio("amount_ratio", 150000, 200000, "EUR")}}});
  *board.add_kpis() = Kpi(
      "won_revenue",
      {{{{"region", "south"}}, {Money("amount", 1234567, "EUR"), Money("amount", 50000, "JPY")}},
       {{{"region", "north"}}, {Money("amount", 99, "EUR")}}});
  *board.add_kpis() = Kpi(
      "case_resolution_seconds",
      {{{{"priority", "high"}}, {Quantile("p50_seconds", 7200, 4), Ratio("reopen_rate", 1, 4)}}});
  *board.add_kpis() =
      Kpi("sales_cycle_days",
          {{{{"region", "south"}}, {Quantile("p50_days", 12, 3), Count("won", 3)}}});
  *board.add_kpis() = Kpi("open_cases", {});
  *board.mutable_receipt()->mutable_compute_time() = Time("2026-11-20T14:00:00Z");
  board.mutable_receipt()->set_lag_events(5);
  board.mutable_receipt()->mutable_lag()->set_seconds(3);
  board.mutable_receipt()->set_generation(2);

  EXPECT_EQ(crm::crmctl::RenderDashboard(board),
            "BUSINESS DASHBOARD  2026-11 (2026-11-01 to 2026-11-30)\n"
            "\n"
            "leads_captured by source\n"
            "  source   count\n"
            "  -------  -----\n"
            "  webinar  1,234\n"
            "  (none)       7\n"
            "\n"
            "win_rate\n"
            "  won  lost        ratio               amount_ratio EUR\n"
            "  ---  ----  -----------  -----------------------------\n"
            "    3     1  75.0% (3/4)  75.0% (EUR 1,500.00/2,000.00)\n"
            "\n"
            "won_revenue by region\n"
            "  region     amount EUR  amount JPY\n"
            "  ------  -------------  ----------\n"
            "  south   EUR 12,345.67  JPY 50,000\n"
            "  north        EUR 0.99           -\n"
            "\n"
            "case_resolution_seconds by priority\n"
            "  priority  p50_seconds  reopen_rate\n"
            "  --------  -----------  -----------\n"
            "  high       2.0h (n=4)  25.0% (1/4)\n"
            "\n"
            "sales_cycle_days by region\n"
            "  region   p50_days  won\n"
            "  ------  ---------  ---\n"
            "  south   12d (n=3)    3\n"
            "\n"
            "open_cases: no data\n"
            "\n"
            "receipt: computed 2026-11-20T14:00:00Z, lag 5 events (3s), generation 2\n");
}

TEST(Tables, KpiQueryRowsByPeriod) {
  metrics::QueryKpiResponse answer;
  *answer.mutable_result() =
      Kpi("win_rate", {{{{"owner", "rep-1"}}, {Count("won", 3), Ratio("ratio", 3, 4)}},
                       {{{"owner", "rep-2"}}, {Count("won", 0), Ratio("ratio", 0, 2)}}});
  answer.mutable_result()->mutable_rows(0)->mutable_period()->set_label("2026-10");
  answer.mutable_result()->mutable_rows(1)->mutable_period()->set_label("2026-11");
  answer.mutable_receipt()->set_definition_version(3);
  answer.mutable_receipt()->set_generation(1);
  EXPECT_EQ(crm::crmctl::RenderText(answer),
            "win_rate by owner\n"
            "period   owner  won        ratio\n"
            "-------  -----  ---  -----------\n"
            "2026-10  rep-1    3  75.0% (3/4)\n"
            "2026-11  rep-2    0   0.0% (0/2)\n"
            "\n"
            "receipt: definition v3, lag 0 events, generation 1\n");
}

TEST(Tables, RecordsAndListsOfAnyAnswer) {
  crm::pipeline::v1::Opportunity opportunity;
  opportunity.set_opportunity_id("o1");
  opportunity.set_currency_code("EUR");
  opportunity.set_amount_minor(250000);
  opportunity.set_status(crm::pipeline::v1::OPPORTUNITY_STATUS_WON);
  auto* line = opportunity.add_lines();
  line->set_product_id("p1");
  line->set_quantity(2);
  line->set_unit_price_minor(125000);
  opportunity.mutable_expected_close_date()->set_year(2027);
  opportunity.mutable_expected_close_date()->set_month(1);
  opportunity.mutable_expected_close_date()->set_day(31);
  *opportunity.mutable_close_time() = Time("2026-11-20T14:00:00Z");
  EXPECT_EQ(crm::crmctl::RenderText(opportunity),
            "opportunity_id:      o1\n"
            "currency_code:       EUR\n"
            "amount_minor:        EUR 2,500.00\n"
            "expected_close_date: 2027-01-31\n"
            "status:              won\n"
            "close_time:          2026-11-20T14:00:00Z\n"
            "\n"
            "lines:\n"
            "  product_id  quantity  unit_price_minor\n"
            "  ----------  --------  ----------------\n"
            "  p1                 2      EUR 1,250.00\n");

  crm::contact::v1::ListContactsResponse list;
  auto* ada = list.add_contacts();
  ada->set_name("contacts/c-ada");
  ada->set_contact_id("c-ada");
  ada->set_given_name("Ada");
  ada->add_emails("ada@example.com");
  ada->add_emails("ada@work.example");
  ada->set_version(3);
  auto* bob = list.add_contacts();
  bob->set_contact_id("c-bob");
  bob->set_given_name("Bob");
  bob->set_lifecycle_stage(crm::contact::v1::LIFECYCLE_STAGE_FORMER_CUSTOMER);
  bob->set_version(1);
  list.set_next_page_token("abc");
  EXPECT_EQ(crm::crmctl::RenderText(list),
            "contact_id  given_name  emails                            lifecycle_stage  version\n"
            "----------  ----------  --------------------------------  ---------------  -------\n"
            "c-ada       Ada         ada@example.com,ada@work.example                         3\n"
            "c-bob       Bob                                           former_customer        1\n"
            "\n"
            "next_page_token: abc\n");
  EXPECT_EQ(crm::crmctl::RenderText(crm::contact::v1::ListContactsResponse()), "(no contacts)\n");

  // Nested lists as titled tables, after the fields.
  metrics::GetProjectionStatusResponse status;
  status.mutable_receipt()->set_generation(2);
  metrics::TopicPosition* first = status.mutable_receipt()->add_positions();
  first->set_topic("crm.contact.events.v1");
  first->set_next_offset(50);
  metrics::TopicPosition* second = status.mutable_receipt()->add_positions();
  second->set_topic("crm.contact.events.v1");
  second->set_partition(1);
  second->set_next_offset(7);
  status.set_applied_events(57);
  EXPECT_EQ(crm::crmctl::RenderText(status),
            "receipt.generation: 2\n"
            "applied_events:     57\n"
            "\n"
            "receipt.positions:\n"
            "  topic                  partition  next_offset\n"
            "  ---------------------  ---------  -----------\n"
            "  crm.contact.events.v1          0           50\n"
            "  crm.contact.events.v1          1            7\n");
}

TEST(Tables, MainColumnsNameRealFields) {
  for (const auto& [type_name, columns] : crm::crmctl::MainColumns()) {
    const pb::Descriptor* type =
        pb::DescriptorPool::generated_pool()->FindMessageTypeByName(type_name);
    ASSERT_NE(type, nullptr) << type_name;
    for (const std::string& column : columns) {
      const pb::Descriptor* at = type;
      for (absl::string_view part : absl::StrSplit(column, '.')) {
        const pb::FieldDescriptor* field =
            at == nullptr ? nullptr : at->FindFieldByName(std::string(part));
        ASSERT_NE(field, nullptr) << type_name << " has no " << column;
        at = field->message_type();
      }
    }
  }
}

}  // namespace
