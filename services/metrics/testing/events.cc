#include "testing/events.h"

#include <algorithm>
#include <random>

#include "absl/strings/str_cat.h"
#include "crm/activity/v1/events.pb.h"
#include "crm/common/time.h"
#include "crm/contact/v1/events.pb.h"
#include "crm/pipeline/v1/events.pb.h"

namespace crm::metrics::testing {

using events::v1::EventEnvelope;

const EventEnvelope& EventLog::Add(const std::string& stream,
                                   const google::protobuf::Message& payload, absl::Time occurred_at,
                                   EventOptions options) {
  EventEnvelope& event = events_.emplace_back();
  event.set_event_id(absl::StrCat("event-", events_.size()));
  event.set_stream_id(stream);
  event.set_stream_type(stream.substr(0, stream.find('/')));
  event.set_stream_version(++versions_[stream]);
  event.set_position(static_cast<int64_t>(events_.size()));
  *event.mutable_occurred_at() = ToProto(occurred_at);
  *event.mutable_recorded_at() =
      ToProto(options.recorded_at == absl::InfinitePast() ? occurred_at : options.recorded_at);
  event.set_actor_id(options.actor);
  event.set_actor_kind(options.service_actor ? common::v1::ACTOR_KIND_SERVICE
                                             : common::v1::ACTOR_KIND_USER);
  event.set_channel(options.channel);
  event.mutable_payload()->PackFrom(payload);
  return event;
}

std::string TopicOf(const EventEnvelope& event) {
  const std::string& type = event.stream_type();
  if (type == "contact" || type == "account") return "crm.contact.events.v1";
  if (type == "lead" || type == "opportunity" || type == "pipeline") {
    return "crm.pipeline.events.v1";
  }
  return "crm.activity.events.v1";
}

namespace {

// Draws from the generator directly (std distributions differ between libraries).
class Dice {
 public:
  explicit Dice(uint64_t seed) : engine_(seed) {}
  int64_t Below(int64_t n) { return static_cast<int64_t>(engine_() % static_cast<uint64_t>(n)); }
  bool Chance(int percent) { return Below(100) < percent; }
  template <typename T>
  const T& Pick(const std::vector<T>& items) {
    return items[Below(static_cast<int64_t>(items.size()))];
  }

 private:
  std::mt19937_64 engine_;
};

const std::vector<std::string> kChannels = {"web", "email", "phone", "field", "desk", "chat"};
const std::vector<std::string> kRegions = {"north", "south", "east", "west"};
const std::vector<std::string> kSources = {"web_form", "campaign", "referral", "partner"};
const std::vector<std::string> kCurrencies = {"EUR", "EUR", "EUR", "USD", "GBP"};
const std::vector<std::string> kProducts = {"basic", "pro", "enterprise", "support"};
const std::vector<std::pair<std::string, int>> kStages = {
    {"prospect", 1000}, {"qualify", 2500}, {"propose", 5000}, {"negotiate", 7500}};

template <typename Record>
struct Live {
  Record record;
  absl::Time last;  // business time of the stream's last event
};

class Generator {
 public:
  Generator(uint64_t seed, absl::Time start) : dice_(seed), now_(start) {}

  std::vector<EventEnvelope> Run(int count) {
    pipeline::v1::PipelineDefined defined;
    defined.mutable_pipeline()->set_pipeline_id("sales");
    defined.mutable_pipeline()->set_revision(1);
    for (const auto& [id, bps] : kStages) {
      pipeline::v1::Stage& stage = *defined.mutable_pipeline()->add_stages();
      stage.set_stage_id(id);
      stage.set_probability_bps(bps);
    }
    log_.Add("pipeline/sales", defined, now_, Options(""));
    while (static_cast<int>(log_.events().size()) < count) Step();
    return log_.events();
  }

