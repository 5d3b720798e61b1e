#include "request_flags.h"

#include <iostream>
#include <iterator>
#include <map>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/time.h"
#include "google/protobuf/timestamp.pb.h"
#include "google/protobuf/util/json_util.h"
#include "google/protobuf/util/time_util.h"

namespace crm::crmctl {
namespace {

namespace pb = google::protobuf;
using Kind = FieldFlag::Kind;

constexpr char kTimestamp[] = "google.protobuf.Timestamp";
constexpr char kDuration[] = "google.protobuf.Duration";
constexpr char kFieldMask[] = "google.protobuf.FieldMask";
constexpr char kDate[] = "crm.common.v1.Date";

// "OpportunityStatus" -> "OPPORTUNITY_STATUS".
std::string UpperSnake(absl::string_view camel) {
  std::string out;
  for (size_t i = 0; i < camel.size(); ++i) {
    const char c = camel[i];
    if (absl::ascii_isupper(c) && i > 0) out.push_back('_');
    out.push_back(absl::ascii_toupper(c));
  }
  return out;
}

// "ownerId", "owner-id", "owner_id" -> "owner_id".
std::string SnakeCase(absl::string_view text) {
  std::string out;
  for (char c : text) {
    if (c == '-') {
      out.push_back('_');
    } else if (absl::ascii_isupper(c)) {
      if (!out.empty()) out.push_back('_');
      out.push_back(absl::ascii_tolower(c));
    } else {
      out.push_back(c);
    }
  }
  return out;
}

absl::StatusOr<bool> ParseBool(absl::string_view text) {
  const std::string lower = absl::AsciiStrToLower(text);
  if (lower == "true" || lower == "1" || lower == "yes" || lower == "on") return true;
  if (lower == "false" || lower == "0" || lower == "no" || lower == "off") return false;
  return absl::InvalidArgumentError(absl::StrCat("expects true or false, not \"", text, "\""));
}

absl::Status SetTimestamp(pb::Message& message, absl::string_view text) {
  pb::Timestamp parsed;
  const std::string value(absl::StripAsciiWhitespace(text));
  if (!pb::util::TimeUtil::FromString(value, &parsed)) {
    absl::Time day;
    std::string ignored;
    if (!absl::ParseTime("%Y-%m-%d", value, absl::UTCTimeZone(), &day, &ignored)) {
      return absl::InvalidArgumentError(
          absl::StrCat("expects an RFC 3339 time such as 2026-11-20T14:00:00Z, or a date such as "
                       "2026-11-20, not \"",
                       text, "\""));
    }
    parsed.set_seconds(absl::ToUnixSeconds(day));
  }
  const pb::Reflection* reflection = message.GetReflection();
  reflection->SetInt64(&message, message.GetDescriptor()->FindFieldByName("seconds"),
                       parsed.seconds());
  reflection->SetInt32(&message, message.GetDescriptor()->FindFieldByName("nanos"), parsed.nanos());
  return absl::OkStatus();
}

absl::Status SetDuration(pb::Message& message, absl::string_view text) {
  absl::Duration parsed;
  if (!absl::ParseDuration(absl::StripAsciiWhitespace(text), &parsed)) {
    return absl::InvalidArgumentError(
        absl::StrCat("expects a duration such as 30s, 1m30s or 500ms, not \"", text, "\""));
  }
  const int64_t seconds = absl::IDivDuration(parsed, absl::Seconds(1), &parsed);
  const pb::Reflection* reflection = message.GetReflection();
  reflection->SetInt64(&message, message.GetDescriptor()->FindFieldByName("seconds"), seconds);
  reflection->SetInt32(&message, message.GetDescriptor()->FindFieldByName("nanos"),
                       static_cast<int32_t>(absl::ToInt64Nanoseconds(parsed)));
  return absl::OkStatus();
}

absl::Status SetFieldMask(pb::Message& message, absl::string_view text) {
  const pb::FieldDescriptor* paths = message.GetDescriptor()->FindFieldByName("paths");
  message.GetReflection()->ClearField(&message, paths);
  for (absl::string_view path : absl::StrSplit(text, ',', absl::SkipWhitespace())) {
    std::vector<std::string> parts;
    for (absl::string_view part : absl::StrSplit(absl::StripAsciiWhitespace(path), '.')) {
      parts.push_back(SnakeCase(part));
    }
    message.GetReflection()->AddString(&message, paths, absl::StrJoin(parts, "."));
  }
  return absl::OkStatus();
}

absl::Status SetDate(pb::Message& message, absl::string_view text) {
  absl::Time day;
  std::string ignored;
  if (!absl::ParseTime("%Y-%m-%d", std::string(absl::StripAsciiWhitespace(text)),
                       absl::UTCTimeZone(), &day, &ignored)) {
    return absl::InvalidArgumentError(
        absl::StrCat("expects a date YYYY-MM-DD such as 2027-01-31, not \"", text, "\""));
  }
  const absl::CivilDay civil = absl::ToCivilDay(day, absl::UTCTimeZone());
  const pb::Descriptor* type = message.GetDescriptor();
  const pb::Reflection* reflection = message.GetReflection();
  reflection->SetInt32(&message, type->FindFieldByName("year"), static_cast<int32_t>(civil.year()));
  reflection->SetInt32(&message, type->FindFieldByName("month"), civil.month());
  reflection->SetInt32(&message, type->FindFieldByName("day"), civil.day());
  return absl::OkStatus();
}

template <typename T>
absl::StatusOr<T> ParseNumber(absl::string_view text, absl::string_view what) {
  T value;
  bool ok;
  if constexpr (std::is_floating_point_v<T>) {
    ok = absl::SimpleAtod(text, &value);
  } else {
    ok = absl::SimpleAtoi(text, &value);
  }
  if (!ok)
    return absl::InvalidArgumentError(absl::StrCat("expects ", what, ", not \"", text, "\""));
  return value;
}

// Splits "key=value" at the first '='.
absl::StatusOr<std::pair<std::string, std::string>> KeyValue(absl::string_view text) {
  const size_t equals = text.find('=');
  if (equals == absl::string_view::npos || equals == 0) {
    return absl::InvalidArgumentError(absl::StrCat("expects key=value, not \"", text, "\""));
  }
  return std::make_pair(std::string(absl::StripAsciiWhitespace(text.substr(0, equals))),
                        std::string(text.substr(equals + 1)));
}

std::string FieldNames(const pb::Descriptor* type) {
  std::vector<std::string> names;
  for (int i = 0; i < type->field_count(); ++i) names.push_back(type->field(i)->name());
  return absl::StrJoin(names, ", ");
}

// One element of a repeated message from "field=value,field=value" (fields in any case;
// dotted for nested messages; a repeated field may repeat).
absl::Status SetFromPairs(pb::Message& element, absl::string_view text) {
  for (absl::string_view pair : absl::StrSplit(text, ',', absl::SkipWhitespace())) {
    auto key_value = KeyValue(pair);
    if (!key_value.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "expects a JSON object or field=value,field=value; \"", pair, "\" has no '='"));
    }
    pb::Message* target = &element;
    const pb::FieldDescriptor* field = nullptr;
    std::vector<std::string> parts = absl::StrSplit(key_value->first, '.');
    for (size_t i = 0; i < parts.size(); ++i) {
      const pb::Descriptor* type = target->GetDescriptor();
      field = type->FindFieldByName(SnakeCase(parts[i]));
      if (field == nullptr) {
        return absl::InvalidArgumentError(absl::StrCat("no field \"", parts[i], "\" in ",
                                                       type->full_name(),
                                                       " (fields: ", FieldNames(type), ")"));
      }
      if (i + 1 < parts.size()) {
        if (field->cpp_type() != pb::FieldDescriptor::CPPTYPE_MESSAGE || field->is_repeated()) {
          return absl::InvalidArgumentError(
              absl::StrCat(parts[i], " is not a nested message; use JSON"));
        }
        target = target->GetReflection()->MutableMessage(target, field);
      }
    }
    if (field->is_map() || (field->cpp_type() == pb::FieldDescriptor::CPPTYPE_MESSAGE &&
                            !IsValueMessage(field->message_type()))) {
      return absl::InvalidArgumentError(
          absl::StrCat(key_value->first, " cannot be given as field=value; use JSON"));
    }
    if (absl::Status set = SetFromText(*target, field, key_value->second); !set.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(key_value->first, ": ", set.message()));
    }
  }
  return absl::OkStatus();
}

