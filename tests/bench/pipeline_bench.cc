// pipeline-service over gRPC, the real binary next to the real contact-service on loopback
// with synced durability: CaptureLead, MoveOpportunityStage and ConvertLead (two creates in
// contact-service, two appends here) at 1, 16 and 64 concurrent callers. Rendered by
// tests/bench/report.py.

#include <atomic>
#include <thread>

#include "absl/strings/str_cat.h"
#include "benchmark/benchmark.h"
#include "crm/kafka/mock_cluster.h"
#include "crm/pipeline/v1/pipeline_service.grpc.pb.h"
#include "crm/runtime/auth.h"
#include "crm/testing/testing.h"
#include "grpc_bench.h"

namespace {

using crm::pipeline::v1::PipelineService;

constexpr char kSecret[] = "pipeline-bench-secret-pipeline-bench";
constexpr int kStages = 5;

struct System {
  System() {
    cluster = *crm::kafka::MockCluster::Start(1);
    (void)cluster->CreateTopic("crm.contact.events.v1", 3, 1);
    (void)cluster->CreateTopic("crm.pipeline.events.v1", 3, 1);
    contacts = std::make_unique<crm::bench::BenchService>(CRM_CONTACT_SERVICE, dir.Sub("contact"),
                                                          cluster->bootstrap_servers(), kSecret);
    pipeline = std::make_unique<crm::bench::BenchService>(
        CRM_PIPELINE_SERVICE, dir.Sub("pipeline"), cluster->bootstrap_servers(), kSecret,
        std::vector<std::string>{"--contact-service", contacts->address,
                                 "--contact-service-plaintext"});
    token = "Bearer " + *crm::runtime::SignHs256({.subject = "bench",
                                                  .scopes = {"pipeline:read", "pipeline:write",
                                                             "contacts:read", "contacts:write"}},
                                                 kSecret);
    stubs = crm::bench::Stubs<PipelineService>(pipeline->address);
    contacts->WaitUntilServing();
    grpc::ClientContext context;
    context.AddMetadata("authorization", token);
    crm::pipeline::v1::DefinePipelineRequest define;
    define.set_pipeline_id("bench");
    define.set_display_name("Bench");
    for (int s = 0; s < kStages; ++s) {
      auto* stage = define.add_stages();
      stage->set_stage_id(absl::StrCat("s", s));
      stage->set_probability_bps(s * 2000);
    }
    crm::pipeline::v1::Pipeline defined;
    grpc::Status status = stubs[0]->DefinePipeline(&context, define, &defined);
    if (!status.ok()) std::fprintf(stderr, "define: %s\n", status.error_message().c_str());
  }
  PipelineService::Stub& Stub(int thread) { return *stubs[thread % stubs.size()]; }

  grpc::Status Capture(int thread, int64_t n) {
    grpc::ClientContext context;
    context.AddMetadata("authorization", token);
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    crm::pipeline::v1::CaptureLeadRequest request;
    request.set_lead_id(absl::StrCat("l", n));
    request.set_channel("web_form");
    auto* lead = request.mutable_lead();
    lead->set_source(absl::StrCat("source-", n % 8));
    lead->set_region(absl::StrCat("region-", n % 4));
    lead->mutable_person()->set_given_name("Bench");
    lead->mutable_person()->set_family_name(absl::StrCat("Person ", n));
    lead->mutable_person()->set_email(absl::StrCat("person", n, "@example.com"));
    lead->mutable_company()->set_display_name(absl::StrCat("Company ", n));
    crm::pipeline::v1::Lead response;
    return Stub(thread).CaptureLead(&context, request, &response);
  }

  crm::pipeline::v1::Opportunity Deal() const {
    crm::pipeline::v1::Opportunity deal;
    deal.set_pipeline_id("bench");
    deal.set_currency_code("EUR");
    auto* line = deal.add_lines();
    line->set_product_id("engine");
    line->set_quantity(3);
    line->set_unit_price_minor(125000);
    return deal;
  }

