// crm-loadgen: the histogram's error bound and merge, the mix, the open model's schedule and
// its coordinated-omission correction (expected values worked out by hand in the comments),
// and short runs of the binary against the real contact-service.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <csignal>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "crm/kafka/mock_cluster.h"
#include "crm/testing/subprocess.h"
#include "crm/testing/testing.h"
#include "gmock/gmock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "histogram.h"
#include "nlohmann/json.hpp"
#include "plan.h"

namespace crm::loadgen {
namespace {

using ::crm::testing::IsOk;

TEST(HistogramTest, BucketLayout) {
  // Below 128 every value has its own bucket.
  EXPECT_EQ(Histogram::BucketOf(127), 127);
  EXPECT_EQ(Histogram::BucketWidth(127), 1);
  // [128, 256): exponent 7, still width 1.
  EXPECT_EQ(Histogram::BucketOf(128), 128);
  EXPECT_EQ(Histogram::BucketOf(255), 255);
  // [256, 512): width 2, so 256 and 257 share bucket 256.
  EXPECT_EQ(Histogram::BucketOf(256), 256);
  EXPECT_EQ(Histogram::BucketOf(257), 256);
  EXPECT_EQ(Histogram::BucketWidth(256), 2);
  // 1000 in [512, 1024): width 4, 1000 >> 2 = 250, so [1000, 1004), index 128 + 2*128 + 122.
  EXPECT_EQ(Histogram::BucketOf(1000), 506);
  EXPECT_EQ(Histogram::BucketLow(506), 1000);
  EXPECT_EQ(Histogram::Representative(506), 1002);
  // 1,000,000 in [2^19, 2^20): width 4096, 1e6 >> 12 = 244, low 244 * 4096 = 999,424.
  const int million = Histogram::BucketOf(1'000'000);
  EXPECT_EQ(Histogram::BucketLow(million), 999'424);
  EXPECT_EQ(Histogram::Representative(million), 999'424 + 2'048);
}

TEST(HistogramTest, RelativeErrorIsAtMostOneIn256) {
  // A bucket is at most 1/128 of its lower bound wide; the midpoint is half of that away.
  for (int64_t v = 0; v < 300'000; v += 7) {
    const int64_t r = Histogram::Representative(Histogram::BucketOf(v));
    ASSERT_LE(std::abs(r - v) * 256, v) << v;
  }
  for (int64_t v = 1; v < Histogram::kMaxValue / 3; v = v * 3 + 1) {
    const int64_t r = Histogram::Representative(Histogram::BucketOf(v));
    ASSERT_LE(std::abs(r - v) * 256, v) << v;
  }
}

TEST(HistogramTest, NearestRankQuantiles) {
  Histogram h;
  for (int v = 1; v <= 1000; ++v) h.Record(v);
  EXPECT_EQ(h.count(), 1000);
  EXPECT_EQ(h.min(), 1);
  EXPECT_EQ(h.max(), 1000);
  EXPECT_DOUBLE_EQ(h.mean(), 500.5);
  // p50 is the 500th value; 500 is in [500, 502) (width 2), midpoint 501.
  EXPECT_EQ(h.Quantile(0.5), 501);
  // p90: the 900th, in [900, 904) -> 902. p99: the 990th, in [988, 992) -> 990.
  EXPECT_EQ(h.Quantile(0.9), 902);
  EXPECT_EQ(h.Quantile(0.99), 990);
  // p99.9: the 999th, in [996, 1000) -> 998. p100: [1000, 1004) -> 1002, clamped to the max.
  EXPECT_EQ(h.Quantile(0.999), 998);
  EXPECT_EQ(h.Quantile(1.0), 1000);
  EXPECT_EQ(h.Quantile(0.0), 1);
  EXPECT_EQ(Histogram().Quantile(0.5), 0);
}

TEST(HistogramTest, MergeAddsCounts) {
  Histogram a, b, all;
  for (int64_t v : {100, 200}) a.Record(v);
  for (int64_t v : {300, 400, 5000}) b.Record(v);
  for (int64_t v : {100, 200, 300, 400, 5000}) all.Record(v);
  Histogram merged;
  merged.Merge(a);
  merged.Merge(b);
  EXPECT_EQ(merged.count(), 5);
  EXPECT_EQ(merged.min(), 100);
  EXPECT_EQ(merged.max(), 5000);
  EXPECT_DOUBLE_EQ(merged.mean(), 1200.0);
  // Ranks 1..5: 100 and 200 exact (width 1), 300 -> [300, 302) -> 301, 400 -> 401.
  EXPECT_EQ(merged.Quantile(0.2), 100);
  EXPECT_EQ(merged.Quantile(0.4), 200);
  EXPECT_EQ(merged.Quantile(0.5), 301);
  EXPECT_EQ(merged.Quantile(0.8), 401);
  EXPECT_EQ(merged.Quantile(1.0), 5000);
  for (double q : {0.1, 0.3, 0.5, 0.7, 0.9, 0.99}) EXPECT_EQ(merged.Quantile(q), all.Quantile(q));
}

TEST(MixTest, ParsesWeightsAndPicksByThem) {
  const std::vector<std::string> known = {"CreateContact", "GetContact"};
  auto one = ParseMix("CreateContact=1", known);
  ASSERT_THAT(one, IsOk());
  ASSERT_EQ(one->size(), 1u);
  EXPECT_EQ((*one)[0].method, "CreateContact");
  auto two = ParseMix("CreateContact=3, GetContact", known);
  ASSERT_THAT(two, IsOk());
  ASSERT_EQ(two->size(), 2u);
  EXPECT_EQ((*two)[0].weight, 3);
  EXPECT_EQ((*two)[1].weight, 1);
  EXPECT_FALSE(ParseMix("Nope=1", known).ok());
  EXPECT_FALSE(ParseMix("CreateContact=0", known).ok());
  EXPECT_FALSE(ParseMix("", known).ok());
  // 3:1 -> the first takes [0, 0.75), the second [0.75, 1).
  MixPicker picker(*two);
  EXPECT_EQ(picker.Pick(0.0), 0);
  EXPECT_EQ(picker.Pick(0.74), 0);
  EXPECT_EQ(picker.Pick(0.75), 1);
  EXPECT_EQ(picker.Pick(0.999), 1);
  double total = 0;
  for (const MixEntry& entry : DemoMix()) total += entry.weight;
  EXPECT_EQ(total, 100);  // percent
}

TEST(OpenScheduleTest, FixedIntervalsFromTheStart) {
  const int64_t start = 1'000'000'000;
  OpenSchedule every_10ms(start, 100);
  EXPECT_EQ(every_10ms.Intended(0), start);
  EXPECT_EQ(every_10ms.Intended(1), start + 10'000'000);
  EXPECT_EQ(every_10ms.Intended(250), start + 2'500'000'000);
  EXPECT_EQ(every_10ms.DueBy(start - 1), 0);
  EXPECT_EQ(every_10ms.DueBy(start), 1);
  EXPECT_EQ(every_10ms.DueBy(start + 35'000'000), 4);  // 0, 10, 20, 30 ms
  EXPECT_EQ(every_10ms.DueBy(start + 40'000'000), 5);
  // 3/s: 333,333,333.3 ns apart, rounded to the nanosecond, no drift: the 3rd is at 1 s.
  OpenSchedule thirds(0, 3);
  EXPECT_EQ(thirds.Intended(1), 333'333'333);
  EXPECT_EQ(thirds.Intended(2), 666'666'667);
  EXPECT_EQ(thirds.Intended(3), 1'000'000'000);
  EXPECT_EQ(thirds.DueBy(666'666'666), 2);
  EXPECT_EQ(thirds.DueBy(666'666'667), 3);
}

TEST(OpenScheduleTest, StallIsChargedToEveryRequestItHeldBack) {
  // 100 requests at 100/s (one per 10 ms). Answers take 1 ms, but the system stalls from 200
  // to 700 ms: the 50 requests due in that window are all answered at 700 ms.
  constexpr int64_t kMs = 1'000'000;
  OpenSchedule schedule(0, 100);
  Histogram corrected, naive;
  for (int i = 0; i < 100; ++i) {
    const int64_t intended = schedule.Intended(i);
    const bool stalled = intended >= 200 * kMs && intended < 700 * kMs;
    const int64_t done = stalled ? 700 * kMs : intended + kMs;
    corrected.Record(CorrectedLatencyNs(intended, done) / 1000);
    // A sender blocked by the stall would only time the first held-back request at 500 ms
    // and send the rest at 700 ms, timing 1 ms each: coordinated omission.
    naive.Record(intended == 200 * kMs ? 500'000 : 1'000);
  }
  // Corrected: 50 x 1 ms, and 700 - (200 + 10k) = 500, 490, ..., 10 ms for k = 0..49.
  // Sorted: ranks 1..50 are 1 ms, rank 50 + j is 10j ms. p50 -> 1 ms, p90 (rank 90) -> 400 ms,
  // p99 (rank 99) -> 490 ms, max 500 ms. Within the histogram's 1/256.
  auto near = [](int64_t got, double want) { EXPECT_NEAR(got, want, want / 256) << want; };
  near(corrected.Quantile(0.5), 1'000);
  near(corrected.Quantile(0.9), 400'000);
  near(corrected.Quantile(0.99), 490'000);
  EXPECT_EQ(corrected.max(), 500'000);
  // The naive view hides the stall everywhere but in the maximum.
  near(naive.Quantile(0.99), 1'000);
  EXPECT_EQ(naive.max(), 500'000);
}

// --- the binary against the real contact-service ------------------------------------------

constexpr char kSecret[] = "loadgen-test-secret-loadgen-test-secret";

class LoadgenRunTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto cluster = crm::kafka::MockCluster::Start(1);
    ASSERT_THAT(cluster, IsOk());
    cluster_ = *std::move(cluster);
    ASSERT_THAT(cluster_->CreateTopic("crm.contact.events.v1", 1, 1), IsOk());
    address_ = absl::StrCat("127.0.0.1:", crm::testing::FreeLoopbackPort());
    service_ = std::make_unique<crm::testing::Subprocess>(std::vector<std::string>{
        CRM_CONTACT_SERVICE, "--plaintext", "--jwt-hs256-secret", kSecret, "--grpc-listen",
        address_, "--metrics-listen", "127.0.0.1:0", "--data-dir", dir_.Sub("contact"),
        "--kafka-bootstrap", cluster_->bootstrap_servers(), "--log-level", "warn"});
    ASSERT_TRUE(grpc::CreateChannel(address_, grpc::InsecureChannelCredentials())
                    ->WaitForConnected(std::chrono::system_clock::now() + std::chrono::seconds(20)))
        << service_->DrainStderr();
  }
  void TearDown() override {
    if (service_ != nullptr) {
      service_->Signal(SIGTERM);
      service_->WaitForExitCode();
    }
  }

  // Runs crm-loadgen with `flags`; its JSON results.
  nlohmann::json Run(std::vector<std::string> flags) {
    const std::string json = dir_.Sub("results.json");
    std::vector<std::string> args = {
        CRM_LOADGEN, "--contact",        address_, "--jwt-hs256-secret",
        kSecret,     "--json",           json,     "--lag-samples-per-second",
        "0",         "--setup-accounts", "5"};
    args.insert(args.end(), flags.begin(), flags.end());
    crm::testing::Subprocess process(args);
    std::string out;
    while (auto line = process.ReadStdoutLine()) out += *line + "\n";
    const std::string err = process.DrainStderr();
    EXPECT_EQ(process.WaitForExitCode().value_or(-1), 0) << out << err;
    std::ifstream file(json);
    return nlohmann::json::parse(file, nullptr, /*allow_exceptions=*/false);
  }

  crm::testing::TempDir dir_;
  std::unique_ptr<crm::kafka::MockCluster> cluster_;
  std::string address_;
  std::unique_ptr<crm::testing::Subprocess> service_;
};

TEST_F(LoadgenRunTest, OpenAndClosedModelsCreateContactsWithoutErrors) {
  // Open: 25/s for 2 s is 50 calls (the count of a fixed schedule, whatever the latency).
  nlohmann::json open =
      Run({"--rate", "25", "--duration", "2s", "--warmup", "0s", "--mix", "CreateContact=1"});
  ASSERT_FALSE(open.is_discarded());
  EXPECT_EQ(open["mode"], "open");
  EXPECT_EQ(open["methods"]["CreateContact"]["count"], 50);
  EXPECT_EQ(open["total"]["errors"], 0);
  EXPECT_GT(open["methods"]["CreateContact"]["p50_ms"].get<double>(), 0);

  nlohmann::json closed = Run({"--concurrency", "8", "--duration", "1s", "--warmup", "200ms",
                               "--mix", "CreateContact=3,GetContact=1"});
  ASSERT_FALSE(closed.is_discarded());
  EXPECT_EQ(closed["mode"], "closed");
  EXPECT_GT(closed["methods"]["CreateContact"]["count"].get<int64_t>(), 0);
  EXPECT_GT(closed["methods"]["GetContact"]["count"].get<int64_t>(), 0);
  EXPECT_EQ(closed["total"]["errors"], 0);
}

TEST_F(LoadgenRunTest, HealthCheckNeedsNoTokenAndNoSetup) {
  // No secret (and no data/jwt.secret to fall back on): a run that wanted a token would exit 1
  // before sending anything, and a setup command sent without one would fail (exit 1 too).
  const std::string json = dir_.Sub("health.json");
  crm::testing::Subprocess process({CRM_LOADGEN, "--contact", address_, "--json", json,
                                    "--data-dir", dir_.Sub("no-such-dir"), "--concurrency", "8",
                                    "--duration", "1s", "--warmup", "200ms", "--mix",
                                    "HealthCheck=1"});
  std::string out;
  while (auto line = process.ReadStdoutLine()) out += *line + "\n";
  const std::string err = process.DrainStderr();
  ASSERT_EQ(process.WaitForExitCode().value_or(-1), 0) << out << err;
  std::ifstream file(json);
  nlohmann::json health = nlohmann::json::parse(file, nullptr, /*allow_exceptions=*/false);
  ASSERT_FALSE(health.is_discarded());
  EXPECT_GT(health["methods"]["HealthCheck"]["count"].get<int64_t>(), 0);
  EXPECT_EQ(health["methods"]["HealthCheck"]["ok"], health["methods"]["HealthCheck"]["count"]);
  EXPECT_EQ(health["total"]["errors"], 0);
  EXPECT_EQ(health["methods"].size(), 1u);
}

}  // namespace
}  // namespace crm::loadgen
