#include "render.h"

#include <algorithm>
#include <map>
#include <set>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/timestamp.pb.h"
#include "google/protobuf/util/time_util.h"
#include "request_flags.h"

namespace crm::crmctl {
namespace {

namespace pb = google::protobuf;
namespace v1 = crm::metrics::v1;

// Fields every record has that a table can do without (`name` only beside a `<type>_id`).
const std::set<std::string> kBookkeeping = {"name", "create_time", "update_time"};
// Cells longer than this are cut in tables (-o json has everything).
constexpr size_t kMaxCell = 40;

// Headers of the scorecard's per-rep measures; others show their own name.
const std::map<std::string, std::string> kScorecardHeaders = {
    {"activities_logged.count", "activities"},
    {"visit_report_compliance.ratio", "visit reports <=48h"},
    {"logging_delay_seconds.p50_seconds", "log delay p50"},
    {"logging_delay_seconds.p90_seconds", "log delay p90"},
    {"logging_delay_seconds.within_24h", "logged <=24h"},
    {"tasks_on_time_ratio.ratio", "tasks on time"},
    {"open_deal_coverage.ratio", "deal coverage 7d"},
    {"stale_opportunities.count", "stale deals"},
    {"contact_completeness_ratio.ratio", "contacts complete"},
};

// ISO 4217 minor units where they are not 2.
int MinorDigits(const std::string& currency) {
  static const auto* zero =
      new std::set<std::string>{"BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG",
                                "RWF", "UGX", "UYI", "VND", "VUV", "XAF", "XOF", "XPF"};
  static const auto* three =
      new std::set<std::string>{"BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"};
  if (zero->contains(currency)) return 0;
  if (three->contains(currency)) return 3;
  if (currency == "CLF" || currency == "UYW") return 4;
  return 2;
}

std::string Grouped(uint64_t value) {
  std::string digits = absl::StrCat(value);
  std::string out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out.push_back(',');
    out.push_back(digits[i]);
  }
  return out;
}

std::string Grouped(int64_t value) {
  const uint64_t magnitude =
      value < 0 ? ~static_cast<uint64_t>(value) + 1 : static_cast<uint64_t>(value);
  return (value < 0 ? "-" : "") + Grouped(magnitude);
}

// "1,234.56" for 123456 EUR.
std::string MajorUnits(int64_t amount_minor, const std::string& currency) {
  const int digits = MinorDigits(currency);
  uint64_t scale = 1;
  for (int i = 0; i < digits; ++i) scale *= 10;
  const uint64_t magnitude = amount_minor < 0 ? ~static_cast<uint64_t>(amount_minor) + 1
                                              : static_cast<uint64_t>(amount_minor);
  std::string out = absl::StrCat(amount_minor < 0 ? "-" : "", Grouped(magnitude / scale));
  if (digits > 0) {
    absl::StrAppend(&out, ".", absl::StrFormat("%0*d", digits, magnitude % scale));
  }
  return out;
}

std::string SecondsText(double seconds) {
  if (seconds < 90) return absl::StrFormat("%.0fs", seconds);
  if (seconds < 90 * 60) return absl::StrFormat("%.0fm", seconds / 60);
  if (seconds < 48 * 3600) return absl::StrFormat("%.1fh", seconds / 3600);
  return absl::StrFormat("%.1fd", seconds / 86400);
}

// A quantile in the unit its measure names (p50_seconds, p50_days).
std::string QuantityText(absl::string_view name, double value) {
  if (absl::EndsWith(name, "_seconds")) return SecondsText(value);
  if (absl::EndsWith(name, "_days")) return absl::StrFormat("%gd", value);
  return absl::StrFormat("%.1f", value);
}

size_t DisplayWidth(absl::string_view text) {
  size_t width = 0;
  for (unsigned char c : text) width += (c & 0xC0) != 0x80;
  return width;
}

std::string Cut(std::string text) {
  if (DisplayWidth(text) <= kMaxCell) return text;
  size_t kept = 0;
  size_t bytes = 0;
  while (bytes < text.size() && kept < kMaxCell - 3) {
    ++bytes;
    while (bytes < text.size() && (static_cast<unsigned char>(text[bytes]) & 0xC0) == 0x80) {
      ++bytes;
    }
    ++kept;
  }
  text.resize(bytes);
  return text + "...";
}

std::string DateOf(int64_t unix_seconds) {
  return absl::FormatTime("%Y-%m-%d", absl::FromUnixSeconds(unix_seconds), absl::UTCTimeZone());
}

std::string TimeText(const pb::Timestamp& time) { return pb::util::TimeUtil::ToString(time); }

std::string PeriodText(const v1::Period& period) {
  if (!period.has_start_time()) return period.label();
  return absl::StrCat(period.label(), " (", DateOf(period.start_time().seconds()), " to ",
                      DateOf(period.end_time().seconds() - 1), ")");
}

std::string MeasureKey(const v1::Measure& measure) {
  return measure.currency_code().empty()
             ? measure.name()
             : absl::StrCat(measure.name(), " ", measure.currency_code());
}

// Merges key sequences keeping each one's order: a key not yet seen goes right after the key
// before it in its own sequence.
void MergeKeys(const std::vector<std::string>& sequence, std::vector<std::string>& merged) {
  size_t next = 0;
  for (const std::string& key : sequence) {
    auto found = std::find(merged.begin(), merged.end(), key);
    if (found != merged.end()) {
      next = static_cast<size_t>(found - merged.begin()) + 1;
    } else {
      merged.insert(merged.begin() + static_cast<std::ptrdiff_t>(next), key);
      ++next;
    }
  }
}

std::string ReceiptText(const v1::Receipt& receipt) {
  std::vector<std::string> parts;
  if (receipt.definition_version() > 0) {
    parts.push_back(absl::StrCat("definition v", receipt.definition_version()));
  }
  if (receipt.has_compute_time()) {
    parts.push_back(absl::StrCat("computed ", TimeText(receipt.compute_time())));
  }
  if (receipt.has_applied_through_time()) {
    parts.push_back(absl::StrCat("events through ", TimeText(receipt.applied_through_time())));
  }
  std::string lag = absl::StrCat("lag ", Grouped(receipt.lag_events()), " events");
  if (receipt.lag().seconds() > 0 || receipt.lag().nanos() > 0) {
    absl::StrAppend(&lag, " (", SecondsText(receipt.lag().seconds()), ")");
  }
  parts.push_back(lag);
  parts.push_back(absl::StrCat("generation ", receipt.generation()));
  std::string out = absl::StrCat("receipt: ", absl::StrJoin(parts, ", "), "\n");
  if (receipt.positions_size() > 0) {
    std::vector<std::string> positions;
    for (const v1::TopicPosition& p : receipt.positions()) {
      positions.push_back(absl::StrCat(p.topic(), "/", p.partition(), "=", p.next_offset()));
    }
    absl::StrAppend(&out, "positions (next offset): ", absl::StrJoin(positions, ", "), "\n");
  }
  return out;
}

// A table of KPI rows: optional period column, one column per dimension, one per measure.
std::string KpiTable(const v1::KpiResult& result, bool with_period, const std::string& indent) {
  std::vector<std::string> dimensions;
  for (const v1::Dimension& dimension : result.rows(0).dimensions()) {
    dimensions.push_back(dimension.name());
  }
  std::vector<std::string> measures;
  for (const v1::KpiRow& row : result.rows()) {
    std::vector<std::string> keys;
    for (const v1::Measure& m : row.measures()) keys.push_back(MeasureKey(m));
    MergeKeys(keys, measures);
  }
  std::vector<std::string> headers;
  std::vector<Align> align;
  if (with_period) {
    headers.push_back("period");
    align.push_back(Align::kLeft);
  }
  for (const std::string& d : dimensions) {
    headers.push_back(d);
    align.push_back(Align::kLeft);
  }
  for (const std::string& m : measures) {
    headers.push_back(m);
    align.push_back(Align::kRight);
  }
  std::vector<std::vector<std::string>> rows;
  for (const v1::KpiRow& row : result.rows()) {
    std::vector<std::string> cells;
    if (with_period) cells.push_back(row.period().label());
    for (const v1::Dimension& d : row.dimensions()) {
      cells.push_back(d.value().empty() ? "(none)" : d.value());
    }
    std::map<std::string, const v1::Measure*> by_key;
    for (const v1::Measure& m : row.measures()) by_key[MeasureKey(m)] = &m;
    for (const std::string& key : measures) {
      auto found = by_key.find(key);
      cells.push_back(found == by_key.end() ? "-" : MeasureText(*found->second));
    }
    rows.push_back(std::move(cells));
  }
  return Table(headers, rows, align, indent);
}

std::string KpiTitle(const v1::KpiResult& result) {
  std::vector<std::string> dimensions;
  if (result.rows_size() > 0) {
    for (const v1::Dimension& d : result.rows(0).dimensions()) dimensions.push_back(d.name());
  }
  return dimensions.empty()
             ? result.definition().name()
             : absl::StrCat(result.definition().name(), " by ", absl::StrJoin(dimensions, ", "));
}

// --- any message ---------------------------------------------------------------------------

bool IsComposite(const pb::FieldDescriptor* field) {
  return field->cpp_type() == pb::FieldDescriptor::CPPTYPE_MESSAGE && !field->is_map() &&
         !IsValueMessage(field->message_type());
}

bool IsAny(const pb::Descriptor* type) { return type->full_name() == "google.protobuf.Any"; }

// "CaseNote" -> "case_note".
std::string SnakeCaseOf(absl::string_view camel) {
  std::string out;
  for (size_t i = 0; i < camel.size(); ++i) {
    if (absl::ascii_isupper(camel[i]) && i > 0) out.push_back('_');
    out.push_back(absl::ascii_tolower(camel[i]));
  }
  return out;
}

// The currency of `message` when it has one, else the one inherited from above.
std::string CurrencyOf(const pb::Message& message, const std::string& inherited) {
  const pb::FieldDescriptor* field = message.GetDescriptor()->FindFieldByName("currency_code");
  if (field == nullptr || field->is_repeated() ||
      field->cpp_type() != pb::FieldDescriptor::CPPTYPE_STRING) {
    return inherited;
  }
  std::string code = message.GetReflection()->GetString(message, field);
  return code.empty() ? inherited : code;
}

std::string AnyTypeName(const pb::Message& any) {
  const std::string url =
      any.GetReflection()->GetString(any, any.GetDescriptor()->FindFieldByName("type_url"));
  return url.substr(url.rfind('/') + 1);
}

// The message packed in an Any, when this binary knows its type.
std::unique_ptr<pb::Message> Unpack(const pb::Message& any) {
  const pb::Descriptor* type =
      pb::DescriptorPool::generated_pool()->FindMessageTypeByName(AnyTypeName(any));
  if (type == nullptr) return nullptr;
  std::unique_ptr<pb::Message> message(
      pb::MessageFactory::generated_factory()->GetPrototype(type)->New());
  const std::string bytes =
      any.GetReflection()->GetString(any, any.GetDescriptor()->FindFieldByName("value"));
  if (!message->ParseFromString(bytes)) return nullptr;
  return message;
}

std::string ValueMessageText(const pb::Message& value) {
  const pb::Descriptor* type = value.GetDescriptor();
  const pb::Reflection* reflection = value.GetReflection();
  const std::string& name = type->full_name();
  auto int64_field = [&](const char* field) {
    return reflection->GetInt64(value, type->FindFieldByName(field));
  };
  auto int32_field = [&](const char* field) {
    return reflection->GetInt32(value, type->FindFieldByName(field));
  };
  if (name == "google.protobuf.Timestamp") {
    pb::Timestamp time;
    time.set_seconds(int64_field("seconds"));
    time.set_nanos(int32_field("nanos"));
    return TimeText(time);
  }
  if (name == "google.protobuf.Duration") {
    return absl::FormatDuration(absl::Seconds(int64_field("seconds")) +
                                absl::Nanoseconds(int32_field("nanos")));
  }
  if (name == "google.protobuf.FieldMask") {
    const pb::FieldDescriptor* paths = type->FindFieldByName("paths");
    std::vector<std::string> parts;
    for (int i = 0; i < reflection->FieldSize(value, paths); ++i) {
      parts.push_back(reflection->GetRepeatedString(value, paths, i));
    }
    return absl::StrJoin(parts, ",");
  }
  if (name == "crm.common.v1.Date") {
    return absl::StrFormat("%04d-%02d-%02d", int32_field("year"), int32_field("month"),
                           int32_field("day"));
  }
  return value.ShortDebugString();
}

// A scalar, enum or value message; `index` < 0 for a singular field.
std::string ValueText(const pb::Message& message, const pb::FieldDescriptor* field, int index,
                      const std::string& currency) {
  const pb::Reflection* r = message.GetReflection();
  const bool repeated = index >= 0;
  switch (field->cpp_type()) {
    case pb::FieldDescriptor::CPPTYPE_STRING:
      return repeated ? r->GetRepeatedString(message, field, index) : r->GetString(message, field);
    case pb::FieldDescriptor::CPPTYPE_INT32:
      return absl::StrCat(repeated ? r->GetRepeatedInt32(message, field, index)
                                   : r->GetInt32(message, field));
    case pb::FieldDescriptor::CPPTYPE_INT64: {
      const int64_t value =
          repeated ? r->GetRepeatedInt64(message, field, index) : r->GetInt64(message, field);
      if (absl::EndsWith(field->name(), "_minor") && !currency.empty()) {
        return MoneyText(value, currency);
      }
      return absl::StrCat(value);
    }
    case pb::FieldDescriptor::CPPTYPE_UINT32:
      return absl::StrCat(repeated ? r->GetRepeatedUInt32(message, field, index)
                                   : r->GetUInt32(message, field));
    case pb::FieldDescriptor::CPPTYPE_UINT64:
      return absl::StrCat(repeated ? r->GetRepeatedUInt64(message, field, index)
                                   : r->GetUInt64(message, field));
    case pb::FieldDescriptor::CPPTYPE_DOUBLE:
      return absl::StrCat(repeated ? r->GetRepeatedDouble(message, field, index)
                                   : r->GetDouble(message, field));
    case pb::FieldDescriptor::CPPTYPE_FLOAT:
      return absl::StrCat(repeated ? r->GetRepeatedFloat(message, field, index)
                                   : r->GetFloat(message, field));
    case pb::FieldDescriptor::CPPTYPE_BOOL:
      return (repeated ? r->GetRepeatedBool(message, field, index) : r->GetBool(message, field))
                 ? "true"
                 : "false";
    case pb::FieldDescriptor::CPPTYPE_ENUM:
      return EnumShortName(repeated ? r->GetRepeatedEnum(message, field, index)
                                    : r->GetEnum(message, field));
    case pb::FieldDescriptor::CPPTYPE_MESSAGE: {
      const pb::Message& value =
          repeated ? r->GetRepeatedMessage(message, field, index) : r->GetMessage(message, field);
      if (IsAny(field->message_type())) return AnyTypeName(value);
      return ValueMessageText(value);
    }
  }
  return "";
}

// "k=v<separator>k=v", sorted by key.
std::string MapText(const pb::Message& message, const pb::FieldDescriptor* field,
                    const std::string& separator) {
  const pb::Reflection* r = message.GetReflection();
  std::vector<std::pair<std::string, std::string>> entries;
  for (int i = 0; i < r->FieldSize(message, field); ++i) {
    const pb::Message& entry = r->GetRepeatedMessage(message, field, i);
    const pb::Descriptor* type = entry.GetDescriptor();
    entries.emplace_back(ValueText(entry, type->map_key(), -1, ""),
                         ValueText(entry, type->map_value(), -1, ""));
  }
  std::sort(entries.begin(), entries.end());
  return absl::StrJoin(entries, separator, absl::PairFormatter("="));
}

std::string RepeatedText(const pb::Message& message, const pb::FieldDescriptor* field,
                         const std::string& currency, const std::string& separator) {
  std::vector<std::string> values;
  for (int i = 0; i < message.GetReflection()->FieldSize(message, field); ++i) {
    values.push_back(ValueText(message, field, i, currency));
  }
  return absl::StrJoin(values, separator);
}

using Lines = std::vector<std::pair<std::string, std::string>>;

// A list of messages to show as a table: `field` of `message`, titled `path`.
struct ListRef {
  std::string path;
  const pb::Message* message;
  const pb::FieldDescriptor* field;
  std::string currency;
};

// One line per set field, nested fields dotted; lists of messages go to `lists`.
void RecordLines(const pb::Message& message, const std::string& prefix, std::string currency,
                 Lines& lines, std::vector<ListRef>& lists,
                 std::vector<std::unique_ptr<pb::Message>>& unpacked) {
  currency = CurrencyOf(message, currency);
  const pb::Reflection* r = message.GetReflection();
  std::vector<const pb::FieldDescriptor*> fields;
  r->ListFields(message, &fields);
  for (const pb::FieldDescriptor* field : fields) {
    const std::string key = prefix + field->name();
    if (field->is_map()) {
      lines.emplace_back(key, MapText(message, field, ", "));
    } else if (IsComposite(field) && field->is_repeated()) {
      lists.push_back({key, &message, field, currency});
    } else if (IsComposite(field) && IsAny(field->message_type())) {
      const pb::Message& any = r->GetMessage(message, field);
      lines.emplace_back(key, AnyTypeName(any));
      if (auto payload = Unpack(any)) {
        RecordLines(*payload, key + ".", currency, lines, lists, unpacked);
        unpacked.push_back(std::move(payload));
      }
    } else if (IsComposite(field)) {
      RecordLines(r->GetMessage(message, field), key + ".", currency, lines, lists, unpacked);
    } else if (field->is_repeated()) {
      lines.emplace_back(key, RepeatedText(message, field, currency, ", "));
    } else {
      lines.emplace_back(key, ValueText(message, field, -1, currency));
    }
  }
}

std::string AlignedLines(const Lines& lines) {
  size_t width = 0;
  for (const auto& [key, value] : lines) width = std::max(width, key.size());
  std::string out;
  for (const auto& [key, value] : lines) {
    absl::StrAppend(&out, key, ":", std::string(width - key.size() + 1, ' '), value, "\n");
  }
  return out;
}

struct Column {
  std::vector<const pb::FieldDescriptor*> path;
  std::string header;
};

// The fields of `type` along a dotted path ("person.given_name"); empty if one is missing.
std::vector<const pb::FieldDescriptor*> FieldPath(const pb::Descriptor* type,
                                                  const std::string& dotted) {
  std::vector<const pb::FieldDescriptor*> path;
  for (absl::string_view part : absl::StrSplit(dotted, '.')) {
    const pb::FieldDescriptor* field =
        type == nullptr ? nullptr : type->FindFieldByName(std::string(part));
    if (field == nullptr) return {};
    path.push_back(field);
    type = field->message_type();
  }
  return path;
}

void CollectColumns(const pb::Descriptor* type, std::vector<const pb::FieldDescriptor*> path,
                    const std::string& prefix, std::vector<Column>& columns) {
  if (auto main = MainColumns().find(type->full_name()); main != MainColumns().end()) {
    for (const std::string& dotted : main->second) {
      std::vector<const pb::FieldDescriptor*> child = path;
      for (const pb::FieldDescriptor* field : FieldPath(type, dotted)) child.push_back(field);
      if (child.size() > path.size()) columns.push_back({std::move(child), prefix + dotted});
    }
    return;
  }
  const std::string own_id = absl::StrCat(SnakeCaseOf(type->name()), "_id");
  for (int i = 0; i < type->field_count(); ++i) {
    const pb::FieldDescriptor* field = type->field(i);
    if (kBookkeeping.contains(field->name()) &&
        (field->name() != "name" || type->FindFieldByName(own_id) != nullptr)) {
      continue;
    }
    std::vector<const pb::FieldDescriptor*> child = path;
    child.push_back(field);
    const bool nested = IsComposite(field) && !field->is_repeated() &&
                        !IsAny(field->message_type()) && path.size() < 2;
    if (nested) {
      CollectColumns(field->message_type(), std::move(child), prefix + field->name() + ".",
                     columns);
    } else {
      columns.push_back({std::move(child), prefix + field->name()});
    }
  }
}

// The cell of `column` in `row`; false when the field has no value.
std::pair<std::string, bool> Cell(const pb::Message& row, const Column& column,
                                  const std::string& inherited_currency) {
  const pb::Message* message = &row;
  std::string currency = CurrencyOf(row, inherited_currency);
  for (size_t i = 0; i + 1 < column.path.size(); ++i) {
    if (!message->GetReflection()->HasField(*message, column.path[i])) return {"", false};
    message = &message->GetReflection()->GetMessage(*message, column.path[i]);
    currency = CurrencyOf(*message, currency);
  }
  const pb::FieldDescriptor* field = column.path.back();
  const pb::Reflection* r = message->GetReflection();
  if (field->is_map()) {
    return {MapText(*message, field, ","), r->FieldSize(*message, field) > 0};
  }
  if (field->is_repeated()) {
    const int size = r->FieldSize(*message, field);
    if (IsComposite(field)) return {size > 0 ? absl::StrCat(size) : "", size > 0};
    return {RepeatedText(*message, field, currency, ","), size > 0};
  }
  if (IsComposite(field) && !IsAny(field->message_type())) {
    const bool set = r->HasField(*message, field);
    return {set ? "(set)" : "", set};
  }
  if (r->HasField(*message, field)) return {ValueText(*message, field, -1, currency), true};
  switch (field->cpp_type()) {
    case pb::FieldDescriptor::CPPTYPE_STRING:
    case pb::FieldDescriptor::CPPTYPE_ENUM:
    case pb::FieldDescriptor::CPPTYPE_MESSAGE:
      return {"", false};
    default:
      return {ValueText(*message, field, -1, currency), false};
  }
}

bool IsNumber(const pb::FieldDescriptor* field) {
  switch (field->cpp_type()) {
    case pb::FieldDescriptor::CPPTYPE_INT32:
    case pb::FieldDescriptor::CPPTYPE_INT64:
    case pb::FieldDescriptor::CPPTYPE_UINT32:
    case pb::FieldDescriptor::CPPTYPE_UINT64:
    case pb::FieldDescriptor::CPPTYPE_DOUBLE:
    case pb::FieldDescriptor::CPPTYPE_FLOAT:
      return !field->is_repeated();
    default:
      return false;
  }
}

std::string ListTable(const pb::Message& message, const pb::FieldDescriptor* list,
                      const std::string& indent, const std::string& currency) {
  const pb::Reflection* r = message.GetReflection();
  std::vector<Column> columns;
  CollectColumns(list->message_type(), {}, "", columns);
  std::vector<std::vector<std::pair<std::string, bool>>> cells;
  std::vector<bool> used(columns.size(), false);
  for (int i = 0; i < r->FieldSize(message, list); ++i) {
    const pb::Message& row = r->GetRepeatedMessage(message, list, i);
    std::vector<std::pair<std::string, bool>> row_cells;
    for (size_t c = 0; c < columns.size(); ++c) {
      row_cells.push_back(Cell(row, columns[c], currency));
      if (row_cells.back().second) used[c] = true;
    }
    cells.push_back(std::move(row_cells));
  }
  std::vector<std::string> headers;
  std::vector<Align> align;
  for (size_t c = 0; c < columns.size(); ++c) {
    if (!used[c]) continue;
    headers.push_back(columns[c].header);
    align.push_back(IsNumber(columns[c].path.back()) ? Align::kRight : Align::kLeft);
  }
  std::vector<std::vector<std::string>> rows;
  for (const auto& row_cells : cells) {
    std::vector<std::string> row;
    for (size_t c = 0; c < columns.size(); ++c) {
      if (used[c]) row.push_back(Cut(row_cells[c].first));
    }
    rows.push_back(std::move(row));
  }
  return Table(headers, rows, align, indent);
}

std::string RenderGeneric(const pb::Message& message) {
  Lines lines;
  std::vector<ListRef> lists;
  std::vector<std::unique_ptr<pb::Message>> unpacked;
  RecordLines(message, "", "", lines, lists, unpacked);
  // An answer wrapping lists (ListContactsResponse) shows them first, untitled when it has
  // one; a record (Opportunity) shows its fields first, then its lists, titled.
  const pb::Descriptor* type = message.GetDescriptor();
  const bool wrapper = absl::EndsWith(type->name(), "Response");
  std::vector<const pb::FieldDescriptor*> top_lists;
  for (int i = 0; i < type->field_count(); ++i) {
    if (IsComposite(type->field(i)) && type->field(i)->is_repeated()) {
      top_lists.push_back(type->field(i));
    }
  }
  std::string out;
  auto add = [&out](const std::string& part) {
    if (part.empty()) return;
    if (!out.empty()) out += "\n";
    out += part;
  };
  auto table = [&](const ListRef& list, bool titled) {
    const std::string indent = titled ? "  " : "";
    return absl::StrCat(titled ? list.path + ":\n" : "",
                        ListTable(*list.message, list.field, indent, list.currency));
  };
  if (wrapper) {
    for (const pb::FieldDescriptor* field : top_lists) {  // empty ones too: "(no contacts)"
      const bool titled = top_lists.size() > 1;
      auto found = std::find_if(lists.begin(), lists.end(),
                                [&](const ListRef& list) { return list.field == field; });
      if (found == lists.end()) {
        add(absl::StrCat(titled ? field->name() + ":\n  " : "", "(no ", field->name(), ")\n"));
      } else {
        add(table(*found, titled));
        lists.erase(found);
      }
    }
  }
  add(AlignedLines(lines));
  for (const ListRef& list : lists) add(table(list, /*titled=*/true));
  if (out.empty()) out = "(empty answer)\n";
  return out;
}

}  // namespace

