// The `corridorctl policy …` commands, as functions the CLI calls. Each loads
// what it needs, writes human-readable output (or JSON when asked) to `out`,
// errors to `err`, and returns the process exit code. Thread-safe (no state).
//
//   corridorctl policy check DIR
//   corridorctl policy explain --from A --to B --message FILE.json [--json]
//   corridorctl policy test DIR CASES.yaml
#pragma once

#include <filesystem>
#include <memory>
#include <optional>
#include <ostream>
#include <string_view>

#include "absl/time/time.h"
#include "policy/registry.h"

namespace corridor::policy {

// Exit codes shared by the tools.
inline constexpr int kExitOk = 0;      // check passed / explain: permit / test: all passed
inline constexpr int kExitFailed = 1;  // check refused / explain: deny / test: a mismatch
inline constexpr int kExitUsage = 2;   // bad input: unreadable file, unknown agency, bad YAML

// Runs the load-time checks on every *.policy file in `dir`. Prints a summary
// (rules, assertions, cases enumerated, version) and returns kExitOk, or
// prints every diagnostic to `err` and returns kExitFailed.
int PolicyCheck(const std::filesystem::path& dir, std::shared_ptr<const Registry> reg,
                std::ostream& out, std::ostream& err);

// Decides one message (protobuf JSON mapping of corridor.v1.Envelope, read
// from `message_json`) from agency `from` to agency `to` and prints the
// decision, the rules that made it and their `because` texts; for a default
// deny, the nearest permit and the condition that failed. `now` defaults to
// the current time. Returns kExitOk for permit, kExitFailed for deny,
// kExitUsage when the bundle, the message or an agency cannot be loaded.
int PolicyExplain(const std::filesystem::path& dir, std::shared_ptr<const Registry> reg,
                  std::string_view from, std::string_view to,
                  const std::filesystem::path& message_json, bool json, std::ostream& out,
                  std::ostream& err);
int PolicyExplain(const std::filesystem::path& dir, std::shared_ptr<const Registry> reg,
                  std::string_view from, std::string_view to,
                  const std::filesystem::path& message_json, bool json,
                  std::optional<absl::Time> now, std::ostream& out, std::ostream& err);

// Runs the test cases in `cases_yaml` (format in policy/README.md) against the
// bundle in `dir`: each case gives a message, a sender, one or more
// recipients and the expected decision (permit or deny), and optionally the
// exact redactions and rule ids. Prints one line per failure and a summary
// with the rules no case exercised. Returns kExitOk when every case passes,
// kExitFailed on a mismatch, kExitUsage when the bundle or the cases cannot be
// loaded.
int PolicyTest(const std::filesystem::path& dir, const std::filesystem::path& cases_yaml,
               std::shared_ptr<const Registry> reg, std::ostream& out, std::ostream& err);

}  // namespace corridor::policy
