// contact-service over gRPC, the real binary on loopback with synced durability: CreateContact
// and GetContact at 1, 16 and 64 concurrent callers, then resident memory and disk after a
// million contacts (CRM_BENCH_CONTACTS overrides the count). Rendered by tests/bench/report.py.

#include <algorithm>
#include <atomic>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "benchmark/benchmark.h"
#include "crm/contact/v1/contact_service.grpc.pb.h"
#include "crm/kafka/mock_cluster.h"
#include "crm/runtime/auth.h"
#include "crm/testing/subprocess.h"
#include "crm/testing/testing.h"
#include "grpc_bench.h"
#include "grpcpp/grpcpp.h"

namespace {

using crm::contact::v1::ContactService;

constexpr char kSecret[] = "contact-bench-secret-contact-bench";

struct System {
  System() {
    cluster = *crm::kafka::MockCluster::Start(1);
    (void)cluster->CreateTopic("crm.contact.events.v1", 3, 1);
    service = std::make_unique<crm::bench::BenchService>(CRM_CONTACT_SERVICE, dir.Sub("contact"),
                                                         cluster->bootstrap_servers(), kSecret);
    token = "Bearer " +
            *crm::runtime::SignHs256(
                {.subject = "bench", .scopes = {"contacts:read", "contacts:write"}}, kSecret);
    stubs = crm::bench::Stubs<ContactService>(service->address);
  }
  ContactService::Stub& Stub(int thread) { return *stubs[thread % stubs.size()]; }

  crm::testing::TempDir dir;
  std::unique_ptr<crm::kafka::MockCluster> cluster;
  std::unique_ptr<crm::bench::BenchService> service;
  std::string token;
  std::vector<std::unique_ptr<ContactService::Stub>> stubs;
  std::atomic<int64_t> created{0};
};

System* g_system = nullptr;

System& TheSystem() {
  static System* system = new System();  // one service for every benchmark of the run
  g_system = system;
  return *system;
}

grpc::Status Create(System& system, int thread, int64_t n) {
  grpc::ClientContext context;
  context.AddMetadata("authorization", system.token);
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  crm::contact::v1::CreateContactRequest request;
  request.set_contact_id(absl::StrCat("b", n));
  request.set_channel("web_form");
  auto* contact = request.mutable_contact();
  contact->set_given_name("Bench");
  contact->set_family_name(absl::StrCat("Person ", n));
  contact->add_emails(absl::StrCat("person", n, "@example.com"));
  contact->add_phones(absl::StrCat("+4420", 10000000 + n % 89999999));
  contact->set_owner_id(absl::StrCat("rep-", n % 40));
  contact->set_region(absl::StrCat("region-", n % 4));
  crm::contact::v1::Contact response;
  return system.Stub(thread).CreateContact(&context, request, &response);
}

void BM_CreateContact(benchmark::State& state) {
  System& system = TheSystem();
  crm::bench::Measure(
      state, [&] { return Create(system, state.thread_index(), system.created.fetch_add(1)); });
}
BENCHMARK(BM_CreateContact)->Threads(1)->Threads(16)->Threads(64)->UseRealTime()->MinTime(3.0);

void BM_GetContact(benchmark::State& state) {
  System& system = TheSystem();
  uint64_t n = static_cast<uint64_t>(state.thread_index()) * 7919;
  crm::bench::Measure(state, [&] {
    grpc::ClientContext context;
    context.AddMetadata("authorization", system.token);
    crm::contact::v1::GetContactRequest request;
    request.set_contact_id(
        absl::StrCat("b", (n += 104729) % std::max<int64_t>(1, system.created.load())));
    crm::contact::v1::Contact response;
    return system.Stub(state.thread_index()).GetContact(&context, request, &response);
  });
}
BENCHMARK(BM_GetContact)->Threads(1)->Threads(16)->Threads(64)->UseRealTime()->MinTime(3.0);

// Fills the service up to the target count with 64 callers, then reads its footprint.
void BM_FootprintAfterContacts(benchmark::State& state) {
  System& system = TheSystem();
  const char* env = std::getenv("CRM_BENCH_CONTACTS");
  const int64_t target = env ? std::atoll(env) : 1'000'000;
  for (auto _ : state) {
    std::vector<std::thread> callers;
    std::atomic<bool> failed{false};
    for (int t = 0; t < 64; ++t) {
      callers.emplace_back([&, t] {
        for (int64_t n; !failed && (n = system.created.fetch_add(1)) < target;) {
          if (!Create(system, t, n).ok()) failed = true;
        }
      });
    }
    for (auto& caller : callers) caller.join();
    if (failed) state.SkipWithError("create failed");
  }
  state.counters["contacts"] = static_cast<double>(std::min(system.created.load(), target));
  state.counters["rss_mib"] =
      static_cast<double>(crm::bench::ResidentBytes(system.service->process->pid())) / (1 << 20);
  state.counters["disk_mib"] =
      static_cast<double>(crm::bench::DiskBytes(system.dir.Sub("contact"))) / (1 << 20);
}
BENCHMARK(BM_FootprintAfterContacts)->Iterations(1)->UseRealTime()->Unit(benchmark::kSecond);

}  // namespace

int main(int argc, char** argv) {
  return crm::bench::RunBenchmarks(argc, argv, [] { delete g_system; });  // stops the services
}