const std::map<std::string, std::vector<std::string>>& MainColumns() {
  static const auto* columns = new std::map<std::string, std::vector<std::string>>{
      {"crm.contact.v1.Contact",
       {"contact_id", "given_name", "family_name", "emails", "account_id", "owner_id", "region",
        "lifecycle_stage", "archived", "merged_into_contact_id", "version"}},
      {"crm.contact.v1.Account",
       {"account_id", "display_name", "domain", "industry", "owner_id", "region", "archived",
        "version"}},
      {"crm.activity.v1.Activity",
       {"activity_id", "type", "status", "channel", "owner_id", "contact_id", "lead_id",
        "occurred_at", "subject", "outcome", "version"}},
      {"crm.activity.v1.Task",
       {"task_id", "title", "assignee_id", "due_time", "status", "contact_id", "complete_time",
        "version"}},
      {"crm.activity.v1.Case",
       {"case_id", "subject", "priority", "status", "channel", "contact_id", "assignee_id",
        "open_time", "reopen_count", "version"}},
      {"crm.pipeline.v1.Lead",
       {"lead_id", "source", "channel", "person.given_name", "person.family_name",
        "company.display_name", "owner_id", "region", "status", "version"}},
      {"crm.pipeline.v1.Opportunity",
       {"opportunity_id", "display_name", "pipeline_id", "stage_id", "owner_id", "region",
        "amount_minor", "expected_close_date", "status", "version"}},
      {"crm.events.v1.EventEnvelope",
       {"stream_version", "occurred_at", "recorded_at", "actor_id", "channel", "payload"}},
  };
  return *columns;
}

