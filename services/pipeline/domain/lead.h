#pragma once

// The lead aggregate: captured from a source, qualified or disqualified, converted once.
//   NEW -> QUALIFIED | DISQUALIFIED;  QUALIFIED <-> DISQUALIFIED;  NEW | QUALIFIED -> CONVERTED.

#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "crm/eventsourcing/repository.h"
#include "domain/pipeline.h"

namespace crm::pipeline {

using CurrentLead = std::optional<eventsourcing::Versioned<Lead>>;

// A status as it appears in index keys ("qualified").
std::string StatusKey(v1::LeadStatus status);

struct LeadAggregate {
  using State = Lead;
  static constexpr char kStreamType[] = "lead";
  static void Evolve(Lead& state, const eventstore::EventEnvelope& event);
  // Listing filters: all, source (+status), status, owner, channel.
  static std::vector<std::string> IndexKeys(const std::string& id, const Lead& state);
};

// `fields`: source (required), channel, campaign, person, company, owner_id, region. Someone
// must be named: a person's name, email or phone, or a company.
absl::StatusOr<eventsourcing::Events> DecideCaptureLead(const CurrentLead& current,
                                                        absl::Time occurred_at,
                                                        const std::string& lead_id,
                                                        const Lead& fields,
                                                        const PipelineLimits& limits);
absl::StatusOr<eventsourcing::Events> DecideQualifyLead(const CurrentLead& current);
absl::StatusOr<eventsourcing::Events> DecideDisqualifyLead(const CurrentLead& current,
                                                           const std::string& reason,
                                                           const PipelineLimits& limits);

// OK when the lead may be converted (NEW or QUALIFIED); NOT_FOUND or FAILED_PRECONDITION.
absl::Status CheckConvertible(const CurrentLead& current);

// Records what the lead became. Converting again into the same opportunity changes nothing
// (a retried conversion completes), into another one is FAILED_PRECONDITION.
absl::StatusOr<eventsourcing::Events> DecideConvertLead(const CurrentLead& current,
                                                        const std::string& contact_id,
                                                        const std::string& account_id,
                                                        const std::string& opportunity_id);

}  // namespace crm::pipeline
