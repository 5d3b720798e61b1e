#include "domain/lead.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "crm/common/field_checker.h"
#include "crm/common/ids.h"
#include "crm/common/time.h"
#include "crm/eventsourcing/full_state.h"
#include "crm/pipeline/v1/events.pb.h"

namespace crm::pipeline {
namespace {

using v1::LeadStatus;

// The pipeline's size limits on a FieldChecker.
class Checker : public FieldChecker {
 public:
  explicit Checker(const PipelineLimits& limits) : limits_(limits) {}

  std::string Name(const std::string& field, const std::string& value) {
    return Text(field, value, limits_.max_name);
  }
  std::string Short(const std::string& field, const std::string& value) {
    return Text(field, value, limits_.max_text);
  }

 private:
  const PipelineLimits& limits_;
};

bool IsEmail(const std::string& email) {
  const size_t at = email.find('@');
  return at != std::string::npos && at > 0 && at + 1 < email.size() &&
         email.find('@', at + 1) == std::string::npos &&
         std::none_of(email.begin(), email.end(),
                      [](char c) { return absl::ascii_isspace(static_cast<unsigned char>(c)); });
}

// Digits and a leading '+' kept; separators people type dropped; anything else is an error.
std::optional<std::string> NormalizePhone(const std::string& phone) {
  std::string out;
  for (char c : phone) {
    if (absl::ascii_isdigit(static_cast<unsigned char>(c)) || (c == '+' && out.empty())) {
      out.push_back(c);
    } else if (c != ' ' && c != '-' && c != '(' && c != ')' && c != '.') {
      return std::nullopt;
    }
  }
  if (std::count_if(out.begin(), out.end(), [](char c) { return c != '+'; }) < 3) {
    return std::nullopt;
  }
  return out;
}

template <typename Event>
eventsourcing::Events EmitLead(Lead lead) {
  auto event = std::make_unique<Event>();
  *event->mutable_lead() = std::move(lead);
  return eventsourcing::Emit(std::move(event));
}

}  // namespace

std::string StatusKey(LeadStatus status) {
  return absl::AsciiStrToLower(v1::LeadStatus_Name(status).substr(strlen("LEAD_STATUS_")));
}

void LeadAggregate::Evolve(Lead& state, const eventstore::EventEnvelope& event) {
  eventsourcing::EvolveFromFullState<v1::LeadCaptured, v1::LeadQualified, v1::LeadDisqualified,
                                     v1::LeadConverted>(state, event,
                                                        [](const auto& e) { return e.lead(); });
}

std::vector<std::string> LeadAggregate::IndexKeys(const std::string& id, const Lead& state) {
  const std::string status = StatusKey(state.status());
  std::vector<std::string> keys = {absl::StrCat("lead/all/", id),
                                   absl::StrCat("lead/status/", status, "/", id),
                                   absl::StrCat("lead/source/", state.source(), "/", id)};
  if (!state.owner_id().empty())
    keys.push_back(absl::StrCat("lead/owner/", state.owner_id(), "/", id));
  if (!state.channel().empty())
    keys.push_back(absl::StrCat("lead/channel/", state.channel(), "/", id));
  return keys;
}

absl::StatusOr<eventsourcing::Events> DecideCaptureLead(const CurrentLead& current,
                                                        absl::Time occurred_at,
                                                        const std::string& lead_id,
                                                        const Lead& fields,
                                                        const PipelineLimits& limits) {
  if (absl::Status id = ValidateId(lead_id, "lead_id"); !id.ok()) return id;
  if (current) return absl::AlreadyExistsError(absl::StrCat("lead ", lead_id, " exists"));
  Checker check(limits);
  Lead lead;
  lead.set_source(check.Short("lead.source", fields.source()));
  if (lead.source().empty()) check.Invalid("lead.source", "is required (where the lead came from)");
  if (lead.source().find('/') != std::string::npos)
    check.Invalid("lead.source", "must not contain '/'");
  lead.set_channel(check.Text("lead.channel", fields.channel(), 64));
  lead.set_campaign(check.Short("lead.campaign", fields.campaign()));
  lead.set_owner_id(check.Short("lead.owner_id", fields.owner_id()));
  lead.set_region(check.Short("lead.region", fields.region()));

  const v1::LeadPerson& in = fields.person();
  v1::LeadPerson& person = *lead.mutable_person();
  person.set_given_name(check.Name("lead.person.given_name", in.given_name()));
  person.set_family_name(check.Name("lead.person.family_name", in.family_name()));
  person.set_job_title(check.Short("lead.person.job_title", in.job_title()));
  person.set_email(absl::AsciiStrToLower(check.Short("lead.person.email", in.email())));
  if (!person.email().empty() && !IsEmail(person.email())) {
    check.Invalid("lead.person.email", "must be an email address like name@example.com");
  }
  const std::string phone = check.Short("lead.person.phone", in.phone());
  if (!phone.empty()) {
    if (std::optional<std::string> normalized = NormalizePhone(phone)) {
      person.set_phone(*normalized);
    } else {
      check.Invalid("lead.person.phone", "must be a phone number (digits, optionally +country)");
    }
  }
  v1::LeadCompany& company = *lead.mutable_company();
  company.set_display_name(
      check.Name("lead.company.display_name", fields.company().display_name()));
  company.set_domain(
      absl::AsciiStrToLower(check.Short("lead.company.domain", fields.company().domain())));
  if (!std::all_of(company.domain().begin(), company.domain().end(), [](char c) {
        return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-';
      })) {
    check.Invalid("lead.company.domain", "must be a domain name like example.com");
  }
  if (person.given_name().empty() && person.family_name().empty() && person.email().empty() &&
      person.phone().empty() && company.display_name().empty()) {
    check.Invalid("lead.person", "name someone: a person's name, email or phone, or a company");
  }
  if (absl::Status checked = check.Result(); !checked.ok()) return checked;

  lead.set_name(absl::StrCat("leads/", lead_id));
  lead.set_lead_id(lead_id);
  lead.set_status(v1::LEAD_STATUS_NEW);
  *lead.mutable_create_time() = ToProto(occurred_at);
  *lead.mutable_update_time() = ToProto(occurred_at);
  return EmitLead<v1::LeadCaptured>(std::move(lead));
}

absl::StatusOr<eventsourcing::Events> DecideQualifyLead(const CurrentLead& current) {
  if (!current) return absl::NotFoundError("lead not found");
  const LeadStatus status = current->state.status();
  if (status != v1::LEAD_STATUS_NEW && status != v1::LEAD_STATUS_DISQUALIFIED) {
    return absl::FailedPreconditionError(
        absl::StrCat("a ", StatusKey(status), " lead cannot be qualified"));
  }
  Lead lead = current->state;
  lead.set_status(v1::LEAD_STATUS_QUALIFIED);
  lead.clear_disqualify_reason();
  return EmitLead<v1::LeadQualified>(std::move(lead));
}

absl::StatusOr<eventsourcing::Events> DecideDisqualifyLead(const CurrentLead& current,
                                                           const std::string& reason,
                                                           const PipelineLimits& limits) {
  Checker check(limits);
  const std::string why = check.Text("reason", reason, limits.max_reason);
  if (why.empty()) check.Invalid("reason", "say why the lead is disqualified");
  if (absl::Status checked = check.Result(); !checked.ok()) return checked;
  if (!current) return absl::NotFoundError("lead not found");
  const LeadStatus status = current->state.status();
  if (status != v1::LEAD_STATUS_NEW && status != v1::LEAD_STATUS_QUALIFIED) {
    return absl::FailedPreconditionError(
        absl::StrCat("a ", StatusKey(status), " lead cannot be disqualified"));
  }
  Lead lead = current->state;
  lead.set_status(v1::LEAD_STATUS_DISQUALIFIED);
  lead.set_disqualify_reason(why);
  return EmitLead<v1::LeadDisqualified>(std::move(lead));
}

absl::Status CheckConvertible(const CurrentLead& current) {
  if (!current) return absl::NotFoundError("lead not found");
  const Lead& lead = current->state;
  switch (lead.status()) {
    case v1::LEAD_STATUS_NEW:
    case v1::LEAD_STATUS_QUALIFIED:
      return absl::OkStatus();
    case v1::LEAD_STATUS_CONVERTED:
      return absl::FailedPreconditionError(absl::StrCat(
          "lead ", lead.lead_id(), " was converted into opportunity ", lead.opportunity_id()));
    default:
      return absl::FailedPreconditionError(absl::StrCat(
          "a ", StatusKey(lead.status()), " lead cannot be converted (qualify it first)"));
  }
}

absl::StatusOr<eventsourcing::Events> DecideConvertLead(const CurrentLead& current,
                                                        const std::string& contact_id,
                                                        const std::string& account_id,
                                                        const std::string& opportunity_id) {
  if (current && current->state.status() == v1::LEAD_STATUS_CONVERTED &&
      current->state.opportunity_id() == opportunity_id) {
    return eventsourcing::Events();
  }
  if (absl::Status convertible = CheckConvertible(current); !convertible.ok()) return convertible;
  Lead lead = current->state;
  lead.set_status(v1::LEAD_STATUS_CONVERTED);
  lead.set_contact_id(contact_id);
  lead.set_account_id(account_id);
  lead.set_opportunity_id(opportunity_id);
  return EmitLead<v1::LeadConverted>(std::move(lead));
}

}  // namespace crm::pipeline
