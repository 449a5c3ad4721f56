// Loading the decision point a broker runs with, and swapping it while running.
//
// Thread-safety: LoadDecisionPoint is pure (reads files). ReloadPolicy may be
// called from any thread; concurrent reloads are serialized.
#pragma once

#include <memory>
#include <string_view>

#include "absl/status/statusor.h"
#include "broker/config.h"
#include "broker/decision_point.h"
#include "broker/exchange_core.h"

namespace corridor::broker {

// broker.policy_dir value that selects the demo policy compiled into the binary
// (deploy/policy/*.policy): what the embedded default config uses.
inline constexpr char kEmbeddedDemoPolicyDir[] = "embedded:demo";

// The configured decision point: need-to-share policy from config.policy_dir
// (or the compiled-in demo policy), or permit-all when it is empty. INVALID_ARGUMENT (with
// file:line:col) for a bundle that fails its load-time checks.
absl::StatusOr<std::shared_ptr<const DecisionPoint>> LoadDecisionPoint(const BrokerConfig& config);

// Loads the bundle again and swaps it in atomically. A bundle that fails to load
// is refused and the running one stays. `who` names the requester for the log.
absl::Status ReloadPolicy(const BrokerConfig& config, ExchangeCore* core, std::string_view who);

// For the embedded demo config: creates the dev certificate set next to
// config.tls.cert when it (or the CRL in config.tls.crl_dir) is missing
// (corridor-certs dev: missing files only). No-op when present.
absl::Status EnsureDemoCertificates(const BrokerConfig& config);

}  // namespace corridor::broker
