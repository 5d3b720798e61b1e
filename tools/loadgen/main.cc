// crm-loadgen: load against the running services; see README.md.

#include <cstdlib>
#include <fstream>
#include <iostream>
#include <random>

#include "CLI/CLI.hpp"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "connection.h"
#include "crm/runtime/auth.h"
#include "loadgen.h"

namespace {

// The flag's duration ("30s", "500ms"), checked by CLI11 before use.
absl::Duration Parse(const std::string& text) {
  absl::Duration d;
  absl::ParseDuration(text, &d);
  return d;
}

CLI::Validator DurationCheck() {
  return CLI::Validator(
      [](const std::string& text) {
        absl::Duration d;
        return absl::ParseDuration(text, &d) && d >= absl::ZeroDuration()
                   ? ""
                   : "expects a duration such as 30s or 500ms";
      },
      "DURATION");
}

// The token: --token, else minted from the dev secret (--jwt-hs256-secret, else the one
// `make run` keeps in <data dir>/jwt.secret).
absl::StatusOr<std::string> Token(const std::string& token, std::string secret,
                                  const std::string& data_dir, crm::runtime::TokenClaims claims) {
  if (!token.empty()) return token;
  if (secret.empty()) {
    std::ifstream file(absl::StrCat(data_dir, "/jwt.secret"));
    std::getline(file, secret);
    secret = std::string(absl::StripAsciiWhitespace(secret));
  }
  if (secret.empty()) {
    return absl::InvalidArgumentError(
        "no token: give --token (CRM_TOKEN) or --jwt-hs256-secret (CRM_JWT_HS256_SECRET), or "
        "run where `make run` keeps data/jwt.secret (--data-dir, CRM_DATA_DIR)");
  }
  return crm::runtime::SignHs256(claims, secret);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "crm-loadgen: drives the running CRM services over gRPC and reports throughput, "
      "latency percentiles, errors and event-to-KPI lag"};
  crm::loadgen::Options o;
  app.add_option("--contact", o.contact_address, "contact-service address")
      ->envname("CRM_CONTACT_ADDRESS")
      ->capture_default_str();
  app.add_option("--activity", o.activity_address, "activity-service address")
      ->envname("CRM_ACTIVITY_ADDRESS")
      ->capture_default_str();
  app.add_option("--pipeline", o.pipeline_address, "pipeline-service address")
      ->envname("CRM_PIPELINE_ADDRESS")
      ->capture_default_str();
  app.add_option("--metrics", o.metrics_address, "metrics-service address")
      ->envname("CRM_METRICS_ADDRESS")
      ->capture_default_str();
  bool plaintext = false;
  bool tls = false;
  auto* plaintext_flag = app.add_flag("--plaintext", plaintext,
                                      "no TLS (default on when every address is on loopback)")
                             ->envname("CRM_PLAINTEXT");
  app.add_flag("--tls", tls, "TLS even on loopback")->excludes(plaintext_flag);
  app.add_option("--ca-file", o.ca_file, "CA of the server certificates (PEM)")
      ->envname("CRM_CA_FILE")
      ->check(CLI::ExistingFile);

  std::string secret, data_dir = "data";
  crm::runtime::TokenClaims claims{
      .subject = "crm-loadgen",
      .scopes = {"contacts:read", "contacts:write", "activities:read", "activities:write",
                 "pipeline:read", "pipeline:write", "metrics:read"}};
  app.add_option("--token", o.token, "bearer token")->envname("CRM_TOKEN");
  app.add_option("--jwt-hs256-secret", secret, "dev secret to mint a token with")
      ->envname("CRM_JWT_HS256_SECRET");
  app.add_option("--jwt-issuer", claims.issuer, "iss of the minted token")
      ->envname("CRM_JWT_ISSUER")
      ->capture_default_str();
  app.add_option("--jwt-audience", claims.audience, "aud of the minted token")
      ->envname("CRM_JWT_AUDIENCE")
      ->capture_default_str();
  app.add_option("--data-dir", data_dir, "where `make run` keeps jwt.secret")
      ->envname("CRM_DATA_DIR")
      ->capture_default_str();

