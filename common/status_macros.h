// Status propagation macros, as Abseil 2022 ships none.
//
//   absl::Status Load(...) {
//     CORRIDOR_RETURN_IF_ERROR(Open(path));
//     CORRIDOR_ASSIGN_OR_RETURN(Config config, Parse(text));
//     ...
//   }
#pragma once

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define CORRIDOR_STATUS_CONCAT_INNER_(a, b) a##b
#define CORRIDOR_STATUS_CONCAT_(a, b) CORRIDOR_STATUS_CONCAT_INNER_(a, b)

// Evaluates `expr` (an absl::Status); returns it from the enclosing function if not OK.
#define CORRIDOR_RETURN_IF_ERROR(expr)                   \
  do {                                                   \
    ::absl::Status corridor_status_ = (expr);            \
    if (!corridor_status_.ok()) return corridor_status_; \
  } while (false)

// Evaluates `rexpr` (an absl::StatusOr<T>); on error returns its status, otherwise
// moves the value into `lhs` (which may be a declaration).
#define CORRIDOR_ASSIGN_OR_RETURN(lhs, rexpr) \
  CORRIDOR_ASSIGN_OR_RETURN_IMPL_(CORRIDOR_STATUS_CONCAT_(corridor_statusor_, __LINE__), lhs, rexpr)
#define CORRIDOR_ASSIGN_OR_RETURN_IMPL_(statusor, lhs, rexpr) \
  auto statusor = (rexpr);                                    \
  if (!statusor.ok()) return std::move(statusor).status();    \
  lhs = std::move(statusor).value()
