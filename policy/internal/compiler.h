// Type-checks parsed policy files against the schema (the registry plus the
// Envelope descriptor) and compiles them into a Program.
//
// Every error is reported to `diag` with its position; compilation goes on
// after an error so that one run reports as many as it can. Thread-safe for
// distinct outputs.
#pragma once

#include <vector>

#include "absl/strings/string_view.h"
#include "policy/internal/ast.h"
#include "policy/internal/program.h"
#include "policy/registry.h"

namespace corridor::policy::internal {

// Fills p's vocabularies, agencies, rules, assertions, index and literals.
// `p->sources` must already hold the files the ASTs were parsed from.
void Compile(const std::vector<FileAst>& files, const Registry& registry, Program* p,
             Diagnostics* diag);

// Checks every `assert never` of p by enumerating the registry (sender ×
// recipient × kind × the values of every attribute the relevant rules read).
// Reports each violated assertion with the rules that let the case through.
// Refuses (reports an error) when an assertion needs more than `budget` cases.
void CheckAssertions(Program* p, Diagnostics* diag, uint64_t budget = 20'000'000);

// Levenshtein distance, for "did you mean" suggestions.
size_t EditDistance(absl::string_view a, absl::string_view b);

}  // namespace corridor::policy::internal