 private:
  EventOptions Options(const std::string& channel) {
    EventOptions options;
    options.recorded_at = now_;
    options.service_actor = dice_.Chance(10);
    options.actor = options.service_actor ? "svc-import" : Rep();
    options.channel = channel;
    return options;
  }
  std::string Rep() { return absl::StrCat("rep-", dice_.Below(40)); }
  // Business time of a fact about an existing stream: not before its last event.
  absl::Time Late(absl::Time last, absl::Duration max_delay) {
    const absl::Time t = now_ - absl::Seconds(dice_.Below(absl::ToInt64Seconds(max_delay) + 1));
    return std::max(t, last);
  }
  template <typename Map>
  std::string AnyKey(const Map& map) {
    if (map.empty()) return "";
    auto it = map.begin();
    std::advance(it, dice_.Below(std::min<int64_t>(static_cast<int64_t>(map.size()), 64)));
    return it->first;
  }

  void Step() {
    now_ += absl::Seconds(dice_.Below(140));
    const int64_t roll = dice_.Below(100);
    if (roll < 12) return NewContact();
    if (roll < 17) return ChangeContact();
    if (roll < 24) return NewLead();
    if (roll < 28) return ChangeLead();
    if (roll < 32) return NewOpportunity();
    if (roll < 42) return ChangeOpportunity();
    if (roll < 67) return NewActivity();
    if (roll < 74) return ChangeActivity();
    if (roll < 82) return NewTask();
    if (roll < 88) return ChangeTask();
    if (roll < 93) return NewCase();
    return ChangeCase();
  }

  void NewContact() {
    contact::v1::Contact contact;
    contact.set_contact_id(absl::StrCat("c", ++ids_));
    if (dice_.Chance(70)) contact.add_emails("a@example.com");
    if (dice_.Chance(60)) contact.add_phones("+100");
    if (dice_.Chance(80)) contact.set_owner_id(Rep());
    if (dice_.Chance(70)) contact.set_account_id(absl::StrCat("a", dice_.Below(500)));
    contact.set_region(dice_.Pick(kRegions));
    contact.set_source_channel(dice_.Pick(kChannels));
    const absl::Time at = now_ - absl::Hours(dice_.Below(48));
    contact::v1::ContactCreated created;
    *created.mutable_contact() = contact;
    log_.Add(Stream("contact", contact.contact_id()), created, at, Options(dice_.Pick(kChannels)));
    contacts_[contact.contact_id()] = {contact, at};
  }

  void ChangeContact() {
    const std::string id = AnyKey(contacts_);
    if (id.empty()) return;
    Live<contact::v1::Contact>& live = contacts_[id];
    const absl::Time at = Late(live.last, absl::Hours(12));
    live.last = at;
    const int64_t roll = dice_.Below(10);
    if (roll < 6) {
      live.record.add_phones("+200");
      live.record.set_account_id(absl::StrCat("a", dice_.Below(500)));
      if (dice_.Chance(30)) live.record.set_region(dice_.Pick(kRegions));
      contact::v1::ContactUpdated updated;
      *updated.mutable_contact() = live.record;
      log_.Add(Stream("contact", id), updated, at, Options(""));
    } else if (roll < 8) {
      contact::v1::ContactArchived archived;
      archived.set_contact_id(id);
      log_.Add(Stream("contact", id), archived, at, Options(""));
      contacts_.erase(id);
    } else {
      contact::v1::ContactMergedInto merged;
      merged.set_contact_id(id);
      merged.set_winner_contact_id("c0");
      log_.Add(Stream("contact", id), merged, at, Options(""));
      contacts_.erase(id);
    }
  }

  void NewLead() {
    pipeline::v1::Lead lead;
    lead.set_lead_id(absl::StrCat("l", ++ids_));
    lead.set_source(dice_.Pick(kSources));
    lead.set_channel(dice_.Pick(kChannels));
    lead.set_status(pipeline::v1::LEAD_STATUS_NEW);
    const absl::Time at = now_ - absl::Hours(dice_.Below(72));
    pipeline::v1::LeadCaptured captured;
    *captured.mutable_lead() = lead;
    log_.Add(Stream("lead", lead.lead_id()), captured, at, Options(lead.channel()));
    leads_[lead.lead_id()] = {lead, at};
  }