  std::string duration = "30s", warmup = "5s", timeout = "10s", lag_wait = "10s";
  std::string mix = "demo", json_file;
  auto* rate = app.add_option("--rate", o.rate,
                              "open model: requests per second (latency from "
                              "the intended send time)")
                   ->check(CLI::PositiveNumber);
  app.add_option("--concurrency", o.concurrency, "closed model: calls in flight")
      ->check(CLI::PositiveNumber)
      ->excludes(rate);
  app.add_option("--duration", duration, "measured time")
      ->check(DurationCheck())
      ->capture_default_str();
  app.add_option("--warmup", warmup, "load before measuring (not reported)")
      ->check(DurationCheck())
      ->capture_default_str();
  app.add_option("--mix", mix,
                 "\"demo\" or Method=weight,...; methods: " +
                     absl::StrJoin(crm::loadgen::KnownMethods(), ", "))
      ->capture_default_str();
  app.add_option("--timeout", timeout, "deadline of each call")
      ->check(DurationCheck())
      ->capture_default_str();
  app.add_option("--max-in-flight", o.max_in_flight, "open model: calls in flight at most")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--connections", o.connections, "connections per service (plaintext)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--setup-accounts", o.setup_accounts, "accounts created before the load")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  app.add_option("--setup-contacts", o.setup_contacts, "contacts created before the load")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  app.add_option("--lag-samples-per-second", o.lag_samples_per_second,
                 "writes per second whose event-to-KPI lag is measured (0: none)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  app.add_option("--lag-max-wait", lag_wait, "how long a lag sample waits for metrics-service")
      ->check(DurationCheck())
      ->capture_default_str();
  app.add_option("--id-prefix", o.id_prefix, "prefix of ids and request ids (default: lg<random>)");
  app.add_option("--seed", o.seed, "random seed (default: random)");
  app.add_option("--json", json_file, "also write the results as JSON to this file");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);
    std::cerr << "crm-loadgen: " << e.what() << "\n(see crm-loadgen --help)\n";
    return 2;
  }

  auto fail = [](const absl::Status& status) {
    std::cerr << "crm-loadgen: " << absl::StatusCodeToString(status.code()) << ": "
              << status.message() << "\n";
    return 1;
  };
  if (o.rate == 0 && o.concurrency == 0) {
    std::cerr << "crm-loadgen: give --rate N (open model) or --concurrency N (closed model)\n";
    return 2;
  }
  o.duration = Parse(duration);
  o.warmup = Parse(warmup);
  o.timeout = Parse(timeout);
  o.lag_max_wait = Parse(lag_wait);
  auto parsed_mix = crm::loadgen::ParseMix(mix, crm::loadgen::KnownMethods());
  if (!parsed_mix.ok()) return fail(parsed_mix.status());
  o.mix = *std::move(parsed_mix);
  // As crmctl: plaintext when asked, else TLS when asked, else on loopback without a CA.
  if (plaintext_flag->count() > 0) {
    o.plaintext = plaintext;
  } else {
    o.plaintext = !tls && o.ca_file.empty();
    for (const auto* address :
         {&o.contact_address, &o.activity_address, &o.pipeline_address, &o.metrics_address}) {
      o.plaintext = o.plaintext && crm::crmctl::IsLoopback(*address);
    }
  }
  if (o.seed == 0) o.seed = std::random_device()();
  if (o.id_prefix.empty()) o.id_prefix = absl::StrFormat("lg%08x", std::random_device()());
  claims.issued_at = absl::Now();
  claims.ttl = o.warmup + o.duration + absl::Hours(1);
  if (!crm::loadgen::OnlyHealthChecks(o.mix)) {  // health checks are sent without a token
    auto token = Token(o.token, secret, data_dir, claims);
    if (!token.ok()) return fail(token.status());
    o.token = *token;
  }

  std::cerr << "crm-loadgen: setting up, then " << absl::FormatDuration(o.warmup) << " warm-up and "
            << absl::FormatDuration(o.duration) << " measured\n";
  auto results = crm::loadgen::Run(o);
  if (!results.ok()) return fail(results.status());
  crm::loadgen::PrintTable(*results, std::cout);
  if (!json_file.empty()) {
    std::ofstream out(json_file);
    out << crm::loadgen::ToJson(*results).dump(2) << "\n";
    if (!out) return fail(absl::UnavailableError(absl::StrCat("cannot write ", json_file)));
  }
  return 0;
}
