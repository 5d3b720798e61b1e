#pragma once

// A request message as command-line flags, derived from its descriptor (nothing per method).
//
// The rule (also in README.md):
//   - Every field of the request is `--<field-name>` in kebab case (`request_id` ->
//     `--request-id`).
//   - The fields of a nested message are `--<field>.<subfield>` (`--contact.given-name`,
//     `--lead.person.email`), at any depth.
//   - The main message: when a request has exactly one singular field of a message type (not
//     counting the value types below), the fields of that message are also accepted without
//     the prefix (`--given-name` for `--contact.given-name`), unless the request itself has a
//     field of that name: the request's own field wins, the nested one keeps its dotted name.
//   - A field whose name is one of crmctl's own flags (`--address`, `--token`, `--json`, ...)
//     is `--request.<name>`.
// Values: repeated fields repeat the flag; enums take their short lower-case name (`won` for
// OPPORTUNITY_STATUS_WON) or the full name; bools are flags (`--x`, `--x=false`); Timestamps
// are RFC 3339 or a date (midnight UTC); Durations `30s`, `1h30m`; FieldMasks comma-separated
// paths; crm.common.v1.Date `YYYY-MM-DD`; maps `key=value`; a repeated message takes one
// element per flag, as JSON or as `field=value,field=value`.

#include <memory>
#include <set>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/message.h"

namespace crm::crmctl {

// "given_name" -> "given-name".
std::string KebabCase(absl::string_view snake);
// "CreateContact" -> "create-contact".
std::string CommandName(absl::string_view camel);

// "won" for OPPORTUNITY_STATUS_WON (the prefix is the enum's name in upper snake case).
std::string EnumShortName(const google::protobuf::EnumValueDescriptor* value);
// Accepts the short name or the full name, any case, '-' for '_'.
absl::StatusOr<const google::protobuf::EnumValueDescriptor*> ParseEnum(
    const google::protobuf::EnumDescriptor* type, absl::string_view text);

// Types given as one value, though they are messages: Timestamp, Duration, FieldMask, Date.
bool IsValueMessage(const google::protobuf::Descriptor* type);

// Sets a singular field, or appends to a repeated one, from its text form. Scalars, enums and
// the value messages only.
absl::Status SetFromText(google::protobuf::Message& message,
                         const google::protobuf::FieldDescriptor* field, absl::string_view text);

// One field (or nested field) as a flag.
struct FieldFlag {
  enum class Kind {
    kValue,        // scalar, enum or value message; repeated: one value per flag
    kBool,         // a flag; `--x=false` sets false
    kMap,          // key=value, one entry per flag
    kMessageList,  // a repeated message: one element per flag, JSON or field=value,...
  };
  std::string name;   // canonical, without "--": "contact.given-name"
  std::string alias;  // "given-name" when the main message's field has one, else empty
  std::vector<const google::protobuf::FieldDescriptor*> path;  // from the request
  Kind kind = Kind::kValue;
  CLI::Option* option = nullptr;

  // The name to show: the short one when there is one.
  std::string Display() const { return "--" + (alias.empty() ? name : alias); }
};

class RequestFlags {
 public:
  // Adds an option to `command` for every field of `request_type`; `reserved` are the
  // command's other flag names (without "--"), which fields must not take.
  RequestFlags(const google::protobuf::Descriptor* request_type, CLI::App& command,
               const std::set<std::string>& reserved);

  // Fills `request`: first `json` (proto3 JSON; "-" reads stdin; empty: none), then every
  // flag given, which replaces what the JSON set (lists and maps as a whole).
  // INVALID_ARGUMENT naming the flag when a value does not parse.
  absl::Status Fill(const std::string& json, google::protobuf::Message& request) const;

  // The flag of a field path from an error ("contact.emails[1]" -> "--emails"), or "".
  std::string FlagFor(absl::string_view field_path) const;

  const std::vector<FieldFlag>& flags() const { return flags_; }

 private:
  void Collect(const google::protobuf::Descriptor* type,
               std::vector<const google::protobuf::FieldDescriptor*> path,
               const std::string& prefix);

  const google::protobuf::Descriptor* request_type_;
  std::vector<FieldFlag> flags_;
};

}  // namespace crm::crmctl
