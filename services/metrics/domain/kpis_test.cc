// One hand-worked scenario per KPI of shared/KPIS.md: the expected figures are worked out in
// the comments from the events, not taken from the code's output.

#include "domain/kpis.h"

#include "absl/strings/str_cat.h"
#include "crm/activity/v1/events.pb.h"
#include "crm/common/field_violations.h"
#include "crm/common/time.h"
#include "crm/contact/v1/events.pb.h"
#include "crm/pipeline/v1/events.pb.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "testing/events.h"

namespace crm::metrics {
namespace {

using activity::v1::Activity;
using ::testing::ElementsAre;
using ::testing::SizeIs;

// Week 1 is 2026-W10: Monday 2026-03-02 00:00 UTC.
const absl::Time kWeek1 = absl::FromCivil(absl::CivilDay(2026, 3, 2), absl::UTCTimeZone());
const absl::Time kNow = kWeek1 + absl::Hours(24 * 70);

// Week w (1-based), day d (0 = Monday), hour h.
absl::Time At(int w, int d, double h = 0) {
  return kWeek1 + absl::Hours(24 * (7 * (w - 1) + d)) + absl::Seconds(h * 3600);
}

testing::EventOptions By(std::string actor, absl::Time recorded = absl::InfinitePast(),
                         std::string channel = "") {
  testing::EventOptions options;
  options.actor = std::move(actor);
  options.recorded_at = recorded;
  options.channel = std::move(channel);
  return options;
}

class KpiTest : public ::testing::Test {
 protected:
  // --- events ---
  void Log(const std::string& id, activity::v1::ActivityType type, const std::string& rep,
           absl::Time occurred, absl::Time recorded, const std::string& body = "",
           const std::string& lead = "", const std::string& opportunity = "",
           const std::string& channel = "phone") {
    activity::v1::ActivityLogged logged;
    Activity& a = *logged.mutable_activity();
    a.set_activity_id(id);
    a.set_type(type);
    a.set_status(activity::v1::ACTIVITY_STATUS_DONE);
    a.set_owner_id(rep);
    a.set_channel(channel);
    *a.mutable_occurred_at() = ToProto(occurred);
    a.set_body(body);
    a.set_lead_id(lead);
    a.set_opportunity_id(opportunity);
    activities_[id] = a;
    log_.Add("activity/" + id, logged, occurred, By(rep, recorded));
  }
  void AddReport(const std::string& id, absl::Time recorded) {
    activity::v1::ActivityUpdated updated;
    *updated.mutable_activity() = activities_[id];
    updated.mutable_activity()->set_body("report");
    log_.Add("activity/" + id, updated, recorded, By("rep-a", recorded));
  }
  void Schedule(const std::string& id, const std::string& rep, absl::Time planned_at,
                absl::Time happens, const std::string& opportunity = "") {
    activity::v1::ActivityLogged logged;
    Activity& a = *logged.mutable_activity();
    a.set_activity_id(id);
    a.set_type(activity::v1::ACTIVITY_TYPE_MEETING);
    a.set_status(activity::v1::ACTIVITY_STATUS_SCHEDULED);
    a.set_owner_id(rep);
    a.set_opportunity_id(opportunity);
    *a.mutable_occurred_at() = ToProto(happens);
    activities_[id] = a;
    log_.Add("activity/" + id, logged, planned_at, By(rep));
  }
  void CompleteScheduled(const std::string& id, absl::Time at) {
    activity::v1::ActivityCompleted completed;
    *completed.mutable_activity() = activities_[id];
    completed.mutable_activity()->set_status(activity::v1::ACTIVITY_STATUS_DONE);
    *completed.mutable_activity()->mutable_occurred_at() = ToProto(at);
    log_.Add("activity/" + id, completed, at, By("rep-a"));
  }
  void CancelScheduled(const std::string& id, absl::Time at) {
    activity::v1::ActivityCancelled cancelled;
    *cancelled.mutable_activity() = activities_[id];
    cancelled.mutable_activity()->set_status(activity::v1::ACTIVITY_STATUS_CANCELLED);
    log_.Add("activity/" + id, cancelled, at, By("rep-a"));
  }

  contact::v1::Contact& NewContact(const std::string& id, bool complete, const std::string& owner,
                                   const std::string& region, absl::Time at,
                                   const std::string& channel = "web",
                                   absl::Time recorded = absl::InfinitePast()) {
    contact::v1::Contact& c = contacts_[id];
    c.set_contact_id(id);
    c.add_emails("x@example.com");
    if (complete) c.add_phones("+1");
    c.set_owner_id(owner);
    c.set_account_id("acc");
    c.set_region(region);
    contact::v1::ContactCreated created;
    *created.mutable_contact() = c;
    log_.Add("contact/" + id, created, at, By("rep-a", recorded, channel));
    return c;
  }
  void UpdateContact(const std::string& id, absl::Time at) {
    contact::v1::ContactUpdated updated;
    *updated.mutable_contact() = contacts_[id];
    log_.Add("contact/" + id, updated, at, By("rep-a"));
  }
  void ArchiveContact(const std::string& id, absl::Time at) {
    contact::v1::ContactArchived archived;
    archived.set_contact_id(id);
    log_.Add("contact/" + id, archived, at, By("rep-a"));
  }
  void MergeAway(const std::string& id, absl::Time at) {
    contact::v1::ContactMergedInto merged;
    merged.set_contact_id(id);
    merged.set_winner_contact_id("winner");
    log_.Add("contact/" + id, merged, at, By("rep-a"));
  }

  void Capture(const std::string& id, const std::string& source, const std::string& channel,
               absl::Time at, absl::Time recorded = absl::InfinitePast()) {
    pipeline::v1::LeadCaptured captured;
    pipeline::v1::Lead& lead = *captured.mutable_lead();
    lead.set_lead_id(id);
    lead.set_source(source);
    lead.set_channel(channel);
    lead.set_status(pipeline::v1::LEAD_STATUS_NEW);
    leads_[id] = lead;
    log_.Add("lead/" + id, captured, at, By("rep-a", recorded));
  }
  template <typename Event>
  void LeadTo(const std::string& id, pipeline::v1::LeadStatus status, absl::Time at) {
    Event event;
    leads_[id].set_status(status);
    *event.mutable_lead() = leads_[id];
    log_.Add("lead/" + id, event, at, By("rep-a"));
  }

