#pragma once

// Answers as text for people (scripts use -o json).
//
// - Fields: one aligned "key: value" line per field that is set (nested fields dotted).
// - Lists of messages: a table each. The CRM's records (Contact, Opportunity, ...) show their
//   main fields (MainColumns); other messages every field (nested ones as dotted columns,
//   `create_time`, `update_time` and a `name` beside a `<type>_id` left out). Columns without
//   a value in any row are dropped; cells are cut at 40 characters.
// - An answer named *Response (ListContactsResponse) shows its lists first, then its other
//   fields (next_page_token); a record (Opportunity) its fields first, then its lists, titled.
// - The adoption scorecard: a row per rep, a column per measure (the counts of a KPI that has
//   a ratio are inside the ratio), then the team-wide KPIs, a line per measure. The business
//   dashboard: a table per KPI, a column per dimension and per measure. KPI queries: a row per
//   period and group. Each with its receipt (definition version, log positions, lag).
// Values: enums by their short name, times in RFC 3339 (UTC), money (`*_minor` with a
// `currency_code` beside or above it, and money measures) in major units with the currency.

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "crm/metrics/v1/metrics_service.pb.h"
#include "google/protobuf/message.h"

namespace crm::crmctl {

// "EUR 1,234.56" (JPY has no decimals, BHD three: ISO 4217 minor units).
std::string MoneyText(int64_t amount_minor, const std::string& currency_code);

// A measure's value: "1,234", "75.0% (3/4)", "3.5h (n=40)", "EUR 1,234.56". `compact` drops
// the decimals of a percentage and the sample size of a quantile.
std::string MeasureText(const crm::metrics::v1::Measure& measure, bool compact = false);

enum class Align { kLeft, kRight };

// Columns separated by two spaces, a rule of dashes under the header, no trailing spaces.
// Missing alignments are kLeft.
std::string Table(const std::vector<std::string>& headers,
                  const std::vector<std::vector<std::string>>& rows,
                  const std::vector<Align>& align = {}, const std::string& indent = "");

std::string RenderScorecard(const crm::metrics::v1::GetAdoptionScorecardResponse& scorecard);
std::string RenderDashboard(const crm::metrics::v1::GetBusinessDashboardResponse& dashboard);
std::string RenderKpiQuery(const crm::metrics::v1::QueryKpiResponse& answer);

// The main fields of the CRM's records, by type: the columns of their tables (dotted paths
// for nested fields).
const std::map<std::string, std::vector<std::string>>& MainColumns();

// Any answer, by the rules above.
std::string RenderText(const google::protobuf::Message& message);

}  // namespace crm::crmctl
