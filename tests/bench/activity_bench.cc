// activity-service over gRPC, the real binary next to the real contact-service and
// pipeline-service on loopback with synced durability: LogActivity about a contact (each call
// asks contact-service about it) at 1, 16 and 64 concurrent callers; the same with the contact
// cache on (what the validation call costs, and what caching saves); and contact-service's
// ValidateReferences alone, one id per call and 64 per call (what batching would save).
// Rendered by tests/bench/report.py.

#include <atomic>

#include "absl/strings/str_cat.h"
#include "benchmark/benchmark.h"
#include "crm/activity/v1/activity_service.grpc.pb.h"
#include "crm/contact/v1/contact_service.grpc.pb.h"
#include "crm/kafka/mock_cluster.h"
#include "crm/runtime/auth.h"
#include "crm/testing/testing.h"
#include "grpc_bench.h"

namespace {

using crm::activity::v1::ActivityService;
using crm::contact::v1::ContactService;

constexpr char kSecret[] = "activity-bench-secret-activity-bench";
constexpr int kContacts = 256;
constexpr int kBatch = 64;

struct System {
  System() {
    cluster = *crm::kafka::MockCluster::Start(1);
    for (const char* topic :
         {"crm.contact.events.v1", "crm.pipeline.events.v1", "crm.activity.events.v1"}) {
      (void)cluster->CreateTopic(topic, 3, 1);
    }
    const std::string bootstrap = cluster->bootstrap_servers();
    contacts = std::make_unique<crm::bench::BenchService>(CRM_CONTACT_SERVICE, dir.Sub("contact"),
                                                          bootstrap, kSecret);
    pipeline = std::make_unique<crm::bench::BenchService>(
        CRM_PIPELINE_SERVICE, dir.Sub("pipeline"), bootstrap, kSecret,
        std::vector<std::string>{"--contact-service", contacts->address,
                                 "--contact-service-plaintext"});
    const std::vector<std::string> peers = {
        "--contact-service",  contacts->address, "--contact-service-plaintext",
        "--pipeline-service", pipeline->address, "--pipeline-service-plaintext"};
    activities = std::make_unique<crm::bench::BenchService>(
        CRM_ACTIVITY_SERVICE, dir.Sub("activity"), bootstrap, kSecret, peers);
    std::vector<std::string> cached_flags = peers;
    cached_flags.insert(cached_flags.end(), {"--contact-cache-ttl-ms", "60000"});
    cached = std::make_unique<crm::bench::BenchService>(
        CRM_ACTIVITY_SERVICE, dir.Sub("activity-cached"), bootstrap, kSecret, cached_flags);
    token = "Bearer " + *crm::runtime::SignHs256(
                            {.subject = "bench",
                             .scopes = {"activities:read", "activities:write", "contacts:read",
                                        "contacts:write", "pipeline:read"}},
                            kSecret);
    contacts->WaitUntilServing();
    contact_stubs = crm::bench::Stubs<ContactService>(contacts->address);
    for (int n = 0; n < kContacts; ++n) {
      grpc::ClientContext context;
      context.AddMetadata("authorization", token);
      crm::contact::v1::CreateContactRequest create;
      create.set_contact_id(absl::StrCat("c", n));
      create.mutable_contact()->set_given_name("Bench");
      create.mutable_contact()->set_family_name(absl::StrCat("Person ", n));
      crm::contact::v1::Contact created;
      grpc::Status status = contact_stubs[0]->CreateContact(&context, create, &created);
      if (!status.ok()) std::fprintf(stderr, "create: %s\n", status.error_message().c_str());
    }
    activity_stubs = crm::bench::Stubs<ActivityService>(activities->address);
    cached_stubs = crm::bench::Stubs<ActivityService>(cached->address);
  }