  crm::testing::TempDir dir;
  std::unique_ptr<crm::kafka::MockCluster> cluster;
  std::unique_ptr<crm::bench::BenchService> contacts;
  std::unique_ptr<crm::bench::BenchService> pipeline;
  std::string token;
  std::vector<std::unique_ptr<PipelineService::Stub>> stubs;
  std::atomic<int64_t> captured{0};
  std::atomic<int64_t> converted{0};
  std::atomic<int64_t> opened{0};
};

System& TheSystem() {
  static System* system = new System();  // one pair of services for the whole run
  return *system;
}

void BM_CaptureLead(benchmark::State& state) {
  System& system = TheSystem();
  crm::bench::Measure(
      state, [&] { return system.Capture(state.thread_index(), system.captured.fetch_add(1)); });
}
BENCHMARK(BM_CaptureLead)->Threads(1)->Threads(16)->Threads(64)->UseRealTime()->MinTime(3.0);

// Each caller moves its own opportunity around the pipeline's stages (every move legal).
void BM_MoveStage(benchmark::State& state) {
  System& system = TheSystem();
  const std::string id = absl::StrCat("o", system.opened.fetch_add(1));
  {
    grpc::ClientContext context;
    context.AddMetadata("authorization", system.token);
    crm::pipeline::v1::OpenOpportunityRequest open;
    open.set_opportunity_id(id);
    *open.mutable_opportunity() = system.Deal();
    open.mutable_opportunity()->set_display_name(id);
    crm::pipeline::v1::Opportunity opened;
    grpc::Status status =
        system.Stub(state.thread_index()).OpenOpportunity(&context, open, &opened);
    if (!status.ok()) return state.SkipWithError(status.error_message().c_str());
  }
  int stage = 0;
  crm::bench::Measure(state, [&] {
    grpc::ClientContext context;
    context.AddMetadata("authorization", system.token);
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    crm::pipeline::v1::MoveOpportunityStageRequest move;
    move.set_opportunity_id(id);
    move.set_stage_id(absl::StrCat("s", (stage = (stage + 1) % kStages)));
    crm::pipeline::v1::Opportunity moved;
    return system.Stub(state.thread_index()).MoveOpportunityStage(&context, move, &moved);
  });
}
BENCHMARK(BM_MoveStage)->Threads(1)->Threads(16)->Threads(64)->UseRealTime()->MinTime(3.0);

// Converts leads captured beforehand (outside the measurement), each exactly once.
void BM_ConvertLead(benchmark::State& state) {
  System& system = TheSystem();
  if (state.thread_index() == 0) {  // top the pool of unconverted leads up for this run
    const int64_t wanted = system.converted.load() + 20'000;
    std::vector<std::thread> callers;
    for (int t = 0; t < 32; ++t) {
      callers.emplace_back([&, t] {
        for (int64_t n; (n = system.captured.fetch_add(1)) < wanted;) (void)system.Capture(t, n);
      });
    }
    for (auto& caller : callers) caller.join();
  }
  crm::bench::Measure(state, [&] {
    grpc::ClientContext context;
    context.AddMetadata("authorization", system.token);
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    crm::pipeline::v1::ConvertLeadRequest convert;
    convert.set_lead_id(absl::StrCat("l", system.converted.fetch_add(1)));
    *convert.mutable_opportunity() = system.Deal();
    crm::pipeline::v1::ConvertLeadResponse response;
    return system.Stub(state.thread_index()).ConvertLead(&context, convert, &response);
  });
}
BENCHMARK(BM_ConvertLead)->Threads(1)->Threads(16)->Threads(64)->UseRealTime()->MinTime(2.0);

}  // namespace

int main(int argc, char** argv) {
  return crm::bench::RunBenchmarks(argc, argv, [] { delete &TheSystem(); });  // stops the services
}
