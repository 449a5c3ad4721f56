#include "broker/policy_loader.h"

#include <filesystem>
#include <mutex>

#include "absl/strings/str_cat.h"
#include "certs/pki.h"
#include "policy/bundle.h"
#include "policy/redact.h"

namespace corridor::broker {

// Generated from deploy/policy/*.policy (name, text), ending with {nullptr, nullptr}.
struct EmbeddedPolicyFile {
  const char* name;
  const char* text;
};
extern const EmbeddedPolicyFile kEmbeddedDemoPolicy[];

namespace {

// The need-to-share policy engine behind the core's decision point.
class PolicyDecisionPoint final : public DecisionPoint {
 public:
  explicit PolicyDecisionPoint(std::shared_ptr<const policy::Bundle> bundle)
      : bundle_(std::move(bundle)) {}

  Decision Decide(const v1::Envelope& msg, const policy::Agency& sender,
                  const policy::Agency& recipient, absl::Time now) const override {
    policy::Decision d = bundle_->Decide(msg, sender, recipient, now);
    Decision out;
    out.permit = d.permit;
    out.redact = std::move(d.redact);
    out.permit_rules = std::move(d.permit_rules);
    out.forbid_rules = std::move(d.forbid_rules);
    out.reasons = std::move(d.reasons);
    out.policy_version = std::move(d.policy_version);
    return out;
  }
  absl::StatusOr<std::string> Redact(std::string_view envelope,
                                     const std::vector<std::string>& paths) const override {
    return policy::RedactSerialized(envelope, paths);
  }
  const std::string& version() const override { return bundle_->version(); }

 private:
  const std::shared_ptr<const policy::Bundle> bundle_;
};

}  // namespace

absl::StatusOr<std::shared_ptr<const DecisionPoint>> LoadDecisionPoint(const BrokerConfig& config) {
  if (config.policy_dir.empty()) return MakePermitAllDecisionPoint();
  absl::StatusOr<std::shared_ptr<const policy::Bundle>> bundle;
  if (config.policy_dir == kEmbeddedDemoPolicyDir) {
    std::vector<std::pair<std::string, std::string>> files;
    for (const EmbeddedPolicyFile* f = kEmbeddedDemoPolicy; f->name != nullptr; ++f) {
      files.emplace_back(f->name, f->text);
    }
    bundle = policy::LoadBundleFromSources(files, config.registry);
  } else {
    bundle = policy::LoadBundle(config.policy_dir, config.registry);
  }
  if (!bundle.ok()) return bundle.status();
  return std::make_shared<PolicyDecisionPoint>(*std::move(bundle));
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
  std::error_code ec;
  const bool have_crl =
      config.tls.crl_dir.empty() || (std::filesystem::is_directory(config.tls.crl_dir, ec) &&
                                     !std::filesystem::is_empty(config.tls.crl_dir, ec));
  if (std::filesystem::exists(config.tls.cert) && std::filesystem::exists(config.tls.key) &&
      std::filesystem::exists(config.tls.ca) && have_crl) {
    return absl::OkStatus();
  }
  std::filesystem::path dir = std::filesystem::path(config.tls.cert).parent_path();
  return certs::MakeDevSet(dir, config.registry->trust_domain);
}

}  // namespace corridor::broker
