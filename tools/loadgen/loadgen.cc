#include "loadgen.h"

#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <iostream>
#include <mutex>
#include <optional>
#include <random>
#include <thread>
#include <tuple>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "crm/activity/v1/activity_service.pb.h"
#include "crm/contact/v1/contact_service.pb.h"
#include "crm/metrics/v1/metrics_service.pb.h"
#include "crm/pipeline/v1/pipeline_service.pb.h"
#include "crm/runtime/client.h"
#include "google/protobuf/util/time_util.h"
#include "grpc/health/v1/health.pb.h"
#include "grpcpp/generic/generic_stub.h"
#include "grpcpp/grpcpp.h"

namespace crm::loadgen {

namespace {

namespace contact = ::crm::contact::v1;
namespace activity = ::crm::activity::v1;
namespace pipeline = ::crm::pipeline::v1;
namespace metrics = ::crm::metrics::v1;
using ::google::protobuf::Message;
using ::google::protobuf::util::TimeUtil;

enum Service { kContact, kActivity, kPipeline, kMetrics, kServiceCount };
constexpr const char* kServiceNames[] = {"contact", "activity", "pipeline", "metrics"};

const char kStages[][16] = {"discovery", "qualification", "proposal", "negotiation"};
const char kRegions[][8] = {"north", "south", "east", "west"};
constexpr int kReps = 10;
constexpr int kMaxLagInFlight = 32;  // each waits in metrics-service; beyond this, skip a sample

int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

std::string CodeName(grpc::StatusCode code) {
  return absl::StatusCodeToString(static_cast<absl::StatusCode>(code));
}

struct StreamVersion {
  std::string stream;  // "<type>/<id>", as metrics-service names streams
  int64_t version = 0;
};

// A record the generator created and may send a follow-up command to.
struct Record {
  std::string id;
  int64_t version = 0;
  int stage = 0;  // opportunities: index in kStages
};

// One command ready to send; on_ok runs under the pools' lock with the parsed answer.
struct Command {
  std::string method;
  Service service = kContact;
  std::unique_ptr<Message> request;
  std::unique_ptr<Message> response;
  std::function<std::optional<StreamVersion>(const Message&)> on_ok;
};

template <typename Request, typename Response>
Command Make(std::string method, Service service, Request request,
             std::function<std::optional<StreamVersion>(const Response&)> on_ok) {
  return Command{std::move(method), service, std::make_unique<Request>(std::move(request)),
                 std::make_unique<Response>(), [on_ok = std::move(on_ok)](const Message& m) {
                   return on_ok(static_cast<const Response&>(m));
                 }};
}

// The standard health check, on contact-service: the raw limit of a unary round trip.
constexpr char kHealthCheckPath[] = "/grpc.health.v1.Health/Check";

std::string PathOf(const Command& command) {
  if (command.method == "HealthCheck") return kHealthCheckPath;
  static const char* kPackages[] = {
      "crm.contact.v1.ContactService", "crm.activity.v1.ActivityService",
      "crm.pipeline.v1.PipelineService", "crm.metrics.v1.MetricsService"};
  return absl::StrCat("/", kPackages[command.service], "/", command.method);
}

bool NeedsAny(const std::vector<MixEntry>& mix, std::initializer_list<const char*> methods) {
  for (const MixEntry& entry : mix) {
    for (const char* method : methods) {
      if (entry.method == method) return true;
    }
  }
  return false;
}

class Driver {
 public:
  Driver(const Options& options,
         std::array<std::vector<std::shared_ptr<grpc::Channel>>, kServiceCount> channels)
      : options_(options), picker_(options.mix), rng_(options.seed) {
    for (int s = 0; s < kServiceCount; ++s) {
      for (auto& channel : channels[s])
        stubs_[s].push_back(std::make_unique<grpc::GenericStub>(channel));
    }
  }

