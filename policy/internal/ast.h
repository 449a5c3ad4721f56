// The syntax tree of a policy file, as the parser produces it and before any
// type checking. Plain values; owned by the loader for the duration of a load.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "policy/internal/source.h"

namespace corridor::policy::internal {

enum class CmpOp { kEq, kNe, kLt, kLe, kGt, kGe, kIn, kContains, kIntersects, kLike };

const char* CmpOpName(CmpOp op);

enum class LitKind {
  kString,    // "…"
  kWord,      // a bare word: secret, B, zs-north, tip_off
  kNumber,    // 3
  kDuration,  // 24h, 90m, 7d, 1h30m
  kBool,      // true, false
};

struct Expr {
  enum class Kind { kAttr, kLiteral, kList, kNot, kAnd, kOr, kHas, kCompare };
  Kind kind;
  Loc loc;  // the whole expression
  // kAttr: the dotted path, e.g. "message.grading.reliability".
  std::string path;
  // kLiteral.
  LitKind lit = LitKind::kString;
  std::string text;  // decoded string / word
  int64_t number = 0;
  absl::Duration duration;
  bool boolean = false;
  // kCompare.
  CmpOp op = CmpOp::kEq;
  Loc op_loc;
  // kNot, kHas: 1; kAnd, kOr: n >= 2; kCompare: 2; kList: its elements.
  std::vector<std::unique_ptr<Expr>> children;
};

struct Selector {
  enum class Kind { kAny, kAgency, kKind, kGroup, kCity, kDomain };
  Kind kind = Kind::kAny;
  std::string value;
  Loc loc;
};

struct Named {
  std::string text;
  Loc loc;
};

enum class Effect { kPermit, kForbid, kAssertNever };

struct RuleAst {
  Effect effect = Effect::kPermit;
  std::string id;
  Loc loc;       // the effect keyword
  Loc id_loc;    // the id
  Loc head_loc;  // from the keyword to the end of the scope
  // Scope; an absent item matches anything.
  bool has_on = false, has_from = false, has_to = false;
  Loc on_loc, from_loc, to_loc;  // each whole scope item
  std::vector<Named> kinds;
  std::vector<Selector> from, to;
  // Clauses, in source order within each list.
  std::vector<std::unique_ptr<Expr>> when, unless;
  std::vector<Named> redact;
  bool has_because = false;
  std::string because;
  Loc because_loc;
};

struct FileAst {
  std::vector<RuleAst> rules;
  bool has_timezone = false;
  Named timezone;
};

}  // namespace corridor::policy::internal
