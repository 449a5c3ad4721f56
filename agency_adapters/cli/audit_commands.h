// corridorctl's `audit …` subcommands, for auditors and data-protection officers.
//
//   corridorctl --as auditor audit query --agency zs-police --from 2026-11-29T00:00:00+08:00
//   corridorctl --as auditor audit tail
//   corridorctl --as auditor audit export --out log.jsonl [--previous-size N] [filters]
//   corridorctl --as auditor audit prove --index 17        (or --old M --new N)
//   corridorctl audit verify --export log.jsonl --key broker.vkey      (offline)
//       [--peer-key zhuhai.corridor=zhuhai.vkey ...]   (also check recorded receipts)
//   corridorctl audit receipt --receipt r.json --peer-key zhuhai.vkey --exchange X
//       --origin-domain zhongshan.corridor --recipient zh-police      (offline)
//
// Not thread-safe (one per process).
#pragma once

#include <cstdint>
#include <functional>
#include <istream>
#include <map>
#include <ostream>
#include <string>
#include <vector>

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
//
// Receipts: when `receipts` is not null, every verified AUDIT_EVENT_RECEIPT
// entry's peer receipt is checked too (broker/audit/receipt.h) with the key of
// its peer_domain from `peer_keys` (domain -> vkey text), expecting the peer's
// collection of this log's exchange (origin: the entry's `origin` when set,
// else this log's domain, from the checkpoint origin, and the entry's
// exchange_id) for the entry's recipient_agency_id. Each is reported in
// `*receipts`, in log order; a failed or unchecked receipt does not fail the
// export (the caller decides).
struct ReceiptCheck {
  enum class Outcome { kVerified, kFailed, kNoKey };
  uint64_t index = 0;  // of the RECEIPT entry in this log
  std::string peer_domain, exchange_id, recipient_agency_id;
  Outcome outcome = Outcome::kFailed;
  // kFailed: the receipt verification step that failed ("signature", "checkpoint",
  // "inclusion", "entry", "content"); empty when the entry itself is wrong.
  std::string step;
  // kVerified: what the receipt proves; kFailed: the error, "<step>: <why>"
  // (broker/audit/receipt.h), or what is wrong with the entry itself.
  std::string detail;
};
absl::Status VerifyExport(std::istream& in, const std::string& verifier_key,
                          const std::function<void(uint64_t lines)>& progress,
                          uint64_t* entries_verified, bool* complete,
                          uint64_t* unreadable = nullptr,
                          const std::map<std::string, std::string>& peer_keys = {},
                          std::vector<ReceiptCheck>* receipts = nullptr);

class AuditCommands {
 public:
  void Register(CLI::App& app);
  // Runs the parsed subcommand; returns its exit code, or -1 when none of ours was parsed.
  int Run(const ConnectionFlags& conn, bool json);

 private:
  // `audit receipt`: offline, exit 0 verified, 1 failed, 2 unusable input.
  int RunReceipt(bool json);

  CLI::App* query_ = nullptr;
  CLI::App* tail_ = nullptr;
  CLI::App* export_ = nullptr;
  CLI::App* prove_ = nullptr;
  CLI::App* verify_ = nullptr;
  CLI::App* receipt_ = nullptr;
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
  std::vector<std::string> peer_keys_;  // verify: DOMAIN=VKEY
  std::string receipt_file_, receipt_key_, origin_domain_, recipient_, peer_domain_;
};

}  // namespace corridor::cli
