// corridor-bridge's input: one protobuf-JSON corridor.v1.Envelope per line.
// Split out of the tool so that tests and the fuzz target
// (tests/fuzz/bridge_line_fuzz.cc) run exactly what `corridor-bridge submit`
// does with a line.
//
//   auto env = ParseEnvelopeLine(line);
//   if (!env.ok()) { /* answer this line with env.status() */ }
//   else if (env->has_value()) { /* submit **env */ }   // nullopt: a blank line
//
// Pure function; thread-safe.
#pragma once

#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "corridor/v1/envelope.pb.h"

namespace corridor::bridge {

// One input line (without its newline). Returns nullopt for a line of only
// spaces, tabs and carriage returns (skipped, not answered); the envelope when
// the line is a protobuf-JSON Envelope (unknown fields refused); otherwise
// INVALID_ARGUMENT "JSON: <parser's message>". The envelope is not validated
// here: the broker does that.
absl::StatusOr<std::optional<v1::Envelope>> ParseEnvelopeLine(const std::string& line);

}  // namespace corridor::bridge
