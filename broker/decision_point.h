// The decision point: the one place the core asks "may this message go to this
// recipient, and with what withheld?". Called for each (message, candidate
// recipient) before the commit; its answer is stored with the delivery.
//
// Implementations are immutable and thread-safe; the core holds the current one
// behind an atomic shared_ptr so a reload swaps it without stopping traffic.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "corridor/v1/envelope.pb.h"
#include "policy/registry.h"

namespace corridor::broker {

struct Decision {
  bool permit = false;
  std::vector<std::string> redact;        // payload field paths to withhold
  std::vector<std::string> permit_rules;  // ids of the rules that permitted
  std::vector<std::string> forbid_rules;  // ids of the rules that forbade
  std::vector<std::string> reasons;       // human reasons ("because")
  std::string policy_version;
};

class DecisionPoint {
 public:
  virtual ~DecisionPoint() = default;
  // Decides for one recipient. Must not block; thread-safe.
  virtual Decision Decide(const v1::Envelope& msg, const policy::Agency& sender,
                          const policy::Agency& recipient, absl::Time now) const = 0;
  // Withholds `paths` from a serialized envelope (policy::RedactSerialized):
  // the bytes one recipient gets. INVALID_ARGUMENT for a path the payload
  // does not have.
  virtual absl::StatusOr<std::string> Redact(std::string_view envelope,
                                             const std::vector<std::string>& paths) const = 0;
  virtual const std::string& version() const = 0;
};

// Permits every registered agency and withholds nothing: the broker's decision
// point when no policy is configured.
std::shared_ptr<const DecisionPoint> MakePermitAllDecisionPoint();

}  // namespace corridor::broker