std::string Describe(const pb::FieldDescriptor* field, Kind kind) {
  std::string what;
  switch (field->cpp_type()) {
    case pb::FieldDescriptor::CPPTYPE_STRING:
      what = "text";
      break;
    case pb::FieldDescriptor::CPPTYPE_INT32:
    case pb::FieldDescriptor::CPPTYPE_INT64:
    case pb::FieldDescriptor::CPPTYPE_UINT32:
    case pb::FieldDescriptor::CPPTYPE_UINT64:
      what = absl::EndsWith(field->name(), "_minor") ? "integer, money in minor units (cents)"
                                                     : "integer";
      break;
    case pb::FieldDescriptor::CPPTYPE_DOUBLE:
    case pb::FieldDescriptor::CPPTYPE_FLOAT:
      what = "number";
      break;
    case pb::FieldDescriptor::CPPTYPE_BOOL:
      what = "flag; =false sets false";
      break;
    case pb::FieldDescriptor::CPPTYPE_ENUM: {
      std::vector<std::string> names;
      for (int i = 0; i < field->enum_type()->value_count(); ++i) {
        if (field->enum_type()->value(i)->number() == 0) continue;
        names.push_back(EnumShortName(field->enum_type()->value(i)));
      }
      what = absl::StrCat("one of: ", absl::StrJoin(names, ", "));
      break;
    }
    case pb::FieldDescriptor::CPPTYPE_MESSAGE: {
      const std::string& type = field->message_type()->full_name();
      if (kind == Kind::kMap) {
        what = "key=value";
      } else if (type == kTimestamp) {
        what = "RFC 3339 time (2026-11-20T14:00:00Z) or date (2026-11-20, midnight UTC)";
      } else if (type == kDuration) {
        what = "duration (30s, 1m30s, 500ms)";
      } else if (type == kFieldMask) {
        what = "comma-separated field paths";
      } else if (type == kDate) {
        what = "date YYYY-MM-DD";
      } else {
        what = absl::StrCat("a ", field->message_type()->name(),
                            " as JSON or field=value,field=value (fields: ",
                            FieldNames(field->message_type()), ")");
      }
      break;
    }
  }
  if (field->is_repeated()) absl::StrAppend(&what, "; repeat the flag for more");
  return what;
}

