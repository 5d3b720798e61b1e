#pragma once

// The projection of the three topics that every KPI is computed from: one view per source
// stream (what the KPIs need of a contact, lead, opportunity, pipeline, activity, task or
// case), the users active per period, in-memory indexes over the views, and the KPI sums of
// the views' facts (domain/facts.h, domain/rollup.h). Pure: Apply() evolves it,
// TakeChangedRows() returns the storage rows changed since the last call (one per key, so a
// stream touched many times in a batch is written once), Restore() loads a row back, and the
// caller persists rows and Kafka offsets in one write batch. The sums are not stored: they
// follow from the views.
//
// Order independence: an event is applied only as the next version of its stream (duplicates
// and gaps are skipped), so any interleaving of the partitions yields the same views. A fact
// that needs another stream (a lead's first activity, a pipeline's stage order) is filed again
// whenever that stream changes, so the sums do not depend on which arrived first either.

#include <climits>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/container/btree_map.h"
#include "absl/container/btree_set.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "crm/events/v1/envelope.pb.h"
#include "crm/metrics/projection/v1/views.pb.h"
#include "domain/facts.h"
#include "domain/periods.h"
#include "domain/rollup.h"

namespace crm::metrics {

namespace pv = crm::metrics::projection::v1;

// A storage row the projection changed.
struct Row {
  std::string key;
  std::string value;
  friend bool operator==(const Row&, const Row&) = default;
};

enum class Outcome { kApplied, kDuplicate, kGap };

// The stream types of the topics the projection reads ("<type>/<id>"); it tracks the version
// of every stream of these, so a caller can wait for any of them.
inline constexpr const char* kStreamTypes[] = {
    "contact", "account", "lead", "opportunity", "pipeline", "activity", "task", "case"};

using Times = absl::btree_multiset<int64_t>;

class Projection {
 public:
  // Applies the event when it is the next version of its stream.
  Outcome Apply(const events::v1::EventEnvelope& event);
  // The rows changed by Apply() since the last call, each with its latest value.
  std::vector<Row> TakeChangedRows();
  // One row of TakeChangedRows() (any order); INTERNAL when it cannot be read.
  absl::Status Restore(absl::string_view key, absl::string_view value);
  // Every row, sorted by key: what Restore() needs to rebuild this projection.
  std::vector<Row> AllRows() const;

  // Whether Apply() and Restore() keep the KPI sums up to date (the default). A projection
  // nobody queries yet (a rebuild, a restore) turns them off and files every view's facts
  // once when it turns them back on (on two threads): far cheaper than following each
  // event's changes.
  void KeepSums(bool keep);

  // The last applied version of a stream ("contact/<id>"), 0 when none.
  int64_t Version(const std::string& stream) const;
  // recorded_at of the newest applied event.
  absl::Time applied_through() const { return FromMicros(applied_through_us_); }

  // Views by record id (the kinds whose KPIs visit records).
  const absl::flat_hash_map<std::string, pv::ContactView>& contacts() const { return contacts_; }
  const absl::flat_hash_map<std::string, pv::OpportunityView>& opportunities() const {
    return opportunities_;
  }
  const absl::flat_hash_map<std::string, pv::CaseView>& cases() const { return cases_; }

  // Indexes.
  // occurred_at of the DONE activities linked to an opportunity; nullptr when none.
  const Times* OpportunityActivityTimes(const std::string& opportunity_id) const;
  // The daily and monthly sums of a KPI of domain/facts.h; nullptr when it has no facts yet.
  const Rollup* DailySums(const std::string& kpi) const;
  // The user actors with a write recorded in the period starting at `start`.
  const absl::btree_set<std::string>* ActiveActors(PeriodKind kind, absl::Time start) const;

 private:
  // Calls fn(views) with the map of views of `kind` (const or not, as `self` is); false when
  // the kind is unknown.
  template <typename Self, typename Fn>
  static bool Visit(Self& self, pv::StreamView::KindCase kind, Fn&& fn);
  // occurred_at of the DONE activities linked to a lead (its speed to lead); nullptr when none.
  const Times* LeadActivityTimes(const std::string& lead_id) const;
  // Adds a view's entries to (or removes them from) the indexes; most kinds have none.
  void Index(const std::string& id, const pv::ActivityView& activity, bool add);
  template <typename View>
  void Index(const std::string&, const View&, bool) {}
  // The facts of a view (facts.h); of a timeline, only its changes from point `from_point` on.
  template <typename View>
  KpiFacts FactsOf(const std::string& id, const View& view, int from_point) const;
  // Runs `change` (of a pipeline's view) and moves the stage facts of the opportunities that
  // entered its stages from their old stage order to the new one.
  template <typename Change>
  void RerollStages(const std::string& pipeline_id, Change change);
  // The stored form of a stream's view (StreamView bytes).
  std::string StoredView(const std::string& stream) const;
  void MarkActive(const std::string& actor, absl::Time recorded_at);
  using KpiSums = absl::flat_hash_map<std::string, Rollup>;  // by KPI
  // Adds a fact to (or takes it from) its KPI's sums.
  static void Roll(KpiSums& sums, const char* kpi, const Fact& fact, int sign);
  // Moves the daily sums from a view's facts `before` to its facts `after`, touching only
  // the facts that differ (a new point changes one or two of a timeline's many).
  void Reroll(const KpiFacts& before, const KpiFacts& after);

  absl::flat_hash_map<std::string, int64_t> versions_;
  absl::flat_hash_map<std::string, pv::ContactView> contacts_;
  absl::flat_hash_map<std::string, pv::LeadView> leads_;
  absl::flat_hash_map<std::string, pv::OpportunityView> opportunities_;
  absl::flat_hash_map<std::string, pv::PipelineView> pipelines_;
  absl::flat_hash_map<std::string, pv::ActivityView> activities_;
  absl::flat_hash_map<std::string, pv::TaskView> tasks_;
  absl::flat_hash_map<std::string, pv::CaseView> cases_;

  absl::flat_hash_map<std::string, Times> lead_activity_times_;
  absl::flat_hash_map<std::string, Times> opportunity_activity_times_;
  absl::btree_map<std::pair<int, int64_t>, absl::btree_set<std::string>> active_;
  KpiSums daily_sums_;
  bool keep_sums_ = true;
  int64_t applied_through_us_ = 0;
  // The day (since the epoch) MarkActive() saw last, and its week and month starts.
  int64_t active_day_ = INT64_MIN;
  int64_t active_week_us_ = 0;
  int64_t active_month_us_ = 0;

  // Changed since the last TakeChangedRows().
  absl::flat_hash_set<std::string> changed_streams_;
  std::vector<Row> changed_rows_;
  bool applied_through_changed_ = false;
};

}  // namespace crm::metrics
