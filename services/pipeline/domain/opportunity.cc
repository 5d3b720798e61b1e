#include "domain/opportunity.h"

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/civil_time.h"
#include "crm/common/field_checker.h"
#include "crm/common/ids.h"
#include "crm/common/money.h"
#include "crm/common/time.h"
#include "crm/eventsourcing/full_state.h"
#include "crm/pipeline/v1/events.pb.h"
#include "google/protobuf/util/field_mask_util.h"
#include "google/protobuf/util/message_differencer.h"

namespace crm::pipeline {
namespace {

using crm::common::v1::Date;

absl::Status NotOpen(const Opportunity& opportunity, const std::string& what) {
  return absl::FailedPreconditionError(absl::StrCat("opportunity ", opportunity.opportunity_id(),
                                                    " is ", StatusKey(opportunity.status()),
                                                    ": only open opportunities can ", what));
}

// Validates and normalises the `paths` of `input`; derives line and total amounts. Every
// offending field is named; sizes over a limit are RESOURCE_EXHAUSTED. A required field is
// checked where it is set (opening sets every field), so a stored opportunity stays complete
// and one answer names a missing field beside the malformed ones.
absl::StatusOr<Opportunity> Normalize(const Opportunity& input,
                                      const std::vector<std::string>& paths,
                                      const PipelineLimits& limits) {
  FieldChecker check;
  auto text = [&](const std::string& path, const std::string& value, size_t max) {
    return check.Text("opportunity." + path, value, max);
  };
  auto id = [&](const std::string& path, const std::string& value) {
    return check.Id("opportunity." + path, value);
  };
  Opportunity out;
  for (const std::string& path : paths) {
    if (path == "display_name") {
      out.set_display_name(text(path, input.display_name(), limits.max_name));
      if (out.display_name().empty()) check.Invalid("opportunity.display_name", "is required");
    } else if (path == "owner_id") {
      out.set_owner_id(text(path, input.owner_id(), limits.max_text));
    } else if (path == "account_id") {
      out.set_account_id(id(path, input.account_id()));
    } else if (path == "contact_id") {
      out.set_contact_id(id(path, input.contact_id()));
    } else if (path == "region") {
      out.set_region(text(path, input.region(), limits.max_text));
    } else if (path == "currency_code") {
      out.set_currency_code(
          absl::AsciiStrToUpper(text(path, input.currency_code(), limits.max_text)));
      if (out.currency_code().empty()) {
        check.Invalid("opportunity.currency_code", "is required (ISO 4217, e.g. EUR)");
      } else if (!IsCurrencyCode(out.currency_code())) {
        check.Invalid("opportunity.currency_code", "must be an ISO 4217 code like EUR");
      }
    } else if (path == "expected_close_date") {
      check.Add(ValidateDate(input.expected_close_date(), "opportunity.expected_close_date"));
      if (input.has_expected_close_date() && !DateKey(input.expected_close_date()).empty()) {
        *out.mutable_expected_close_date() = input.expected_close_date();
      }
    } else if (path == "lines") {
      if (input.lines_size() > limits.max_lines) {
        check.TooLarge("opportunity.lines", absl::StrCat("at most ", limits.max_lines));
      }
      int64_t total = 0;
      bool total_fits = true;
      for (int i = 0; i < input.lines_size(); ++i) {
        const std::string field = absl::StrCat("opportunity.lines[", i, "]");
        v1::ProductLine line = input.lines(i);
        line.set_product_id(std::string(absl::StripAsciiWhitespace(line.product_id())));
        check.Add(ValidateId(line.product_id(), field + ".product_id"));
        if (line.quantity() < 1) check.Invalid(field + ".quantity", "must be at least 1");
        if (line.unit_price_minor() < 0) {
          check.Invalid(field + ".unit_price_minor", "must not be negative");
        }
        const std::optional<int64_t> amount =
            CheckedMultiply(line.quantity(), line.unit_price_minor());
        if (!amount) {
          check.Invalid(field,
                        "quantity x unit_price_minor is larger than the largest amount (2^63-1)");
          total_fits = false;
        } else {
          line.set_amount_minor(*amount);
          const std::optional<int64_t> sum = CheckedAdd(total, *amount);
          if (!sum) total_fits = false;
          total = sum.value_or(0);
        }
        *out.add_lines() = std::move(line);
      }
      if (!total_fits && !check.HasInvalid()) {
        check.Invalid("opportunity.lines",
                      "the lines' total is larger than the largest amount (2^63-1)");
      }
      out.set_amount_minor(total);
    } else {
      check.Invalid("opportunity." + path, "is not a field that can be set");
    }
  }
  if (absl::Status faults = check.Result(); !faults.ok()) {
    return faults;
  }
  return out;
}

absl::Status UnknownStage(const Pipeline& revision, const std::string& stage_id,
                          const std::string& field) {
  return InvalidField(
      field, absl::StrCat("'", stage_id, "' is not a stage of pipeline ", revision.pipeline_id(),
                          " revision ", revision.revision()));
}

template <typename Event>
std::unique_ptr<Event> EventWith(Opportunity opportunity) {
  auto event = std::make_unique<Event>();
  *event->mutable_opportunity() = std::move(opportunity);
  return event;
}

}  // namespace

std::string StatusKey(v1::OpportunityStatus status) {
  return absl::AsciiStrToLower(
      v1::OpportunityStatus_Name(status).substr(strlen("OPPORTUNITY_STATUS_")));
}

void OpportunityAggregate::Evolve(Opportunity& state, const eventstore::EventEnvelope& event) {
  eventsourcing::EvolveFromFullState<v1::OpportunityOpened, v1::OpportunityUpdated,
                                     v1::OpportunityStageMoved, v1::OpportunityWon,
                                     v1::OpportunityLost, v1::OpportunityReopened>(
      state, event, [](const auto& e) { return e.opportunity(); });
}

std::vector<std::string> OpportunityAggregate::IndexKeys(const std::string& id,
                                                         const Opportunity& state) {
  std::vector<std::string> keys = {
      absl::StrCat("opportunity/all/", id),
      absl::StrCat("opportunity/pipeline/", state.pipeline_id(), "/", id),
      absl::StrCat("opportunity/stage/", state.stage_id(), "/", id),
      absl::StrCat("opportunity/status/", StatusKey(state.status()), "/", id)};
  if (!state.owner_id().empty()) {
    keys.push_back(absl::StrCat("opportunity/owner/", state.owner_id(), "/", id));
  }
  if (!state.region().empty()) {
    keys.push_back(absl::StrCat("opportunity/region/", state.region(), "/", id));
  }
  if (const std::string date = DateKey(state.expected_close_date()); !date.empty()) {
    keys.push_back(absl::StrCat("opportunity/close/", date, "/", id));
  }
  return keys;
}

std::string DateKey(const Date& date) {
  if (date.year() == 0 && date.month() == 0 && date.day() == 0) return "";
  return absl::StrFormat("%04d-%02d-%02d", date.year(), date.month(), date.day());
}

absl::Status ValidateDate(const Date& date, const std::string& field) {
  if (date.year() == 0 && date.month() == 0 && date.day() == 0) return absl::OkStatus();
  const absl::CivilDay day(date.year(), date.month(), date.day());
  if (date.year() < 1 || date.year() > 9999 || day.year() != date.year() ||
      day.month() != date.month() || day.day() != date.day()) {
    return InvalidField(field, "not a calendar date (year 1..9999, month 1..12, a day of it)");
  }
  return absl::OkStatus();
}

const std::vector<std::string>& SettableOpportunityFields() {
  static const auto* fields = new std::vector<std::string>{
      "display_name", "owner_id",      "account_id", "contact_id",
      "region",       "currency_code", "lines",      "expected_close_date"};
  return *fields;
}

absl::StatusOr<eventsourcing::Events> DecideOpenOpportunity(
    const CurrentOpportunity& current, absl::Time occurred_at, const std::string& opportunity_id,
    const Opportunity& fields, const Pipeline& pipeline, const std::string& lead_id,
    const PipelineLimits& limits) {
  if (absl::Status id = ValidateId(opportunity_id, "opportunity_id"); !id.ok()) return id;
  if (current) {
    return absl::AlreadyExistsError(absl::StrCat("opportunity ", opportunity_id, " exists"));
  }
  absl::StatusOr<Opportunity> opportunity = Normalize(fields, SettableOpportunityFields(), limits);
  if (!opportunity.ok()) return opportunity.status();
  const std::string stage_id = fields.stage_id().empty() && pipeline.stages_size() > 0
                                   ? pipeline.stages(0).stage_id()
                                   : fields.stage_id();
  const Stage* stage = FindStage(pipeline, stage_id);
  if (stage == nullptr) return UnknownStage(pipeline, stage_id, "opportunity.stage_id");

  opportunity->set_name(absl::StrCat("opportunities/", opportunity_id));
  opportunity->set_opportunity_id(opportunity_id);
  opportunity->set_lead_id(lead_id);
  opportunity->set_pipeline_id(pipeline.pipeline_id());
  opportunity->set_pipeline_revision(pipeline.revision());
  opportunity->set_stage_id(stage->stage_id());
  opportunity->set_stage_probability_bps(stage->probability_bps());
  opportunity->set_status(v1::OPPORTUNITY_STATUS_OPEN);
  *opportunity->mutable_stage_enter_time() = ToProto(occurred_at);
  *opportunity->mutable_create_time() = ToProto(occurred_at);
  *opportunity->mutable_update_time() = ToProto(occurred_at);
  return eventsourcing::Emit(EventWith<v1::OpportunityOpened>(*std::move(opportunity)));
}

absl::StatusOr<eventsourcing::Events> DecideUpdateOpportunity(
    const CurrentOpportunity& current, const Opportunity& patch,
    const google::protobuf::FieldMask& mask, const PipelineLimits& limits) {
  using google::protobuf::util::FieldMaskUtil;
  if (mask.paths().empty()) return InvalidField("update_mask", "name at least one field to update");
  const std::vector<std::string> paths(mask.paths().begin(), mask.paths().end());
  absl::StatusOr<Opportunity> normalized = Normalize(patch, paths, limits);
  if (!normalized.ok()) return normalized.status();
  if (!current) return absl::NotFoundError("opportunity not found");
  if (current->state.status() != v1::OPPORTUNITY_STATUS_OPEN) {
    return NotOpen(current->state, "be updated (reopen it first)");
  }
  FieldMaskUtil::MergeOptions replace;
  replace.set_replace_message_fields(true);
  replace.set_replace_repeated_fields(true);
  Opportunity after = current->state;
  FieldMaskUtil::MergeMessageTo(*normalized, mask, replace, &after);
  if (std::find(paths.begin(), paths.end(), "lines") != paths.end()) {
    after.set_amount_minor(normalized->amount_minor());
  }
  if (google::protobuf::util::MessageDifferencer::Equals(after, current->state)) {
    return eventsourcing::Events();
  }
  auto updated = EventWith<v1::OpportunityUpdated>(std::move(after));
  for (const std::string& path : paths) updated->add_changed_fields(path);
  return eventsourcing::Emit(std::move(updated));
}

absl::StatusOr<eventsourcing::Events> DecideMoveStage(const CurrentOpportunity& current,
                                                      absl::Time occurred_at,
                                                      const std::string& stage_id,
                                                      const Pipeline& revision) {
  if (!current) return absl::NotFoundError("opportunity not found");
  const Stage* stage = FindStage(revision, stage_id);
  if (stage == nullptr) return UnknownStage(revision, stage_id, "stage_id");
  const Opportunity& before = current->state;
  if (before.status() != v1::OPPORTUNITY_STATUS_OPEN) return NotOpen(before, "change stage");
  if (before.stage_id() == stage_id) {
    return absl::FailedPreconditionError(
        absl::StrCat("opportunity ", before.opportunity_id(), " is already in stage ", stage_id));
  }
  Opportunity after = before;
  after.set_stage_id(stage->stage_id());
  after.set_stage_probability_bps(stage->probability_bps());
  *after.mutable_stage_enter_time() = ToProto(occurred_at);
  auto moved = EventWith<v1::OpportunityStageMoved>(std::move(after));
  moved->set_from_stage_id(before.stage_id());
  moved->set_from_probability_bps(before.stage_probability_bps());
  return eventsourcing::Emit(std::move(moved));
}

absl::StatusOr<eventsourcing::Events> DecideCloseOpportunity(const CurrentOpportunity& current,
                                                             absl::Time occurred_at,
                                                             v1::OpportunityStatus outcome,
                                                             const std::string& reason,
                                                             const PipelineLimits& limits) {
  const std::string why(absl::StripAsciiWhitespace(reason));
  if (outcome != v1::OPPORTUNITY_STATUS_WON && outcome != v1::OPPORTUNITY_STATUS_LOST) {
    return InvalidField("outcome", "must be OPPORTUNITY_STATUS_WON or OPPORTUNITY_STATUS_LOST");
  }
  if (why.size() > limits.max_reason) {
    return WithViolations(absl::ResourceExhaustedError("reason: too large"),
                          {{"reason", absl::StrCat("longer than ", limits.max_reason, " bytes")}});
  }
  if (outcome == v1::OPPORTUNITY_STATUS_LOST && why.empty()) {
    return InvalidField("reason", "say why the opportunity was lost");
  }
  if (!current) return absl::NotFoundError("opportunity not found");
  if (current->state.status() != v1::OPPORTUNITY_STATUS_OPEN) {
    return NotOpen(current->state, "be closed");
  }
  Opportunity after = current->state;
  after.set_status(outcome);
  after.set_close_reason(why);
  *after.mutable_close_time() = ToProto(occurred_at);
  if (outcome == v1::OPPORTUNITY_STATUS_WON) {
    return eventsourcing::Emit(EventWith<v1::OpportunityWon>(std::move(after)));
  }
  return eventsourcing::Emit(EventWith<v1::OpportunityLost>(std::move(after)));
}

absl::StatusOr<eventsourcing::Events> DecideReopenOpportunity(const CurrentOpportunity& current,
                                                              absl::Time occurred_at,
                                                              const std::string& stage_id,
                                                              const Pipeline& revision) {
  if (!current) return absl::NotFoundError("opportunity not found");
  const Opportunity& before = current->state;
  if (before.status() == v1::OPPORTUNITY_STATUS_OPEN) {
    return absl::FailedPreconditionError(absl::StrCat(
        "opportunity ", before.opportunity_id(), " is open: only a closed one can be reopened"));
  }
  const std::string target = stage_id.empty() ? before.stage_id() : stage_id;
  const Stage* stage = FindStage(revision, target);
  if (stage == nullptr) return UnknownStage(revision, target, "stage_id");
  Opportunity after = before;
  after.set_status(v1::OPPORTUNITY_STATUS_OPEN);
  after.clear_close_reason();
  after.clear_close_time();
  if (after.stage_id() != stage->stage_id())
    *after.mutable_stage_enter_time() = ToProto(occurred_at);
  after.set_stage_id(stage->stage_id());
  after.set_stage_probability_bps(stage->probability_bps());
  auto reopened = EventWith<v1::OpportunityReopened>(std::move(after));
  reopened->set_previous_status(before.status());
  return eventsourcing::Emit(std::move(reopened));
}

}  // namespace crm::pipeline