std::string TypeName(const pb::FieldDescriptor* field, Kind kind) {
  if (kind == Kind::kMap) return "KEY=VALUE";
  switch (field->cpp_type()) {
    case pb::FieldDescriptor::CPPTYPE_STRING:
      return "TEXT";
    case pb::FieldDescriptor::CPPTYPE_DOUBLE:
    case pb::FieldDescriptor::CPPTYPE_FLOAT:
      return "NUMBER";
    case pb::FieldDescriptor::CPPTYPE_BOOL:
      return "";
    case pb::FieldDescriptor::CPPTYPE_ENUM:
      return "ENUM";
    case pb::FieldDescriptor::CPPTYPE_MESSAGE: {
      const std::string& type = field->message_type()->full_name();
      if (type == kTimestamp) return "TIME";
      if (type == kDuration) return "DURATION";
      if (type == kFieldMask) return "PATHS";
      if (type == kDate) return "DATE";
      return "ITEM";
    }
    default:
      return "INT";
  }
}

std::string JoinPath(const std::vector<const pb::FieldDescriptor*>& path) {
  return absl::StrJoin(path, ".", [](std::string* out, const pb::FieldDescriptor* field) {
    out->append(field->name());
  });
}

}  // namespace

std::string KebabCase(absl::string_view snake) {
  std::string out(snake);
  for (char& c : out) {
    if (c == '_') c = '-';
  }
  return out;
}

std::string CommandName(absl::string_view camel) {
  std::string out;
  for (size_t i = 0; i < camel.size(); ++i) {
    if (absl::ascii_isupper(camel[i]) && i > 0) out.push_back('-');
    out.push_back(absl::ascii_tolower(camel[i]));
  }
  return out;
}

std::string EnumShortName(const pb::EnumValueDescriptor* value) {
  const std::string prefix = UpperSnake(value->type()->name()) + "_";
  absl::string_view name = value->name();
  absl::ConsumePrefix(&name, prefix);
  return absl::AsciiStrToLower(name);
}

