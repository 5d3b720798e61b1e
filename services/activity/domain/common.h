#pragma once

// What the activity, task and case aggregates share: size limits, the people fields that
// appear in index keys, and sortable time keys.

#include <cstdint>
#include <string>

#include "absl/time/time.h"
#include "crm/common/field_checker.h"

namespace crm::activity {

struct ActivityLimits {
  size_t max_subject = 512;     // activity subject, task title, case subject
  size_t max_body = 64 * 1024;  // activity body (a visit report), task and case descriptions
  size_t max_text = 256;        // owner, assignee, outcome
  size_t max_channel = 64;
  size_t max_note = 16 * 1024;  // one case note
  size_t max_reason = 1024;     // why a task or activity was cancelled, a case reopened
  int max_notes = 1000;         // per case
  int64_t max_duration_seconds = 24 * 3600;
  // How far ahead of the request's business time an activity may be planned, and how far
  // from it a task may be due (either way).
  absl::Duration max_ahead = absl::Hours(24 * 400);
};

// A rep or assignee id: text that becomes part of index keys, so no '/'.
std::string PersonId(FieldChecker& check, const std::string& field, const std::string& value,
                     const ActivityLimits& limits);

// A fixed-width key that sorts like the time (microseconds since year 1).
std::string TimeKey(absl::Time time);
// Sorts in the opposite order: newest first.
std::string InvertedTimeKey(absl::Time time);

}  // namespace crm::activity