  void ChangeLead() {
    const std::string id = AnyKey(leads_);
    if (id.empty()) return;
    Live<pipeline::v1::Lead>& live = leads_[id];
    const absl::Time at = Late(live.last, absl::Hours(6));
    live.last = at;
    const int64_t roll = dice_.Below(10);
    if (live.record.status() == pipeline::v1::LEAD_STATUS_NEW && roll < 5) {
      live.record.set_status(pipeline::v1::LEAD_STATUS_QUALIFIED);
      pipeline::v1::LeadQualified qualified;
      *qualified.mutable_lead() = live.record;
      log_.Add(Stream("lead", id), qualified, at, Options(""));
    } else if (live.record.status() == pipeline::v1::LEAD_STATUS_NEW) {
      live.record.set_status(pipeline::v1::LEAD_STATUS_DISQUALIFIED);
      pipeline::v1::LeadDisqualified disqualified;
      *disqualified.mutable_lead() = live.record;
      log_.Add(Stream("lead", id), disqualified, at, Options(""));
      leads_.erase(id);
    } else {
      live.record.set_status(pipeline::v1::LEAD_STATUS_CONVERTED);
      pipeline::v1::LeadConverted converted;
      *converted.mutable_lead() = live.record;
      log_.Add(Stream("lead", id), converted, at, Options(""));
      leads_.erase(id);
    }
  }

  void SetStage(pipeline::v1::Opportunity& opportunity, size_t stage) {
    opportunity.set_stage_id(kStages[stage].first);
    opportunity.set_stage_probability_bps(kStages[stage].second);
  }

  void NewOpportunity() {
    pipeline::v1::Opportunity opportunity;
    opportunity.set_opportunity_id(absl::StrCat("o", ++ids_));
    opportunity.set_pipeline_id("sales");
    opportunity.set_pipeline_revision(1);
    SetStage(opportunity, 0);
    opportunity.set_owner_id(Rep());
    opportunity.set_region(dice_.Pick(kRegions));
    opportunity.set_currency_code(dice_.Pick(kCurrencies));
    int64_t amount = 0;
    for (int64_t i = 0, n = dice_.Below(3); i < n; ++i) {
      pipeline::v1::ProductLine& line = *opportunity.add_lines();
      line.set_product_id(dice_.Pick(kProducts));
      line.set_amount_minor(100 * (1 + dice_.Below(5000)) + dice_.Below(100));
      amount += line.amount_minor();
    }
    opportunity.set_amount_minor(amount > 0 ? amount : 100 * dice_.Below(10000));
    if (dice_.Chance(80)) {
      const absl::CivilDay day =
          absl::ToCivilDay(now_ + absl::Hours(24 * dice_.Below(60)), absl::UTCTimeZone());
      opportunity.mutable_expected_close_date()->set_year(static_cast<int32_t>(day.year()));
      opportunity.mutable_expected_close_date()->set_month(day.month());
      opportunity.mutable_expected_close_date()->set_day(day.day());
    }
    opportunity.set_status(pipeline::v1::OPPORTUNITY_STATUS_OPEN);
    pipeline::v1::OpportunityOpened opened;
    *opened.mutable_opportunity() = opportunity;
    log_.Add(Stream("opportunity", opportunity.opportunity_id()), opened, now_, Options(""));
    opportunities_[opportunity.opportunity_id()] = {opportunity, now_};
  }

