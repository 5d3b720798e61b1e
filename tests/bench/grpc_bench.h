#pragma once

// What the benchmarks of real service binaries share: a service started on a free port,
// per-call latency recording reported as nearest-rank p50/p99 counters, and footprint readings.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "benchmark/benchmark.h"
#include "crm/testing/subprocess.h"
#include "grpcpp/grpcpp.h"

namespace crm::bench {

// A service binary on a free port with warn logs (an info line per call would fill the stderr
// pipe nobody reads here) and the dev broker at `bootstrap`.
struct BenchService {
  BenchService(const std::string& binary, const std::string& data_dir, const std::string& bootstrap,
               const std::string& secret, std::vector<std::string> extra_flags = {})
      : address(absl::StrCat("127.0.0.1:", crm::testing::FreeLoopbackPort())) {
    std::vector<std::string> args = {
        binary,          "--plaintext", "--jwt-hs256-secret", secret,
        "--grpc-listen", address,       "--metrics-listen",   "127.0.0.1:0",
        "--data-dir",    data_dir,      "--kafka-bootstrap",  bootstrap,
        "--log-level",   "warn"};
    args.insert(args.end(), extra_flags.begin(), extra_flags.end());
    process = std::make_unique<crm::testing::Subprocess>(std::move(args));
  }
  // True once it accepts connections.
  bool WaitUntilServing() const {
    return grpc::CreateChannel(address, grpc::InsecureChannelCredentials())
        ->WaitForConnected(std::chrono::system_clock::now() + std::chrono::seconds(30));
  }
  // SIGTERM and wait: a service must not outlive the run.
  ~BenchService() {
    process->Signal(SIGTERM);
    process->WaitForExitCode(std::chrono::seconds(60));
  }
  std::string address;
  std::unique_ptr<crm::testing::Subprocess> process;
};

// A few connections, as several client processes would have.
template <typename Service>
std::vector<std::unique_ptr<typename Service::Stub>> Stubs(const std::string& address,
                                                           int connections = 4) {
  std::vector<std::unique_ptr<typename Service::Stub>> stubs;
  for (int i = 0; i < connections; ++i) {
    grpc::ChannelArguments args;
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    auto channel = grpc::CreateCustomChannel(address, grpc::InsecureChannelCredentials(), args);
    channel->WaitForConnected(std::chrono::system_clock::now() + std::chrono::seconds(30));
    stubs.push_back(Service::NewStub(channel));
  }
  return stubs;
}

inline double NearestRank(std::vector<double>& sample, double q) {
  if (sample.empty()) return 0;
  std::sort(sample.begin(), sample.end());
  const auto rank = static_cast<size_t>(std::ceil(q * static_cast<double>(sample.size())));
  return sample[std::clamp<size_t>(rank, 1, sample.size()) - 1];
}

// Latencies of the current benchmark, one vector per thread.
inline std::vector<std::vector<double>>& LatenciesMs() {
  static auto* latencies = new std::vector<std::vector<double>>();
  return *latencies;
}

// Runs `call` (returning grpc::Status) once per iteration, recording each call's latency; thread
// 0 reports p50_ms and p99_ms over all threads once they meet at the end of the loop.
template <typename Call>
void Measure(benchmark::State& state, Call call) {
  if (state.thread_index() == 0) LatenciesMs().assign(state.threads(), {});
  std::vector<double>* latencies = nullptr;
  for (auto _ : state) {
    if (latencies == nullptr) latencies = &LatenciesMs()[state.thread_index()];
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
  if (state.thread_index() != 0) return;
  std::vector<double> all;
  for (const auto& per_thread : LatenciesMs())
    all.insert(all.end(), per_thread.begin(), per_thread.end());
  state.counters["p50_ms"] = NearestRank(all, 0.50);
  state.counters["p99_ms"] = NearestRank(all, 0.99);
}

inline int64_t ResidentBytes(pid_t pid) {
  std::ifstream status(absl::StrCat("/proc/", pid, "/status"));
  for (std::string line; std::getline(status, line);) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stoll(line.substr(6)) * 1024;
  }
  return 0;
}

inline int64_t DiskBytes(const std::filesystem::path& dir) {
  int64_t total = 0;
  std::error_code ec;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(dir, ec)) {
    if (entry.is_regular_file(ec)) total += static_cast<int64_t>(entry.file_size(ec));
  }
  return total;
}

// main() of a benchmark binary; `stop` ends what it started (services must not outlive it).
inline int RunBenchmarks(int argc, char** argv, const std::function<void()>& stop) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  stop();
  return 0;
}

}  // namespace crm::bench
