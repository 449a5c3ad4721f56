#include "broker/policy_loader.h"

#include <filesystem>
#include <mutex>

#include "absl/strings/str_cat.h"
#include "certs/pki.h"

namespace corridor::broker {

absl::StatusOr<std::shared_ptr<const DecisionPoint>> LoadDecisionPoint(const BrokerConfig& config) {
  if (config.policy_dir.empty()) return MakePermitAllDecisionPoint();
  return absl::UnimplementedError(
      absl::StrCat("broker.policy_dir: need-to-share policy bundles are not wired in yet (",
                   config.policy_dir, ")"));
}

absl::Status ReloadPolicy(const BrokerConfig& config, ExchangeCore* core, std::string_view who) {
  static std::mutex reload_mu;
  std::lock_guard<std::mutex> lock(reload_mu);
  auto dp = LoadDecisionPoint(config);
  if (!dp.ok()) return dp.status();
  core->SetDecisionPoint(*std::move(dp), std::string(who));
  return absl::OkStatus();
}

absl::Status EnsureDemoCertificates(const BrokerConfig& config) {
  std::filesystem::path dir = std::filesystem::path(config.tls.cert).parent_path();
  if (std::filesystem::exists(config.tls.cert) && std::filesystem::exists(config.tls.key) &&
      std::filesystem::exists(config.tls.ca)) {
    return absl::OkStatus();
  }
  return certs::MakeDevSet(dir, config.registry->trust_domain);
}

}  // namespace corridor::broker
