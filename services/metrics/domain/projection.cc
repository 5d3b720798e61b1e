#include "domain/projection.h"

#include <algorithm>
#include <thread>
#include <type_traits>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "crm/activity/v1/events.pb.h"
#include "crm/common/time.h"
#include "crm/contact/v1/events.pb.h"
#include "crm/kafka/consumer.h"
#include "crm/pipeline/v1/events.pb.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/io/zero_copy_stream_impl_lite.h"
#include "google/protobuf/wire_format_lite.h"

namespace crm::metrics {
namespace {

using events::v1::EventEnvelope;
using Kind = pv::StreamView::KindCase;
using google::protobuf::internal::WireFormatLite;

constexpr absl::string_view kStreamPrefix = "s/";
constexpr absl::string_view kActivePrefix = "r/";
constexpr absl::string_view kAppliedThroughKey = "m/applied_through";

int64_t Micros(const google::protobuf::Timestamp& ts) { return ToMicros(FromProto(ts)); }

Kind KindOf(absl::string_view stream_type) {
  if (stream_type == "contact") return pv::StreamView::kContact;
  if (stream_type == "lead") return pv::StreamView::kLead;
  if (stream_type == "opportunity") return pv::StreamView::kOpportunity;
  if (stream_type == "pipeline") return pv::StreamView::kPipeline;
  if (stream_type == "activity") return pv::StreamView::kActivity;
  if (stream_type == "task") return pv::StreamView::kTask;
  if (stream_type == "case") return pv::StreamView::kCase;
  return pv::StreamView::KIND_NOT_SET;
}

// "<type>/<id>" -> {type, id}.
std::pair<absl::string_view, absl::string_view> SplitStream(absl::string_view stream) {
  const size_t slash = stream.find('/');
  if (slash == absl::string_view::npos) return {"", stream};
  return {stream.substr(0, slash), stream.substr(slash + 1)};
}

// Appends `point` to a timeline, replacing the last point when it has the same time and
// skipping it when nothing KPI-relevant changed. A point is the whole state after its event,
// so one dated before the last point (a back-dated change) takes effect at the last point's
// time: the timeline stays in time order and its last point is the record as it is now.
template <typename Points, typename Point>
void AppendPoint(Points& points, Point point) {
  if (!points.empty()) {
    Point& last = *points.Mutable(points.size() - 1);
    const int64_t at = std::max(point.time_us(), last.time_us());
    point.set_time_us(last.time_us());
    const bool same = point.SerializeAsString() == last.SerializeAsString();
    point.set_time_us(at);
    if (same) return;
    if (last.time_us() == at) {
      last = std::move(point);
      return;
    }
  }
  *points.Add() = std::move(point);
}

// --- contacts -----------------------------------------------------------------------------

void SetContactFacts(pv::ContactView& view, const contact::v1::Contact& contact) {
  view.set_complete(contact.emails_size() > 0 && contact.phones_size() > 0 &&
                    !contact.owner_id().empty() && !contact.account_id().empty());
  view.set_owner_id(contact.owner_id());
  view.set_region(contact.region());
  view.set_archived(contact.archived());
}

void Evolve(pv::ContactView& view, const EventEnvelope& event) {
  const google::protobuf::Any& payload = event.payload();
  const int64_t at = Micros(event.occurred_at());
  if (contact::v1::ContactCreated created; payload.UnpackTo(&created)) {
    view.set_created(true);
    view.set_created_us(at);
    view.set_created_channel(!event.channel().empty() ? event.channel()
                                                      : created.contact().source_channel());
    SetContactFacts(view, created.contact());
  } else if (contact::v1::ContactUpdated updated; payload.UnpackTo(&updated)) {
    SetContactFacts(view, updated.contact());
  } else if (contact::v1::ContactAbsorbedDuplicate absorbed; payload.UnpackTo(&absorbed)) {
    SetContactFacts(view, absorbed.contact());
  } else if (payload.Is<contact::v1::ContactArchived>()) {
    view.set_archived(true);
  } else if (payload.Is<contact::v1::ContactRestored>()) {
    view.set_archived(false);
  } else if (payload.Is<contact::v1::ContactMergedInto>()) {
    view.set_merged(true);
    view.set_merged_us(at);
  } else {
    return;
  }
  pv::ContactPoint point;
  point.set_time_us(at);
  point.set_live(view.created() && !view.archived() && !view.merged());
  point.set_complete(view.complete());
  point.set_owner_id(view.owner_id());
  point.set_region(view.region());
  AppendPoint(*view.mutable_points(), std::move(point));
}

// --- leads --------------------------------------------------------------------------------

void Evolve(pv::LeadView& view, const EventEnvelope& event) {
  const google::protobuf::Any& payload = event.payload();
  const int64_t at = Micros(event.occurred_at());
  if (pipeline::v1::LeadCaptured captured; payload.UnpackTo(&captured)) {
    view.set_captured(true);
    view.set_captured_us(at);
    view.set_source(captured.lead().source());
    view.set_channel(!captured.lead().channel().empty() ? captured.lead().channel()
                                                        : event.channel());
    view.set_status(captured.lead().status());
  } else if (pipeline::v1::LeadQualified qualified; payload.UnpackTo(&qualified)) {
    view.set_status(qualified.lead().status());
    if (!view.has_qualified_us()) view.set_qualified_us(at);
  } else if (pipeline::v1::LeadConverted converted; payload.UnpackTo(&converted)) {
    view.set_status(converted.lead().status());
    if (!view.has_qualified_us()) view.set_qualified_us(at);
  } else if (pipeline::v1::LeadDisqualified disqualified; payload.UnpackTo(&disqualified)) {
    view.set_status(disqualified.lead().status());
    if (!view.has_disqualified_us()) view.set_disqualified_us(at);
  }
}

// --- opportunities and pipelines ----------------------------------------------------------

std::optional<int64_t> DaysSinceEpoch(const common::v1::Date& date) {
  if (date.year() == 0) return std::nullopt;
  return absl::CivilDay(date.year(), date.month(), date.day()) - absl::CivilDay(1970, 1, 1);
}

void Evolve(pv::OpportunityView& view, const EventEnvelope& event) {
  const google::protobuf::Any& payload = event.payload();
  const int64_t at = Micros(event.occurred_at());
  pipeline::v1::Opportunity opportunity;
  bool entered_stage = false;
  if (pipeline::v1::OpportunityOpened opened; payload.UnpackTo(&opened)) {
    opportunity = std::move(*opened.mutable_opportunity());
    view.set_opened(true);
    view.set_opened_us(at);
    entered_stage = true;
  } else if (pipeline::v1::OpportunityStageMoved moved; payload.UnpackTo(&moved)) {
    opportunity = std::move(*moved.mutable_opportunity());
    entered_stage = true;
  } else if (pipeline::v1::OpportunityUpdated updated; payload.UnpackTo(&updated)) {
    opportunity = std::move(*updated.mutable_opportunity());
  } else if (pipeline::v1::OpportunityWon won; payload.UnpackTo(&won)) {
    opportunity = std::move(*won.mutable_opportunity());
    view.add_won_us(at);
  } else if (pipeline::v1::OpportunityLost lost; payload.UnpackTo(&lost)) {
    opportunity = std::move(*lost.mutable_opportunity());
  } else if (pipeline::v1::OpportunityReopened reopened; payload.UnpackTo(&reopened)) {
    opportunity = std::move(*reopened.mutable_opportunity());
    view.clear_close();
    // Reopened into another stage than the one it closed in: that stage is entered now.
    entered_stage = view.entries().empty() ||
                    view.entries(view.entries_size() - 1).stage_id() != opportunity.stage_id();
  } else {
    return;
  }
  if (entered_stage) {
    pv::StageEntry& entry = *view.add_entries();
    entry.set_time_us(at);
    entry.set_pipeline_id(opportunity.pipeline_id());
    entry.set_pipeline_revision(opportunity.pipeline_revision());
    entry.set_stage_id(opportunity.stage_id());
  }
  const bool closed = opportunity.status() == pipeline::v1::OPPORTUNITY_STATUS_WON ||
                      opportunity.status() == pipeline::v1::OPPORTUNITY_STATUS_LOST;
  if (closed &&
      (payload.Is<pipeline::v1::OpportunityWon>() || payload.Is<pipeline::v1::OpportunityLost>())) {
    pv::Close& close = *view.mutable_close();
    close.Clear();
    close.set_time_us(at);
    close.set_won(opportunity.status() == pipeline::v1::OPPORTUNITY_STATUS_WON);
    close.set_owner_id(opportunity.owner_id());
    close.set_region(opportunity.region());
    close.set_currency_code(opportunity.currency_code());
    close.set_amount_minor(opportunity.amount_minor());
    for (const pipeline::v1::ProductLine& line : opportunity.lines()) {
      pv::ProductAmount& amount = *close.add_lines();
      amount.set_product_id(line.product_id());
      amount.set_amount_minor(line.amount_minor());
    }
  }
  pv::OpportunityPoint point;
  point.set_time_us(at);
  point.set_status(opportunity.status());
  point.set_owner_id(opportunity.owner_id());
  point.set_region(opportunity.region());
  point.set_stage_id(opportunity.stage_id());
  point.set_probability_bps(opportunity.stage_probability_bps());
  point.set_currency_code(opportunity.currency_code());
  point.set_amount_minor(opportunity.amount_minor());
  if (auto day = DaysSinceEpoch(opportunity.expected_close_date())) {
    point.set_expected_close_day(*day);
  }
  AppendPoint(*view.mutable_points(), std::move(point));
}

void Evolve(pv::PipelineView& view, const EventEnvelope& event) {
  pipeline::v1::PipelineDefined defined;
  if (!event.payload().UnpackTo(&defined)) return;
  for (const pv::PipelineRevision& known : view.revisions()) {
    if (known.revision() == defined.pipeline().revision()) return;
  }
  pv::PipelineRevision& revision = *view.add_revisions();
  revision.set_revision(defined.pipeline().revision());
  for (const pipeline::v1::Stage& stage : defined.pipeline().stages()) {
    revision.add_stage_ids(stage.stage_id());
  }
}

// --- activities, tasks, cases -------------------------------------------------------------

void Evolve(pv::ActivityView& view, const EventEnvelope& event) {
  const google::protobuf::Any& payload = event.payload();
  activity::v1::Activity activity;
  if (activity::v1::ActivityLogged logged; payload.UnpackTo(&logged)) {
    activity = std::move(*logged.mutable_activity());
    view.set_first_recorded_us(Micros(event.recorded_at()));
  } else if (activity::v1::ActivityUpdated updated; payload.UnpackTo(&updated)) {
    activity = std::move(*updated.mutable_activity());
  } else if (activity::v1::ActivityCompleted completed; payload.UnpackTo(&completed)) {
    activity = std::move(*completed.mutable_activity());
  } else if (activity::v1::ActivityCancelled cancelled; payload.UnpackTo(&cancelled)) {
    activity = std::move(*cancelled.mutable_activity());
  } else {
    return;
  }
  view.set_type(activity.type());
  view.set_status(activity.status());
  view.set_channel(activity.channel());
  view.set_owner_id(activity.owner_id());
  view.set_time_us(Micros(activity.occurred_at()));
  view.set_lead_id(activity.lead_id());
  view.set_opportunity_id(activity.opportunity_id());
  if (!view.has_report_recorded_us() && !activity.body().empty()) {
    view.set_report_recorded_us(Micros(event.recorded_at()));
  }
}

void Evolve(pv::TaskView& view, const EventEnvelope& event) {
  const google::protobuf::Any& payload = event.payload();
  activity::v1::Task task;
  if (activity::v1::TaskScheduled scheduled; payload.UnpackTo(&scheduled)) {
    task = std::move(*scheduled.mutable_task());
  } else if (activity::v1::TaskCompleted completed; payload.UnpackTo(&completed)) {
    task = std::move(*completed.mutable_task());
    view.set_completed_us(Micros(event.occurred_at()));
  } else if (activity::v1::TaskCancelled cancelled; payload.UnpackTo(&cancelled)) {
    task = std::move(*cancelled.mutable_task());
  } else if (activity::v1::TaskReassigned reassigned; payload.UnpackTo(&reassigned)) {
    task = std::move(*reassigned.mutable_task());
  } else {
    return;
  }
  if (task.assignee_id() != view.assignee_id() || view.assignments().empty()) {
    pv::Assignment& assignment = *view.add_assignments();
    assignment.set_time_us(Micros(event.occurred_at()));
    assignment.set_assignee_id(task.assignee_id());
  }
  view.set_assignee_id(task.assignee_id());
  view.set_due_us(Micros(task.due_time()));
  view.set_status(task.status());
}

void Evolve(pv::CaseView& view, const EventEnvelope& event) {
  const google::protobuf::Any& payload = event.payload();
  const int64_t at = Micros(event.occurred_at());
  activity::v1::Case record;
  if (activity::v1::CaseOpened opened; payload.UnpackTo(&opened)) {
    record = std::move(*opened.mutable_case_());
    if (!view.has_first_opened_us()) view.set_first_opened_us(at);
    view.set_channel(record.channel());
  } else if (activity::v1::CaseAssigned assigned; payload.UnpackTo(&assigned)) {
    record = std::move(*assigned.mutable_case_());
  } else if (activity::v1::CaseNoteAdded noted; payload.UnpackTo(&noted)) {
    record = std::move(*noted.mutable_case_());
  } else if (activity::v1::CaseResolved resolved; payload.UnpackTo(&resolved)) {
    record = std::move(*resolved.mutable_case_());
    view.add_resolved_us(at);
  } else if (activity::v1::CaseReopened reopened; payload.UnpackTo(&reopened)) {
    record = std::move(*reopened.mutable_case_());
    view.add_reopened_us(at);
  } else {
    return;
  }
  pv::CasePoint point;
  point.set_time_us(at);
  point.set_open(record.status() == activity::v1::CASE_STATUS_OPEN);
  point.set_priority(record.priority());
  AppendPoint(*view.mutable_points(), std::move(point));
}

// Which member of StreamView holds a view.
constexpr int FieldOf(const pv::ContactView&) { return pv::StreamView::kContactFieldNumber; }
constexpr int FieldOf(const pv::LeadView&) { return pv::StreamView::kLeadFieldNumber; }
constexpr int FieldOf(const pv::OpportunityView&) {
  return pv::StreamView::kOpportunityFieldNumber;
}
constexpr int FieldOf(const pv::PipelineView&) { return pv::StreamView::kPipelineFieldNumber; }
constexpr int FieldOf(const pv::ActivityView&) { return pv::StreamView::kActivityFieldNumber; }
constexpr int FieldOf(const pv::TaskView&) { return pv::StreamView::kTaskFieldNumber; }
constexpr int FieldOf(const pv::CaseView&) { return pv::StreamView::kCaseFieldNumber; }

// The stored form of a view: the bytes of StreamView{version, <field> = *view}, written
// without copying the view into a StreamView first. A null view stores the version alone.
std::string StoredForm(int64_t version, const google::protobuf::MessageLite* view, int field) {
  std::string bytes;
  {
    google::protobuf::io::StringOutputStream stream(&bytes);
    google::protobuf::io::CodedOutputStream coded(&stream);
    WireFormatLite::WriteInt64(pv::StreamView::kVersionFieldNumber, version, &coded);
    if (view != nullptr) {
      const size_t size = view->ByteSizeLong();  // also caches the sizes written below
      WireFormatLite::WriteTag(field, WireFormatLite::WIRETYPE_LENGTH_DELIMITED, &coded);
      coded.WriteVarint32(static_cast<uint32_t>(size));
      view->SerializeWithCachedSizes(&coded);
    }
  }
  return bytes;
}

bool IsDone(const pv::ActivityView& activity) {
  return activity.status() == activity::v1::ACTIVITY_STATUS_DONE;
}

void Toggle(Times& times, int64_t time, bool add) {
  if (add) {
    times.insert(time);
  } else if (auto it = times.find(time); it != times.end()) {
    times.erase(it);
  }
}

std::string ActiveKey(int kind, int64_t start_us, absl::string_view actor) {
  return absl::StrCat(kActivePrefix, kind, "/", start_us, "/", actor);
}

// The index of the last point of a view's timeline; 0 for a view without one.
template <typename View>
int LastPoint(const View& view) {
  if constexpr (requires { view.points_size(); }) {
    return std::max(0, view.points_size() - 1);
  } else {
    return 0;
  }
}

}  // namespace

template <typename Self, typename Fn>
bool Projection::Visit(Self& self, Kind kind, Fn&& fn) {
  switch (kind) {
    case pv::StreamView::kContact:
      fn(self.contacts_);
      return true;
    case pv::StreamView::kLead:
      fn(self.leads_);
      return true;
    case pv::StreamView::kOpportunity:
      fn(self.opportunities_);
      return true;
    case pv::StreamView::kPipeline:
      fn(self.pipelines_);
      return true;
    case pv::StreamView::kActivity:
      fn(self.activities_);
      return true;
    case pv::StreamView::kTask:
      fn(self.tasks_);
      return true;
    case pv::StreamView::kCase:
      fn(self.cases_);
      return true;
    case pv::StreamView::KIND_NOT_SET:
      return false;
  }
  return false;
}

template <typename View>
KpiFacts Projection::FactsOf(const std::string& id, const View& view, int from_point) const {
  if constexpr (std::is_same_v<View, pv::ContactView>) {
    return ContactFacts(view, from_point);
  } else if constexpr (std::is_same_v<View, pv::OpportunityView>) {
    KpiFacts facts = OpportunityFacts(view, from_point);
    for (auto& entry : StageFacts(view, pipelines_)) facts.push_back(std::move(entry));
    return facts;
  } else if constexpr (std::is_same_v<View, pv::CaseView>) {
    return CaseFacts(view, from_point);
  } else if constexpr (std::is_same_v<View, pv::LeadView>) {
    const Times* times = LeadActivityTimes(id);
    return LeadFacts(view, times != nullptr ? std::optional(*times->begin()) : std::nullopt);
  } else if constexpr (std::is_same_v<View, pv::ActivityView>) {
    return ActivityFacts(view);
  } else if constexpr (std::is_same_v<View, pv::TaskView>) {
    return TaskFacts(view);
  } else {
    return {};
  }
}

template <typename Change>
void Projection::RerollStages(const std::string& pipeline_id, Change change) {
  if (!keep_sums_) return change();
  std::vector<std::pair<const std::string*, KpiFacts>> before;
  for (const auto& [id, opportunity] : opportunities_) {
    if (EnteredStageOf(opportunity, pipeline_id)) {
      before.emplace_back(&id, StageFacts(opportunity, pipelines_));
    }
  }
  change();  // changes pipelines_ only, so the ids above stay valid
  for (const auto& [id, facts] : before) {
    Reroll(facts, StageFacts(opportunities_.at(*id), pipelines_));
  }
}

void Projection::KeepSums(bool keep) {
  if (keep == keep_sums_) return;
  keep_sums_ = keep;
  daily_sums_.clear();
  if (!keep) return;
  auto file = [this](const auto& views, KpiSums& into) {
    for (const auto& [id, view] : views) {
      for (const auto& [kpi, fact] : FactsOf(id, view, 0)) Roll(into, kpi, fact, 1);
    }
  };
  // The views of one kind file the facts of their own KPIs only, so two threads can file
  // disjoint kinds into separate maps while reading the views: the caller (a rebuild that
  // caught up, a restore) waits for the larger half instead of the whole.
  KpiSums activity_sums;
  std::thread activities([&] {
    file(activities_, activity_sums);
    file(tasks_, activity_sums);
  });
  file(contacts_, daily_sums_);
  file(leads_, daily_sums_);
  file(opportunities_, daily_sums_);
  file(cases_, daily_sums_);
  activities.join();
  daily_sums_.merge(activity_sums);
}

void Projection::Roll(KpiSums& sums, const char* kpi, const Fact& fact, int sign) {
  auto it = sums.find(absl::string_view(kpi));
  if (it == sums.end()) it = sums.emplace(kpi, Rollup(IsStateKpi(kpi))).first;
  it->second.Add(fact, sign);
}

void Projection::Reroll(const KpiFacts& before, const KpiFacts& after) {
  if (!keep_sums_) return;
  std::vector<bool> kept(before.size(), false);
  std::vector<const std::pair<const char*, Fact>*> added;
  for (const auto& entry : after) {
    bool same = false;
    for (size_t i = 0; i < before.size() && !same; ++i) {
      same = !kept[i] && absl::string_view(before[i].first) == entry.first &&
             before[i].second == entry.second;
      if (same) kept[i] = true;
    }
    if (!same) added.push_back(&entry);
  }
  // Added first: a fact that moved within its group then never empties (and so never frees
  // and rebuilds) the group's sums on the way.
  for (const auto* entry : added) Roll(daily_sums_, entry->first, entry->second, 1);
  for (size_t i = 0; i < before.size(); ++i) {
    if (!kept[i]) Roll(daily_sums_, before[i].first, before[i].second, -1);
  }
}

const Rollup* Projection::DailySums(const std::string& kpi) const {
  auto it = daily_sums_.find(kpi);
  return it == daily_sums_.end() ? nullptr : &it->second;
}

void Projection::Index(const std::string& /*id*/, const pv::ActivityView& activity, bool add) {
  if (!IsDone(activity)) return;
  if (const std::string& lead_id = activity.lead_id(); !lead_id.empty()) {
    // The lead's speed to lead follows its first activity: its facts move when that does.
    Times& times = lead_activity_times_[lead_id];
    const std::optional<int64_t> first_before =
        times.empty() ? std::nullopt : std::optional(*times.begin());
    Toggle(times, activity.time_us(), add);
    const std::optional<int64_t> first_after =
        times.empty() ? std::nullopt : std::optional(*times.begin());
    if (auto lead = leads_.find(lead_id);
        keep_sums_ && lead != leads_.end() && first_after != first_before) {
      Reroll(LeadFacts(lead->second, first_before), LeadFacts(lead->second, first_after));
    }
  }
  if (!activity.opportunity_id().empty()) {
    Toggle(opportunity_activity_times_[activity.opportunity_id()], activity.time_us(), add);
  }
}

void Projection::MarkActive(const std::string& actor, absl::Time recorded_at) {
  // Events arrive roughly in time order: the periods of the last day seen are reused.
  constexpr int64_t kDayUs = int64_t{86'400'000'000};
  const int64_t us = ToMicros(recorded_at);
  const int64_t day = us >= 0 ? us / kDayUs : (us - kDayUs + 1) / kDayUs;  // floor
  if (day != active_day_) {
    active_day_ = day;
    active_week_us_ = ToMicros(PeriodOf(v1::PERIOD_KIND_ISO_WEEK, recorded_at).start);
    active_month_us_ = ToMicros(PeriodOf(v1::PERIOD_KIND_MONTH, recorded_at).start);
  }
  for (auto [kind, start] : {std::pair<int, int64_t>{v1::PERIOD_KIND_ISO_WEEK, active_week_us_},
                             std::pair<int, int64_t>{v1::PERIOD_KIND_MONTH, active_month_us_}}) {
    if (active_[{kind, start}].insert(actor).second) {
      changed_rows_.push_back({ActiveKey(kind, start, actor), ""});
    }
  }
}

Outcome Projection::Apply(const EventEnvelope& event) {
  const std::string& stream = event.stream_id();
  auto version = versions_.find(stream);
  switch (kafka::CheckStreamVersion(version == versions_.end() ? 0 : version->second,
                                    event.stream_version())) {
    case kafka::VersionCheck::kDuplicate:
      return Outcome::kDuplicate;
    case kafka::VersionCheck::kGap:
      return Outcome::kGap;
    case kafka::VersionCheck::kApply:
      break;
  }
  if (version == versions_.end()) version = versions_.emplace(stream, 0).first;
  version->second = event.stream_version();
  const auto [type, id_part] = SplitStream(stream);
  const std::string id(id_part);
  // Evolved in place: unindexed as it was (unless new), evolved, indexed as it is now.
  auto evolve = [&] {
    Visit(*this, KindOf(type), [&](auto& views) {
      auto [slot, created] = views.try_emplace(id);
      auto& view = slot->second;
      const int last_point = LastPoint(view);
      KpiFacts before;
      if (!created) {
        if (keep_sums_) before = FactsOf(id, view, last_point);
        Index(id, view, /*add=*/false);
      }
      Evolve(view, event);
      Index(id, view, /*add=*/true);
      if (keep_sums_) Reroll(before, FactsOf(id, view, last_point));
    });
  };
  // A pipeline's stage order decides which entries progressed.
  if (KindOf(type) == pv::StreamView::kPipeline) {
    RerollStages(id, evolve);
  } else {
    evolve();
  }
  changed_streams_.insert(stream);

  if (event.actor_kind() != common::v1::ACTOR_KIND_SERVICE && !event.actor_id().empty()) {
    MarkActive(event.actor_id(), FromProto(event.recorded_at()));
  }
  const int64_t recorded = Micros(event.recorded_at());
  if (recorded > applied_through_us_) {
    applied_through_us_ = recorded;
    applied_through_changed_ = true;
  }
  return Outcome::kApplied;
}

std::string Projection::StoredView(const std::string& stream) const {
  const auto [type, id] = SplitStream(stream);
  const google::protobuf::MessageLite* view = nullptr;
  int field = 0;
  Visit(*this, KindOf(type), [&](const auto& views) {
    if (auto it = views.find(id); it != views.end()) {
      view = &it->second;
      field = FieldOf(it->second);
    }
  });
  return StoredForm(Version(stream), view, field);
}

std::vector<Row> Projection::TakeChangedRows() {
  std::vector<Row> rows = std::move(changed_rows_);
  changed_rows_.clear();
  rows.reserve(rows.size() + changed_streams_.size() + 1);
  for (const std::string& stream : changed_streams_) {
    rows.push_back({absl::StrCat(kStreamPrefix, stream), StoredView(stream)});
  }
  changed_streams_.clear();
  if (applied_through_changed_) {
    rows.push_back({std::string(kAppliedThroughKey), absl::StrCat(applied_through_us_)});
    applied_through_changed_ = false;
  }
  return rows;
}

absl::Status Projection::Restore(absl::string_view key, absl::string_view value) {
  if (absl::StartsWith(key, kStreamPrefix)) {
    const std::string stream(key.substr(kStreamPrefix.size()));
    pv::StreamView view;
    if (!view.ParseFromArray(value.data(), static_cast<int>(value.size()))) {
      return absl::InternalError(absl::StrCat("unreadable view of ", stream));
    }
    const std::string id(SplitStream(stream).second);
    auto keep = [&](auto& views, auto* stored) {
      auto& slot = views[id];
      slot = std::move(*stored);
      Index(id, slot, /*add=*/true);
      if (keep_sums_) {
        for (const auto& [kpi, fact] : FactsOf(id, slot, 0)) Roll(daily_sums_, kpi, fact, 1);
      }
    };
    switch (view.kind_case()) {
      case pv::StreamView::kContact:
        keep(contacts_, view.mutable_contact());
        break;
      case pv::StreamView::kLead:
        keep(leads_, view.mutable_lead());
        break;
      case pv::StreamView::kOpportunity:
        keep(opportunities_, view.mutable_opportunity());
        break;
      case pv::StreamView::kPipeline:
        RerollStages(id, [&] { keep(pipelines_, view.mutable_pipeline()); });
        break;
      case pv::StreamView::kActivity:
        keep(activities_, view.mutable_activity());
        break;
      case pv::StreamView::kTask:
        keep(tasks_, view.mutable_task());
        break;
      case pv::StreamView::kCase:
        keep(cases_, view.mutable_case_());
        break;
      case pv::StreamView::KIND_NOT_SET:
        break;
    }
    versions_[stream] = view.version();
    return absl::OkStatus();
  }
  if (absl::StartsWith(key, kActivePrefix)) {
    std::vector<absl::string_view> parts =
        absl::StrSplit(key.substr(kActivePrefix.size()), absl::MaxSplits('/', 2));
    int kind = 0;
    int64_t start = 0;
    if (parts.size() != 3 || !absl::SimpleAtoi(parts[0], &kind) ||
        !absl::SimpleAtoi(parts[1], &start)) {
      return absl::InternalError(absl::StrCat("unreadable key ", key));
    }
    active_[{kind, start}].insert(std::string(parts[2]));
    return absl::OkStatus();
  }
  if (key == kAppliedThroughKey) {
    if (!absl::SimpleAtoi(value, &applied_through_us_)) {
      return absl::InternalError("unreadable applied_through");
    }
    return absl::OkStatus();
  }
  return absl::InternalError(absl::StrCat("unknown projection key ", key));
}

std::vector<Row> Projection::AllRows() const {
  std::vector<Row> rows;
  for (const auto& [stream, version] : versions_) {
    rows.push_back({absl::StrCat(kStreamPrefix, stream), StoredView(stream)});
  }
  for (const auto& [period, actors] : active_) {
    for (const std::string& actor : actors) {
      rows.push_back({ActiveKey(period.first, period.second, actor), ""});
    }
  }
  if (applied_through_us_ != 0) {
    rows.push_back({std::string(kAppliedThroughKey), absl::StrCat(applied_through_us_)});
  }
  std::sort(rows.begin(), rows.end(), [](const Row& a, const Row& b) { return a.key < b.key; });
  return rows;
}

int64_t Projection::Version(const std::string& stream) const {
  auto it = versions_.find(stream);
  return it == versions_.end() ? 0 : it->second;
}

const Times* Projection::LeadActivityTimes(const std::string& lead_id) const {
  auto it = lead_activity_times_.find(lead_id);
  return it == lead_activity_times_.end() || it->second.empty() ? nullptr : &it->second;
}

const Times* Projection::OpportunityActivityTimes(const std::string& opportunity_id) const {
  auto it = opportunity_activity_times_.find(opportunity_id);
  return it == opportunity_activity_times_.end() || it->second.empty() ? nullptr : &it->second;
}

const absl::btree_set<std::string>* Projection::ActiveActors(PeriodKind kind,
                                                             absl::Time start) const {
  auto it = active_.find({kind, ToMicros(start)});
  return it == active_.end() ? nullptr : &it->second;
}

}  // namespace crm::metrics
