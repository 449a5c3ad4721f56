#include "agency_adapters/cli/policy_commands.h"

#include <iostream>

#include "absl/strings/str_cat.h"
#include "broker/config.h"
#include "grpcpp/grpcpp.h"
#include "policy/tools.h"

namespace corridor::cli {
namespace {

absl::StatusOr<broker::BrokerConfig> LoadConfig(const std::string& path) {
  return path.empty() ? broker::EmbeddedDefaultConfig() : broker::LoadConfigFile(path);
}

}  // namespace

void PolicyCommands::Register(CLI::App& app) {
  auto* policy = app.add_subcommand("policy", "check, explain and test need-to-share policy");
  policy->require_subcommand(1);
  policy->add_option("--config", config_,
                     "broker config whose registry the policy speaks of (default: embedded demo)");
  check_ = policy->add_subcommand("check", "run the load-time checks on a policy directory");
  check_->add_option("dir", dir_, "directory of *.policy files")->required();
  explain_ = policy->add_subcommand("explain", "why a message would (not) go from A to B");
  explain_->add_option("--from", from_, "sender agency id")->required();
  explain_->add_option("--to", to_, "recipient agency id")->required();
  explain_->add_option("--message", message_, "Envelope as protobuf JSON")->required();
  explain_->add_option("--policy-dir", dir_, "policy directory (default: the config's)");
  test_ = policy->add_subcommand("test", "run expected decisions (YAML) against a policy");
  test_->add_option("dir", dir_, "directory of *.policy files")->required();
  test_->add_option("cases", cases_, "cases YAML")->required();

  auto* admin = app.add_subcommand("admin", "operator commands (admin certificate)");
  admin->require_subcommand(1);
  reload_ = admin->add_subcommand("reload-policy",
                                  "reload the broker's policy bundle (a bad one is refused)");
}

int PolicyCommands::Run(const ConnectionFlags& conn, bool json) {
  if (reload_ != nullptr && reload_->parsed()) {
    auto opts = ToClientOptions(conn);
    if (!opts.ok()) {
      std::cerr << "corridorctl: " << FormatError(opts.status()) << "\n";
      return 2;
    }
    auto client = AgencyClient::Connect(*opts);
    if (!client.ok()) {
      std::cerr << "corridorctl: " << FormatError(client.status()) << "\n";
      return 1;
    }
    grpc::ClientContext ctx;
    v1::ReloadPolicyResponse reply;
    grpc::Status s = (*client)->admin_stub()->ReloadPolicy(&ctx, v1::ReloadPolicyRequest(), &reply);
    if (!s.ok()) {
      std::cerr << "corridorctl: reload refused: " << s.error_message() << "\n";
      return 1;
    }
    std::cout << (json ? ToJson(reply) + "\n"
                       : absl::StrCat("policy reloaded: ", reply.old_version(), " -> ",
                                      reply.new_version(), "\n"));
    return 0;
  }
  bool ours = (check_ && check_->parsed()) || (explain_ && explain_->parsed()) ||
              (test_ && test_->parsed());
  if (!ours) return -1;
  auto config = LoadConfig(config_);
  if (!config.ok()) {
    std::cerr << "corridorctl: " << FormatError(config.status()) << "\n";
    return 2;
  }
  if (check_->parsed()) return policy::PolicyCheck(dir_, config->registry, std::cout, std::cerr);
  if (test_->parsed()) {
    return policy::PolicyTest(dir_, cases_, config->registry, std::cout, std::cerr);
  }
  std::string dir = dir_.empty() ? config->policy_dir : dir_;
  if (dir.empty()) {
    std::cerr << "corridorctl: --policy-dir: required (the config names no policy_dir)\n";
    return 2;
  }
  return policy::PolicyExplain(dir, config->registry, from_, to_, message_, json, std::cout,
                               std::cerr);
}

}  // namespace corridor::cli