  // The records follow-up commands need: accounts, contacts, a pipeline.
  absl::Status Setup() {
    const auto& mix = options_.mix;
    const bool contacts = NeedsAny(mix, {"LogActivity", "ScheduleTask", "CompleteTask", "OpenCase",
                                         "ResolveCase", "GetContact"});
    const bool accounts = contacts || NeedsAny(mix, {"CreateContact", "OpenOpportunity",
                                                     "MoveOpportunityStage", "CloseOpportunity"});
    const bool pipelines =
        NeedsAny(mix, {"OpenOpportunity", "MoveOpportunityStage", "CloseOpportunity"});
    if (pipelines) {
      pipeline::DefinePipelineRequest define;
      define.set_pipeline_id(pipeline_id_ = Id("pl"));
      define.set_display_name("crm-loadgen");
      for (int i = 0; i < 4; ++i) {
        auto* stage = define.add_stages();
        stage->set_stage_id(kStages[i]);
        stage->set_display_name(kStages[i]);
        stage->set_probability_bps(1000 + 2000 * i);
      }
      define.set_request_id(RequestId());
      std::vector<Command> setup;
      setup.push_back(Make<pipeline::DefinePipelineRequest, pipeline::Pipeline>(
          "DefinePipeline", kPipeline, define, [](const auto&) { return std::nullopt; }));
      if (absl::Status s = RunBlocking(std::move(setup)); !s.ok()) return s;
    }
    for (const auto& [wanted, method, count] :
         {std::tuple{accounts, "CreateAccount", options_.setup_accounts},
          std::tuple{contacts, "CreateContact", options_.setup_contacts}}) {
      if (!wanted) continue;
      std::vector<Command> setup;
      for (int i = 0; i < count; ++i) {
        std::lock_guard lock(mu_);
        setup.push_back(Build(method));
      }
      if (absl::Status s = RunBlocking(std::move(setup)); !s.ok()) return s;
    }
    return absl::OkStatus();
  }

  Results Load() {
    const bool open = options_.rate > 0;
    results_.mode = open ? "open" : "closed";
    results_.target_rate = options_.rate;
    results_.concurrency = options_.concurrency;
    const int64_t start = NowNs();
    measure_start_ns_ = start + absl::ToInt64Nanoseconds(options_.warmup);
    end_ns_ = measure_start_ns_ + absl::ToInt64Nanoseconds(options_.duration);
    lag_interval_ns_ = options_.lag_samples_per_second > 0
                           ? static_cast<int64_t>(1e9 / options_.lag_samples_per_second)
                           : -1;
    if (open) {
      const OpenSchedule schedule(start, options_.rate);
      for (int64_t i = 0;; ++i) {
        const int64_t intended = schedule.Intended(i);
        if (intended >= end_ns_) break;
        std::this_thread::sleep_until(
            std::chrono::steady_clock::time_point(std::chrono::nanoseconds(intended)));
        std::unique_lock lock(flight_mu_);
        flight_cv_.wait(lock, [&] { return in_flight_ < options_.max_in_flight; });
        ++in_flight_;
        lock.unlock();
        Send(intended, intended >= measure_start_ns_, /*closed=*/false);
      }
    } else {
      {
        std::lock_guard lock(flight_mu_);
        in_flight_ = options_.concurrency;
      }
      for (int i = 0; i < options_.concurrency; ++i) Send(0, NowNs() >= measure_start_ns_, true);
      std::this_thread::sleep_until(
          std::chrono::steady_clock::time_point(std::chrono::nanoseconds(end_ns_)));
    }
    {
      std::unique_lock lock(flight_mu_);
      flight_cv_.wait(lock, [&] { return in_flight_ == 0 && lag_in_flight_ == 0; });
    }
    std::lock_guard lock(stats_mu_);
    results_.seconds = std::max(end_ns_, last_measured_done_ns_) - measure_start_ns_;
    results_.seconds /= 1e9;
    return std::move(results_);
  }

 private:
  std::string Id(const char* kind) {
    return absl::StrCat(options_.id_prefix, "-", kind, "-", ++ids_);
  }
  std::string RequestId() { return absl::StrCat(options_.id_prefix, ":", ++requests_); }
  std::string Rep() { return absl::StrCat(options_.id_prefix, "-rep-", Uniform(kReps)); }
  int Uniform(int n) { return std::uniform_int_distribution<int>(0, n - 1)(rng_); }
  bool Chance(double p) { return std::uniform_real_distribution<double>(0, 1)(rng_) < p; }
  std::string Any(const std::vector<std::string>& ids) {
    return ids.empty() ? "" : ids[Uniform(static_cast<int>(ids.size()))];
  }
  static std::optional<Record> Take(std::deque<Record>& pool) {
    if (pool.empty()) return std::nullopt;
    Record record = std::move(pool.front());
    pool.pop_front();
    return record;
  }
  static std::optional<StreamVersion> Written(const char* type, const std::string& id,
                                              int64_t version) {
    return StreamVersion{absl::StrCat(type, "/", id), version};
  }
  // A follow-up with no free record is sent as the command that creates one.
  Command Substitute(const char* method) {
    ++results_.substituted;
    return Build(method);
  }

