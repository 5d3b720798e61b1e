// The bearer-token check every call pays (libs/runtime TokenVerifier): a token's first
// verification (signature and claims) against a token the verifier already remembers.
//
//   build/tests/bench/auth_bench

#include <benchmark/benchmark.h>

#include <cstdlib>
#include <memory>

#include "absl/time/clock.h"
#include "crm/runtime/auth.h"

namespace {

constexpr char kSecret[] = "bench-secret-bench-secret-bench-secret";

std::string Token() {
  auto token = crm::runtime::SignHs256(
      {.subject = "rep-1", .scopes = {"contacts:read", "contacts:write", "activities:write"}},
      kSecret);
  if (!token.ok()) std::abort();
  return "Bearer " + *token;
}

std::unique_ptr<crm::runtime::TokenVerifier> Verifier() {
  auto verifier = crm::runtime::TokenVerifier::Create({.hs256_secret = kSecret});
  if (!verifier.ok()) std::abort();
  return *std::move(verifier);
}

void BM_VerifyToken_FirstSight(benchmark::State& state) {
  const std::string token = Token();
  const absl::Time now = absl::Now();
  for (auto _ : state) {
    auto verifier = Verifier();  // nothing remembered
    benchmark::DoNotOptimize(verifier->Verify(token, now));
  }
}
BENCHMARK(BM_VerifyToken_FirstSight);

void BM_VerifyToken_Remembered(benchmark::State& state) {
  const std::string token = Token();
  const absl::Time now = absl::Now();
  auto verifier = Verifier();
  if (!verifier->Verify(token, now).ok()) std::abort();
  for (auto _ : state) benchmark::DoNotOptimize(verifier->Verify(token, now));
}
BENCHMARK(BM_VerifyToken_Remembered);

}  // namespace

BENCHMARK_MAIN();