absl::StatusOr<const pb::EnumValueDescriptor*> ParseEnum(const pb::EnumDescriptor* type,
                                                         absl::string_view text) {
  std::string wanted = absl::AsciiStrToUpper(absl::StripAsciiWhitespace(text));
  for (char& c : wanted) {
    if (c == '-') c = '_';
  }
  const std::string prefix = UpperSnake(type->name()) + "_";
  if (!wanted.empty()) {
    if (const auto* value = type->FindValueByName(wanted)) return value;
    if (const auto* value = type->FindValueByName(prefix + wanted)) return value;
  }
  std::vector<std::string> names;
  std::string example;
  for (int i = 0; i < type->value_count(); ++i) {
    if (type->value(i)->number() == 0) continue;
    names.push_back(EnumShortName(type->value(i)));
    if (example.empty()) example = type->value(i)->name();
  }
  return absl::InvalidArgumentError(absl::StrCat("unknown value \"", text, "\"; expected one of ",
                                                 absl::StrJoin(names, ", "),
                                                 " (or the full name, e.g. ", example, ")"));
}

bool IsValueMessage(const pb::Descriptor* type) {
  const std::string& name = type->full_name();
  return name == kTimestamp || name == kDuration || name == kFieldMask || name == kDate;
}

absl::Status SetFromText(pb::Message& message, const pb::FieldDescriptor* field,
                         absl::string_view text) {
  const pb::Reflection* reflection = message.GetReflection();
  const bool repeated = field->is_repeated();
  switch (field->cpp_type()) {
    case pb::FieldDescriptor::CPPTYPE_STRING: {
      const std::string value(text);
      repeated ? reflection->AddString(&message, field, value)
               : reflection->SetString(&message, field, value);
      return absl::OkStatus();
    }
    case pb::FieldDescriptor::CPPTYPE_INT32: {
      auto value = ParseNumber<int32_t>(text, "a 32-bit integer");
      if (!value.ok()) return value.status();
      repeated ? reflection->AddInt32(&message, field, *value)
               : reflection->SetInt32(&message, field, *value);
      return absl::OkStatus();
    }
    case pb::FieldDescriptor::CPPTYPE_INT64: {
      auto value = ParseNumber<int64_t>(text, absl::EndsWith(field->name(), "_minor")
                                                  ? "an integer (minor units, e.g. cents)"
                                                  : "an integer");
      if (!value.ok()) return value.status();
      repeated ? reflection->AddInt64(&message, field, *value)
               : reflection->SetInt64(&message, field, *value);
      return absl::OkStatus();
    }
    case pb::FieldDescriptor::CPPTYPE_UINT32: {
      auto value = ParseNumber<uint32_t>(text, "a non-negative integer");
      if (!value.ok()) return value.status();
      repeated ? reflection->AddUInt32(&message, field, *value)
               : reflection->SetUInt32(&message, field, *value);
      return absl::OkStatus();
    }
    case pb::FieldDescriptor::CPPTYPE_UINT64: {
      auto value = ParseNumber<uint64_t>(text, "a non-negative integer");
      if (!value.ok()) return value.status();
      repeated ? reflection->AddUInt64(&message, field, *value)
               : reflection->SetUInt64(&message, field, *value);
      return absl::OkStatus();
    }
    case pb::FieldDescriptor::CPPTYPE_DOUBLE:
    case pb::FieldDescriptor::CPPTYPE_FLOAT: {
      auto value = ParseNumber<double>(text, "a number");
      if (!value.ok()) return value.status();
      if (field->cpp_type() == pb::FieldDescriptor::CPPTYPE_FLOAT) {
        repeated ? reflection->AddFloat(&message, field, static_cast<float>(*value))
                 : reflection->SetFloat(&message, field, static_cast<float>(*value));
      } else {
        repeated ? reflection->AddDouble(&message, field, *value)
                 : reflection->SetDouble(&message, field, *value);
      }
      return absl::OkStatus();
    }
    case pb::FieldDescriptor::CPPTYPE_BOOL: {
      auto value = ParseBool(text);
      if (!value.ok()) return value.status();
      repeated ? reflection->AddBool(&message, field, *value)
               : reflection->SetBool(&message, field, *value);
      return absl::OkStatus();
    }
    case pb::FieldDescriptor::CPPTYPE_ENUM: {
      auto value = ParseEnum(field->enum_type(), text);
      if (!value.ok()) return value.status();
      repeated ? reflection->AddEnum(&message, field, *value)
               : reflection->SetEnum(&message, field, *value);
      return absl::OkStatus();
    }
    case pb::FieldDescriptor::CPPTYPE_MESSAGE: {
      const std::string& type = field->message_type()->full_name();
      pb::Message* target = repeated ? reflection->AddMessage(&message, field)
                                     : reflection->MutableMessage(&message, field);
      target->Clear();
      if (type == kTimestamp) return SetTimestamp(*target, text);
      if (type == kDuration) return SetDuration(*target, text);
      if (type == kFieldMask) return SetFieldMask(*target, text);
      if (type == kDate) return SetDate(*target, text);
      return absl::InvalidArgumentError(absl::StrCat(type, " has no text form"));
    }
  }
  return absl::InvalidArgumentError("unsupported field type");
}