  // Builds the next command of `method` from the pools; the caller holds mu_ (or is alone).
  Command Build(const std::string& method) {
    const std::string region = kRegions[Uniform(4)];
    if (method == "HealthCheck") {  // the empty service name: the server as a whole
      return Make<grpc::health::v1::HealthCheckRequest, grpc::health::v1::HealthCheckResponse>(
          method, kContact, {}, [](const auto&) { return std::nullopt; });
    }
    if (method == "CreateAccount") {
      contact::CreateAccountRequest r;
      r.set_account_id(Id("acc"));
      r.mutable_account()->set_display_name(absl::StrCat("Account ", r.account_id()));
      r.mutable_account()->set_domain(absl::StrCat(r.account_id(), ".example"));
      r.mutable_account()->set_industry("software");
      r.mutable_account()->set_owner_id(Rep());
      r.mutable_account()->set_region(region);
      r.set_request_id(RequestId());
      r.set_channel("import");
      return Make<contact::CreateAccountRequest, contact::Account>(
          method, kContact, std::move(r), [this](const contact::Account& a) {
            accounts_.push_back(a.account_id());
            return Written("account", a.account_id(), a.version());
          });
    }
    if (method == "CreateContact") {
      contact::CreateContactRequest r;
      r.set_contact_id(Id("con"));
      auto* c = r.mutable_contact();
      c->set_given_name("Ada");
      c->set_family_name(absl::StrCat("Load ", r.contact_id()));
      c->add_emails(absl::StrCat(r.contact_id(), "@loadgen.example"));
      c->add_phones(absl::StrCat("+4930", 1000000 + Uniform(8999999)));
      c->set_account_id(Any(accounts_));
      c->set_owner_id(Rep());
      c->set_region(region);
      c->set_source_channel("web_form");
      r.set_request_id(RequestId());
      r.set_channel("web_form");
      return Make<contact::CreateContactRequest, contact::Contact>(
          method, kContact, std::move(r), [this](const contact::Contact& c) {
            contacts_.push_back(c.contact_id());
            return Written("contact", c.contact_id(), c.version());
          });
    }
    if (method == "GetContact") {
      contact::GetContactRequest r;
      r.set_contact_id(Any(contacts_));
      return Make<contact::GetContactRequest, contact::Contact>(
          method, kContact, std::move(r), [](const auto&) { return std::nullopt; });
    }
    if (method == "CaptureLead") {
      pipeline::CaptureLeadRequest r;
      r.set_lead_id(Id("lead"));
      auto* l = r.mutable_lead();
      l->set_source("website");
      l->set_channel("web_form");
      l->mutable_person()->set_given_name("Lee");
      l->mutable_person()->set_family_name(absl::StrCat("Load ", r.lead_id()));
      l->mutable_person()->set_email(absl::StrCat(r.lead_id(), "@loadgen.example"));
      l->mutable_company()->set_display_name(absl::StrCat("Company ", r.lead_id()));
      l->set_owner_id(Rep());
      l->set_region(region);
      r.set_request_id(RequestId());
      r.set_channel("web_form");
      return Make<pipeline::CaptureLeadRequest, pipeline::Lead>(
          method, kPipeline, std::move(r), [this](const pipeline::Lead& l) {
            leads_.push_back({l.lead_id(), l.version()});
            return Written("lead", l.lead_id(), l.version());
          });
    }
    if (method == "QualifyLead") {
      auto lead = Take(leads_);
      if (!lead) return Substitute("CaptureLead");
      pipeline::QualifyLeadRequest r;
      r.set_lead_id(lead->id);
      r.set_expected_version(lead->version);
      r.set_request_id(RequestId());
      r.set_channel("phone");
      return Make<pipeline::QualifyLeadRequest, pipeline::Lead>(
          method, kPipeline, std::move(r),
          [](const pipeline::Lead& l) { return Written("lead", l.lead_id(), l.version()); });
    }
    if (method == "LogActivity") {
      activity::LogActivityRequest r;
      r.set_activity_id(Id("act"));
      auto* a = r.mutable_activity();
      const bool visit = Chance(0.3);  // the demo's reps: calls and visits
      a->set_type(visit ? activity::ACTIVITY_TYPE_VISIT : activity::ACTIVITY_TYPE_CALL);
      a->set_channel(visit ? "field_sales" : "phone");
      a->set_owner_id(Rep());
      a->set_contact_id(Any(contacts_));
      a->set_subject(visit ? "Visit" : "Call");
      if (visit) a->set_body("Talked about the field app roll-out. Next step: send a proposal.");
      a->set_outcome(visit ? "positive" : "connected");
      a->set_duration_seconds(visit ? 3600 : 300);
      r.set_request_id(RequestId());
      r.set_channel(a->channel());
      return Make<activity::LogActivityRequest, activity::Activity>(
          method, kActivity, std::move(r), [](const activity::Activity& a) {
            return Written("activity", a.activity_id(), a.version());
          });
    }
    if (method == "ScheduleTask") {
      activity::ScheduleTaskRequest r;
      r.set_task_id(Id("task"));
      r.mutable_task()->set_title("Call back");
      *r.mutable_task()->mutable_due_time() =
          TimeUtil::GetCurrentTime() + TimeUtil::SecondsToDuration(2 * 86400);
      r.mutable_task()->set_assignee_id(Rep());
      r.mutable_task()->set_contact_id(Any(contacts_));
      r.set_request_id(RequestId());
      r.set_channel("web_app");
      return Make<activity::ScheduleTaskRequest, activity::Task>(
          method, kActivity, std::move(r), [this](const activity::Task& t) {
            tasks_.push_back({t.task_id(), t.version()});
            return Written("task", t.task_id(), t.version());
          });
    }
    if (method == "CompleteTask") {
      auto task = Take(tasks_);
      if (!task) return Substitute("ScheduleTask");
      activity::CompleteTaskRequest r;
      r.set_task_id(task->id);
      r.set_expected_version(task->version);
      r.set_request_id(RequestId());
      r.set_channel("web_app");
      return Make<activity::CompleteTaskRequest, activity::Task>(
          method, kActivity, std::move(r),
          [](const activity::Task& t) { return Written("task", t.task_id(), t.version()); });
    }
    if (method == "OpenOpportunity") {
      pipeline::OpenOpportunityRequest r;
      r.set_opportunity_id(Id("opp"));
      auto* o = r.mutable_opportunity();
      o->set_pipeline_id(pipeline_id_);
      o->set_display_name(absl::StrCat("Deal ", r.opportunity_id()));
      o->set_currency_code("EUR");
      auto* line = o->add_lines();
      line->set_product_id("crm-core");
      line->set_quantity(1 + Uniform(100));
      line->set_unit_price_minor(54000);
      o->set_owner_id(Rep());
      o->set_account_id(Any(accounts_));
      o->set_region(region);
      r.set_request_id(RequestId());
      r.set_channel("web_app");
      return Make<pipeline::OpenOpportunityRequest, pipeline::Opportunity>(
          method, kPipeline, std::move(r), [this](const pipeline::Opportunity& o) {
            opportunities_.push_back({o.opportunity_id(), o.version(), 0});
            return Written("opportunity", o.opportunity_id(), o.version());
          });
    }
    if (method == "MoveOpportunityStage") {
      auto opportunity = Take(opportunities_);
      if (!opportunity) return Substitute("OpenOpportunity");
      const int stage = (opportunity->stage + 1) % 4;  // on, and from the last back to the first
      pipeline::MoveOpportunityStageRequest r;
      r.set_opportunity_id(opportunity->id);
      r.set_stage_id(kStages[stage]);
      r.set_expected_version(opportunity->version);
      r.set_request_id(RequestId());
      r.set_channel("web_app");
      return Make<pipeline::MoveOpportunityStageRequest, pipeline::Opportunity>(
          method, kPipeline, std::move(r), [this, stage](const pipeline::Opportunity& o) {
            opportunities_.push_back({o.opportunity_id(), o.version(), stage});
            return Written("opportunity", o.opportunity_id(), o.version());
          });
    }
    if (method == "CloseOpportunity") {
      auto opportunity = Take(opportunities_);
      if (!opportunity) return Substitute("OpenOpportunity");
      const bool won = Chance(0.4);
      pipeline::CloseOpportunityRequest r;
      r.set_opportunity_id(opportunity->id);
      r.set_outcome(won ? pipeline::OPPORTUNITY_STATUS_WON : pipeline::OPPORTUNITY_STATUS_LOST);
      r.set_reason(won ? "best fit for field teams" : "price");
      r.set_expected_version(opportunity->version);
      r.set_request_id(RequestId());
      r.set_channel("web_app");
      return Make<pipeline::CloseOpportunityRequest, pipeline::Opportunity>(
          method, kPipeline, std::move(r), [](const pipeline::Opportunity& o) {
            return Written("opportunity", o.opportunity_id(), o.version());
          });
    }
    if (method == "OpenCase") {
      activity::OpenCaseRequest r;
      r.set_case_id(Id("case"));
      r.mutable_case_()->set_subject("Sync of the field app fails");
      r.mutable_case_()->set_priority(activity::CASE_PRIORITY_NORMAL);
      r.mutable_case_()->set_contact_id(Any(contacts_));
      r.mutable_case_()->set_channel("email");
      r.set_request_id(RequestId());
      r.set_channel("email");
      return Make<activity::OpenCaseRequest, activity::Case>(
          method, kActivity, std::move(r), [this](const activity::Case& c) {
            cases_.push_back({c.case_id(), c.version()});
            return Written("case", c.case_id(), c.version());
          });
    }
    if (method == "ResolveCase") {
      auto open_case = Take(cases_);
      if (!open_case) return Substitute("OpenCase");
      activity::ResolveCaseRequest r;
      r.set_case_id(open_case->id);
      r.set_resolution("fixed and confirmed by the customer");
      r.set_expected_version(open_case->version);
      r.set_request_id(RequestId());
      r.set_channel("service_desk");
      return Make<activity::ResolveCaseRequest, activity::Case>(
          method, kActivity, std::move(r),
          [](const activity::Case& c) { return Written("case", c.case_id(), c.version()); });
    }
    // QueryKpi: this ISO week's activities (no consistency wait: a plain read).
    metrics::QueryKpiRequest r = KpiQuery();
    return Make<metrics::QueryKpiRequest, metrics::QueryKpiResponse>(
        "QueryKpi", kMetrics, std::move(r), [](const auto&) { return std::nullopt; });
  }