  grpc::Status Log(ActivityService::Stub& stub, int64_t n) {
    grpc::ClientContext context;
    context.AddMetadata("authorization", token);
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    crm::activity::v1::LogActivityRequest request;
    auto* activity = request.mutable_activity();
    activity->set_type(crm::activity::v1::ACTIVITY_TYPE_CALL);
    activity->set_channel("phone");
    activity->set_contact_id(absl::StrCat("c", n % kContacts));
    activity->set_subject("Follow-up call");
    activity->set_outcome("connected");
    activity->set_duration_seconds(120);
    crm::activity::v1::Activity response;
    return stub.LogActivity(&context, request, &response);
  }

  grpc::Status Validate(int thread, int64_t first, int count) {
    grpc::ClientContext context;
    context.AddMetadata("authorization", token);
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    crm::contact::v1::ValidateReferencesRequest request;
    for (int i = 0; i < count; ++i)
      request.add_contact_ids(absl::StrCat("c", (first + i) % kContacts));
    crm::contact::v1::ValidateReferencesResponse response;
    return contact_stubs[thread % contact_stubs.size()]->ValidateReferences(&context, request,
                                                                            &response);
  }

  crm::testing::TempDir dir;
  std::unique_ptr<crm::kafka::MockCluster> cluster;
  std::unique_ptr<crm::bench::BenchService> contacts;
  std::unique_ptr<crm::bench::BenchService> pipeline;
  std::unique_ptr<crm::bench::BenchService> activities;
  std::unique_ptr<crm::bench::BenchService> cached;
  std::string token;
  std::vector<std::unique_ptr<ContactService::Stub>> contact_stubs;
  std::vector<std::unique_ptr<ActivityService::Stub>> activity_stubs;
  std::vector<std::unique_ptr<ActivityService::Stub>> cached_stubs;
  std::atomic<int64_t> calls{0};
};

System& TheSystem() {
  static System* system = new System();  // one set of services for the whole run
  return *system;
}

void BM_LogActivity(benchmark::State& state) {
  System& system = TheSystem();
  auto& stub = *system.activity_stubs[state.thread_index() % system.activity_stubs.size()];
  crm::bench::Measure(state, [&] { return system.Log(stub, system.calls.fetch_add(1)); });
}
BENCHMARK(BM_LogActivity)->Threads(1)->Threads(16)->Threads(64)->UseRealTime()->MinTime(3.0);

// The same calls with contact-service's answers cached (after the first per contact).
void BM_LogActivityCachedContact(benchmark::State& state) {
  System& system = TheSystem();
  auto& stub = *system.cached_stubs[state.thread_index() % system.cached_stubs.size()];
  crm::bench::Measure(state, [&] { return system.Log(stub, system.calls.fetch_add(1)); });
}
BENCHMARK(BM_LogActivityCachedContact)
    ->Threads(1)
    ->Threads(16)
    ->Threads(64)
    ->UseRealTime()
    ->MinTime(3.0);

// The validation call alone: one contact id per call, as LogActivity makes it.
void BM_ValidateOneContact(benchmark::State& state) {
  System& system = TheSystem();
  crm::bench::Measure(
      state, [&] { return system.Validate(state.thread_index(), system.calls.fetch_add(1), 1); });
}
BENCHMARK(BM_ValidateOneContact)->Threads(1)->Threads(16)->Threads(64)->UseRealTime()->MinTime(2.0);

// Batched: 64 contact ids per call (items are calls; ids/s = 64 x calls/s).
void BM_ValidateBatchOf64(benchmark::State& state) {
  System& system = TheSystem();
  crm::bench::Measure(state, [&] {
    return system.Validate(state.thread_index(), system.calls.fetch_add(kBatch), kBatch);
  });
}
BENCHMARK(BM_ValidateBatchOf64)->Threads(1)->Threads(16)->Threads(64)->UseRealTime()->MinTime(2.0);

}  // namespace

int main(int argc, char** argv) {
  return crm::bench::RunBenchmarks(argc, argv, [] { delete &TheSystem(); });  // stops the services
}
