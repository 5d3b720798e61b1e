#include "domain/kpis.h"

#include <algorithm>
#include <functional>
#include <limits>
#include <map>
#include <optional>
#include <string>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "crm/activity/v1/activity.pb.h"
#include "crm/common/field_violations.h"
#include "crm/common/status_macros.h"
#include "crm/common/time.h"
#include "crm/pipeline/v1/pipeline.pb.h"
#include "domain/facts.h"
#include "domain/rollup.h"

namespace crm::metrics {
namespace {

constexpr int64_t kMicrosPerSecond = 1'000'000;
constexpr int64_t kMicrosPerHour = 3600 * kMicrosPerSecond;
constexpr int64_t kMicrosPerDay = 24 * kMicrosPerHour;

// --- accumulation -------------------------------------------------------------------------

using Dims = std::vector<absl::string_view>;

// The periods asked for, the filters and the grouping of one query; facts are added to the
// cell of their period and group.
class Tally {
 public:
  Tally(std::vector<Period> periods, absl::Time now) : periods_(std::move(periods)), now_(now) {}

  absl::Status Configure(const v1::KpiDefinition& definition, const v1::QueryKpiRequest& request) {
    auto index_of = [&](const std::string& dimension) -> std::optional<size_t> {
      for (int i = 0; i < definition.dimensions_size(); ++i) {
        if (definition.dimensions(i) == dimension) return i;
      }
      return std::nullopt;
    };
    auto unknown = [&](const std::string& field, const std::string& dimension) {
      return InvalidField(
          field, absl::StrCat("\"", dimension, "\" is not a dimension of ", definition.name()));
    };
    for (int i = 0; i < request.filters_size(); ++i) {
      const v1::DimensionFilter& filter = request.filters(i);
      std::optional<size_t> index = index_of(filter.dimension());
      if (!index) return unknown(absl::StrCat("filters[", i, "].dimension"), filter.dimension());
      if (filter.values().empty()) {
        return InvalidField(absl::StrCat("filters[", i, "].values"), "must not be empty");
      }
      filters_.emplace_back(
          *index, absl::flat_hash_set<std::string>(filter.values().begin(), filter.values().end()));
    }
    for (int i = 0; i < request.group_by_size(); ++i) {
      std::optional<size_t> index = index_of(request.group_by(i));
      if (!index) return unknown(absl::StrCat("group_by[", i, "]"), request.group_by(i));
      if (std::find(group_by_.begin(), group_by_.end(), *index) != group_by_.end()) {
        return InvalidField(absl::StrCat("group_by[", i, "]"), "named twice");
      }
      group_by_.push_back(*index);
    }
    if (group_by_.empty()) {
      // Ungrouped: one row per period even without facts (a count of 0 is a figure).
      for (size_t p = 0; p < periods_.size(); ++p) cells_[{p, {}}];
    }
    return absl::OkStatus();
  }

  const std::vector<Period>& periods() const { return periods_; }
  int64_t range_start_us() const { return ToMicros(periods_.front().start); }
  int64_t range_end_us() const { return ToMicros(periods_.back().end); }

  // Index of the requested period holding `time_us`, if any.
  std::optional<size_t> PeriodIndex(int64_t time_us) const {
    const absl::Time t = FromMicros(time_us);
    if (t < periods_.front().start || t >= periods_.back().end) return std::nullopt;
    auto it = std::upper_bound(periods_.begin(), periods_.end(), t,
                               [](absl::Time t, const Period& p) { return t < p.start; });
    return static_cast<size_t>(it - periods_.begin() - 1);
  }

  // The instant a state-at-a-point KPI is evaluated at for period p: min(end, now); nullopt
  // for periods that start after now.
  std::optional<int64_t> EvaluationInstant(size_t p) const {
    if (periods_[p].start > now_) return std::nullopt;
    return ToMicros(std::min(periods_[p].end, now_));
  }

  // The cell of a fact with these dimension values (in the definition's order); nullptr when
  // a filter excludes it.
  Cell* At(size_t period, const Dims& dims) {
    for (const auto& [index, allowed] : filters_) {
      if (!allowed.contains(dims[index])) return nullptr;
    }
    // The lookup key is reused: its strings keep their buffers, so a lookup allocates nothing.
    key_.first = period;
    key_.second.resize(group_by_.size());
    for (size_t i = 0; i < group_by_.size(); ++i) {
      key_.second[i].assign(dims[group_by_[i]].data(), dims[group_by_[i]].size());
    }
    auto it = cells_.find(key_);
    if (it == cells_.end()) it = cells_.emplace(key_, Cell()).first;
    return &it->second;
  }

