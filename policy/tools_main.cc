// corridor-policy: the policy tools from the command line, for policy authors
// and tests (corridorctl wires the same functions into `corridorctl policy`).
//
//   corridor-policy check deploy/policy
//   corridor-policy explain deploy/policy --from zs-police --to zs-msa --message tip.json
//   corridor-policy test deploy/policy deploy/policy/tests.yaml
//
// The registry comes from --config (default: deploy/corridord.yaml of the source tree).
#include <iostream>

#include "CLI/CLI.hpp"
#include "absl/time/time.h"
#include "policy/registry.h"
#include "policy/tools.h"
#include "yaml-cpp/yaml.h"

int main(int argc, char** argv) {
  using namespace corridor::policy;
  CLI::App app{"Corridor need-to-share policy tools"};
  std::string config = std::string(CORRIDOR_SOURCE_DIR) + "/deploy/corridord.yaml";
  app.add_option("--config", config, "broker config holding the agency registry");
  app.require_subcommand(1);

  std::string dir, cases, from, to, message, now_text;
  bool json = false;
  auto* check = app.add_subcommand("check", "run the load-time checks on a policy dir");
  check->add_option("DIR", dir, "policy dir")->required();
  auto* explain = app.add_subcommand("explain", "explain the decision for one message");
  explain->add_option("DIR", dir, "policy dir")->required();
  explain->add_option("--from", from, "sending agency id")->required();
  explain->add_option("--to", to, "receiving agency id")->required();
  explain->add_option("--message", message, "corridor.v1.Envelope as JSON")->required();
  explain->add_option("--now", now_text, "decision time, RFC 3339 (default: now)");
  explain->add_flag("--json", json, "print JSON");
  auto* test = app.add_subcommand("test", "run expected decisions from a YAML file");
  test->add_option("DIR", dir, "policy dir")->required();
  test->add_option("CASES", cases, "cases YAML")->required();
  CLI11_PARSE(app, argc, argv);

  std::shared_ptr<const Registry> reg;
  try {
    auto parsed = ParseRegistry(YAML::LoadFile(config));
    if (!parsed.ok()) {
      std::cerr << config << ": " << parsed.status().message() << "\n";
      return kExitUsage;
    }
    reg = std::make_shared<const Registry>(*std::move(parsed));
  } catch (const YAML::Exception& e) {
    std::cerr << config << ": " << e.what() << "\n";
    return kExitUsage;
  }

  if (*check) return PolicyCheck(dir, reg, std::cout, std::cerr);
  if (*explain) {
    std::optional<absl::Time> now;
    if (!now_text.empty()) {
      absl::Time t;
      std::string err;
      if (!absl::ParseTime(absl::RFC3339_full, now_text, &t, &err)) {
        std::cerr << "--now: '" << now_text << "' is not an RFC 3339 time\n";
        return kExitUsage;
      }
      now = t;
    }
    return PolicyExplain(dir, reg, from, to, message, json, now, std::cout, std::cerr);
  }
  return PolicyTest(dir, cases, reg, std::cout, std::cerr);
}
