#pragma once

// Debian's Abseil (20220623) has no RETURN_IF_ERROR / ASSIGN_OR_RETURN; these are the
// project's single definitions.

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define CRM_STATUS_CONCAT_INNER_(a, b) a##b
#define CRM_STATUS_CONCAT_(a, b) CRM_STATUS_CONCAT_INNER_(a, b)

// Returns the status from the enclosing function when `expr` is not OK.
#define CRM_RETURN_IF_ERROR(expr)                                 \
  do {                                                            \
    if (::absl::Status crm_status_ = (expr); !crm_status_.ok()) { \
      return crm_status_;                                         \
    }                                                             \
  } while (false)

// `CRM_ASSIGN_OR_RETURN(auto x, F());` declares/assigns x from an OK StatusOr, or returns
// its status.
#define CRM_ASSIGN_OR_RETURN(lhs, expr) \
  CRM_ASSIGN_OR_RETURN_IMPL_(CRM_STATUS_CONCAT_(crm_statusor_, __LINE__), lhs, expr)

#define CRM_ASSIGN_OR_RETURN_IMPL_(statusor, lhs, expr) \
  auto statusor = (expr);                               \
  if (!statusor.ok()) {                                 \
    return std::move(statusor).status();                \
  }                                                     \
  lhs = *std::move(statusor)