  static metrics::QueryKpiRequest KpiQuery() {
    metrics::QueryKpiRequest r;
    r.set_kpi("activities_logged");
    r.set_period_kind(metrics::PERIOD_KIND_ISO_WEEK);
    *r.mutable_start_time() = TimeUtil::GetCurrentTime();
    *r.mutable_end_time() = r.start_time() + TimeUtil::SecondsToDuration(1);
    return r;
  }

  // One unary call through the callback API; `done` gets the status and the answer's bytes.
  void Call(Service service, const std::string& path, const Message& request,
            absl::Duration timeout, std::function<void(grpc::Status, std::string)> done) {
    struct Pending {
      grpc::ClientContext context;
      grpc::ByteBuffer request, response;
      std::function<void(grpc::Status, std::string)> done;
    };
    auto* pending = new Pending;
    pending->done = std::move(done);
    pending->context.set_deadline(std::chrono::system_clock::now() +
                                  absl::ToChronoNanoseconds(timeout));
    // Health is open, and a token would add its verification to the bare round trip.
    if (path != kHealthCheckPath) {
      pending->context.AddMetadata("authorization", absl::StrCat("Bearer ", options_.token));
    }
    grpc::Slice slice(request.SerializeAsString());
    pending->request = grpc::ByteBuffer(&slice, 1);
    auto& stubs = stubs_[service];
    grpc::GenericStub& stub = *stubs[next_stub_++ % stubs.size()];
    stub.UnaryCall(&pending->context, path, grpc::StubOptions(), &pending->request,
                   &pending->response, [pending](grpc::Status status) {
                     std::string bytes;
                     std::vector<grpc::Slice> slices;
                     if (status.ok() && pending->response.Dump(&slices).ok()) {
                       for (const auto& s : slices)
                         bytes.append(reinterpret_cast<const char*>(s.begin()), s.size());
                     }
                     // The context holds a reference to the channel: it goes before `done` can
                     // tell the driver that every call is answered, else the driver's end could
                     // leave the channel's last reference to this callback, and a channel
                     // destroyed inside its own callback crashed crm-loadgen (heap corruption).
                     auto done = std::move(pending->done);
                     delete pending;
                     done(std::move(status), std::move(bytes));
                   });
  }