  void ChangeOpportunity() {
    const std::string id = AnyKey(opportunities_);
    if (id.empty()) return;
    Live<pipeline::v1::Opportunity>& live = opportunities_[id];
    pipeline::v1::Opportunity& o = live.record;
    const absl::Time at = Late(live.last, absl::Hours(4));
    live.last = at;
    const std::string stream = Stream("opportunity", id);
    if (o.status() != pipeline::v1::OPPORTUNITY_STATUS_OPEN) {
      const auto previous = o.status();
      o.set_status(pipeline::v1::OPPORTUNITY_STATUS_OPEN);
      pipeline::v1::OpportunityReopened reopened;
      *reopened.mutable_opportunity() = o;
      reopened.set_previous_status(previous);
      log_.Add(stream, reopened, at, Options(""));
      return;
    }
    const int64_t roll = dice_.Below(10);
    size_t stage = 0;
    while (kStages[stage].first != o.stage_id()) ++stage;
    if (roll < 5 && stage + 1 < kStages.size()) {
      pipeline::v1::OpportunityStageMoved moved;
      moved.set_from_stage_id(o.stage_id());
      SetStage(o, stage + 1);
      *moved.mutable_opportunity() = o;
      log_.Add(stream, moved, at, Options(""));
    } else if (roll < 6) {
      o.set_owner_id(Rep());
      pipeline::v1::OpportunityUpdated updated;
      *updated.mutable_opportunity() = o;
      log_.Add(stream, updated, at, Options(""));
    } else {
      const bool won = roll < 8;
      o.set_status(won ? pipeline::v1::OPPORTUNITY_STATUS_WON
                       : pipeline::v1::OPPORTUNITY_STATUS_LOST);
      if (won) {
        pipeline::v1::OpportunityWon event;
        *event.mutable_opportunity() = o;
        log_.Add(stream, event, at, Options(""));
      } else {
        pipeline::v1::OpportunityLost event;
        *event.mutable_opportunity() = o;
        log_.Add(stream, event, at, Options(""));
      }
      if (dice_.Chance(70)) opportunities_.erase(id);
    }
  }

  void NewActivity() {
    activity::v1::Activity activity;
    activity.set_activity_id(absl::StrCat("act", ++ids_));
    activity.set_type(static_cast<activity::v1::ActivityType>(1 + dice_.Below(6)));
    activity.set_channel(dice_.Pick(kChannels));
    activity.set_owner_id(Rep());
    if (dice_.Chance(30)) activity.set_lead_id(AnyKey(leads_));
    if (dice_.Chance(40)) activity.set_opportunity_id(AnyKey(opportunities_));
    const bool scheduled = activity.type() != activity::v1::ACTIVITY_TYPE_NOTE && dice_.Chance(10);
    // Logged late: most within a day, some days later (a field-sales app syncing).
    const absl::Time happened =
        now_ - absl::Seconds(dice_.Chance(80) ? dice_.Below(86400) : dice_.Below(5 * 86400));
    activity.set_status(scheduled ? activity::v1::ACTIVITY_STATUS_SCHEDULED
                                  : activity::v1::ACTIVITY_STATUS_DONE);
    *activity.mutable_occurred_at() =
        ToProto(scheduled ? now_ + absl::Hours(1 + dice_.Below(72)) : happened);
    if (!scheduled && dice_.Chance(50)) activity.set_body("report");
    activity::v1::ActivityLogged logged;
    *logged.mutable_activity() = activity;
    log_.Add(Stream("activity", activity.activity_id()), logged, scheduled ? now_ : happened,
             Options(activity.channel()));
    activities_[activity.activity_id()] = {activity, scheduled ? now_ : happened};
  }

  void ChangeActivity() {
    const std::string id = AnyKey(activities_);
    if (id.empty()) return;
    Live<activity::v1::Activity>& live = activities_[id];
    activity::v1::Activity& a = live.record;
    const absl::Time at = Late(live.last, absl::Hours(2));
    live.last = at;
    const std::string stream = Stream("activity", id);
    if (a.status() == activity::v1::ACTIVITY_STATUS_SCHEDULED) {
      if (dice_.Chance(80)) {
        a.set_status(activity::v1::ACTIVITY_STATUS_DONE);
        *a.mutable_occurred_at() = ToProto(at);
        activity::v1::ActivityCompleted completed;
        *completed.mutable_activity() = a;
        log_.Add(stream, completed, at, Options(""));
      } else {
        a.set_status(activity::v1::ACTIVITY_STATUS_CANCELLED);
        activity::v1::ActivityCancelled cancelled;
        *cancelled.mutable_activity() = a;
        log_.Add(stream, cancelled, at, Options(""));
        activities_.erase(id);
      }
      return;
    }
    a.set_body("report, written later");
    activity::v1::ActivityUpdated updated;
    *updated.mutable_activity() = a;
    log_.Add(stream, updated, at, Options(""));
    activities_.erase(id);
  }