std::string MoneyText(int64_t amount_minor, const std::string& currency_code) {
  const std::string amount = MajorUnits(amount_minor, currency_code);
  return currency_code.empty() ? amount : absl::StrCat(currency_code, " ", amount);
}

std::string MeasureText(const v1::Measure& measure, bool compact) {
  const std::string& full_name = measure.name();
  const std::string name = full_name.substr(full_name.rfind('.') + 1);
  const std::string& currency = measure.currency_code();
  switch (measure.value_case()) {
    case v1::Measure::kCount:
      return Grouped(measure.count());
    case v1::Measure::kAmountMinor:
      return MoneyText(measure.amount_minor(), currency);
    case v1::Measure::kRatio: {
      const v1::Ratio& ratio = measure.ratio();
      if (!ratio.has_value()) return "-";
      const std::string parts =
          currency.empty()
              ? absl::StrCat(Grouped(ratio.numerator()), "/", Grouped(ratio.denominator()))
              : absl::StrCat(currency, " ", MajorUnits(ratio.numerator(), currency), "/",
                             MajorUnits(ratio.denominator(), currency));
      if (absl::EndsWith(name, "per_100")) {
        return absl::StrFormat("%.1f per 100 (%s)", ratio.value(), parts);
      }
      return absl::StrFormat(compact ? "%.0f%% (%s)" : "%.1f%% (%s)", ratio.value() * 100, parts);
    }
    case v1::Measure::kQuantile: {
      const std::string text = QuantityText(name, measure.quantile().value());
      if (compact) return text;
      return absl::StrCat(text, " (n=", Grouped(measure.quantile().count()), ")");
    }
    case v1::Measure::VALUE_NOT_SET:
      return "-";
  }
  return "-";
}