  // Runs setup commands, 32 at a time; the first failure is the answer.
  absl::Status RunBlocking(std::vector<Command> commands) {
    std::mutex mu;
    std::condition_variable cv;
    int running = 0;
    absl::Status failed;
    for (Command& command : commands) {
      std::unique_lock lock(mu);
      cv.wait(lock, [&] { return running < 32; });
      if (!failed.ok()) break;
      ++running;
      lock.unlock();
      auto* owned = new Command(std::move(command));
      Call(owned->service, PathOf(*owned), *owned->request, options_.timeout,
           [&, owned](grpc::Status status, std::string bytes) {
             if (status.ok()) {
               owned->response->ParseFromString(bytes);
               std::lock_guard pools(mu_);
               owned->on_ok(*owned->response);
             }
             std::lock_guard lock(mu);
             if (!status.ok() && failed.ok()) {
               failed =
                   absl::Status(static_cast<absl::StatusCode>(status.error_code()),
                                absl::StrCat("setup: ", kServiceNames[owned->service], "-service ",
                                             owned->method, ": ", status.error_message()));
             }
             delete owned;
             --running;
             cv.notify_all();
           });
    }
    std::unique_lock lock(mu);
    cv.wait(lock, [&] { return running == 0; });
    return failed;
  }

  // Sends one command of the mix. intended_ns: when it was due (open model); the closed model
  // measures from the send itself.
  void Send(int64_t intended_ns, bool measured, bool closed) {
    Command built;
    {
      std::lock_guard lock(mu_);
      built = Build(
          options_.mix[picker_.Pick(std::uniform_real_distribution<double>(0, 1)(rng_))].method);
    }
    if (closed) intended_ns = NowNs();
    auto* command = new Command(std::move(built));
    Call(command->service, PathOf(*command), *command->request, options_.timeout,
         [this, command, intended_ns, measured, closed](grpc::Status status, std::string bytes) {
           const int64_t done = NowNs();
           if (status.ok() && !command->response->ParseFromString(bytes)) {
             status = grpc::Status(grpc::StatusCode::DATA_LOSS, "unreadable answer");
           }
           std::optional<StreamVersion> written;
           if (status.ok()) {
             std::lock_guard lock(mu_);
             written = command->on_ok(*command->response);
           }
           if (measured) {
             std::lock_guard lock(stats_mu_);
             MethodResult& method = results_.methods[command->method];
             method.latency_us.Record(CorrectedLatencyNs(intended_ns, done) / 1000);
             if (status.ok()) {
               ++method.ok;
             } else {
               ++method.errors[CodeName(status.error_code())];
               if (results_.first_errors.size() < 5) {
                 results_.first_errors.push_back(absl::StrCat(command->method, ": ",
                                                              CodeName(status.error_code()), ": ",
                                                              status.error_message()));
               }
             }
             last_measured_done_ns_ = std::max(last_measured_done_ns_, done);
           }
           delete command;
           if (measured && written) SampleLag(*written, done);
           if (closed && done < end_ns_) return Send(0, done >= measure_start_ns_, true);
           std::lock_guard lock(flight_mu_);
           --in_flight_;
           flight_cv_.notify_all();
         });
  }

