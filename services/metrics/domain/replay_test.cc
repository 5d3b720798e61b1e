// Replays: any delivery the consumer can see (partitions interleaved, duplicates from relay
// republication, a later version before an earlier one, a restart mid-stream, a rebuild from
// stored rows) gives the same views and the same answers to every KPI query.

#include <random>

#include "absl/strings/str_cat.h"
#include "crm/common/time.h"
#include "crm/pipeline/v1/pipeline.pb.h"
#include "domain/facts.h"
#include "domain/kpis.h"
#include "domain/projection.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "testing/events.h"

namespace crm::metrics {
namespace {

using events::v1::EventEnvelope;

const absl::Time kStart = absl::FromCivil(absl::CivilDay(2026, 3, 2), absl::UTCTimeZone());
const absl::Time kNow = kStart + absl::Hours(24 * 7 * 14);

std::vector<EventEnvelope> History() {
  static const auto* history =
      new std::vector<EventEnvelope>(testing::GenerateHistory(100'000, 7, kStart));
  return *history;
}

void ApplyAll(Projection& projection, const std::vector<EventEnvelope>& events) {
  for (const EventEnvelope& event : events) projection.Apply(event);
}

// Every KPI, weekly and monthly, grouped by all of its dimensions, as serialized answers.
std::vector<std::string> AllAnswers(const Projection& projection) {
  std::vector<std::string> answers;
  for (const v1::KpiDefinition& definition : KpiDefinitions()) {
    for (auto kind : {v1::PERIOD_KIND_ISO_WEEK, v1::PERIOD_KIND_MONTH}) {
      v1::QueryKpiRequest request;
      request.set_kpi(definition.name());
      request.set_period_kind(kind);
      *request.mutable_start_time() = ToProto(kStart - absl::Hours(24 * 14));
      *request.mutable_end_time() = ToProto(kNow);
      for (const std::string& dimension : definition.dimensions()) request.add_group_by(dimension);
      absl::StatusOr<v1::KpiResult> result = EvaluateKpi(projection, request, kNow);
      EXPECT_TRUE(result.ok()) << result.status();
      answers.push_back(result.ok() ? result->SerializeAsString() : "");
    }
  }
  return answers;
}

// Delivery as a consumer of 3 topics x 3 partitions may see it: partitions interleaved in
// random chunks, 3% of chunks delivered again later, and 1% of messages preceded by their
// successor in the partition (a relay rewind after a failed delivery).
std::vector<EventEnvelope> Deliver(const std::vector<EventEnvelope>& events, uint64_t seed) {
  std::map<std::string, std::vector<const EventEnvelope*>> partitions;
  for (const EventEnvelope& event : events) {
    partitions[absl::StrCat(testing::TopicOf(event), "/",
                            std::hash<std::string>()(event.stream_id()) % 3)]
        .push_back(&event);
  }
  std::vector<std::pair<std::vector<const EventEnvelope*>*, size_t>> queues;
  for (auto& [name, queue] : partitions) queues.emplace_back(&queue, 0);
  std::mt19937_64 dice(seed);
  std::vector<EventEnvelope> delivered;
  while (!queues.empty()) {
    const size_t q = dice() % queues.size();
    auto& [queue, next] = queues[q];
    const size_t chunk = std::min<size_t>(1 + dice() % 50, queue->size() - next);
    for (size_t i = next; i < next + chunk; ++i) {
      if (dice() % 100 == 0 && i + 1 < queue->size()) delivered.push_back(*(*queue)[i + 1]);
      delivered.push_back(*(*queue)[i]);
    }
    if (dice() % 100 < 3) {
      for (size_t i = next; i < next + chunk; ++i) delivered.push_back(*(*queue)[i]);
    }
    next += chunk;
    if (next == queue->size()) queues.erase(queues.begin() + static_cast<ptrdiff_t>(q));
  }
  return delivered;
}

TEST(ReplayTest, HistoryIsLargeAndVaried) {
  const std::vector<EventEnvelope> history = History();
  ASSERT_GE(history.size(), 100'000u);
  std::set<std::string> types;
  for (const EventEnvelope& event : history) types.insert(event.payload().type_url());
  EXPECT_GE(types.size(), 25u);  // nearly every event type of the three services
}

TEST(ReplayTest, InterleavedDuplicatedAndReorderedDeliveryGivesTheSameProjection) {
  Projection in_order;
  ApplyAll(in_order, History());
  const std::vector<EventEnvelope> delivered = Deliver(History(), 11);
  ASSERT_GT(delivered.size(), History().size());  // duplicates are really there

  Projection interleaved;
  int duplicates = 0;
  int gaps = 0;
  for (const EventEnvelope& event : delivered) {
    switch (interleaved.Apply(event)) {
      case Outcome::kDuplicate:
        ++duplicates;
        break;
      case Outcome::kGap:
        ++gaps;
        break;
      case Outcome::kApplied:
        break;
    }
  }
  EXPECT_GT(duplicates, 0);
  EXPECT_GT(gaps, 0);
  EXPECT_EQ(interleaved.AllRows(), in_order.AllRows());
  EXPECT_EQ(AllAnswers(interleaved), AllAnswers(in_order));
}

TEST(ReplayTest, RestoredFromRowsMidStreamThenContinuedGivesTheSameAnswers) {
  const std::vector<EventEnvelope> history = History();
  Projection incremental;
  ApplyAll(incremental, history);

  // Stop half-way: what was persisted is the changed rows taken after each batch of 1,000
  // (later rows win).
  Projection first_half;
  std::map<std::string, std::string> stored;
  for (size_t i = 0; i < history.size() / 2; ++i) {
    first_half.Apply(history[i]);
    if (i % 1000 == 999 || i + 1 == history.size() / 2) {
      std::set<std::string> keys;
      for (Row& row : first_half.TakeChangedRows()) {
        EXPECT_TRUE(keys.insert(row.key).second) << row.key << " taken twice in one batch";
        stored[row.key] = std::move(row.value);
      }
    }
  }
  // Taking the rows is the same as writing every state out.
  std::map<std::string, std::string> all;
  for (Row& row : first_half.AllRows()) all[row.key] = std::move(row.value);
  EXPECT_EQ(stored, all);
  EXPECT_THAT(first_half.TakeChangedRows(), ::testing::IsEmpty());

  Projection restarted;
  for (const auto& [key, value] : stored) ASSERT_TRUE(restarted.Restore(key, value).ok());
  // The consumer resumes a little before where it stopped: already-applied events repeat.
  for (size_t i = history.size() / 2 - 500; i < history.size(); ++i) {
    restarted.Apply(history[i]);
  }
  EXPECT_EQ(restarted.AllRows(), incremental.AllRows());
  EXPECT_EQ(AllAnswers(restarted), AllAnswers(incremental));
}

// A rebuild applies its events without following the KPI sums and files them all at once
// when it catches up: the answers must be those of following every event.
TEST(ReplayTest, SumsFiledAtOnceEqualSumsFollowedEventByEvent) {
  const std::vector<EventEnvelope> history = History();
  Projection followed;
  ApplyAll(followed, history);
  Projection filed;
  filed.KeepSums(false);
  ApplyAll(filed, Deliver(history, 11));
  filed.KeepSums(true);
  EXPECT_EQ(AllAnswers(filed), AllAnswers(followed));
}

TEST(ReplayTest, StoredRowsAreStreamViewMessages) {
  Projection projection;
  ApplyAll(projection, History());
  int views = 0;
  for (const Row& row : projection.AllRows()) {
    if (!row.key.starts_with("s/")) continue;
    pv::StreamView view;
    ASSERT_TRUE(view.ParseFromString(row.value)) << row.key;
    EXPECT_EQ(view.SerializeAsString(), row.value) << row.key;
    EXPECT_EQ(view.version(), projection.Version(row.key.substr(2))) << row.key;
    EXPECT_NE(view.kind_case(), pv::StreamView::KIND_NOT_SET) << row.key;
    ++views;
  }
  EXPECT_GT(views, 10'000);
}

TEST(ReplayTest, AnswersCoverEveryKpiWithData) {
  Projection projection;
  ApplyAll(projection, History());
  for (const v1::KpiDefinition& definition : KpiDefinitions()) {
    v1::QueryKpiRequest request;
    request.set_kpi(definition.name());
    request.set_period_kind(v1::PERIOD_KIND_MONTH);
    *request.mutable_start_time() = ToProto(kStart);
    *request.mutable_end_time() = ToProto(kNow);
    absl::StatusOr<v1::KpiResult> result = EvaluateKpi(projection, request, kNow);
    ASSERT_TRUE(result.ok()) << result.status();
    bool nonzero = false;
    for (const v1::KpiRow& row : result->rows()) {
      for (const v1::Measure& measure : row.measures()) {
        nonzero |= measure.count() > 0 || measure.ratio().denominator() > 0 ||
                   measure.quantile().count() > 0 || measure.amount_minor() != 0;
      }
    }
    EXPECT_TRUE(nonzero) << definition.name() << " has no data in the generated history";
  }
}

// The state KPIs, worked out record by record for one instant: each record's last point
// before it, as "<period>|<dims>" -> "<measures>" in the form Figures() gives an answer.
std::map<std::string, std::string> StatesByRecord(const Projection& projection,
                                                  const std::string& kpi, const Period& period,
                                                  int64_t instant) {
  std::map<std::string, std::map<std::string, __int128>> sums;
  auto last_before = [&](const auto& points) -> const auto* {
    decltype(&*points.begin()) found = nullptr;
    for (const auto& point : points) {
      if (point.time_us() < instant) found = &point;
    }
    return found;
  };
  const std::string at = absl::StrCat(absl::FormatTime(period.start), "|");
  if (kpi == "contact_completeness_ratio") {
    for (const auto& [id, contact] : projection.contacts()) {
      const auto* point = last_before(contact.points());
      if (point == nullptr || !point->live()) continue;
      auto& sum = sums[absl::StrCat(at, point->owner_id(), "/", point->region())];
      sum["contacts"] += 1;
      sum["complete"] += point->complete() ? 1 : 0;
    }
  } else if (kpi == "pipeline_value") {
    for (const auto& [id, opportunity] : projection.opportunities()) {
      const auto* point = last_before(opportunity.points());
      if (point == nullptr || point->status() != pipeline::v1::OPPORTUNITY_STATUS_OPEN) continue;
      auto& sum = sums[absl::StrCat(at, point->stage_id(), "/", point->owner_id())];
      sum[absl::StrCat("amount ", point->currency_code())] += point->amount_minor();
      sum[absl::StrCat("weighted ", point->currency_code())] +=
          static_cast<__int128>(point->amount_minor()) * point->probability_bps();
    }
  } else {
    for (const auto& [id, record] : projection.cases()) {
      const auto* point = last_before(record.points());
      if (point == nullptr || !point->open()) continue;
      sums[absl::StrCat(at, PriorityLabel(point->priority()))]["count"] += 1;
    }
  }
  std::map<std::string, std::string> figures;
  for (auto& [key, measures] : sums) {
    for (auto& [name, value] : measures) {
      if (name.starts_with("weighted")) value /= 10000;  // rounded toward zero once
    }
    for (const auto& [name, value] : measures) {
      absl::StrAppend(&figures[key], name, "=", static_cast<int64_t>(value), " ");
    }
  }
  return figures;
}

// An answer in the form of StatesByRecord.
std::map<std::string, std::string> Figures(const v1::KpiResult& result) {
  std::map<std::string, std::string> figures;
  for (const v1::KpiRow& row : result.rows()) {
    std::string key = absl::StrCat(absl::FormatTime(FromProto(row.period().start_time())), "|");
    for (int i = 0; i < row.dimensions_size(); ++i) {
      absl::StrAppend(&key, i > 0 ? "/" : "", row.dimensions(i).value());
    }
    std::map<std::string, int64_t> measures;
    for (const v1::Measure& measure : row.measures()) {
      std::string name = measure.name();
      if (name == "weighted_amount") name = "weighted";
      if (!measure.currency_code().empty()) absl::StrAppend(&name, " ", measure.currency_code());
      if (name == "ratio") continue;  // complete / contacts, both listed
      measures[name] = measure.has_ratio() ? 0 : measure.count() + measure.amount_minor();
    }
    for (const auto& [name, value] : measures) {
      absl::StrAppend(&figures[key], name, "=", value, " ");
    }
  }
  return figures;
}

// The state KPIs add up their changes per day (domain/rollup.h); they must agree with the
// records at every instant: week ends (whole days), and "now" in the middle of a day, both
// when a change is dated later that day (the days cannot decide) and when none is.
TEST(ReplayTest, StateKpisAgreeWithTheRecordsAtEveryInstant) {
  Projection projection;
  ApplyAll(projection, History());
  const Rollup* completeness = projection.DailySums("contact_completeness_ratio");
  ASSERT_NE(completeness, nullptr);
  std::vector<absl::Time> nows = {kNow, kNow + absl::Hours(7) + absl::Minutes(13)};
  int undecided = 0;
  for (int day = 3; day < 80; day += 7) {
    for (double hour : {0.0, 9.5, 13.25, 17.75}) {
      const absl::Time now = kStart + absl::Hours(24 * day) + absl::Seconds(hour * 3600);
      nows.push_back(now);
      undecided += completeness->DaysDecide(ToMicros(now)) ? 0 : 1;
    }
  }
  EXPECT_GT(undecided, 10);  // both paths are taken
  EXPECT_LT(undecided, static_cast<int>(nows.size()) - 10);
  for (const char* kpi : {"contact_completeness_ratio", "pipeline_value", "open_cases"}) {
    const v1::KpiDefinition& definition = *FindKpi(kpi);
    size_t rows = 0;
    for (absl::Time now : nows) {
      v1::QueryKpiRequest request;
      request.set_kpi(kpi);
      request.set_period_kind(v1::PERIOD_KIND_ISO_WEEK);
      *request.mutable_start_time() = ToProto(kStart - absl::Hours(24 * 7));
      *request.mutable_end_time() = ToProto(now);
      for (const std::string& dimension : definition.dimensions()) request.add_group_by(dimension);
      absl::StatusOr<v1::KpiResult> result = EvaluateKpi(projection, request, now);
      ASSERT_TRUE(result.ok()) << result.status();
      std::map<std::string, std::string> expected;
      absl::StatusOr<std::vector<Period>> periods =
          PeriodsOverlapping(v1::PERIOD_KIND_ISO_WEEK, kStart - absl::Hours(24 * 7), now, 400);
      ASSERT_TRUE(periods.ok());
      for (const Period& period : *periods) {
        if (period.start > now) continue;
        expected.merge(
            StatesByRecord(projection, kpi, period, ToMicros(std::min(period.end, now))));
      }
      rows += expected.size();
      EXPECT_EQ(Figures(*result), expected) << kpi << " at " << absl::FormatTime(now);
    }
    EXPECT_GT(rows, 500u) << kpi;  // the figures are not trivially empty
  }
}

}  // namespace
}  // namespace crm::metrics