  void DefinePipeline() {
    pipeline::v1::PipelineDefined defined;
    defined.mutable_pipeline()->set_pipeline_id("sales");
    defined.mutable_pipeline()->set_revision(1);
    for (auto [stage, bps] : std::vector<std::pair<std::string, int>>{
             {"prospect", 1000}, {"qualify", 2500}, {"propose", 5000}}) {
      pipeline::v1::Stage& s = *defined.mutable_pipeline()->add_stages();
      s.set_stage_id(stage);
      s.set_probability_bps(bps);
    }
    log_.Add("pipeline/sales", defined, At(1, 0), By("admin"));
  }
  pipeline::v1::Opportunity& Open(const std::string& id, absl::Time at,
                                  const std::string& owner = "o1",
                                  const std::string& region = "north",
                                  const std::string& stage = "prospect", int bps = 1000,
                                  int64_t amount = 1000, const std::string& currency = "EUR") {
    pipeline::v1::Opportunity& o = opportunities_[id];
    o.set_opportunity_id(id);
    o.set_pipeline_id("sales");
    o.set_pipeline_revision(1);
    o.set_stage_id(stage);
    o.set_stage_probability_bps(bps);
    o.set_owner_id(owner);
    o.set_region(region);
    o.set_amount_minor(amount);
    o.set_currency_code(currency);
    o.set_status(pipeline::v1::OPPORTUNITY_STATUS_OPEN);
    pipeline::v1::OpportunityOpened opened;
    *opened.mutable_opportunity() = o;
    log_.Add("opportunity/" + id, opened, at, By(owner));
    return o;
  }
  void Move(const std::string& id, const std::string& stage, int bps, absl::Time at) {
    pipeline::v1::OpportunityStageMoved moved;
    moved.set_from_stage_id(opportunities_[id].stage_id());
    opportunities_[id].set_stage_id(stage);
    opportunities_[id].set_stage_probability_bps(bps);
    *moved.mutable_opportunity() = opportunities_[id];
    log_.Add("opportunity/" + id, moved, at, By("o1"));
  }
  void UpdateOpportunity(const std::string& id, absl::Time at) {
    pipeline::v1::OpportunityUpdated updated;
    *updated.mutable_opportunity() = opportunities_[id];
    log_.Add("opportunity/" + id, updated, at, By("o1"));
  }
  void Close(const std::string& id, bool won, absl::Time at) {
    opportunities_[id].set_status(won ? pipeline::v1::OPPORTUNITY_STATUS_WON
                                      : pipeline::v1::OPPORTUNITY_STATUS_LOST);
    if (won) {
      pipeline::v1::OpportunityWon event;
      *event.mutable_opportunity() = opportunities_[id];
      log_.Add("opportunity/" + id, event, at, By("o1"));
    } else {
      pipeline::v1::OpportunityLost event;
      *event.mutable_opportunity() = opportunities_[id];
      log_.Add("opportunity/" + id, event, at, By("o1"));
    }
  }
  void Reopen(const std::string& id, absl::Time at) {
    opportunities_[id].set_status(pipeline::v1::OPPORTUNITY_STATUS_OPEN);
    pipeline::v1::OpportunityReopened reopened;
    *reopened.mutable_opportunity() = opportunities_[id];
    log_.Add("opportunity/" + id, reopened, at, By("o1"));
  }

  void Task(const std::string& id, const std::string& rep, absl::Time due, absl::Time at) {
    activity::v1::TaskScheduled scheduled;
    scheduled.mutable_task()->set_task_id(id);
    scheduled.mutable_task()->set_assignee_id(rep);
    *scheduled.mutable_task()->mutable_due_time() = ToProto(due);
    scheduled.mutable_task()->set_status(activity::v1::TASK_STATUS_OPEN);
    tasks_[id] = scheduled.task();
    log_.Add("task/" + id, scheduled, at, By(rep));
  }
  void CompleteTask(const std::string& id, absl::Time at) {
    activity::v1::TaskCompleted completed;
    *completed.mutable_task() = tasks_[id];
    completed.mutable_task()->set_status(activity::v1::TASK_STATUS_COMPLETED);
    log_.Add("task/" + id, completed, at, By("rep-a"));
  }
  void ReassignTask(const std::string& id, const std::string& rep, absl::Time at) {
    tasks_[id].set_assignee_id(rep);
    activity::v1::TaskReassigned reassigned;
    *reassigned.mutable_task() = tasks_[id];
    log_.Add("task/" + id, reassigned, at, By("rep-a"));
  }
  void CancelTask(const std::string& id, absl::Time at) {
    activity::v1::TaskCancelled cancelled;
    *cancelled.mutable_task() = tasks_[id];
    cancelled.mutable_task()->set_status(activity::v1::TASK_STATUS_CANCELLED);
    log_.Add("task/" + id, cancelled, at, By("rep-a"));
  }

  void OpenCase(const std::string& id, activity::v1::CasePriority priority, absl::Time at,
                const std::string& channel = "desk") {
    activity::v1::CaseOpened opened;
    activity::v1::Case& c = cases_[id];
    c.set_case_id(id);
    c.set_priority(priority);
    c.set_channel(channel);
    c.set_status(activity::v1::CASE_STATUS_OPEN);
    *opened.mutable_case_() = c;
    log_.Add("case/" + id, opened, at, By("rep-a"));
  }
  void Resolve(const std::string& id, absl::Time at) {
    cases_[id].set_status(activity::v1::CASE_STATUS_RESOLVED);
    activity::v1::CaseResolved resolved;
    *resolved.mutable_case_() = cases_[id];
    log_.Add("case/" + id, resolved, at, By("rep-a"));
  }
  void ReopenCase(const std::string& id, absl::Time at) {
    cases_[id].set_status(activity::v1::CASE_STATUS_OPEN);
    activity::v1::CaseReopened reopened;
    *reopened.mutable_case_() = cases_[id];
    log_.Add("case/" + id, reopened, at, By("rep-a"));
  }

  // --- queries ---
  absl::StatusOr<v1::KpiResult> TryQuery(const std::string& kpi, int first_week, int weeks,
                                         std::vector<std::string> group_by = {},
                                         std::vector<v1::DimensionFilter> filters = {}) {
    Projection projection;
    auto joined_later = [](const events::v1::EventEnvelope& event) {
      return event.stream_id().starts_with("pipeline/") || event.stream_id().starts_with("lead/");
    };
    for (const auto& event : log_.events()) {
      if (delivery_ != Delivery::kJoinedStreamsLast || !joined_later(event)) {
        projection.Apply(event);
      }
    }
    if (delivery_ == Delivery::kJoinedStreamsLast) {
      for (const auto& event : log_.events()) {
        if (joined_later(event)) projection.Apply(event);
      }
    }
    if (delivery_ == Delivery::kRestoredFromRows) {
      // Rows come back in key order: activities before leads, opportunities before pipelines.
      Projection restored;
      for (const Row& row : projection.AllRows()) {
        if (absl::Status status = restored.Restore(row.key, row.value); !status.ok()) return status;
      }
      projection = std::move(restored);
    }
    v1::QueryKpiRequest request;
    request.set_kpi(kpi);
    request.set_period_kind(v1::PERIOD_KIND_ISO_WEEK);
    *request.mutable_start_time() = ToProto(At(first_week, 0));
    *request.mutable_end_time() = ToProto(At(first_week + weeks, 0));
    for (std::string& dimension : group_by) request.add_group_by(std::move(dimension));
    for (v1::DimensionFilter& filter : filters) *request.add_filters() = std::move(filter);
    return EvaluateKpi(projection, request, kNow);
  }
  v1::KpiResult Query(const std::string& kpi, int first_week, int weeks,
                      std::vector<std::string> group_by = {},
                      std::vector<v1::DimensionFilter> filters = {}) {
    absl::StatusOr<v1::KpiResult> result =
        TryQuery(kpi, first_week, weeks, std::move(group_by), std::move(filters));
    EXPECT_TRUE(result.ok()) << result.status();
    return result.ok() ? *result : v1::KpiResult();
  }

  // How the projection gets the events: in order, with the pipelines and leads (which other
  // streams' facts join) after everything else, or in order and then restored from its rows.
  enum class Delivery { kInOrder, kJoinedStreamsLast, kRestoredFromRows };
  Delivery delivery_ = Delivery::kInOrder;