  // Drops the groups no fact is left in (a state KPI's group whose records all moved away);
  // an ungrouped query keeps its one row per period.
  void DropEmptyGroups() {
    if (group_by_.empty()) return;
    std::erase_if(cells_, [](const auto& entry) { return entry.second.facts == 0; });
  }

  const std::vector<size_t>& group_by() const { return group_by_; }
  const std::map<std::pair<size_t, std::vector<std::string>>, Cell>& cells() const {
    return cells_;
  }

 private:
  std::vector<Period> periods_;
  absl::Time now_;
  std::vector<std::pair<size_t, absl::flat_hash_set<std::string>>> filters_;
  std::vector<size_t> group_by_;
  std::map<std::pair<size_t, std::vector<std::string>>, Cell> cells_;
  std::pair<size_t, std::vector<std::string>> key_;
};

// --- measures -----------------------------------------------------------------------------

struct MeasureSpec {
  enum Kind {
    kCount,          // counts[a]
    kRatio,          // counts[a] / counts[b] x scale
    kQuantile,       // sketches[a] at percent
    kMoney,          // money[a] per currency
    kMoneyRatio,     // money[a] / money[b] per currency
    kMoneyPerCount,  // money[a] / money[b] per currency, rounded toward zero
    kMoneyScaled,    // money[a] / scale per currency, rounded toward zero
  };
  std::string name;
  Kind kind;
  std::string a;
  std::string b;
  int64_t scale = 1;
  int percent = 0;
};

int64_t Clamp(__int128 value) {
  if (value > std::numeric_limits<int64_t>::max()) return std::numeric_limits<int64_t>::max();
  if (value < std::numeric_limits<int64_t>::min()) return std::numeric_limits<int64_t>::min();
  return static_cast<int64_t>(value);
}

v1::Ratio MakeRatio(int64_t numerator, int64_t denominator, int64_t scale) {
  v1::Ratio ratio;
  ratio.set_numerator(numerator);
  ratio.set_denominator(denominator);
  if (denominator != 0) {
    ratio.set_value(static_cast<double>(numerator) * static_cast<double>(scale) /
                    static_cast<double>(denominator));
  }
  return ratio;
}

int64_t CountOf(const Cell& cell, const std::string& name) {
  auto it = cell.counts.find(name);
  return it == cell.counts.end() ? 0 : it->second;
}

// The currencies with a sum under `name`, in order.
std::vector<std::string> CurrenciesOf(const Cell& cell, const std::string& name) {
  std::vector<std::string> currencies;
  for (const auto& [key, sum] : cell.money) {
    if (key.first == name) currencies.push_back(key.second);
  }
  return currencies;
}

__int128 MoneyOf(const Cell& cell, const std::string& name, const std::string& currency) {
  auto it = cell.money.find({name, currency});
  return it == cell.money.end() ? 0 : it->second.sum;
}

void AddMeasures(const std::vector<MeasureSpec>& specs, const Cell& cell,
                 google::protobuf::RepeatedPtrField<v1::Measure>& out) {
  for (const MeasureSpec& spec : specs) {
    auto add = [&](const std::string& currency = "") -> v1::Measure& {
      v1::Measure& measure = *out.Add();
      measure.set_name(spec.name);
      measure.set_currency_code(currency);
      return measure;
    };
    switch (spec.kind) {
      case MeasureSpec::kCount:
        add().set_count(CountOf(cell, spec.a));
        break;
      case MeasureSpec::kRatio:
        *add().mutable_ratio() =
            MakeRatio(CountOf(cell, spec.a), CountOf(cell, spec.b), spec.scale);
        break;
      case MeasureSpec::kQuantile: {
        v1::Measure& measure = add();
        auto it = cell.sketches.find(spec.a);
        if (it == cell.sketches.end()) break;
        std::optional<double> value = it->second.Quantile(spec.percent);
        if (!value) break;
        v1::Quantile& quantile = *measure.mutable_quantile();
        quantile.set_value(*value);
        quantile.set_relative_error(it->second.relative_error());
        quantile.set_count(it->second.count());
        break;
      }
      case MeasureSpec::kMoney:
        for (const std::string& currency : CurrenciesOf(cell, spec.a)) {
          add(currency).set_amount_minor(Clamp(MoneyOf(cell, spec.a, currency)));
        }
        break;
      case MeasureSpec::kMoneyRatio:
        for (const std::string& currency : CurrenciesOf(cell, spec.b)) {
          *add(currency).mutable_ratio() =
              MakeRatio(Clamp(MoneyOf(cell, spec.a, currency)),
                        Clamp(MoneyOf(cell, spec.b, currency)), spec.scale);
        }
        break;
      case MeasureSpec::kMoneyPerCount:
        for (const std::string& currency : CurrenciesOf(cell, spec.b)) {
          const __int128 count = MoneyOf(cell, spec.b, currency);
          if (count == 0) continue;
          // C++ integer division truncates: rounded toward zero, once, on the exact sum.
          add(currency).set_amount_minor(Clamp(MoneyOf(cell, spec.a, currency) / count));
        }
        break;
      case MeasureSpec::kMoneyScaled:
        for (const std::string& currency : CurrenciesOf(cell, spec.a)) {
          add(currency).set_amount_minor(Clamp(MoneyOf(cell, spec.a, currency) / spec.scale));
        }
        break;
    }
  }
}

// --- labels and lookups -------------------------------------------------------------------

// The last point of a timeline strictly before `instant_us` (the state made of the facts that
// occurred before it); nullptr when none.
template <typename Points>
const auto* PointAt(const Points& points, int64_t instant_us) {
  auto it = std::lower_bound(points.begin(), points.end(), instant_us,
                             [](const auto& point, int64_t t) { return point.time_us() < t; });
  return it == points.begin() ? nullptr : &*(it - 1);
}

// Whether any time of `times` lies in [from, to).
bool AnyIn(const Times* times, int64_t from, int64_t to) {
  if (times == nullptr) return false;
  auto it = times->lower_bound(from);
  return it != times->end() && *it < to;
}

bool IsOpen(const pv::OpportunityPoint& point) {
  return point.status() == pipeline::v1::OPPORTUNITY_STATUS_OPEN;
}

// Calls fn(index of the period, instant) for every period evaluated at a point in time.
template <typename Fn>
void ForEachInstant(const Tally& tally, Fn fn) {
  for (size_t p = 0; p < tally.periods().size(); ++p) {
    if (std::optional<int64_t> instant = tally.EvaluationInstant(p)) fn(p, *instant);
  }
}

// --- the KPIs -----------------------------------------------------------------------------

using Evaluate = std::function<void(const Projection&, Tally&)>;

// Evaluates an event KPI of domain/facts.h: adds up the sums of the requested range.
Evaluate SumDays(const char* kpi) {
  return [name = std::string(kpi)](const Projection& projection, Tally& tally) {
    const Rollup* sums = projection.DailySums(name);
    if (sums == nullptr) return;
    auto add = [&](int64_t start, const DimValues& values, const Cell& sum) {
      const std::optional<size_t> p = tally.PeriodIndex(start);
      if (!p) return;
      if (Cell* cell = tally.At(*p, Dims(values.begin(), values.end()))) cell->Add(sum);
    };
    // A month is its monthly sums; an ISO week, which months do not divide, its days.
    if (tally.periods().front().kind == v1::PERIOD_KIND_MONTH) {
      sums->ForEachMonth(tally.range_start_us(), tally.range_end_us(), add);
    } else {
      sums->ForEachDay(tally.range_start_us(), tally.range_end_us(), add);
    }
  };
}

// Adds each record's state at `instant` (from its last point before it) to period p.
template <typename Views, typename StateOf>
void AddStatesAt(const Views& views, StateOf state_of, Tally& tally, size_t p, int64_t instant) {
  for (const auto& [id, view] : views) {
    const auto* point = PointAt(view.points(), instant);
    if (point == nullptr) continue;
    const std::optional<Fact> state = state_of(*point);
    if (!state) continue;
    if (Cell* cell = tally.At(p, Dims(state->dims.begin(), state->dims.end()))) {
      cell->Add(state->cell);
    }
  }
}

using EvaluateAt = std::function<void(const Projection&, Tally&, size_t period, int64_t instant)>;

// Evaluates a state KPI (domain/rollup.h) at each period's instant: the total of its changes
// minus those of the days from the instant on, walking the instants from the latest back so
// that every day is added once. An instant its days cannot decide is answered by `visit`.
Evaluate SumStates(const char* kpi, EvaluateAt visit) {
  return [name = std::string(kpi), visit](const Projection& projection, Tally& tally) {
    const Rollup* sums = projection.DailySums(name);
    if (sums == nullptr) return;  // no record was ever in a state
    std::vector<std::pair<int64_t, size_t>> instants;  // (instant, period), latest first
    ForEachInstant(tally, [&](size_t p, int64_t instant) { instants.emplace_back(instant, p); });
    std::sort(instants.rbegin(), instants.rend());
    Rollup::Sums later;  // the changes of the days from `later_from` on
    int64_t later_from = std::numeric_limits<int64_t>::max();
    for (const auto& [instant, p] : instants) {
      if (!sums->DaysDecide(instant)) {
        visit(projection, tally, p, instant);
        continue;
      }
      sums->ForEachSum(instant, later_from,
                       [&](Rollup::Group group, const Cell& sum) { later[group].Add(sum); });
      later_from = instant;
      auto add = [&](Rollup::Group group, const Cell& sum, int sign) {
        if (Cell* cell = tally.At(p, Dims(group->begin(), group->end()))) cell->Add(sum, sign);
      };
      for (const auto& [group, total] : sums->totals()) add(group, total, 1);
      for (const auto& [group, sum] : later) add(group, sum, -1);
    }
    tally.DropEmptyGroups();
  };
}

// The record visit of a state KPI at one instant.
template <typename Member, typename StateOf>
EvaluateAt VisitStates(Member views, StateOf state_of) {
  return [views, state_of](const Projection& projection, Tally& tally, size_t p, int64_t instant) {
    AddStatesAt((projection.*views)(), state_of, tally, p, instant);
  };
}

struct Kpi {
  v1::KpiDefinition definition;
  std::vector<MeasureSpec> measures;
  Evaluate evaluate;
};

Kpi Make(std::string name, v1::KpiCategory category, std::string rule,
         std::vector<std::string> dimensions, std::vector<MeasureSpec> measures,
         Evaluate evaluate) {
  Kpi kpi;
  kpi.definition.set_name(std::move(name));
  kpi.definition.set_category(category);
  kpi.definition.set_rule(std::move(rule));
  for (std::string& dimension : dimensions) kpi.definition.add_dimensions(std::move(dimension));
  for (const MeasureSpec& measure : measures) kpi.definition.add_measures(measure.name);
  kpi.definition.set_version(kDefinitionVersion);
  kpi.measures = std::move(measures);
  kpi.evaluate = std::move(evaluate);
  return kpi;
}

constexpr auto kBehaviour = v1::KPI_CATEGORY_BEHAVIOUR;
constexpr auto kBusiness = v1::KPI_CATEGORY_BUSINESS;
using M = MeasureSpec;

std::vector<Kpi> BehaviourKpis() {
  std::vector<Kpi> kpis;
  kpis.push_back(Make(
      "activities_logged", kBehaviour,
      "Count of activities (status DONE: logged as done, or scheduled and then completed) whose "
      "occurred_at is in P; by the activity's rep (owner), channel and type.",
      {"rep", "channel", "type"}, {{"count", M::kCount, "count"}},
      SumDays("activities_logged")));
  kpis.push_back(Make(
      "visit_report_compliance", kBehaviour,
      "Visits = DONE activities of type meeting or visit with occurred_at in P; compliant = the "
      "first event carrying its report text (body) was recorded at or before occurred_at + "
      "48 h. ratio = compliant / visits; by rep.",
      {"rep"},
      {{"compliant", M::kCount, "compliant"},
       {"visits", M::kCount, "visits"},
       {"ratio", M::kRatio, "compliant", "visits"}},
      SumDays("visit_report_compliance")));
  kpis.push_back(
      Make("logging_delay_seconds", kBehaviour,
           "Over DONE activities with occurred_at in P whose first recorded_at >= occurred_at: p50 "
           "and p90 of recorded_at - occurred_at in seconds (sketch, 1% relative error), and the "
           "ratio of those logged within 24 h; by rep.",
           {"rep"},
           {{"p50_seconds", M::kQuantile, "delay", "", 1, 50},
            {"p90_seconds", M::kQuantile, "delay", "", 1, 90},
            {"within_24h", M::kRatio, "within_24h", "logged"}},
           SumDays("logging_delay_seconds")));
  kpis.push_back(Make(
      "active_reps", kBehaviour,
      "Distinct user actors (token kind user; integrations excluded) with at least one event of "
      "any service whose recorded_at is in P.",
      {}, {{"count", M::kCount, "count"}}, [](const Projection& projection, Tally& tally) {
        for (size_t p = 0; p < tally.periods().size(); ++p) {
          const Period& period = tally.periods()[p];
          const auto* actors = projection.ActiveActors(period.kind, period.start);
          if (actors != nullptr) tally.At(p, {})->Count("count", actors->size());
        }
      }));
  kpis.push_back(Make(
      "contact_completeness_ratio", kBehaviour,
      "At min(end of P, now), over contacts live then (created, not archived, not merged away): "
      "those with at least one email, one phone, an owner and an account / all; by owner and "
      "region as of that instant.",
      {"owner", "region"},
      {{"complete", M::kCount, "complete"},
       {"contacts", M::kCount, "contacts"},
       {"ratio", M::kRatio, "complete", "contacts"}},
      SumStates("contact_completeness_ratio",
                VisitStates(&Projection::contacts, ContactState))));
  kpis.push_back(Make(
      "open_deal_coverage", kBehaviour,
      "At instant e = min(end of P, now), over opportunities open at e: those with at least one "
      "linked DONE activity whose occurred_at is in [e - 7 days, e) / all; by owner at e.",
      {"owner"},
      {{"covered", M::kCount, "covered"},
       {"open", M::kCount, "open"},
       {"ratio", M::kRatio, "covered", "open"}},
      [](const Projection& projection, Tally& tally) {
        ForEachInstant(tally, [&](size_t p, int64_t instant) {
          for (const auto& [id, opportunity] : projection.opportunities()) {
            const pv::OpportunityPoint* point = PointAt(opportunity.points(), instant);
            if (point == nullptr || !IsOpen(*point)) continue;
            Cell* cell = tally.At(p, {point->owner_id()});
            if (cell == nullptr) continue;
            cell->Count("open");
            if (AnyIn(projection.OpportunityActivityTimes(id), instant - 7 * kMicrosPerDay,
                      instant)) {
              cell->Count("covered");
            }
          }
        });
      }));
  kpis.push_back(Make(
      "stale_opportunities", kBehaviour,
      "At instant e = min(end of P, now): opportunities open at e with neither a linked DONE "
      "activity nor a stage entry (opening counts as entering its first stage) in [e - 14 days, "
      "e), or whose expected close date has ended by e (the whole day lies before e); by owner "
      "and stage at e.",
      {"owner", "stage"}, {{"count", M::kCount, "stale"}},
      [](const Projection& projection, Tally& tally) {
        ForEachInstant(tally, [&](size_t p, int64_t instant) {
          const int64_t from = instant - 14 * kMicrosPerDay;
          for (const auto& [id, opportunity] : projection.opportunities()) {
            const pv::OpportunityPoint* point = PointAt(opportunity.points(), instant);
            if (point == nullptr || !IsOpen(*point)) continue;
            bool recent = AnyIn(projection.OpportunityActivityTimes(id), from, instant);
            for (const pv::StageEntry& entry : opportunity.entries()) {
              recent = recent || (entry.time_us() >= from && entry.time_us() < instant);
            }
            const bool overdue = point->has_expected_close_day() &&
                                 (point->expected_close_day() + 1) * kMicrosPerDay <= instant;
            if (recent && !overdue) continue;
            if (Cell* cell = tally.At(p, {point->owner_id(), point->stage_id()})) {
              cell->Count("stale");
            }
          }
        });
      }));
  kpis.push_back(
      Make("tasks_on_time_ratio", kBehaviour,
           "Over tasks not cancelled with due time in P: those completed (business time of the "
           "completion) at or before the due time / all; by the assignee at the due time (the "
           "first assignee when the task was scheduled after it).",
           {"rep"},
           {{"on_time", M::kCount, "on_time"},
            {"due", M::kCount, "due"},
            {"ratio", M::kRatio, "on_time", "due"}},
           SumDays("tasks_on_time_ratio")));
  kpis.push_back(Make(
      "speed_to_lead_seconds", kBehaviour,
      "Over leads captured in P: first response = the earliest of its first linked DONE "
      "activity's occurred_at, its qualification (or conversion) and its disqualification; p50 "
      "and p90 of first response - captured in seconds (a response dated before the capture "
      "counts as 0; sketch, 1% relative error), and the count of leads without a response yet; "
      "by source and channel at capture.",
      {"source", "channel"},
      {{"p50_seconds", M::kQuantile, "response", "", 1, 50},
       {"p90_seconds", M::kQuantile, "response", "", 1, 90},
       {"responded", M::kCount, "responded"},
       {"unanswered", M::kCount, "unanswered"}},
      SumDays("speed_to_lead_seconds")));
  kpis.push_back(Make(
      "duplicate_rate", kBehaviour,
      "100 x (contacts merged away with the merge's occurred_at in P) / (contacts created in "
      "P); by creation channel (the channel of the creating request, else the contact's source "
      "channel) of the contact merged away (numerator) and of the created contact "
      "(denominator).",
      {"channel"},
      {{"merged", M::kCount, "merged"},
       {"created", M::kCount, "created"},
       {"per_100", M::kRatio, "merged", "created", 100}},
      SumDays("duplicate_rate")));
  return kpis;
}

std::vector<Kpi> BusinessKpis() {
  std::vector<Kpi> kpis;
  kpis.push_back(Make("leads_captured", kBusiness,
                      "Count of leads whose capture occurred_at is in P; by source and channel.",
                      {"source", "channel"}, {{"count", M::kCount, "count"}},
                      SumDays("leads_captured")));
  kpis.push_back(
      Make("lead_qualification_rate", kBusiness,
           "Over leads captured in P, by their status now: qualified (qualified or converted) / "
           "(qualified + disqualified); by source.",
           {"source"},
           {{"qualified", M::kCount, "qualified"},
            {"disqualified", M::kCount, "disqualified"},
            {"ratio", M::kRatio, "qualified", "decided"}},
           SumDays("lead_qualification_rate")));
  kpis.push_back(
      Make("lead_conversion_rate", kBusiness,
           "Over leads captured in P: converted (status now) / captured; by source.", {"source"},
           {{"converted", M::kCount, "converted"},
            {"captured", M::kCount, "captured"},
            {"ratio", M::kRatio, "converted", "captured"}},
           SumDays("lead_conversion_rate")));
  kpis.push_back(Make(
      "stage_conversion_rate", kBusiness,
      "Over entries into stage s (opened in s, or moved into s) with occurred_at in P: those "
      "after which the opportunity entered a stage later in the order of the pipeline revision "
      "of the entry, or was won / all entries; by pipeline and stage.",
      {"pipeline", "stage"},
      {{"progressed", M::kCount, "progressed"},
       {"entered", M::kCount, "entered"},
       {"ratio", M::kRatio, "progressed", "entered"}},
      SumDays("stage_conversion_rate")));
  kpis.push_back(Make(
      "win_rate", kBusiness,
      "Over opportunities whose latest close (won or lost, not reopened since) has occurred_at "
      "in P: won / (won + lost) by count, and by amount per currency; by owner and region at "
      "the close.",
      {"owner", "region"},
      {{"won", M::kCount, "won"},
       {"lost", M::kCount, "lost"},
       {"ratio", M::kRatio, "won", "closed"},
       {"amount_ratio", M::kMoneyRatio, "won_amount", "closed_amount"}},
      SumDays("win_rate")));
  kpis.push_back(Make(
      "won_revenue", kBusiness,
      "Sum of product-line amounts of opportunities won in P (latest close, not reopened "
      "since), per currency; an opportunity without lines counts its amount under product "
      "\"-\"; by product and region at the close.",
      {"product", "region"}, {{"amount", M::kMoney, "revenue"}},
      SumDays("won_revenue")));
  kpis.push_back(Make(
      "pipeline_value", kBusiness,
      "At min(end of P, now), over opportunities open then: sum of amounts, and sum of amount x "
      "stage probability (bps) / 10000 (exact sum, then rounded toward zero), per currency; by "
      "stage and owner at that instant.",
      {"stage", "owner"},
      {{"amount", M::kMoney, "amount"},
       {"weighted_amount", M::kMoneyScaled, "weighted", "", 10000}},
      SumStates("pipeline_value", VisitStates(&Projection::opportunities, OpportunityState))));
  kpis.push_back(Make(
      "sales_cycle_days", kBusiness,
      "Over opportunities won in P (latest close): p50 (exact nearest rank) of (won occurred_at "
      "- opened occurred_at) in whole days, rounded down; by region at the close.",
      {"region"}, {{"p50_days", M::kQuantile, "days", "", 1, 50}, {"won", M::kCount, "won"}},
      SumDays("sales_cycle_days")));
  kpis.push_back(Make(
      "average_deal_size", kBusiness,
      "Over opportunities won in P (latest close): sum of amounts / count, per currency, "
      "rounded toward zero once; by region at the close.",
      {"region"}, {{"amount", M::kMoneyPerCount, "won_amount", "won_count"}},
      SumDays("average_deal_size")));
  kpis.push_back(Make(
      "case_resolution_seconds", kBusiness,
      "Over cases whose latest resolution (not reopened since) has occurred_at in P: p50 and "
      "p90 of (resolution - first opening) in seconds (sketch, 1% relative error); reopen rate "
      "= reopenings with occurred_at in P / resolutions with occurred_at in P; by priority (at "
      "the fact) and channel.",
      {"priority", "channel"},
      {{"p50_seconds", M::kQuantile, "resolution", "", 1, 50},
       {"p90_seconds", M::kQuantile, "resolution", "", 1, 90},
       {"resolved", M::kCount, "resolved"},
       {"reopen_rate", M::kRatio, "reopenings", "resolutions"}},
      SumDays("case_resolution_seconds")));
  kpis.push_back(
      Make("open_cases", kBusiness,
           "Count of cases open at min(end of P, now) (opened or reopened, not resolved since); by "
           "priority then.",
           {"priority"}, {{"count", M::kCount, "count"}},
           SumStates("open_cases", VisitStates(&Projection::cases, CaseState))));
  return kpis;
}

const std::vector<Kpi>& Kpis() {
  static const auto* kpis = [] {
    auto* all = new std::vector<Kpi>(BehaviourKpis());
    for (Kpi& kpi : BusinessKpis()) all->push_back(std::move(kpi));
    return all;
  }();
  return *kpis;
}

}  // namespace

const std::vector<v1::KpiDefinition>& KpiDefinitions() {
  static const auto* definitions = [] {
    auto* all = new std::vector<v1::KpiDefinition>();
    for (const Kpi& kpi : Kpis()) all->push_back(kpi.definition);
    return all;
  }();
  return *definitions;
}

const v1::KpiDefinition* FindKpi(absl::string_view name) {
  for (const v1::KpiDefinition& definition : KpiDefinitions()) {
    if (definition.name() == name) return &definition;
  }
  return nullptr;
}

absl::StatusOr<v1::KpiResult> EvaluateKpi(const Projection& projection,
                                          const v1::QueryKpiRequest& request, absl::Time now) {
  const Kpi* kpi = nullptr;
  for (const Kpi& candidate : Kpis()) {
    if (candidate.definition.name() == request.kpi()) kpi = &candidate;
  }
  if (kpi == nullptr) {
    return InvalidField("kpi", request.kpi().empty()
                                   ? "must be set (ListKpiDefinitions names them)"
                                   : absl::StrCat("unknown KPI \"", request.kpi(), "\""));
  }
  for (const char* field : {"start_time", "end_time"}) {
    const bool start = absl::string_view(field) == "start_time";
    if (!(start ? request.has_start_time() : request.has_end_time())) {
      return InvalidField(field, "must be set");
    }
    const auto& time = start ? request.start_time() : request.end_time();
    if (!IsValidTimestamp(time)) return InvalidField(field, "not a valid time");
  }
  CRM_ASSIGN_OR_RETURN(std::vector<Period> periods,
                       PeriodsOverlapping(request.period_kind(), FromProto(request.start_time()),
                                          FromProto(request.end_time()), kMaxPeriods));
  Tally tally(std::move(periods), now);
  CRM_RETURN_IF_ERROR(tally.Configure(kpi->definition, request));
  kpi->evaluate(projection, tally);

  v1::KpiResult result;
  *result.mutable_definition() = kpi->definition;
  for (const auto& [key, cell] : tally.cells()) {
    v1::KpiRow& row = *result.add_rows();
    *row.mutable_period() = tally.periods()[key.first].ToProto();
    for (size_t i = 0; i < key.second.size(); ++i) {
      v1::Dimension& dimension = *row.add_dimensions();
      dimension.set_name(kpi->definition.dimensions(static_cast<int>(tally.group_by()[i])));
      dimension.set_value(key.second[i]);
    }
    AddMeasures(kpi->measures, cell, *row.mutable_measures());
  }
  return result;
}

}  // namespace crm::metrics