RequestFlags::RequestFlags(const pb::Descriptor* request_type, CLI::App& command,
                           const std::set<std::string>& reserved)
    : request_type_(request_type) {
  // Canonical names first: the request's own fields, then nested ones with their prefix.
  for (int i = 0; i < request_type->field_count(); ++i) {
    const pb::FieldDescriptor* field = request_type->field(i);
    std::string name = KebabCase(field->name());
    if (reserved.contains(name)) name = "request." + name;
    if (field->cpp_type() == pb::FieldDescriptor::CPPTYPE_MESSAGE && !field->is_repeated() &&
        !IsValueMessage(field->message_type())) {
      Collect(field->message_type(), {field}, name + ".");
      continue;
    }
    Collect(nullptr, {field}, name);
  }

  // The main message's fields also without its prefix, where the name is free.
  const pb::FieldDescriptor* main = nullptr;
  int candidates = 0;
  for (int i = 0; i < request_type->field_count(); ++i) {
    const pb::FieldDescriptor* field = request_type->field(i);
    if (field->cpp_type() == pb::FieldDescriptor::CPPTYPE_MESSAGE && !field->is_repeated() &&
        !IsValueMessage(field->message_type())) {
      main = field;
      ++candidates;
    }
  }
  std::set<std::string> taken = reserved;
  for (const FieldFlag& flag : flags_) taken.insert(flag.name);
  if (candidates == 1) {
    for (FieldFlag& flag : flags_) {
      if (flag.path.size() < 2 || flag.path.front() != main) continue;
      std::string alias = flag.name.substr(flag.name.find('.') + 1);
      if (taken.insert(alias).second) flag.alias = std::move(alias);
    }
  }

  for (FieldFlag& flag : flags_) {
    const std::string names =
        flag.alias.empty() ? "--" + flag.name : absl::StrCat("--", flag.alias, ",--", flag.name);
    const pb::FieldDescriptor* field = flag.path.back();
    if (flag.kind == Kind::kBool) {
      flag.option = command.add_flag(names)->description(Describe(field, flag.kind));
    } else {
      flag.option =
          command.add_option(names)
              ->description(Describe(field, flag.kind))
              ->type_name(TypeName(field, flag.kind))
              ->expected(1)
              ->multi_option_policy(field->is_repeated() ? CLI::MultiOptionPolicy::TakeAll
                                                         : CLI::MultiOptionPolicy::TakeLast);
    }
    flag.option->group("Request fields");
  }
}

void RequestFlags::Collect(const pb::Descriptor* type, std::vector<const pb::FieldDescriptor*> path,
                           const std::string& prefix) {
  if (type == nullptr) {  // a leaf: `path` ends at the field, `prefix` is its whole name
    const pb::FieldDescriptor* field = path.back();
    Kind kind = Kind::kValue;
    if (field->is_map()) {
      kind = Kind::kMap;
    } else if (field->cpp_type() == pb::FieldDescriptor::CPPTYPE_MESSAGE &&
               !IsValueMessage(field->message_type())) {
      kind = Kind::kMessageList;
    } else if (field->cpp_type() == pb::FieldDescriptor::CPPTYPE_BOOL && !field->is_repeated()) {
      kind = Kind::kBool;
    }
    flags_.push_back({.name = prefix, .path = std::move(path), .kind = kind});
    return;
  }
  for (int i = 0; i < type->field_count(); ++i) {
    const pb::FieldDescriptor* field = type->field(i);
    std::vector<const pb::FieldDescriptor*> child = path;
    child.push_back(field);
    const std::string name = prefix + KebabCase(field->name());
    if (field->cpp_type() == pb::FieldDescriptor::CPPTYPE_MESSAGE && !field->is_repeated() &&
        !IsValueMessage(field->message_type())) {
      // A message type already on the path recurses: reachable through --json only.
      bool recursive = field->message_type() == request_type_;
      for (const pb::FieldDescriptor* seen : path) {
        recursive |= seen->message_type() == field->message_type();
      }
      if (!recursive) Collect(field->message_type(), std::move(child), name + ".");
      continue;
    }
    Collect(nullptr, std::move(child), name);
  }
}

