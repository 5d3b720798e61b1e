#include "domain/projection.h"

#include <algorithm>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "crm/activity/v1/events.pb.h"
#include "crm/common/time.h"
#include "crm/contact/v1/events.pb.h"
#include "crm/kafka/consumer.h"
#include "crm/pipeline/v1/events.pb.h"

namespace crm::metrics {
namespace {

using events::v1::EventEnvelope;
using Kind = pv::StreamView::KindCase;

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
// skipping it when nothing KPI-relevant changed.
template <typename Points, typename Point>
void AppendPoint(Points& points, Point point) {
  if (!points.empty()) {
    Point last = points[points.size() - 1];
    last.set_time_us(point.time_us());
    if (last.SerializeAsString() == point.SerializeAsString()) return;
    if (points[points.size() - 1].time_us() == point.time_us()) {
      *points.Mutable(points.size() - 1) = std::move(point);
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

void EvolveContact(pv::ContactView& view, const EventEnvelope& event) {
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

void EvolveLead(pv::LeadView& view, const EventEnvelope& event) {
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

void EvolveOpportunity(pv::OpportunityView& view, const EventEnvelope& event) {
  const google::protobuf::Any& payload = event.payload();
  const int64_t at = Micros(event.occurred_at());
  pipeline::v1::Opportunity opportunity;
  bool entered_stage = false;
  if (pipeline::v1::OpportunityOpened opened; payload.UnpackTo(&opened)) {
    opportunity = opened.opportunity();
    view.set_opened(true);
    view.set_opened_us(at);
    entered_stage = true;
  } else if (pipeline::v1::OpportunityStageMoved moved; payload.UnpackTo(&moved)) {
    opportunity = moved.opportunity();
    entered_stage = true;
  } else if (pipeline::v1::OpportunityUpdated updated; payload.UnpackTo(&updated)) {
    opportunity = updated.opportunity();
  } else if (pipeline::v1::OpportunityWon won; payload.UnpackTo(&won)) {
    opportunity = won.opportunity();
    view.add_won_us(at);
  } else if (pipeline::v1::OpportunityLost lost; payload.UnpackTo(&lost)) {
    opportunity = lost.opportunity();
  } else if (pipeline::v1::OpportunityReopened reopened; payload.UnpackTo(&reopened)) {
    opportunity = reopened.opportunity();
    view.clear_close();
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

void EvolvePipeline(pv::PipelineView& view, const EventEnvelope& event) {
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

void EvolveActivity(pv::ActivityView& view, const EventEnvelope& event) {
  const google::protobuf::Any& payload = event.payload();
  activity::v1::Activity activity;
  if (activity::v1::ActivityLogged logged; payload.UnpackTo(&logged)) {
    activity = logged.activity();
    view.set_first_recorded_us(Micros(event.recorded_at()));
  } else if (activity::v1::ActivityUpdated updated; payload.UnpackTo(&updated)) {
    activity = updated.activity();
  } else if (activity::v1::ActivityCompleted completed; payload.UnpackTo(&completed)) {
    activity = completed.activity();
  } else if (activity::v1::ActivityCancelled cancelled; payload.UnpackTo(&cancelled)) {
    activity = cancelled.activity();
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

void EvolveTask(pv::TaskView& view, const EventEnvelope& event) {
  const google::protobuf::Any& payload = event.payload();
  activity::v1::Task task;
  if (activity::v1::TaskScheduled scheduled; payload.UnpackTo(&scheduled)) {
    task = scheduled.task();
  } else if (activity::v1::TaskCompleted completed; payload.UnpackTo(&completed)) {
    task = completed.task();
    view.set_completed_us(Micros(event.occurred_at()));
  } else if (activity::v1::TaskCancelled cancelled; payload.UnpackTo(&cancelled)) {
    task = cancelled.task();
  } else if (activity::v1::TaskReassigned reassigned; payload.UnpackTo(&reassigned)) {
    task = reassigned.task();
  } else {
    return;
  }
  view.set_assignee_id(task.assignee_id());
  view.set_due_us(Micros(task.due_time()));
  view.set_status(task.status());
}

void EvolveCase(pv::CaseView& view, const EventEnvelope& event) {
  const google::protobuf::Any& payload = event.payload();
  const int64_t at = Micros(event.occurred_at());
  activity::v1::Case record;
  if (activity::v1::CaseOpened opened; payload.UnpackTo(&opened)) {
    record = opened.case_();
    if (!view.has_first_opened_us()) view.set_first_opened_us(at);
    view.set_channel(record.channel());
  } else if (activity::v1::CaseAssigned assigned; payload.UnpackTo(&assigned)) {
    record = assigned.case_();
  } else if (activity::v1::CaseNoteAdded noted; payload.UnpackTo(&noted)) {
    record = noted.case_();
  } else if (activity::v1::CaseResolved resolved; payload.UnpackTo(&resolved)) {
    record = resolved.case_();
    view.add_resolved_us(at);
  } else if (activity::v1::CaseReopened reopened; payload.UnpackTo(&reopened)) {
    record = reopened.case_();
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

void Evolve(pv::StreamView& view, const EventEnvelope& event) {
  switch (view.kind_case()) {
    case pv::StreamView::kContact:
      return EvolveContact(*view.mutable_contact(), event);
    case pv::StreamView::kLead:
      return EvolveLead(*view.mutable_lead(), event);
    case pv::StreamView::kOpportunity:
      return EvolveOpportunity(*view.mutable_opportunity(), event);
    case pv::StreamView::kPipeline:
      return EvolvePipeline(*view.mutable_pipeline(), event);
    case pv::StreamView::kActivity:
      return EvolveActivity(*view.mutable_activity(), event);
    case pv::StreamView::kTask:
      return EvolveTask(*view.mutable_task(), event);
    case pv::StreamView::kCase:
      return EvolveCase(*view.mutable_case_(), event);
    case pv::StreamView::KIND_NOT_SET:
      return;
  }
}

// Empties a view of `kind` (so that Evolve knows which kind it is).
pv::StreamView EmptyView(Kind kind) {
  pv::StreamView view;
  switch (kind) {
    case pv::StreamView::kContact:
      view.mutable_contact();
      break;
    case pv::StreamView::kLead:
      view.mutable_lead();
      break;
    case pv::StreamView::kOpportunity:
      view.mutable_opportunity();
      break;
    case pv::StreamView::kPipeline:
      view.mutable_pipeline();
      break;
    case pv::StreamView::kActivity:
      view.mutable_activity();
      break;
    case pv::StreamView::kTask:
      view.mutable_task();
      break;
    case pv::StreamView::kCase:
      view.mutable_case_();
      break;
    case pv::StreamView::KIND_NOT_SET:
      break;
  }
  return view;
}

template <typename Map>
bool CopyInto(const Map& map, const std::string& id, auto* out) {
  auto it = map.find(id);
  if (it == map.end()) return false;
  *out = it->second;
  return true;
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

}  // namespace

pv::StreamView Projection::Get(const std::string& id, Kind kind) const {
  pv::StreamView view = EmptyView(kind);
  switch (kind) {
    case pv::StreamView::kContact:
      CopyInto(contacts_, id, view.mutable_contact());
      break;
    case pv::StreamView::kLead:
      CopyInto(leads_, id, view.mutable_lead());
      break;
    case pv::StreamView::kOpportunity:
      CopyInto(opportunities_, id, view.mutable_opportunity());
      break;
    case pv::StreamView::kPipeline:
      CopyInto(pipelines_, id, view.mutable_pipeline());
      break;
    case pv::StreamView::kActivity:
      CopyInto(activities_, id, view.mutable_activity());
      break;
    case pv::StreamView::kTask:
      CopyInto(tasks_, id, view.mutable_task());
      break;
    case pv::StreamView::kCase:
      CopyInto(cases_, id, view.mutable_case_());
      break;
    case pv::StreamView::KIND_NOT_SET:
      break;
  }
  return view;
}

void Projection::Index(const std::string& id, const pv::StreamView& view, bool add) {
  auto toggle = [add](TimeIndex& index, int64_t time, const std::string& id) {
    if (add) {
      index.emplace(time, id);
    } else {
      index.erase({time, id});
    }
  };
  switch (view.kind_case()) {
    case pv::StreamView::kActivity: {
      const pv::ActivityView& activity = view.activity();
      toggle(activities_by_time_, activity.time_us(), id);
      if (!IsDone(activity)) break;
      if (!activity.lead_id().empty()) {
        Toggle(lead_activity_times_[activity.lead_id()], activity.time_us(), add);
      }
      if (!activity.opportunity_id().empty()) {
        Toggle(opportunity_activity_times_[activity.opportunity_id()], activity.time_us(), add);
      }
      break;
    }
    case pv::StreamView::kLead:
      if (view.lead().captured()) toggle(leads_by_capture_, view.lead().captured_us(), id);
      break;
    case pv::StreamView::kTask:
      toggle(tasks_by_due_, view.task().due_us(), id);
      break;
    default:
      break;
  }
}

void Projection::Store(const std::string& id, pv::StreamView view) {
  switch (view.kind_case()) {
    case pv::StreamView::kContact:
      contacts_[id] = std::move(*view.mutable_contact());
      break;
    case pv::StreamView::kLead:
      leads_[id] = std::move(*view.mutable_lead());
      break;
    case pv::StreamView::kOpportunity:
      opportunities_[id] = std::move(*view.mutable_opportunity());
      break;
    case pv::StreamView::kPipeline:
      pipelines_[id] = std::move(*view.mutable_pipeline());
      break;
    case pv::StreamView::kActivity:
      activities_[id] = std::move(*view.mutable_activity());
      break;
    case pv::StreamView::kTask:
      tasks_[id] = std::move(*view.mutable_task());
      break;
    case pv::StreamView::kCase:
      cases_[id] = std::move(*view.mutable_case_());
      break;
    case pv::StreamView::KIND_NOT_SET:
      break;
  }
}

void Projection::MarkActive(const std::string& actor, absl::Time recorded_at,
                            std::vector<Row>& rows) {
  for (PeriodKind kind : {v1::PERIOD_KIND_ISO_WEEK, v1::PERIOD_KIND_MONTH}) {
    const int64_t start = ToMicros(PeriodOf(kind, recorded_at).start);
    if (active_[{kind, start}].insert(actor).second) {
      rows.push_back({ActiveKey(kind, start, actor), ""});
    }
  }
}

Outcome Projection::Apply(const EventEnvelope& event, std::vector<Row>& rows) {
  const std::string& stream = event.stream_id();
  switch (kafka::CheckStreamVersion(Version(stream), event.stream_version())) {
    case kafka::VersionCheck::kDuplicate:
      return Outcome::kDuplicate;
    case kafka::VersionCheck::kGap:
      return Outcome::kGap;
    case kafka::VersionCheck::kApply:
      break;
  }
  const std::string id(SplitStream(stream).second);
  // The one copy of the view: unindexed as it was, evolved, indexed, persisted, moved back.
  pv::StreamView view = Get(id, KindOf(event.stream_type()));
  Index(id, view, /*add=*/false);
  Evolve(view, event);
  view.set_version(event.stream_version());
  Index(id, view, /*add=*/true);
  versions_[stream] = view.version();
  rows.push_back({absl::StrCat(kStreamPrefix, stream), view.SerializeAsString()});
  Store(id, std::move(view));

  if (event.actor_kind() != common::v1::ACTOR_KIND_SERVICE && !event.actor_id().empty()) {
    MarkActive(event.actor_id(), FromProto(event.recorded_at()), rows);
  }
  const int64_t recorded = Micros(event.recorded_at());
  if (recorded > applied_through_us_) {
    applied_through_us_ = recorded;
    rows.push_back({std::string(kAppliedThroughKey), absl::StrCat(recorded)});
  }
  return Outcome::kApplied;
}

absl::Status Projection::Restore(absl::string_view key, absl::string_view value) {
  if (absl::StartsWith(key, kStreamPrefix)) {
    const std::string stream(key.substr(kStreamPrefix.size()));
    pv::StreamView view;
    if (!view.ParseFromArray(value.data(), static_cast<int>(value.size()))) {
      return absl::InternalError(absl::StrCat("unreadable view of ", stream));
    }
    const std::string id(SplitStream(stream).second);
    Index(id, view, /*add=*/true);
    versions_[stream] = view.version();
    Store(id, std::move(view));
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
    const auto [type, id] = SplitStream(stream);
    pv::StreamView view = Get(std::string(id), KindOf(type));
    view.set_version(version);
    rows.push_back({absl::StrCat(kStreamPrefix, stream), view.SerializeAsString()});
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
