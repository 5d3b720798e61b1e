#pragma once

// The opportunity aggregate: a deal moving through the stages of the pipeline revision it was
// opened in, to won or lost, and possibly reopened.
//   OPEN --move--> OPEN (any other stage, forward or back);  OPEN -> WON | LOST -> OPEN.
// Amounts are exact: each line is quantity x unit price in minor units, the opportunity's
// amount their sum; a figure that does not fit int64 is an error, never a wrap.

#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "crm/common/v1/common.pb.h"
#include "crm/eventsourcing/repository.h"
#include "domain/pipeline.h"
#include "google/protobuf/field_mask.pb.h"

namespace crm::pipeline {

using CurrentOpportunity = std::optional<eventsourcing::Versioned<Opportunity>>;

// A status as it appears in index keys ("won").
std::string StatusKey(v1::OpportunityStatus status);

struct OpportunityAggregate {
  using State = Opportunity;
  static constexpr char kStreamType[] = "opportunity";
  static void Evolve(Opportunity& state, const eventstore::EventEnvelope& event);
  // Listing filters: all, owner, pipeline, stage, region, status, expected close date.
  static std::vector<std::string> IndexKeys(const std::string& id, const Opportunity& state);
};

// "2026-03-31": sorts like the date. Empty for an unset date.
std::string DateKey(const crm::common::v1::Date& date);

// INVALID_ARGUMENT on `field` unless unset (all zero) or a real calendar date.
absl::Status ValidateDate(const crm::common::v1::Date& date, const std::string& field);

// The paths UpdateOpportunity may set.
const std::vector<std::string>& SettableOpportunityFields();

// Opens in `stage_id` of `pipeline` (its current revision; empty: the first stage). `fields`:
// display_name and currency_code required; owner_id, account_id, contact_id, region, lines,
// expected_close_date optional; `lead_id` when converted from a lead.
absl::StatusOr<eventsourcing::Events> DecideOpenOpportunity(
    const CurrentOpportunity& current, absl::Time occurred_at, const std::string& opportunity_id,
    const Opportunity& fields, const Pipeline& pipeline, const std::string& lead_id,
    const PipelineLimits& limits);

// Replaces the masked fields of an open opportunity; no events when nothing changes.
absl::StatusOr<eventsourcing::Events> DecideUpdateOpportunity(
    const CurrentOpportunity& current, const Opportunity& patch,
    const google::protobuf::FieldMask& mask, const PipelineLimits& limits);

// `revision`: the pipeline revision the opportunity was opened in.
absl::StatusOr<eventsourcing::Events> DecideMoveStage(const CurrentOpportunity& current,
                                                      absl::Time occurred_at,
                                                      const std::string& stage_id,
                                                      const Pipeline& revision);

absl::StatusOr<eventsourcing::Events> DecideCloseOpportunity(const CurrentOpportunity& current,
                                                             absl::Time occurred_at,
                                                             v1::OpportunityStatus outcome,
                                                             const std::string& reason,
                                                             const PipelineLimits& limits);

// Empty `stage_id`: the stage it closed in.
absl::StatusOr<eventsourcing::Events> DecideReopenOpportunity(const CurrentOpportunity& current,
                                                              absl::Time occurred_at,
                                                              const std::string& stage_id,
                                                              const Pipeline& revision);

}  // namespace crm::pipeline