absl::Status RequestFlags::Fill(const std::string& json, pb::Message& request) const {
  if (!json.empty()) {
    std::string text = json;
    if (text == "-") text.assign(std::istreambuf_iterator<char>(std::cin), {});
    if (auto parsed = pb::util::JsonStringToMessage(text, &request); !parsed.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("--json: not a valid ",
                                                     request_type_->full_name(),
                                                     " in JSON: ", parsed.message().as_string()));
    }
  }
  for (const FieldFlag& flag : flags_) {
    if (flag.option->count() == 0) continue;
    const std::vector<std::string>& values = flag.option->results();
    pb::Message* target = &request;
    for (size_t i = 0; i + 1 < flag.path.size(); ++i) {
      target = target->GetReflection()->MutableMessage(target, flag.path[i]);
    }
    const pb::FieldDescriptor* field = flag.path.back();
    const pb::Reflection* reflection = target->GetReflection();
    auto fail = [&](const absl::Status& status) {
      return absl::InvalidArgumentError(absl::StrCat(flag.Display(), ": ", status.message()));
    };
    switch (flag.kind) {
      case Kind::kValue:
      case Kind::kBool:
        if (field->is_repeated()) {
          reflection->ClearField(target, field);
          for (const std::string& value : values) {
            if (absl::Status set = SetFromText(*target, field, value); !set.ok()) return fail(set);
          }
        } else if (absl::Status set = SetFromText(*target, field, values.back()); !set.ok()) {
          return fail(set);
        }
        break;
      case Kind::kMap: {
        std::map<std::string, std::string> entries;  // the last value of a key wins
        for (const std::string& value : values) {
          auto key_value = KeyValue(value);
          if (!key_value.ok()) return fail(key_value.status());
          entries[key_value->first] = key_value->second;
        }
        reflection->ClearField(target, field);
        const pb::Descriptor* entry_type = field->message_type();
        for (const auto& [key, value] : entries) {
          pb::Message* entry = reflection->AddMessage(target, field);
          if (absl::Status set = SetFromText(*entry, entry_type->map_key(), key); !set.ok()) {
            return fail(set);
          }
          if (entry_type->map_value()->cpp_type() == pb::FieldDescriptor::CPPTYPE_MESSAGE &&
              !IsValueMessage(entry_type->map_value()->message_type())) {
            return fail(absl::InvalidArgumentError("values of this map can only be set in --json"));
          }
          if (absl::Status set = SetFromText(*entry, entry_type->map_value(), value); !set.ok()) {
            return fail(set);
          }
        }
        break;
      }
      case Kind::kMessageList:
        reflection->ClearField(target, field);
        for (const std::string& value : values) {
          pb::Message* element = reflection->AddMessage(target, field);
          if (absl::StartsWith(absl::StripLeadingAsciiWhitespace(value), "{")) {
            if (auto parsed = pb::util::JsonStringToMessage(value, element); !parsed.ok()) {
              return fail(absl::InvalidArgumentError(
                  absl::StrCat("not a valid ", field->message_type()->full_name(),
                               " in JSON: ", parsed.message().as_string())));
            }
          } else if (absl::Status set = SetFromPairs(*element, value); !set.ok()) {
            return fail(set);
          }
        }
        break;
    }
  }
  return absl::OkStatus();
}

std::string RequestFlags::FlagFor(absl::string_view field_path) const {
  std::string path;
  bool in_brackets = false;
  for (char c : field_path) {
    if (c == '[') in_brackets = true;
    if (!in_brackets) path.push_back(c);
    if (c == ']') in_brackets = false;
  }
  // The field itself, else the nearest enclosing field that is a flag (a list element's field).
  while (!path.empty()) {
    for (const FieldFlag& flag : flags_) {
      if (JoinPath(flag.path) == path) return flag.Display();
    }
    const size_t dot = path.rfind('.');
    path.resize(dot == std::string::npos ? 0 : dot);
  }
  return "";
}

}  // namespace crm::crmctl