  // Event-to-KPI lag of a sample of writes: a QueryKpi that waits for the written stream
  // version; it answers once the projection includes the write.
  void SampleLag(const StreamVersion& written, int64_t ack_ns) {
    if (lag_interval_ns_ <= 0) return;
    {
      std::lock_guard lock(flight_mu_);
      if (ack_ns < next_lag_ns_) return;
      // On average one sample per interval when writes are dense; every write when sparse.
      next_lag_ns_ = std::max(next_lag_ns_, ack_ns - lag_interval_ns_) + lag_interval_ns_;
      if (lag_in_flight_ >= kMaxLagInFlight) {
        std::lock_guard stats(stats_mu_);
        ++results_.lag_skipped;
        return;
      }
      ++lag_in_flight_;
    }
    metrics::QueryKpiRequest request = KpiQuery();
    auto* wanted = request.mutable_consistency()->add_min_versions();
    wanted->set_stream(written.stream);
    wanted->set_version(written.version);
    *request.mutable_consistency()->mutable_max_wait() =
        TimeUtil::NanosecondsToDuration(absl::ToInt64Nanoseconds(options_.lag_max_wait));
    Call(kMetrics, "/crm.metrics.v1.MetricsService/QueryKpi", request,
         options_.lag_max_wait + absl::Seconds(5),
         [this, ack_ns](grpc::Status status, std::string) {
           const int64_t lag_ns = NowNs() - ack_ns;
           {
             std::lock_guard lock(stats_mu_);
             if (status.ok()) {
               results_.lag_us.Record(lag_ns / 1000);
             } else if (status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED) {
               ++results_.lag_timeouts;
             } else {
               ++results_.lag_errors[CodeName(status.error_code())];
             }
           }
           std::lock_guard lock(flight_mu_);
           --lag_in_flight_;
           flight_cv_.notify_all();
         });
  }

  const Options& options_;
  std::array<std::vector<std::unique_ptr<grpc::GenericStub>>, kServiceCount> stubs_;
  std::atomic<uint64_t> next_stub_{0};

