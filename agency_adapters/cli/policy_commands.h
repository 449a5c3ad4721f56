// corridorctl's `policy …` and `admin …` subcommands.
//
//   corridorctl policy check DIR
//   corridorctl policy explain --from zs-police --to zs-msa --message tip.json [--policy-dir DIR]
//   corridorctl policy test DIR CASES.yaml
//   corridorctl --as admin admin reload-policy
//
// The registry (agencies, handling codes) comes from --config (a broker config)
// or, by default, the embedded demo config. Not thread-safe (one per process).
#pragma once

#include <string>

#include "CLI/CLI.hpp"
#include "agency_adapters/cli/common.h"

namespace corridor::cli {

class PolicyCommands {
 public:
  void Register(CLI::App& app);
  // Runs the parsed subcommand; returns its exit code, or -1 when none of ours was parsed.
  int Run(const ConnectionFlags& conn, bool json);

 private:
  CLI::App* check_ = nullptr;
  CLI::App* explain_ = nullptr;
  CLI::App* test_ = nullptr;
  CLI::App* reload_ = nullptr;
  std::string config_;
  std::string dir_;
  std::string cases_;
  std::string from_, to_, message_;
};

}  // namespace corridor::cli