  void NewTask() {
    activity::v1::Task task;
    task.set_task_id(absl::StrCat("t", ++ids_));
    task.set_assignee_id(Rep());
    *task.mutable_due_time() = ToProto(now_ + absl::Hours(dice_.Below(24 * 14)));
    task.set_status(activity::v1::TASK_STATUS_OPEN);
    activity::v1::TaskScheduled scheduled;
    *scheduled.mutable_task() = task;
    log_.Add(Stream("task", task.task_id()), scheduled, now_, Options(""));
    tasks_[task.task_id()] = {task, now_};
  }

  void ChangeTask() {
    const std::string id = AnyKey(tasks_);
    if (id.empty()) return;
    Live<activity::v1::Task>& live = tasks_[id];
    const absl::Time at = Late(live.last, absl::Hours(1));
    const std::string stream = Stream("task", id);
    const int64_t roll = dice_.Below(10);
    if (roll < 7) {
      live.record.set_status(activity::v1::TASK_STATUS_COMPLETED);
      *live.record.mutable_complete_time() = ToProto(at);
      activity::v1::TaskCompleted completed;
      *completed.mutable_task() = live.record;
      log_.Add(stream, completed, at, Options(""));
      tasks_.erase(id);
    } else if (roll < 8) {
      live.record.set_status(activity::v1::TASK_STATUS_CANCELLED);
      activity::v1::TaskCancelled cancelled;
      *cancelled.mutable_task() = live.record;
      log_.Add(stream, cancelled, at, Options(""));
      tasks_.erase(id);
    } else {
      live.last = at;
      live.record.set_assignee_id(Rep());
      activity::v1::TaskReassigned reassigned;
      *reassigned.mutable_task() = live.record;
      log_.Add(stream, reassigned, at, Options(""));
    }
  }

  void NewCase() {
    activity::v1::Case record;
    record.set_case_id(absl::StrCat("k", ++ids_));
    record.set_channel(dice_.Pick(kChannels));
    record.set_priority(static_cast<activity::v1::CasePriority>(1 + dice_.Below(4)));
    record.set_status(activity::v1::CASE_STATUS_OPEN);
    activity::v1::CaseOpened opened;
    *opened.mutable_case_() = record;
    log_.Add(Stream("case", record.case_id()), opened, now_, Options(record.channel()));
    cases_[record.case_id()] = {record, now_};
  }

  void ChangeCase() {
    const std::string id = AnyKey(cases_);
    if (id.empty()) return;
    Live<activity::v1::Case>& live = cases_[id];
    const absl::Time at = Late(live.last, absl::Hours(1));
    live.last = at;
    const std::string stream = Stream("case", id);
    if (live.record.status() == activity::v1::CASE_STATUS_OPEN) {
      live.record.set_status(activity::v1::CASE_STATUS_RESOLVED);
      activity::v1::CaseResolved resolved;
      *resolved.mutable_case_() = live.record;
      log_.Add(stream, resolved, at, Options(""));
      if (dice_.Chance(80)) cases_.erase(id);
    } else {
      live.record.set_status(activity::v1::CASE_STATUS_OPEN);
      activity::v1::CaseReopened reopened;
      *reopened.mutable_case_() = live.record;
      log_.Add(stream, reopened, at, Options(""));
    }
  }

  static std::string Stream(const char* type, const std::string& id) {
    return absl::StrCat(type, "/", id);
  }

  Dice dice_;
  absl::Time now_;
  int64_t ids_ = 0;
  EventLog log_;
  // Ordered maps: which record changes next must not depend on hashing.
  std::map<std::string, Live<contact::v1::Contact>> contacts_;
  std::map<std::string, Live<pipeline::v1::Lead>> leads_;
  std::map<std::string, Live<pipeline::v1::Opportunity>> opportunities_;
  std::map<std::string, Live<activity::v1::Activity>> activities_;
  std::map<std::string, Live<activity::v1::Task>> tasks_;
  std::map<std::string, Live<activity::v1::Case>> cases_;
};

}  // namespace

std::vector<EventEnvelope> GenerateHistory(int count, uint64_t seed, absl::Time start) {
  return Generator(seed, start).Run(count);
}

}  // namespace crm::metrics::testing
