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
#include "grpcpp/grpcpp.h"

namespace {

using crm::contact::v1::ContactService;

constexpr char kSecret[] = "contact-bench-secret-contact-bench";

// A free loopback port (the service runs with warn logs, so no "serving" line tells it).
int FreePort() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t size = sizeof(addr);
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &size);
  ::close(fd);
  return ntohs(addr.sin_port);
}

struct System {
  System() {
    cluster = *crm::kafka::MockCluster::Start(1);
    (void)cluster->CreateTopic("crm.contact.events.v1", 3, 1);
    address = absl::StrCat("127.0.0.1:", FreePort());
    // Warn level: a request log line per call would fill the stderr pipe nobody reads here.
    service = std::make_unique<crm::testing::Subprocess>(std::vector<std::string>{
        CRM_CONTACT_SERVICE, "--plaintext", "--jwt-hs256-secret", kSecret, "--grpc-listen", address,
        "--metrics-listen", "127.0.0.1:0", "--data-dir", dir.Sub("contact"), "--kafka-bootstrap",
        cluster->bootstrap_servers(), "--log-level", "warn"});
    token = "Bearer " +
            *crm::runtime::SignHs256(
                {.subject = "bench", .scopes = {"contacts:read", "contacts:write"}}, kSecret);
    for (int i = 0; i < 4; ++i) {  // a few connections, as several client processes would have
      grpc::ChannelArguments args;
      args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
      auto channel = grpc::CreateCustomChannel(address, grpc::InsecureChannelCredentials(), args);
      channel->WaitForConnected(std::chrono::system_clock::now() + std::chrono::seconds(30));
      stubs.push_back(ContactService::NewStub(channel));
    }
  }
  ContactService::Stub& Stub(int thread) { return *stubs[thread % stubs.size()]; }

  crm::testing::TempDir dir;
  std::unique_ptr<crm::kafka::MockCluster> cluster;
  std::string address;
  std::unique_ptr<crm::testing::Subprocess> service;
  std::string token;
  std::vector<std::unique_ptr<ContactService::Stub>> stubs;
  std::atomic<int64_t> created{0};
};

System* g_system = nullptr;
std::vector<std::vector<double>> g_latency_ms;

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

double NearestRank(std::vector<double>& sample, double q) {
  if (sample.empty()) return 0;
  std::sort(sample.begin(), sample.end());
  const auto rank = static_cast<size_t>(std::ceil(q * static_cast<double>(sample.size())));
  return sample[std::clamp<size_t>(rank, 1, sample.size()) - 1];
}

// Per-thread latencies gathered into counters by thread 0 after the run (threads meet at the
// end of the loop).
void Summarize(benchmark::State& state) {
  if (state.thread_index() != 0) return;
  std::vector<double> all;
  for (const auto& per_thread : g_latency_ms)
    all.insert(all.end(), per_thread.begin(), per_thread.end());
  state.counters["p50_ms"] = NearestRank(all, 0.50);
  state.counters["p99_ms"] = NearestRank(all, 0.99);
}

// Runs `call` once per iteration, recording each call's latency for Summarize.
template <typename Call>
void Measure(benchmark::State& state, Call call) {
  if (state.thread_index() == 0) g_latency_ms.assign(state.threads(), {});
  std::vector<double>* latencies = nullptr;
  for (auto _ : state) {
    if (latencies == nullptr) latencies = &g_latency_ms[state.thread_index()];
    const auto start = std::chrono::steady_clock::now();
    grpc::Status status = call();
    latencies->push_back(
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
            .count());
    if (!status.ok()) {
      state.SkipWithError(status.error_message().c_str());
      break;
    }
  }
  state.SetItemsProcessed(state.iterations());
  Summarize(state);
}

void BM_CreateContact(benchmark::State& state) {
  System& system = TheSystem();
  Measure(state, [&] { return Create(system, state.thread_index(), system.created.fetch_add(1)); });
}
BENCHMARK(BM_CreateContact)->Threads(1)->Threads(16)->Threads(64)->UseRealTime()->MinTime(3.0);

void BM_GetContact(benchmark::State& state) {
  System& system = TheSystem();
  uint64_t n = static_cast<uint64_t>(state.thread_index()) * 7919;
  Measure(state, [&] {
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

int64_t ResidentBytes(pid_t pid) {
  std::ifstream status(absl::StrCat("/proc/", pid, "/status"));
  for (std::string line; std::getline(status, line);) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stoll(line.substr(6)) * 1024;
  }
  return 0;
}

int64_t DiskBytes(const std::filesystem::path& dir) {
  int64_t total = 0;
  std::error_code ec;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(dir, ec)) {
    if (entry.is_regular_file(ec)) total += static_cast<int64_t>(entry.file_size(ec));
  }
  return total;
}

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
  state.counters["rss_mib"] = static_cast<double>(ResidentBytes(system.service->pid())) / (1 << 20);
  state.counters["disk_mib"] =
      static_cast<double>(DiskBytes(system.dir.Sub("contact"))) / (1 << 20);
}
BENCHMARK(BM_FootprintAfterContacts)->Iterations(1)->UseRealTime()->Unit(benchmark::kSecond);

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  if (g_system != nullptr) {  // stop the service before leaving: it must not outlive the run
    g_system->service->Signal(SIGTERM);
    g_system->service->WaitForExitCode(std::chrono::seconds(60));
    delete g_system;
  }
  return 0;
}
