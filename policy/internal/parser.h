// Lexer and recursive-descent parser for the policy language (grammar in
// policy/README.md). Parsing stops at the first syntax error in a file, which
// is reported with its position, the offending token and a caret.
// Pure functions; thread-safe.
#pragma once

#include <string_view>

#include "absl/strings/string_view.h"
#include "policy/internal/ast.h"
#include "policy/internal/source.h"

namespace corridor::policy::internal {

// Parses file `file` of `sources`. On a syntax error reports it to `diag` and
// returns what was parsed before it (callers check diag.has_errors()).
FileAst ParseFile(const SourceSet& sources, uint32_t file, Diagnostics* diag);

// True for words the grammar reserves (they cannot be bare-word literals).
bool IsReservedWord(absl::string_view word);

}  // namespace corridor::policy::internal