std::string Table(const std::vector<std::string>& headers,
                  const std::vector<std::vector<std::string>>& rows,
                  const std::vector<Align>& align, const std::string& indent) {
  std::vector<size_t> widths;
  for (const std::string& h : headers) widths.push_back(DisplayWidth(h));
  for (const auto& row : rows) {
    for (size_t i = 0; i < row.size() && i < widths.size(); ++i) {
      widths[i] = std::max(widths[i], DisplayWidth(row[i]));
    }
  }
  auto line = [&](const std::vector<std::string>& cells) {
    std::string out = indent;
    for (size_t i = 0; i < widths.size(); ++i) {
      const std::string cell = i < cells.size() ? cells[i] : "";
      const std::string pad(widths[i] - DisplayWidth(cell), ' ');
      if (i > 0) out += "  ";
      const bool right = i < align.size() && align[i] == Align::kRight;
      out += right ? pad + cell : cell + pad;
    }
    while (!out.empty() && out.back() == ' ') out.pop_back();
    return out + "\n";
  };
  std::vector<std::string> rule;
  for (size_t width : widths) rule.push_back(std::string(width, '-'));
  std::string out = line(headers) + line(rule);
  for (const auto& row : rows) out += line(row);
  return out;
}

std::string RenderScorecard(const v1::GetAdoptionScorecardResponse& scorecard) {
  std::string out = absl::StrCat("ADOPTION SCORECARD  ", PeriodText(scorecard.period()), "\n\n");

  // The counts of a KPI that has a ratio are the ratio's parts, shown inside it ("75% (3/4)").
  std::set<std::string> kpis_with_ratio;
  for (const v1::RepScorecard& rep : scorecard.reps()) {
    for (const v1::Measure& m : rep.measures()) {
      if (m.value_case() == v1::Measure::kRatio) {
        kpis_with_ratio.insert(m.name().substr(0, m.name().rfind('.')));
      }
    }
  }
  std::vector<std::string> keys;
  std::map<std::string, bool> is_count;
  for (const v1::RepScorecard& rep : scorecard.reps()) {
    std::vector<std::string> sequence;
    for (const v1::Measure& m : rep.measures()) {
      const bool count = m.value_case() == v1::Measure::kCount;
      if (count && kpis_with_ratio.contains(m.name().substr(0, m.name().rfind('.')))) continue;
      sequence.push_back(MeasureKey(m));
      is_count[MeasureKey(m)] = count;
    }
    MergeKeys(sequence, keys);
  }
  if (scorecard.reps().empty()) {
    out += "(no rep has data in this period)\n";
  } else {
    std::vector<std::string> headers = {"rep"};
    std::vector<Align> align = {Align::kLeft};
    for (const std::string& key : keys) {
      auto label = kScorecardHeaders.find(key);
      headers.push_back(label == kScorecardHeaders.end() ? key : label->second);
      align.push_back(Align::kRight);
    }
    std::vector<std::vector<std::string>> rows;
    for (const v1::RepScorecard& rep : scorecard.reps()) {
      std::map<std::string, const v1::Measure*> by_key;
      for (const v1::Measure& m : rep.measures()) by_key[MeasureKey(m)] = &m;
      std::vector<std::string> row = {rep.rep_id()};
      for (const std::string& key : keys) {
        auto found = by_key.find(key);
        if (found != by_key.end()) {
          row.push_back(MeasureText(*found->second, /*compact=*/true));
        } else {
          row.push_back(is_count[key] ? "0" : "-");  // no row: nothing counted, no ratio
        }
      }
      rows.push_back(std::move(row));
    }
    out += Table(headers, rows, align);
  }

  out += "\nTEAM\n";
  std::vector<std::vector<std::string>> team;
  for (const v1::KpiResult& result : scorecard.team()) {
    if (result.rows().empty()) {
      team.push_back({result.definition().name(), "", "no data"});
      continue;
    }
    bool first = true;
    for (const v1::KpiRow& row : result.rows()) {
      for (const v1::Measure& m : row.measures()) {
        team.push_back({first ? result.definition().name() : "", MeasureKey(m), MeasureText(m)});
        first = false;
      }
    }
  }
  out += Table({"kpi", "measure", "value"}, team, {Align::kLeft, Align::kLeft, Align::kRight});
  if (scorecard.has_receipt()) absl::StrAppend(&out, "\n", ReceiptText(scorecard.receipt()));
  return out;
}

