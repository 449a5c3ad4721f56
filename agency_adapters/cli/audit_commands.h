// corridorctl's `audit …` subcommands, for auditors and data-protection officers.
//
//   corridorctl --as auditor audit query --agency zs-police --from 2026-11-29T00:00:00+08:00
//   corridorctl --as auditor audit tail
//   corridorctl --as auditor audit export --out log.jsonl [--previous-size N] [filters]
//   corridorctl --as auditor audit prove --index 17        (or --old M --new N)
//   corridorctl audit verify --export log.jsonl --key broker.vkey      (offline)
//
// Not thread-safe (one per process).
#pragma once

#include <istream>
#include <ostream>
#include <string>

#include "CLI/CLI.hpp"
#include "absl/status/status.h"
#include "agency_adapters/cli/common.h"
#include "corridor/v1/audit.pb.h"

namespace corridor::cli {

// Checks an export offline against the broker's verifier key (C2SP vkey text):
// the checkpoint signature, every entry's inclusion in it, that each entry's
// readable copy matches its hashed bytes, and any consistency evidence. Returns
// the first failure, naming the line, entry index or step. `progress` (may be
// null) is told about each verified line.
// An export without filters must hold every entry below the checkpoint's size
// (`*complete` = true); a filtered one cannot prove completeness (false).
// An entry whose bytes do not parse as an AuditEntry (the export marks it
// `unreadable`) is verified like any other: its leaf hash is over its stored
// bytes, its index is the one its proof is for (and the one its bytes hold,
// when they hold one); it is counted in `*entries_verified` and, when
// `unreadable` is not null, in `*unreadable`.
absl::Status VerifyExport(std::istream& in, const std::string& verifier_key,
                          const std::function<void(uint64_t lines)>& progress,
                          uint64_t* entries_verified, bool* complete,
                          uint64_t* unreadable = nullptr);

class AuditCommands {
 public:
  void Register(CLI::App& app);
  // Runs the parsed subcommand; returns its exit code, or -1 when none of ours was parsed.
  int Run(const ConnectionFlags& conn, bool json);

 private:
  CLI::App* query_ = nullptr;
  CLI::App* tail_ = nullptr;
  CLI::App* export_ = nullptr;
  CLI::App* prove_ = nullptr;
  CLI::App* verify_ = nullptr;
  std::string from_, to_, agency_, officer_, exchange_, message_id_, case_ref_, event_;
  uint64_t start_ = 0;
  uint32_t limit_ = 0;
  bool all_ = false;
  double interval_ = 5;  // each poll is itself an audit entry
  std::string out_;
  uint64_t previous_size_ = 0;
  uint64_t index_ = 0, size_ = 0, old_size_ = 0, new_size_ = 0;
  bool has_index_ = false;
  std::string export_file_, key_;
};

}  // namespace corridor::cli