  std::mutex mu_;  // the generator and the pools
  MixPicker picker_;
  std::mt19937_64 rng_;
  int64_t ids_ = 0;
  int64_t requests_ = 0;
  std::string pipeline_id_;
  std::vector<std::string> accounts_, contacts_;
  std::deque<Record> leads_, tasks_, opportunities_, cases_;

  std::mutex flight_mu_;
  std::condition_variable flight_cv_;
  int in_flight_ = 0;
  int lag_in_flight_ = 0;
  int64_t next_lag_ns_ = 0;

  std::mutex stats_mu_;
  Results results_;
  int64_t last_measured_done_ns_ = 0;

  int64_t measure_start_ns_ = 0;
  int64_t end_ns_ = 0;
  int64_t lag_interval_ns_ = -1;
};

}  // namespace

const std::vector<std::string>& KnownMethods() {
  static const auto* methods =
      new std::vector<std::string>{"CreateContact",        "CreateAccount",    "GetContact",
                                   "CaptureLead",          "QualifyLead",      "LogActivity",
                                   "ScheduleTask",         "CompleteTask",     "OpenOpportunity",
                                   "MoveOpportunityStage", "CloseOpportunity", "OpenCase",
                                   "ResolveCase",          "QueryKpi",         "HealthCheck"};
  return *methods;
}

bool OnlyHealthChecks(const std::vector<MixEntry>& mix) {
  for (const MixEntry& entry : mix) {
    if (entry.method != "HealthCheck") return false;
  }
  return true;
}

int64_t MethodResult::errors_total() const {
  int64_t total = 0;
  for (const auto& [code, n] : errors) total += n;
  return total;
}

absl::StatusOr<Results> Run(const Options& options) {
  if ((options.rate > 0) == (options.concurrency > 0)) {
    return absl::InvalidArgumentError("give either --rate or --concurrency");
  }
  // The services the mix (and the lag samples) talk to, each checked before anything is sent.
  std::array<bool, kServiceCount> used{};
  for (const MixEntry& entry : options.mix) {
    const std::string& m = entry.method;
    used[kContact] = true;  // the setup's accounts and contacts, and most commands' links
    if (m == "LogActivity" || m == "ScheduleTask" || m == "CompleteTask" || m == "OpenCase" ||
        m == "ResolveCase") {
      used[kActivity] = true;
    } else if (m == "CaptureLead" || m == "QualifyLead" || m == "OpenOpportunity" ||
               m == "MoveOpportunityStage" || m == "CloseOpportunity") {
      used[kPipeline] = true;
    } else if (m == "QueryKpi") {
      used[kMetrics] = true;
    }
  }
  // Health checks write nothing, so there is no lag to sample.
  if (options.lag_samples_per_second > 0 && !OnlyHealthChecks(options.mix)) used[kMetrics] = true;
  const std::string addresses[] = {options.contact_address, options.activity_address,
                                   options.pipeline_address, options.metrics_address};
  std::array<std::vector<std::shared_ptr<grpc::Channel>>, kServiceCount> channels;
  for (int s = 0; s < kServiceCount; ++s) {
    if (!used[s]) continue;
    for (int i = 0; i < std::max(1, options.connections); ++i) {
      std::shared_ptr<grpc::Channel> channel;
      if (options.plaintext) {
        // A subchannel pool per channel: each channel gets its own connection.
        grpc::ChannelArguments args;
        args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
        channel = grpc::CreateCustomChannel(addresses[s], grpc::InsecureChannelCredentials(), args);
      } else {
        auto made = crm::runtime::MakeChannel({.target = addresses[s], .ca_file = options.ca_file});
        if (!made.ok()) return made.status();
        channel = *std::move(made);
      }
      if (!channel->WaitForConnected(std::chrono::system_clock::now() + std::chrono::seconds(5))) {
        return absl::UnavailableError(absl::StrCat(kServiceNames[s], "-service at ", addresses[s],
                                                   " is not reachable (is `make run` running?)"));
      }
      channels[s].push_back(std::move(channel));
    }
  }
  Driver driver(options, std::move(channels));
  if (absl::Status setup = driver.Setup(); !setup.ok()) return setup;
  return driver.Load();
}

namespace {

double Ms(int64_t us) { return static_cast<double>(us) / 1000.0; }

std::string Codes(const std::map<std::string, int64_t>& errors) {
  std::vector<std::string> parts;
  for (const auto& [code, n] : errors) parts.push_back(absl::StrCat(code, "=", n));
  return parts.empty() ? "-" : absl::StrJoin(parts, " ");
}

Histogram Total(const Results& results) {
  Histogram total;
  for (const auto& [name, method] : results.methods) total.Merge(method.latency_us);
  return total;
}

}  // namespace

void PrintTable(const Results& r, std::ostream& out) {
  out << absl::StrFormat("mode %s", r.mode);
  if (r.mode == "open")
    out << absl::StrFormat(" at %.0f/s (latency from the intended send time)", r.target_rate);
  if (r.mode == "closed") out << absl::StrFormat(" with %d in flight", r.concurrency);
  out << absl::StrFormat(", measured %.1f s\n\n", r.seconds);
  const std::string header =
      absl::StrFormat("%-22s %9s %9s %8s %8s %8s %8s %8s  %s\n", "method", "calls", "ops/s",
                      "p50 ms", "p90 ms", "p99 ms", "p99.9 ms", "max ms", "errors");
  out << header;
  auto row = [&](const std::string& name, const Histogram& h, int64_t errors,
                 const std::string& codes) {
    out << absl::StrFormat("%-22s %9d %9.1f %8.2f %8.2f %8.2f %8.2f %8.2f  %s\n", name, h.count(),
                           r.seconds > 0 ? h.count() / r.seconds : 0, Ms(h.Quantile(0.5)),
                           Ms(h.Quantile(0.9)), Ms(h.Quantile(0.99)), Ms(h.Quantile(0.999)),
                           Ms(h.max()), errors == 0 ? "0" : codes);
  };
  int64_t errors = 0;
  for (const auto& [name, method] : r.methods) {
    row(name, method.latency_us, method.errors_total(), Codes(method.errors));
    errors += method.errors_total();
  }
  row("all", Total(r), errors, absl::StrCat(errors));
  if (r.substituted > 0) {
    out << absl::StrFormat(
        "\n%d follow-ups found no free record and were sent as the command "
        "creating one\n",
        r.substituted);
  }
  if (r.lag_us.count() + r.lag_timeouts + r.lag_skipped == 0 && r.lag_errors.empty()) {
    out << "\nevent-to-KPI lag: no samples\n";
  } else {
    out << absl::StrFormat(
        "\nevent-to-KPI lag: %d samples, p50 %.1f ms, p99 %.1f ms, max %.1f ms; "
        "%d timeouts, errors %s, %d skipped\n",
        r.lag_us.count(), Ms(r.lag_us.Quantile(0.5)), Ms(r.lag_us.Quantile(0.99)),
        Ms(r.lag_us.max()), r.lag_timeouts, Codes(r.lag_errors), r.lag_skipped);
  }
  for (const std::string& error : r.first_errors) out << "  error: " << error << "\n";
}

nlohmann::json ToJson(const Results& r) {
  auto latency = [&](const Histogram& h) {
    return nlohmann::json{{"count", h.count()},
                          {"ops_per_second", r.seconds > 0 ? h.count() / r.seconds : 0},
                          {"p50_ms", Ms(h.Quantile(0.5))},
                          {"p90_ms", Ms(h.Quantile(0.9))},
                          {"p99_ms", Ms(h.Quantile(0.99))},
                          {"p999_ms", Ms(h.Quantile(0.999))},
                          {"max_ms", Ms(h.max())},
                          {"mean_ms", h.mean() / 1000.0}};
  };
  nlohmann::json methods = nlohmann::json::object();
  int64_t errors = 0;
  for (const auto& [name, method] : r.methods) {
    methods[name] = latency(method.latency_us);
    methods[name]["ok"] = method.ok;
    methods[name]["errors"] = method.errors;
    errors += method.errors_total();
  }
  nlohmann::json total = latency(Total(r));
  total["errors"] = errors;
  return {{"mode", r.mode},
          {"target_rate", r.target_rate},
          {"concurrency", r.concurrency},
          {"seconds", r.seconds},
          {"methods", methods},
          {"total", total},
          {"substituted", r.substituted},
          {"first_errors", r.first_errors},
          {"lag",
           {{"samples", r.lag_us.count()},
            {"p50_ms", Ms(r.lag_us.Quantile(0.5))},
            {"p99_ms", Ms(r.lag_us.Quantile(0.99))},
            {"max_ms", Ms(r.lag_us.max())},
            {"timeouts", r.lag_timeouts},
            {"errors", r.lag_errors},
            {"skipped", r.lag_skipped}}}};
}

}  // namespace crm::loadgen