  testing::EventLog log_;
  std::map<std::string, Activity> activities_;
  std::map<std::string, contact::v1::Contact> contacts_;
  std::map<std::string, pipeline::v1::Lead> leads_;
  std::map<std::string, pipeline::v1::Opportunity> opportunities_;
  std::map<std::string, activity::v1::Task> tasks_;
  std::map<std::string, activity::v1::Case> cases_;
};

// The row of week `w` whose group has these values (in group_by order).
const v1::KpiRow& RowOf(const v1::KpiResult& result, int w, std::vector<std::string> values = {}) {
  for (const v1::KpiRow& row : result.rows()) {
    if (FromProto(row.period().start_time()) != At(w, 0)) continue;
    std::vector<std::string> group;
    for (const v1::Dimension& d : row.dimensions()) group.push_back(d.value());
    if (group == values) return row;
  }
  ADD_FAILURE() << "no row for week " << w << " in " << result.DebugString();
  static const v1::KpiRow* empty = new v1::KpiRow();
  return *empty;
}

const v1::Measure& MeasureOf(const v1::KpiRow& row, const std::string& name,
                             const std::string& currency = "") {
  for (const v1::Measure& measure : row.measures()) {
    if (measure.name() == name && measure.currency_code() == currency) return measure;
  }
  ADD_FAILURE() << "no measure " << name << " " << currency << " in " << row.DebugString();
  static const v1::Measure* empty = new v1::Measure();
  return *empty;
}

int64_t CountOf(const v1::KpiResult& result, int w, const std::string& name,
                std::vector<std::string> group = {}) {
  return MeasureOf(RowOf(result, w, std::move(group)), name).count();
}

// numerator/denominator of a ratio measure.
std::pair<int64_t, int64_t> RatioOf(const v1::KpiResult& result, int w, const std::string& name,
                                    std::vector<std::string> group = {},
                                    const std::string& currency = "") {
  const v1::Ratio& ratio = MeasureOf(RowOf(result, w, std::move(group)), name, currency).ratio();
  return {ratio.numerator(), ratio.denominator()};
}

// Within the sketch's 1% of the exact nearest-rank value.
void ExpectQuantile(const v1::Measure& measure, double exact) {
  ASSERT_TRUE(measure.has_quantile()) << measure.DebugString();
  EXPECT_NEAR(measure.quantile().value(), exact, exact * 0.01) << measure.name();
  EXPECT_EQ(measure.quantile().relative_error(), 0.01);
}

v1::DimensionFilter Filter(std::string dimension, std::vector<std::string> values) {
  v1::DimensionFilter filter;
  filter.set_dimension(std::move(dimension));
  for (auto& value : values) filter.add_values(std::move(value));
  return filter;
}

TEST_F(KpiTest, ActivitiesLoggedCountsDoneActivitiesInTheWeekTheyHappened) {
  Log("a1", activity::v1::ACTIVITY_TYPE_CALL, "rep-a", At(1, 1), At(1, 1));
  Log("a2", activity::v1::ACTIVITY_TYPE_VISIT, "rep-a", At(1, 2), At(1, 2));
  Log("a3", activity::v1::ACTIVITY_TYPE_CALL, "rep-b", At(2, 0, 1), At(2, 0, 1));
  // Recorded in week 3, happened in week 1: counts in week 1.
  Log("a4", activity::v1::ACTIVITY_TYPE_EMAIL, "rep-b", At(1, 4), At(3, 1));
  // Scheduled (not done) and cancelled ones are not activities that happened.
  Schedule("s1", "rep-a", At(1, 0), At(1, 3));
  Schedule("s2", "rep-a", At(1, 0), At(1, 3));
  CancelScheduled("s2", At(1, 1));

  v1::KpiResult total = Query("activities_logged", 1, 3);
  EXPECT_THAT(total.rows(), SizeIs(3));      // one row per week, even week 3 with 0
  EXPECT_EQ(CountOf(total, 1, "count"), 3);  // a1, a2, a4
  EXPECT_EQ(CountOf(total, 2, "count"), 1);  // a3
  EXPECT_EQ(CountOf(total, 3, "count"), 0);

  v1::KpiResult by_rep = Query("activities_logged", 1, 2, {"rep"});
  EXPECT_EQ(CountOf(by_rep, 1, "count", {"rep-a"}), 2);
  EXPECT_EQ(CountOf(by_rep, 1, "count", {"rep-b"}), 1);
  EXPECT_EQ(CountOf(by_rep, 2, "count", {"rep-b"}), 1);
  EXPECT_THAT(by_rep.rows(), SizeIs(3));  // no row for rep-a in week 2

  v1::KpiResult calls = Query("activities_logged", 1, 2, {"type"}, {Filter("type", {"call"})});
  EXPECT_EQ(CountOf(calls, 1, "count", {"call"}), 1);
  EXPECT_EQ(CountOf(calls, 2, "count", {"call"}), 1);

  // Completing the scheduled meeting makes it count where it finally happened.
  CompleteScheduled("s1", At(2, 3));
  EXPECT_EQ(CountOf(Query("activities_logged", 2, 1), 2, "count"), 2);
}

// The activity, lead and task KPIs are kept as daily sums that change with their records: a
// change takes the record's old facts away, and nothing of them is left behind.
TEST_F(KpiTest, AChangedActivityLeavesNothingWhereItWas) {
  Log("a1", activity::v1::ACTIVITY_TYPE_VISIT, "rep-a", At(1, 1), At(1, 1, 2));
  Log("a2", activity::v1::ACTIVITY_TYPE_CALL, "rep-a", At(1, 2), At(1, 2, 1));
  // a1 was another rep's visit, a week later, logged an hour after it, with a report.
  activity::v1::ActivityUpdated moved;
  *moved.mutable_activity() = activities_["a1"];
  moved.mutable_activity()->set_owner_id("rep-b");
  *moved.mutable_activity()->mutable_occurred_at() = ToProto(At(2, 1));
  moved.mutable_activity()->set_body("report");
  log_.Add("activity/a1", moved, At(2, 1, 1), By("rep-b", At(2, 1, 1)));

  v1::KpiResult logged = Query("activities_logged", 1, 2, {"rep"});
  EXPECT_EQ(CountOf(logged, 1, "count", {"rep-a"}), 1);  // a2
  EXPECT_EQ(CountOf(logged, 2, "count", {"rep-b"}), 1);  // a1
  EXPECT_THAT(logged.rows(), SizeIs(2));  // no row for rep-a in week 2 nor rep-b in week 1

  // a1's first record time is still the first log (week 1), before it happened: not a
  // logging delay any more (KPIS.md counts recorded >= occurred only); a2's is an hour.
  v1::KpiResult delay = Query("logging_delay_seconds", 1, 2, {"rep"});
  EXPECT_THAT(delay.rows(), SizeIs(1));
  ExpectQuantile(MeasureOf(RowOf(delay, 1, {"rep-a"}), "p50_seconds"), 3600);

  v1::KpiResult visits = Query("visit_report_compliance", 1, 2, {"rep"});
  EXPECT_THAT(visits.rows(), SizeIs(1));
  EXPECT_EQ(RatioOf(visits, 2, "ratio", {"rep-b"}), std::make_pair(int64_t{1}, int64_t{1}));

  // Cancelled: gone from every figure.
  CancelScheduled("a2", At(2, 2));
  EXPECT_EQ(CountOf(Query("activities_logged", 1, 1), 1, "count"), 0);
  EXPECT_THAT(Query("logging_delay_seconds", 1, 2, {"rep"}).rows(), SizeIs(0));
}

TEST_F(KpiTest, VisitReportComplianceUsesTheRecordTimeOfTheFirstReport) {
  // Report with the log, 2 h after the visit: compliant.
  Log("v1", activity::v1::ACTIVITY_TYPE_VISIT, "rep-a", At(1, 1, 10), At(1, 1, 12), "report");
  // Meeting logged without report; report added 47 h later: compliant.
  Log("v2", activity::v1::ACTIVITY_TYPE_MEETING, "rep-a", At(1, 2, 10), At(1, 2, 11));
  AddReport("v2", At(1, 4, 9));
  // Report 49 h after the visit: not compliant.
  Log("v3", activity::v1::ACTIVITY_TYPE_VISIT, "rep-a", At(1, 3, 10), At(1, 3, 10));
  AddReport("v3", At(1, 5, 11));
  // Logged the next week with its report, 30 h after: counts by its recorded_at, compliant.
  Log("v4", activity::v1::ACTIVITY_TYPE_VISIT, "rep-a", At(1, 6, 23), At(2, 1, 5), "report");
  // Not a visit.
  Log("c1", activity::v1::ACTIVITY_TYPE_CALL, "rep-a", At(1, 1), At(1, 1), "notes");
  // Another rep, no report at all.
  Log("v5", activity::v1::ACTIVITY_TYPE_VISIT, "rep-b", At(1, 1), At(1, 1));

  v1::KpiResult result = Query("visit_report_compliance", 1, 1, {"rep"});
  EXPECT_EQ(RatioOf(result, 1, "ratio", {"rep-a"}), std::make_pair(int64_t{3}, int64_t{4}));
  EXPECT_EQ(RatioOf(result, 1, "ratio", {"rep-b"}), std::make_pair(int64_t{0}, int64_t{1}));
  EXPECT_DOUBLE_EQ(MeasureOf(RowOf(result, 1, {"rep-a"}), "ratio").ratio().value(), 0.75);
}

TEST_F(KpiTest, LoggingDelayPercentilesAndShareWithin24h) {
  const absl::Time t = At(1, 1, 9);
  Log("d1", activity::v1::ACTIVITY_TYPE_CALL, "rep-a", t, t + absl::Seconds(60));
  Log("d2", activity::v1::ACTIVITY_TYPE_CALL, "rep-a", t, t + absl::Seconds(120));
  Log("d3", activity::v1::ACTIVITY_TYPE_CALL, "rep-a", t, t + absl::Seconds(3600));
  Log("d4", activity::v1::ACTIVITY_TYPE_CALL, "rep-a", t, t + absl::Hours(25));
  // Planned before it happened (first recorded_at < occurred_at): not a logging delay.
  Schedule("s1", "rep-a", At(1, 0), At(1, 2));
  CompleteScheduled("s1", At(1, 2));

  const v1::KpiResult row_result = Query("logging_delay_seconds", 1, 1);
  const v1::KpiRow& row = RowOf(row_result, 1);
  // Sorted sample [60, 120, 3600, 90000]: p50 = rank ceil(2) = 120, p90 = rank ceil(3.6) = 4.
  ExpectQuantile(MeasureOf(row, "p50_seconds"), 120);
  ExpectQuantile(MeasureOf(row, "p90_seconds"), 90000);
  EXPECT_EQ(MeasureOf(row, "p50_seconds").quantile().count(), 4);
  EXPECT_EQ(MeasureOf(row, "within_24h").ratio().numerator(), 3);
  EXPECT_EQ(MeasureOf(row, "within_24h").ratio().denominator(), 4);
}

TEST_F(KpiTest, ActiveRepsCountsDistinctUsersByRecordTime) {
  Log("a1", activity::v1::ACTIVITY_TYPE_CALL, "rep-a", At(1, 1), At(1, 1));
  Log("a2", activity::v1::ACTIVITY_TYPE_CALL, "rep-a", At(1, 2), At(1, 2));
  // Happened in week 0, recorded in week 1: active in week 1.
  Log("a3", activity::v1::ACTIVITY_TYPE_CALL, "rep-b", At(1, 0) - absl::Hours(5), At(1, 3));
  Log("a4", activity::v1::ACTIVITY_TYPE_CALL, "rep-c", At(2, 1), At(2, 1));
  // An integration is not a rep.
  testing::EventOptions service = By("svc-import", At(1, 2));
  service.service_actor = true;
  activity::v1::ActivityLogged imported;
  imported.mutable_activity()->set_status(activity::v1::ACTIVITY_STATUS_DONE);
  log_.Add("activity/i1", imported, At(1, 2), service);

  v1::KpiResult result = Query("active_reps", 0, 3);
  EXPECT_EQ(CountOf(result, 0, "count"), 0);
  EXPECT_EQ(CountOf(result, 1, "count"), 2);  // rep-a, rep-b
  EXPECT_EQ(CountOf(result, 2, "count"), 1);  // rep-c
}

// A change dated before the record's latest point (here, before its creation) cannot be
// placed in the past of a timeline of whole states: it takes effect at the latest point.
TEST_F(KpiTest, ABackDatedChangeTakesEffectAtTheLatestPointOfItsTimeline) {
  NewContact("c1", false, "o1", "north", At(2, 0));  // no phone
  contacts_["c1"].add_phones("+1");
  UpdateContact("c1", At(1, 1));

  v1::KpiResult result = Query("contact_completeness_ratio", 1, 2);
  EXPECT_EQ(CountOf(result, 1, "contacts"), 0);  // not created yet
  EXPECT_EQ(CountOf(result, 1, "complete"), 0);
  EXPECT_EQ(CountOf(result, 2, "contacts"), 1);
  EXPECT_EQ(CountOf(result, 2, "complete"), 1);  // its phone counts from its creation
}

TEST_F(KpiTest, ContactCompletenessAtTheEndOfEachWeek) {
  NewContact("c1", true, "o1", "north", At(1, 0));
  NewContact("c2", false, "o2", "north", At(1, 0));  // no phone
  NewContact("c3", true, "o1", "north", At(1, 1));
  NewContact("c4", true, "o1", "north", At(1, 1));
  // Recorded weeks later, but it existed in week 1.
  NewContact("c6", true, "o1", "north", At(1, 2), "web", At(4, 0));
  NewContact("c5", true, "o1", "north", At(3, 0));  // does not exist yet at the end of week 2
  ArchiveContact("c3", At(2, 1));
  MergeAway("c4", At(2, 2));
  contacts_["c2"].add_phones("+2");
  UpdateContact("c2", At(2, 3));
  contacts_["c1"].set_region("south");
  UpdateContact("c1", At(2, 3));

  v1::KpiResult total = Query("contact_completeness_ratio", 1, 2);
  // End of week 1: live c1 c2 c3 c4 c6; complete all but c2.
  EXPECT_EQ(RatioOf(total, 1, "ratio"), std::make_pair(int64_t{4}, int64_t{5}));
  // End of week 2: c3 archived, c4 merged away; c2 now complete: c1 c2 c6.
  EXPECT_EQ(RatioOf(total, 2, "ratio"), std::make_pair(int64_t{3}, int64_t{3}));

  v1::KpiResult by_owner = Query("contact_completeness_ratio", 1, 2, {"owner", "region"});
  EXPECT_EQ(RatioOf(by_owner, 1, "ratio", {"o1", "north"}), std::make_pair(int64_t{4}, int64_t{4}));
  EXPECT_EQ(RatioOf(by_owner, 1, "ratio", {"o2", "north"}), std::make_pair(int64_t{0}, int64_t{1}));
  // c1's region as of the end of each week.
  EXPECT_EQ(RatioOf(by_owner, 2, "ratio", {"o1", "south"}), std::make_pair(int64_t{1}, int64_t{1}));
  EXPECT_EQ(RatioOf(by_owner, 2, "ratio", {"o1", "north"}), std::make_pair(int64_t{1}, int64_t{1}));
}

TEST_F(KpiTest, OpenDealCoverageLooksAtTheSevenDaysBeforeTheEnd) {
  DefinePipeline();
  Open("o1", At(1, 0));
  Open("o2", At(1, 0), "o2");
  Open("o3", At(1, 0));
  Log("x1", activity::v1::ACTIVITY_TYPE_CALL, "o1", At(1, 4), At(1, 4), "", "", "o1");
  Log("x2", activity::v1::ACTIVITY_TYPE_CALL, "o2", At(1, 0, 0.5), At(1, 0, 0.5), "", "", "o2");
  Close("o3", true, At(1, 3));  // not open at the end of week 1
  Log("x3", activity::v1::ACTIVITY_TYPE_CALL, "o2", At(2, 2), At(2, 2), "", "", "o2");
  // Scheduled, not done: no follow-up yet.
  Schedule("x4", "o1", At(2, 1), At(2, 5), "o1");

  v1::KpiResult total = Query("open_deal_coverage", 1, 2);
  EXPECT_EQ(RatioOf(total, 1, "ratio"), std::make_pair(int64_t{2}, int64_t{2}));
  // End of week 2: o1's call is 10 days old; o2 was called on Wednesday.
  EXPECT_EQ(RatioOf(total, 2, "ratio"), std::make_pair(int64_t{1}, int64_t{2}));
  v1::KpiResult by_owner = Query("open_deal_coverage", 2, 1, {"owner"});
  EXPECT_EQ(RatioOf(by_owner, 2, "ratio", {"o1"}), std::make_pair(int64_t{0}, int64_t{1}));
  EXPECT_EQ(RatioOf(by_owner, 2, "ratio", {"o2"}), std::make_pair(int64_t{1}, int64_t{1}));
}

TEST_F(KpiTest, StaleOpportunitiesHaveNoFollowUpForTwoWeeksOrAPassedCloseDate) {
  DefinePipeline();
  Open("a", At(1, 0));  // nothing since: stale at the end of week 3
  Open("b", At(1, 0));
  Move("b", "qualify", 2500, At(3, 1));  // recent stage move
  Open("c", At(1, 0));
  Log("x", activity::v1::ACTIVITY_TYPE_CALL, "o1", At(2, 1), At(2, 1), "", "", "c");
  auto& d = Open("d", At(3, 0), "o2");  // expected to close on week 3's Sunday
  const absl::CivilDay sunday = absl::ToCivilDay(At(3, 6), absl::UTCTimeZone());
  d.mutable_expected_close_date()->set_year(static_cast<int>(sunday.year()));
  d.mutable_expected_close_date()->set_month(sunday.month());
  d.mutable_expected_close_date()->set_day(sunday.day());
  UpdateOpportunity("d", At(3, 0, 1));
  auto& e = Open("e", At(3, 0));  // expected on week 4's Monday: not passed yet
  const absl::CivilDay monday = absl::ToCivilDay(At(4, 0), absl::UTCTimeZone());
  e.mutable_expected_close_date()->set_year(static_cast<int>(monday.year()));
  e.mutable_expected_close_date()->set_month(monday.month());
  e.mutable_expected_close_date()->set_day(monday.day());
  UpdateOpportunity("e", At(3, 0, 1));

  v1::KpiResult total = Query("stale_opportunities", 3, 1);
  EXPECT_EQ(CountOf(total, 3, "count"), 2);  // a and d
  v1::KpiResult grouped = Query("stale_opportunities", 3, 1, {"owner", "stage"});
  EXPECT_EQ(CountOf(grouped, 3, "count", {"o1", "prospect"}), 1);
  EXPECT_EQ(CountOf(grouped, 3, "count", {"o2", "prospect"}), 1);
  // At the end of week 1 every deal was opened within 14 days.
  EXPECT_EQ(CountOf(Query("stale_opportunities", 1, 1), 1, "count"), 0);
}

TEST_F(KpiTest, TasksOnTimeRatioByAssignee) {
  Task("t1", "rep-a", At(1, 2, 12), At(1, 0));
  CompleteTask("t1", At(1, 2, 11));  // on time
  Task("t2", "rep-a", At(1, 3), At(1, 0));
  CompleteTask("t2", At(1, 4));             // late
  Task("t3", "rep-b", At(1, 4), At(1, 0));  // still open
  Task("t4", "rep-b", At(1, 4), At(1, 0));
  CancelTask("t4", At(1, 1));               // cancelled: not due
  Task("t5", "rep-a", At(2, 1), At(1, 0));  // due next week

  v1::KpiResult total = Query("tasks_on_time_ratio", 1, 1);
  EXPECT_EQ(RatioOf(total, 1, "ratio"), std::make_pair(int64_t{1}, int64_t{3}));
  v1::KpiResult by_rep = Query("tasks_on_time_ratio", 1, 1, {"rep"});
  EXPECT_EQ(RatioOf(by_rep, 1, "ratio", {"rep-a"}), std::make_pair(int64_t{1}, int64_t{2}));
  EXPECT_EQ(RatioOf(by_rep, 1, "ratio", {"rep-b"}), std::make_pair(int64_t{0}, int64_t{1}));
}

TEST_F(KpiTest, TasksOnTimeRatioCountsTheAssigneeAtTheDueTime) {
  Task("t1", "rep-a", At(1, 2), At(1, 0));
  ReassignTask("t1", "rep-b", At(1, 1));  // before the due time: rep-b's task
  Task("t2", "rep-a", At(1, 3), At(1, 0));
  ReassignTask("t2", "rep-c", At(1, 5));    // after it was missed: still rep-a's miss
  Task("t3", "rep-c", At(1, 1), At(1, 4));  // scheduled after its due time: rep-c's

  v1::KpiResult by_rep = Query("tasks_on_time_ratio", 1, 1, {"rep"});
  EXPECT_EQ(RatioOf(by_rep, 1, "ratio", {"rep-a"}), std::make_pair(int64_t{0}, int64_t{1}));
  EXPECT_EQ(RatioOf(by_rep, 1, "ratio", {"rep-b"}), std::make_pair(int64_t{0}, int64_t{1}));
  EXPECT_EQ(RatioOf(by_rep, 1, "ratio", {"rep-c"}), std::make_pair(int64_t{0}, int64_t{1}));
}

TEST_F(KpiTest, SpeedToLeadTakesTheFirstResponseOfAnyKind) {
  Capture("l1", "web_form", "web", At(1, 0, 9));
  Log("r1", activity::v1::ACTIVITY_TYPE_CALL, "rep-a", At(1, 0, 9) + absl::Seconds(600),
      At(1, 0, 10), "", "l1");
  LeadTo<pipeline::v1::LeadQualified>("l1", pipeline::v1::LEAD_STATUS_QUALIFIED, At(1, 0, 10));
  Capture("l2", "web_form", "web", At(1, 1, 9));
  LeadTo<pipeline::v1::LeadQualified>("l2", pipeline::v1::LEAD_STATUS_QUALIFIED, At(1, 1, 11));
  Capture("l3", "web_form", "web", At(1, 2, 9));
  LeadTo<pipeline::v1::LeadDisqualified>("l3", pipeline::v1::LEAD_STATUS_DISQUALIFIED,
                                         At(1, 2, 9) + absl::Seconds(30));
  Capture("l4", "campaign", "email", At(1, 3));  // no response yet

  v1::KpiResult total = Query("speed_to_lead_seconds", 1, 1);
  const v1::KpiRow& row = RowOf(total, 1);
  // Sample [30, 600, 7200]: p50 = rank 2, p90 = rank ceil(2.7) = 3.
  ExpectQuantile(MeasureOf(row, "p50_seconds"), 600);
  ExpectQuantile(MeasureOf(row, "p90_seconds"), 7200);
  EXPECT_EQ(MeasureOf(row, "responded").count(), 3);
  EXPECT_EQ(MeasureOf(row, "unanswered").count(), 1);
  v1::KpiResult grouped = Query("speed_to_lead_seconds", 1, 1, {"source", "channel"});
  EXPECT_EQ(CountOf(grouped, 1, "unanswered", {"campaign", "email"}), 1);
  EXPECT_FALSE(MeasureOf(RowOf(grouped, 1, {"campaign", "email"}), "p50_seconds").has_quantile());
}

// Stage conversion needs the pipeline's stage order and speed to lead the lead's activities;
// both are facts of one record kept up to date as the other streams arrive.
TEST_F(KpiTest, JoinedFactsDoNotDependOnTheOrderTheirStreamsArrive) {
  DefinePipeline();
  Open("o1", At(1, 0));
  Move("o1", "qualify", 2500, At(1, 1));  // forward in the pipeline's order
  Open("o2", At(1, 0));
  Move("o2", "propose", 5000, At(1, 1));
  Move("o2", "prospect", 1000, At(1, 2));  // backwards: propose did not progress
  Capture("l1", "web_form", "web", At(1, 0, 9));
  Log("r1", activity::v1::ACTIVITY_TYPE_CALL, "rep-a", At(1, 0, 9) + absl::Seconds(600),
      At(1, 0, 10), "", "l1");
  for (Delivery delivery :
       {Delivery::kInOrder, Delivery::kJoinedStreamsLast, Delivery::kRestoredFromRows}) {
    delivery_ = delivery;
    SCOPED_TRACE(static_cast<int>(delivery));
    v1::KpiResult stages = Query("stage_conversion_rate", 1, 1, {"pipeline", "stage"});
    // Into prospect: o1 and o2 opened there (both went further), o2 moved back (did not).
    EXPECT_EQ(RatioOf(stages, 1, "ratio", {"sales", "prospect"}),
              std::make_pair(int64_t{2}, int64_t{3}));
    EXPECT_EQ(RatioOf(stages, 1, "ratio", {"sales", "propose"}),
              std::make_pair(int64_t{0}, int64_t{1}));
    const v1::KpiResult speeds = Query("speed_to_lead_seconds", 1, 1);
    const v1::KpiRow& speed = RowOf(speeds, 1);
    EXPECT_EQ(MeasureOf(speed, "responded").count(), 1);
    ExpectQuantile(MeasureOf(speed, "p50_seconds"), 600);
  }
}

TEST_F(KpiTest, DuplicateRatePerHundredCreatedByCreationChannel) {
  NewContact("w1", true, "o1", "north", At(1, 0), "web");
  NewContact("w2", true, "o1", "north", At(1, 0), "web");
  NewContact("w3", true, "o1", "north", At(1, 1), "web");
  NewContact("w4", true, "o1", "north", At(1, 1), "web");
  NewContact("e1", true, "o1", "north", At(1, 1), "email");
  MergeAway("w2", At(1, 3));
  MergeAway("w3", At(2, 3));

  v1::KpiResult result = Query("duplicate_rate", 1, 2, {"channel"});
  EXPECT_EQ(RatioOf(result, 1, "per_100", {"web"}), std::make_pair(int64_t{1}, int64_t{4}));
  EXPECT_DOUBLE_EQ(MeasureOf(RowOf(result, 1, {"web"}), "per_100").ratio().value(), 25.0);
  EXPECT_EQ(RatioOf(result, 1, "per_100", {"email"}), std::make_pair(int64_t{0}, int64_t{1}));
  // Week 2: one merge, nothing created: no data rather than a number.
  EXPECT_EQ(RatioOf(result, 2, "per_100", {"web"}), std::make_pair(int64_t{1}, int64_t{0}));
  EXPECT_FALSE(MeasureOf(RowOf(result, 2, {"web"}), "per_100").ratio().has_value());
}

TEST_F(KpiTest, LeadsCapturedQualifiedAndConvertedBySource) {
  Capture("l1", "web_form", "web", At(1, 0));
  LeadTo<pipeline::v1::LeadQualified>("l1", pipeline::v1::LEAD_STATUS_QUALIFIED, At(1, 1));
  Capture("l2", "web_form", "web", At(1, 0));
  LeadTo<pipeline::v1::LeadQualified>("l2", pipeline::v1::LEAD_STATUS_QUALIFIED, At(1, 1));
  LeadTo<pipeline::v1::LeadConverted>("l2", pipeline::v1::LEAD_STATUS_CONVERTED, At(3, 1));
  Capture("l3", "web_form", "web", At(1, 1));
  LeadTo<pipeline::v1::LeadDisqualified>("l3", pipeline::v1::LEAD_STATUS_DISQUALIFIED, At(1, 2));
  Capture("l4", "campaign", "email", At(1, 2));
  // A partner system sends last week's lead a week late.
  Capture("l5", "partner", "api", At(1, 3), At(2, 4));
  Capture("l6", "web_form", "web", At(2, 0));

  v1::KpiResult captured = Query("leads_captured", 1, 2, {"source", "channel"});
  EXPECT_EQ(CountOf(captured, 1, "count", {"web_form", "web"}), 3);
  EXPECT_EQ(CountOf(captured, 1, "count", {"campaign", "email"}), 1);
  EXPECT_EQ(CountOf(captured, 1, "count", {"partner", "api"}), 1);
  EXPECT_EQ(CountOf(captured, 2, "count", {"web_form", "web"}), 1);
  EXPECT_EQ(CountOf(Query("leads_captured", 1, 1), 1, "count"), 5);

  // Week 1, web_form: l1 qualified, l2 converted (counts as qualified), l3 disqualified.
  v1::KpiResult qualification = Query("lead_qualification_rate", 1, 1, {"source"});
  EXPECT_EQ(RatioOf(qualification, 1, "ratio", {"web_form"}),
            std::make_pair(int64_t{2}, int64_t{3}));
  // campaign: nothing decided yet.
  EXPECT_FALSE(MeasureOf(RowOf(qualification, 1, {"campaign"}), "ratio").ratio().has_value());
  v1::KpiResult conversion = Query("lead_conversion_rate", 1, 1);
  EXPECT_EQ(RatioOf(conversion, 1, "ratio"), std::make_pair(int64_t{1}, int64_t{5}));
}

TEST_F(KpiTest, StageConversionFollowsThePipelineOrder) {
  DefinePipeline();
  Open("o1", At(1, 0));
  Move("o1", "qualify", 2500, At(1, 1));
  Close("o1", true, At(2, 1));
  Open("o2", At(1, 0));
  Close("o2", false, At(1, 2));
  Open("o3", At(1, 0));
  Move("o3", "propose", 5000, At(2, 2));  // skipping a stage still goes forward
  Open("o4", At(1, 0), "o1", "north", "qualify", 2500);
  Move("o4", "prospect", 1000, At(1, 3));  // backwards: not a conversion

  v1::KpiResult result = Query("stage_conversion_rate", 1, 2, {"pipeline", "stage"});
  // Week 1 entries into prospect: o1, o2, o3, o4 (moved back); o1 and o3 went further.
  EXPECT_EQ(RatioOf(result, 1, "ratio", {"sales", "prospect"}),
            std::make_pair(int64_t{2}, int64_t{4}));
  // Into qualify: o1 (won later), o4 (went back).
  EXPECT_EQ(RatioOf(result, 1, "ratio", {"sales", "qualify"}),
            std::make_pair(int64_t{1}, int64_t{2}));
  EXPECT_EQ(RatioOf(result, 2, "ratio", {"sales", "propose"}),
            std::make_pair(int64_t{0}, int64_t{1}));
}

TEST_F(KpiTest, AReopeningIntoAnotherStageEntersIt) {
  DefinePipeline();
  Open("a", At(1, 0));
  Close("a", false, At(1, 1));
  opportunities_["a"].set_stage_id("qualify");
  Reopen("a", At(3, 1));  // into qualify: an entry, and a move within 14 days of week 3's end
  Open("b", At(1, 0));
  Close("b", false, At(1, 1));
  Reopen("b", At(3, 1));  // back into the stage it closed in: no entry

  // Stale at the end of week 3: b only (opened in week 1, nothing since but a reopening).
  EXPECT_EQ(CountOf(Query("stale_opportunities", 3, 1), 3, "count"), 1);
  v1::KpiResult stale = Query("stale_opportunities", 3, 1, {"owner", "stage"});
  EXPECT_EQ(CountOf(stale, 3, "count", {"o1", "prospect"}), 1);
  // Entries into qualify in week 3: a's reopening, not yet followed by a later stage.
  v1::KpiResult entries = Query("stage_conversion_rate", 3, 1, {"pipeline", "stage"});
  EXPECT_EQ(RatioOf(entries, 3, "ratio", {"sales", "qualify"}),
            std::make_pair(int64_t{0}, int64_t{1}));
}

TEST_F(KpiTest, WinRateByCountAndAmountPerCurrencyAtTheLatestClose) {
  DefinePipeline();
  Open("w1", At(1, 0), "o1", "west", "prospect", 1000, 1000, "EUR");
  opportunities_["w1"].set_region("north");
  UpdateOpportunity("w1", At(1, 1));  // region when won: north
  Close("w1", true, At(1, 2));
  Open("l1", At(1, 0), "o1", "north", "prospect", 1000, 3000, "EUR");
  Close("l1", false, At(1, 2));
  Open("w2", At(1, 0), "o2", "south", "prospect", 1000, 500, "USD");
  Close("w2", true, At(1, 3));
  Open("r1", At(1, 0), "o1", "north", "prospect", 1000, 7000, "EUR");
  Close("r1", true, At(1, 3));
  Reopen("r1", At(1, 4));  // reopened since: no longer a close
  Open("r2", At(1, 0), "o1", "north", "prospect", 1000, 2000, "EUR");
  Close("r2", false, At(1, 3));
  Reopen("r2", At(2, 0));
  Close("r2", true, At(2, 1));  // its latest close is in week 2

  v1::KpiResult total = Query("win_rate", 1, 2);
  EXPECT_EQ(RatioOf(total, 1, "ratio"), std::make_pair(int64_t{2}, int64_t{3}));
  EXPECT_EQ(RatioOf(total, 1, "amount_ratio", {}, "EUR"),
            std::make_pair(int64_t{1000}, int64_t{4000}));
  EXPECT_EQ(RatioOf(total, 1, "amount_ratio", {}, "USD"),
            std::make_pair(int64_t{500}, int64_t{500}));
  EXPECT_EQ(RatioOf(total, 2, "ratio"), std::make_pair(int64_t{1}, int64_t{1}));
  v1::KpiResult grouped = Query("win_rate", 1, 1, {"owner", "region"});
  EXPECT_EQ(RatioOf(grouped, 1, "ratio", {"o1", "north"}), std::make_pair(int64_t{1}, int64_t{2}));
  EXPECT_EQ(RatioOf(grouped, 1, "ratio", {"o2", "south"}), std::make_pair(int64_t{1}, int64_t{1}));
}

TEST_F(KpiTest, WonRevenueByProductAndRegionPerCurrency) {
  DefinePipeline();
  auto& a = Open("a", At(1, 0), "o1", "north", "prospect", 1000, 1000, "EUR");
  for (auto [product, amount] :
       std::vector<std::pair<std::string, int64_t>>{{"basic", 600}, {"pro", 400}}) {
    pipeline::v1::ProductLine& line = *a.add_lines();
    line.set_product_id(product);
    line.set_amount_minor(amount);
  }
  Close("a", true, At(1, 2));
  Open("b", At(1, 0), "o1", "south", "prospect", 1000, 500, "USD");
  Close("b", true, At(1, 3));
  Open("c", At(1, 0), "o1", "south", "prospect", 1000, 900, "USD");
  Close("c", false, At(1, 3));  // lost: no revenue

  v1::KpiResult grouped = Query("won_revenue", 1, 1, {"product", "region"});
  EXPECT_EQ(MeasureOf(RowOf(grouped, 1, {"basic", "north"}), "amount", "EUR").amount_minor(), 600);
  EXPECT_EQ(MeasureOf(RowOf(grouped, 1, {"pro", "north"}), "amount", "EUR").amount_minor(), 400);
  EXPECT_EQ(MeasureOf(RowOf(grouped, 1, {"-", "south"}), "amount", "USD").amount_minor(), 500);
  const v1::KpiResult total_result = Query("won_revenue", 1, 1);
  const v1::KpiRow& total = RowOf(total_result, 1);
  EXPECT_EQ(MeasureOf(total, "amount", "EUR").amount_minor(), 1000);
  EXPECT_EQ(MeasureOf(total, "amount", "USD").amount_minor(), 500);
  EXPECT_THAT(total.measures(), SizeIs(2));  // never a mixed-currency figure
}

TEST_F(KpiTest, PipelineValueRoundsTheWeightedSumOnce) {
  DefinePipeline();
  Open("a", At(1, 0), "o1", "north", "qualify", 2500, 1003, "EUR");
  Open("b", At(1, 0), "o2", "north", "propose", 5000, 333, "EUR");
  Open("c", At(1, 0), "o1", "north", "prospect", 1000, 100, "USD");
  Open("d", At(1, 0), "o1", "north", "prospect", 1000, 5000, "EUR");
  Close("d", true, At(1, 2));  // closed: not pipeline
  Open("e", At(1, 0), "o3", "north", "prospect", 1000, 0, "GBP");  // open, worth nothing yet

  const v1::KpiResult total_result = Query("pipeline_value", 1, 1);
  const v1::KpiRow& total = RowOf(total_result, 1);
  EXPECT_EQ(MeasureOf(total, "amount", "EUR").amount_minor(), 1336);
  EXPECT_EQ(MeasureOf(total, "amount", "GBP").amount_minor(), 0);  // listed: a sum of 0
  EXPECT_EQ(MeasureOf(total, "amount", "USD").amount_minor(), 100);
  // (1003 x 2500 + 333 x 5000) / 10000 = 417.25 -> 417 (each rounded first would give 416).
  EXPECT_EQ(MeasureOf(total, "weighted_amount", "EUR").amount_minor(), 417);
  EXPECT_EQ(MeasureOf(total, "weighted_amount", "USD").amount_minor(), 10);
  v1::KpiResult by_stage = Query("pipeline_value", 1, 1, {"stage"});
  EXPECT_EQ(MeasureOf(RowOf(by_stage, 1, {"qualify"}), "amount", "EUR").amount_minor(), 1003);
}

TEST_F(KpiTest, SalesCycleAndAverageDealSizeOfWonDeals) {
  DefinePipeline();
  Open("a", At(1, 0, 10), "o1", "north", "prospect", 1000, 1000, "EUR");
  Close("a", true, At(2, 0, 9));  // 6.96 days -> 6
  Open("b", At(1, 1), "o1", "north", "prospect", 1000, 1001, "EUR");
  Close("b", true, At(2, 2, 12));  // 8.5 days -> 8
  Open("c", At(1, 0), "o1", "north", "prospect", 1000, 500, "USD");
  Close("c", true, At(2, 2));  // 9 days
  Open("d", At(1, 0), "o1", "south", "prospect", 1000, 700, "EUR");
  Close("d", false, At(2, 2));  // lost: not in either

  const v1::KpiResult cycle_result = Query("sales_cycle_days", 2, 1);
  const v1::KpiRow& cycle = RowOf(cycle_result, 2);
  // [6, 8, 9]: p50 = rank 2 = 8, exact.
  EXPECT_EQ(MeasureOf(cycle, "p50_days").quantile().value(), 8);
  EXPECT_EQ(MeasureOf(cycle, "p50_days").quantile().relative_error(), 0);
  EXPECT_EQ(MeasureOf(cycle, "won").count(), 3);

  const v1::KpiResult size_result = Query("average_deal_size", 2, 1);
  const v1::KpiRow& size = RowOf(size_result, 2);
  EXPECT_EQ(MeasureOf(size, "amount", "EUR").amount_minor(), 1000);  // 2001 / 2 = 1000.5
  EXPECT_EQ(MeasureOf(size, "amount", "USD").amount_minor(), 500);
}

TEST_F(KpiTest, CaseResolutionAndReopenRateAndOpenCases) {
  OpenCase("k1", activity::v1::CASE_PRIORITY_NORMAL, At(1, 0));
  Resolve("k1", At(1, 0, 1));  // 3600 s
  OpenCase("k2", activity::v1::CASE_PRIORITY_NORMAL, At(1, 0));
  Resolve("k2", At(1, 1));
  ReopenCase("k2", At(1, 1, 12));
  Resolve("k2", At(1, 2));  // latest resolution: 2 days after the first opening
  OpenCase("k3", activity::v1::CASE_PRIORITY_HIGH, At(1, 0));
  Resolve("k3", At(1, 3));
  ReopenCase("k3", At(2, 1));  // reopened since: not a resolved case of week 1
  OpenCase("k4", activity::v1::CASE_PRIORITY_URGENT, At(1, 4));

  v1::KpiResult total = Query("case_resolution_seconds", 1, 2);
  const v1::KpiRow& week1 = RowOf(total, 1);
  // Resolved cases [3600, 172800]: p50 = rank 1, p90 = rank 2.
  ExpectQuantile(MeasureOf(week1, "p50_seconds"), 3600);
  ExpectQuantile(MeasureOf(week1, "p90_seconds"), 172800);
  EXPECT_EQ(MeasureOf(week1, "resolved").count(), 2);
  // Reopenings 1 (k2) / resolutions 4 (k1, k2 twice, k3).
  EXPECT_EQ(RatioOf(total, 1, "reopen_rate"), std::make_pair(int64_t{1}, int64_t{4}));
  EXPECT_EQ(RatioOf(total, 2, "reopen_rate"), std::make_pair(int64_t{1}, int64_t{0}));
  v1::KpiResult by_priority = Query("case_resolution_seconds", 1, 1, {"priority", "channel"});
  EXPECT_EQ(CountOf(by_priority, 1, "resolved", {"normal", "desk"}), 2);
  EXPECT_EQ(RatioOf(by_priority, 1, "reopen_rate", {"high", "desk"}),
            std::make_pair(int64_t{0}, int64_t{1}));

  v1::KpiResult open = Query("open_cases", 1, 2, {"priority"});
  EXPECT_EQ(CountOf(open, 1, "count", {"urgent"}), 1);  // k4
  EXPECT_THAT(open.rows(), SizeIs(3));                  // week 1: urgent; week 2: high, urgent
  EXPECT_EQ(CountOf(open, 2, "count", {"high"}), 1);    // k3 reopened
  EXPECT_EQ(CountOf(open, 2, "count", {"urgent"}), 1);
}

TEST_F(KpiTest, StateKpisAreEvaluatedAtNowInTheCurrentPeriodAndNotAfter) {
  OpenCase("k1", activity::v1::CASE_PRIORITY_LOW, At(1, 0));
  v1::KpiResult result = Query("open_cases", 10, 3);  // week 11 starts at kNow
  ASSERT_THAT(result.rows(), SizeIs(3));
  EXPECT_EQ(CountOf(result, 10, "count"), 1);
  EXPECT_EQ(CountOf(result, 11, "count"), 1);  // evaluated at now
  EXPECT_EQ(CountOf(result, 12, "count"), 0);  // starts after now: no state yet
}

TEST_F(KpiTest, BadQueriesNameTheirField) {
  EXPECT_THAT(Violations(TryQuery("no_such_kpi", 1, 1).status()),
              ElementsAre(::testing::Field(&FieldViolation::field, "kpi")));
  EXPECT_THAT(Violations(TryQuery("win_rate", 1, 1, {"rep"}).status()),
              ElementsAre(::testing::Field(&FieldViolation::field, "group_by[0]")));
  EXPECT_THAT(Violations(TryQuery("win_rate", 1, 1, {"owner", "owner"}).status()),
              ElementsAre(::testing::Field(&FieldViolation::field, "group_by[1]")));
  EXPECT_THAT(Violations(TryQuery("win_rate", 1, 1, {}, {Filter("stage", {"x"})}).status()),
              ElementsAre(::testing::Field(&FieldViolation::field, "filters[0].dimension")));
  EXPECT_THAT(Violations(TryQuery("win_rate", 1, 0).status()),
              ElementsAre(::testing::Field(&FieldViolation::field, "end_time")));
  EXPECT_THAT(Violations(TryQuery("win_rate", 1, 500).status()),
              ElementsAre(::testing::Field(&FieldViolation::field, "end_time")));
  Projection empty;
  v1::QueryKpiRequest no_start;
  no_start.set_kpi("win_rate");
  no_start.set_period_kind(v1::PERIOD_KIND_MONTH);
  *no_start.mutable_end_time() = ToProto(kNow);
  EXPECT_THAT(Violations(EvaluateKpi(empty, no_start, kNow).status()),
              ElementsAre(::testing::Field(&FieldViolation::field, "start_time")));
}

TEST(KpiDefinitionsTest, EveryKpiOfTheSpecificationIsDefined) {
  std::vector<std::string> names;
  for (const v1::KpiDefinition& definition : KpiDefinitions()) {
    names.push_back(definition.name());
    EXPECT_EQ(definition.version(), kDefinitionVersion);
    EXPECT_FALSE(definition.rule().empty());
  }
  EXPECT_THAT(names, ::testing::UnorderedElementsAre(
                         "activities_logged", "visit_report_compliance", "logging_delay_seconds",
                         "active_reps", "contact_completeness_ratio", "open_deal_coverage",
                         "stale_opportunities", "tasks_on_time_ratio", "speed_to_lead_seconds",
                         "duplicate_rate", "leads_captured", "lead_qualification_rate",
                         "lead_conversion_rate", "stage_conversion_rate", "win_rate", "won_revenue",
                         "pipeline_value", "sales_cycle_days", "average_deal_size",
                         "case_resolution_seconds", "open_cases"));
}

}  // namespace
}  // namespace crm::metrics
