// Need-to-share policy: a compiled bundle of rules that decides, for one
// message and one candidate recipient, whether the message is shared and
// which payload fields are withheld.
//
//   CORRIDOR_ASSIGN_OR_RETURN(std::shared_ptr<const Bundle> bundle,
//                             LoadBundle("/etc/corridor/policy", registry));
//   Decision d = bundle->Decide(envelope, *registry->Find("zs-police"),
//                               *registry->Find("zs-customs"), absl::Now());
//   if (d.permit) {
//     corridor::v1::Envelope copy = envelope;
//     CORRIDOR_RETURN_IF_ERROR(Redact(&copy, d.redact));  // policy/redact.h
//     ...
//   }
//
// Semantics (policy/README.md has the language): default deny; a matching
// forbid wins over every permit; a message is shared only when at least one
// permit matches; the redacted fields are the union of the matching permits'
// `redact` lists; a condition that cannot be evaluated fails closed (such a
// forbid matches, such a permit does not).
//
// A Bundle is immutable after loading. Decide, DecideInto and Explain are
// thread-safe and do not lock; DecideInto does not allocate once `out` has
// grown to size. Share a bundle as std::shared_ptr<const Bundle>; it keeps its
// Registry alive.
#pragma once

#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "corridor/v1/envelope.pb.h"
#include "policy/registry.h"

namespace corridor::policy {

namespace internal {
struct Program;
}

struct Decision {
  bool permit = false;
  std::vector<std::string> redact;        // payload field paths, sorted, unique
  std::vector<std::string> permit_rules;  // ids of matching permits, in bundle order
  std::vector<std::string> forbid_rules;  // ids of matching forbids, in bundle order
  // The `because` texts of the rules that decided: the matching forbids when
  // one matched, else the matching permits; for a default deny, one fixed text.
  std::vector<std::string> reasons;
  std::string policy_version;  // hex SHA-256 of the bundle, or "permit-all"
};

// The reason given for a default deny.
inline constexpr char kDefaultDenyReason[] = "default deny: no permit rule matched";

// Why one scope item or condition of a rule did not hold.
struct ConditionTrace {
  std::string text;   // its source text, e.g. `message.topic like "smuggling.*"`
  std::string where;  // "demo.policy:14:10"
  // "is false", "cannot be evaluated", "holds (unless)", "does not admit …".
  std::string outcome;
  std::vector<std::string> values;  // the facts it read, e.g. `message.topic = "fishery"`
};

struct RuleTrace {
  std::string id;
  std::string effect;  // "permit" or "forbid"
  std::string where;   // position of the rule
  std::string because;
  bool matched = false;
  bool undetermined = false;  // its condition could not be evaluated (failed closed)
  std::vector<std::string> redact;
  std::vector<ConditionTrace> failed;  // empty when matched
};

// What `corridorctl policy explain` shows.
struct Explanation {
  Decision decision;
  std::string sender, recipient;   // agency ids
  std::vector<RuleTrace> forbids;  // matching forbids
  std::vector<RuleTrace> permits;  // matching permits
  // For a default deny: the permit with the fewest failed scope items and
  // conditions (the first such in bundle order), with what failed.
  std::optional<RuleTrace> nearest_permit;
  // Attribute values of the message and context, e.g. {"message.topic", "\"x\""}.
  std::vector<std::pair<std::string, std::string>> facts;

  std::string Text() const;  // human-readable, several lines
  std::string Json() const;  // one JSON object
};

class Bundle {
 public:
  struct Stats {
    size_t files = 0;
    size_t permits = 0;
    size_t forbids = 0;
    size_t assertions = 0;
    uint64_t assertion_cases = 0;  // cases enumerated to check the assertions
  };

  ~Bundle();
  Bundle(const Bundle&) = delete;
  Bundle& operator=(const Bundle&) = delete;

  // Decides whether `msg` goes from `sender` to `recipient` at `now`. Agencies
  // are looked up by id in the bundle's registry (whose fields then win); an
  // agency the registry does not know is judged by its struct's fields, and
  // values the registry does not know match no selector or literal.
  // Deterministic; thread-safe.
  Decision Decide(const corridor::v1::Envelope& msg, const Agency& sender, const Agency& recipient,
                  absl::Time now) const;
  // As Decide, reusing the storage of *out.
  void DecideInto(const corridor::v1::Envelope& msg, const Agency& sender, const Agency& recipient,
                  absl::Time now, Decision* out) const;
  // As Decide, plus the rules that decided, and for a default deny the
  // nearest permit and what failed. Slower (evaluates every rule); for tools.
  Explanation Explain(const corridor::v1::Envelope& msg, const Agency& sender,
                      const Agency& recipient, absl::Time now) const;

  // Hex SHA-256 over the bundle's file names and contents; "permit-all".
  const std::string& version() const { return version_; }
  const Registry& registry() const { return *registry_; }
  Stats stats() const { return stats_; }
  // Ids of the permits and forbids, in bundle order.
  std::vector<std::string> RuleIds() const;

  // Internal: use LoadBundle / LoadBundleFromSources / PermitAllBundle.
  struct Private {};
  Bundle(Private, std::shared_ptr<const Registry> registry,
         std::unique_ptr<internal::Program> program, std::string version, Stats stats);

 private:
  std::shared_ptr<const Registry> registry_;
  std::unique_ptr<internal::Program> program_;  // null: permit-all
  std::string version_;
  Stats stats_;
};

// Loads every *.policy file in `dir` (not recursive, sorted by name), checks
// and compiles it against `registry`. Fails with NOT_FOUND when `dir` does not
// exist, INVALID_ARGUMENT when it holds no *.policy file or a file fails a
// load-time check (the message then holds every diagnostic, each as
// "file:line:col: error: …", the offending line and a caret), and
// FAILED_PRECONDITION when a file cannot be read. Thread-safe.
absl::StatusOr<std::shared_ptr<const Bundle>> LoadBundle(const std::filesystem::path& dir,
                                                         std::shared_ptr<const Registry> registry);

// As LoadBundle, from (file name, text) pairs (sorted by name before loading).
absl::StatusOr<std::shared_ptr<const Bundle>> LoadBundleFromSources(
    const std::vector<std::pair<std::string, std::string>>& files,
    std::shared_ptr<const Registry> registry);

// A bundle that permits every message between two registered agencies and
// denies any other; version "permit-all". The broker's default when no policy
// dir is configured.
std::shared_ptr<const Bundle> PermitAllBundle(std::shared_ptr<const Registry> registry);

// Hex SHA-256 over (name, text) pairs as a bundle version is computed:
// for each file in the given order, "<len(name)>:<name><len(text)>:<text>".
std::string BundleVersion(const std::vector<std::pair<std::string, std::string>>& files);

}  // namespace corridor::policy