std::string RenderDashboard(const v1::GetBusinessDashboardResponse& dashboard) {
  std::string out = absl::StrCat("BUSINESS DASHBOARD  ", PeriodText(dashboard.period()), "\n");
  for (const v1::KpiResult& result : dashboard.kpis()) {
    if (result.rows().empty()) {
      absl::StrAppend(&out, "\n", KpiTitle(result), ": no data\n");
      continue;
    }
    absl::StrAppend(&out, "\n", KpiTitle(result), "\n", KpiTable(result, false, "  "));
  }
  if (dashboard.has_receipt()) absl::StrAppend(&out, "\n", ReceiptText(dashboard.receipt()));
  return out;
}

std::string RenderKpiQuery(const v1::QueryKpiResponse& answer) {
  const v1::KpiResult& result = answer.result();
  std::string out = KpiTitle(result);
  if (result.rows().empty()) {
    out += ": no data\n";
  } else {
    absl::StrAppend(&out, "\n", KpiTable(result, true, ""));
  }
  if (answer.has_receipt()) absl::StrAppend(&out, "\n", ReceiptText(answer.receipt()));
  return out;
}

std::string RenderText(const pb::Message& message) {
  const std::string& type = message.GetDescriptor()->full_name();
  if (type == v1::GetAdoptionScorecardResponse::descriptor()->full_name()) {
    v1::GetAdoptionScorecardResponse typed;
    typed.ParseFromString(message.SerializeAsString());
    return RenderScorecard(typed);
  }
  if (type == v1::GetBusinessDashboardResponse::descriptor()->full_name()) {
    v1::GetBusinessDashboardResponse typed;
    typed.ParseFromString(message.SerializeAsString());
    return RenderDashboard(typed);
  }
  if (type == v1::QueryKpiResponse::descriptor()->full_name()) {
    v1::QueryKpiResponse typed;
    typed.ParseFromString(message.SerializeAsString());
    return RenderKpiQuery(typed);
  }
  return RenderGeneric(message);
}

}  // namespace crm::crmctl
