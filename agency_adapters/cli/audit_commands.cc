#include "agency_adapters/cli/audit_commands.h"

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <fstream>
#include <iostream>
#include <iterator>
#include <map>
#include <optional>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "broker/audit/checkpoint.h"
#include "broker/audit/merkle.h"
#include "broker/audit/receipt.h"
#include "common/utf8_fields.h"
#include "corridor/v1/audit.grpc.pb.h"
#include "corridor/v1/federation.pb.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/time_util.h"
#include "grpcpp/grpcpp.h"

namespace corridor::cli {
namespace {

namespace audit = corridor::broker::audit;
using google::protobuf::util::TimeUtil;

std::atomic<bool> g_stop_tail{false};

audit::Hash ToHash(const std::string& bytes) {
  audit::Hash h{};
  std::copy_n(bytes.begin(), std::min<size_t>(bytes.size(), h.size()), h.begin());
  return h;
}

std::vector<audit::Hash> ToHashes(const google::protobuf::RepeatedPtrField<std::string>& in) {
  std::vector<audit::Hash> out;
  for (const auto& b : in) out.push_back(ToHash(b));
  return out;
}

std::string Short(const std::string& bytes) {
  static const char* kHex = "0123456789abcdef";
  std::string out;
  for (size_t i = 0; i < bytes.size() && i < 6; ++i) {
    out.push_back(kHex[(bytes[i] >> 4) & 0xf]);
    out.push_back(kHex[bytes[i] & 0xf]);
  }
  return out;
}

std::string FormatEntry(const v1::AuditEntry& e) {
  std::string event = v1::AuditEvent_Name(e.event()).substr(strlen("AUDIT_EVENT_"));
  std::string line = absl::StrCat("#", e.index(), "  ", TimeUtil::ToString(e.broker_time()), "  ",
                                  absl::AsciiStrToLower(event));
  std::string who = e.actor_agency_id().empty()
                        ? e.actor_spiffe_id()
                        : absl::StrCat(e.actor_agency_id(), "/", e.actor_node());
  if (!who.empty()) absl::StrAppend(&line, "  by ", who);
  if (!e.officer_id().empty()) absl::StrAppend(&line, " (officer ", e.officer_id(), ")");
  if (!e.recipient_agency_id().empty()) absl::StrAppend(&line, "  to ", e.recipient_agency_id());
  if (!e.exchange_id().empty()) {
    absl::StrAppend(&line, "\n    ", e.exchange_id(), " (", e.client_message_id(), ") ", e.topic(),
                    " ", e.handling_code());
  }
  if (!e.payload_sha256().empty()) {
    absl::StrAppend(&line, "  payload ", Short(e.payload_sha256()));
    if (!e.delivered_sha256().empty() && e.delivered_sha256() != e.payload_sha256()) {
      absl::StrAppend(&line, " -> ", Short(e.delivered_sha256()));
    }
  }
  if (e.redacted_fields_size() > 0) {
    absl::StrAppend(&line, "\n    withheld: ", absl::StrJoin(e.redacted_fields(), ", "));
  }
  if (e.rule_ids_size() > 0) {
    absl::StrAppend(&line, "\n    rules: ", absl::StrJoin(e.rule_ids(), ", "));
  }
  if (!e.purpose().empty()) absl::StrAppend(&line, "\n    purpose: ", e.purpose());
  if (!e.case_ref().empty()) absl::StrAppend(&line, "  case: ", e.case_ref());
  if (!e.query().empty()) {
    absl::StrAppend(&line, "\n    query ", e.query(), " -> ", e.result_count(), " entries");
  }
  if (!e.new_policy_version().empty()) {
    absl::StrAppend(&line, "\n    policy ", e.old_policy_version().substr(0, 12), " -> ",
                    e.new_policy_version().substr(0, 12));
  }
  if (e.has_redeliveries()) {
    const v1::RedeliverySummary& r = e.redeliveries();
    absl::StrAppend(&line, "\n    subscription ", r.subscription(), ": ", r.count(),
                    " redeliveries of ", r.exchanges_size(), " deliveries (seq ", r.first_seq(),
                    "..", r.last_seq(), ") from ", TimeUtil::ToString(r.first_attempt()), " to ",
                    TimeUtil::ToString(r.last_attempt()));
    for (const v1::RedeliveredExchange& x : r.exchanges()) {
      absl::StrAppend(&line, "\n      #", x.delivery_seq(), " ", x.exchange_id(), " (",
                      x.client_message_id(), ") from ", x.sender_agency_id(), "  ", x.count(),
                      x.count() == 1 ? " time" : " times", ", attempt ", x.first_attempt());
      if (x.last_attempt() != x.first_attempt()) absl::StrAppend(&line, "..", x.last_attempt());
    }
  }
  if (!e.detail().empty()) absl::StrAppend(&line, "\n    ", e.detail());
  return line;
}

// A record as `audit query` and `audit tail` print it: the entry, or, for an
// entry whose stored bytes do not parse, its index, why, and the bytes in hex.
std::string FormatRecord(const v1::AuditEntryRecord& r, bool json) {
  if (r.unreadable().empty()) return json ? ToJson(r.entry()) : FormatEntry(r.entry());
  if (json) return ToJson(r);  // entry (its index), entryBytes (base64), unreadable
  return absl::StrCat("#", r.entry().index(), "  UNREADABLE: ", r.unreadable(), "\n    bytes (",
                      r.entry_bytes().size(), "): ", absl::BytesToHexString(r.entry_bytes()));
}

absl::Status ParseTimeFlag(const std::string& text, const std::string& flag,
                           google::protobuf::Timestamp* out) {
  if (text.empty()) return absl::OkStatus();
  if (!TimeUtil::FromString(text, out)) {
    return absl::InvalidArgumentError(absl::StrCat(flag, ": '", text, "' is not an RFC 3339 time"));
  }
  return absl::OkStatus();
}

class Progress {
 public:
  explicit Progress(const char* what) : what_(what), tty_(isatty(STDERR_FILENO) == 1) {}
  void Update(uint64_t done, uint64_t total) {
    if (!tty_) return;
    const int64_t now_ms = absl::ToUnixMillis(absl::Now());
    if (now_ms - last_ms_ < 200 && done != total) return;
    last_ms_ = now_ms;
    std::cerr << "\r" << what_ << " " << done;
    if (total > 0) std::cerr << "/" << total;
    std::cerr << std::flush;
  }
  ~Progress() {
    if (tty_ && last_ms_ != 0) std::cerr << "\n";
  }

 private:
  const char* what_;
  const bool tty_;
  int64_t last_ms_ = 0;
};

// A verifier key flag's value: a file holding the vkey (its first line), or the
// vkey text itself. NOT_FOUND naming the flag when it is neither.
absl::StatusOr<std::string> ReadVerifierKey(const std::string& flag, const std::string& value) {
  if (std::ifstream f(value); f.good()) {
    std::string vkey;
    std::getline(f, vkey);
    return vkey;
  }
  if (value.find('+') == std::string::npos) {
    return absl::NotFoundError(
        absl::StrCat(flag, ": cannot read ", value, " (give the .vkey file or its text)"));
  }
  return value;
}

// The trust domain of a checkpoint origin "<domain>/<broker id>".
std::string DomainOf(const std::string& origin) { return origin.substr(0, origin.find('/')); }

// What a verified receipt proves, in one sentence.
std::string DescribeReceipt(const audit::VerifiedReceipt& v) {
  const v1::AuditEntry& e = v.entry;
  std::string line = absl::StrCat(DomainOf(v.checkpoint.origin),
                                  " recorded the collection of exchange ", e.origin().exchange_id(),
                                  " of ", e.origin().domain(), " for ", e.recipient_agency_id());
  if (!e.exchange_id().empty()) absl::StrAppend(&line, " (its exchange ", e.exchange_id(), ")");
  if (e.has_broker_time()) absl::StrAppend(&line, " at ", TimeUtil::ToString(e.broker_time()));
  absl::StrAppend(&line, ", leaf ", e.index(), " of its log ", v.checkpoint.origin, ", tree size ",
                  v.checkpoint.size, ", root ", audit::HexOf(v.checkpoint.root));
  return line;
}

// Checks the receipt an AUDIT_EVENT_RECEIPT entry of this log (of domain
// `own_domain`) carries, with the key of its peer domain.
ReceiptCheck CheckReceiptEntry(const v1::AuditEntry& e, const std::string& own_domain,
                               const std::map<std::string, std::string>& peer_keys) {
  ReceiptCheck c;
  c.index = e.index();
  c.peer_domain = e.peer_domain();
  c.exchange_id = e.exchange_id();
  c.recipient_agency_id = e.recipient_agency_id();
  if (e.peer_domain().empty() || !e.has_receipt()) {
    c.outcome = ReceiptCheck::Outcome::kFailed;
    c.detail = e.peer_domain().empty() ? "the receipt entry names no peer_domain"
                                       : "the receipt entry holds no receipt";
    return c;
  }
  auto key = peer_keys.find(e.peer_domain());
  if (key == peer_keys.end()) {
    c.outcome = ReceiptCheck::Outcome::kNoKey;
    c.detail = absl::StrCat("no key given for ", e.peer_domain());
    return c;
  }
  audit::ReceiptExpectation expect;
  expect.origin_domain = e.has_origin() ? e.origin().domain() : own_domain;
  expect.origin_exchange_id = e.has_origin() ? e.origin().exchange_id() : e.exchange_id();
  expect.recipient_agency_id = e.recipient_agency_id();
  expect.peer_domain = e.peer_domain();
  auto v = audit::VerifyTransferReceipt(e.receipt(), key->second, expect);
  if (!v.ok()) {
    c.outcome = ReceiptCheck::Outcome::kFailed;
    c.step = std::string(audit::ReceiptStepOf(v.status()));
    c.detail = std::string(v.status().message());
    return c;
  }
  c.outcome = ReceiptCheck::Outcome::kVerified;
  c.detail = DescribeReceipt(*v);
  return c;
}

std::string_view OutcomeName(ReceiptCheck::Outcome o) {
  switch (o) {
    case ReceiptCheck::Outcome::kVerified:
      return "verified";
    case ReceiptCheck::Outcome::kFailed:
      return "failed";
    case ReceiptCheck::Outcome::kNoKey:
      return "unverified";
  }
  return "failed";
}

google::protobuf::Value StringValue(std::string_view s) {
  google::protobuf::Value v;
  v.set_string_value(std::string(s));
  return v;
}

}  // namespace

absl::Status VerifyExport(std::istream& in, const std::string& verifier_key,
                          const std::function<void(uint64_t)>& progress, uint64_t* entries_verified,
                          bool* complete, uint64_t* unreadable,
                          const std::map<std::string, std::string>& peer_keys,
                          std::vector<ReceiptCheck>* receipts) {
  uint64_t unreadable_entries = 0;
  std::string text;
  uint64_t line_no = 0;
  std::optional<audit::Checkpoint> cp;
  uint64_t entries = 0;
  bool unfiltered = false;
  std::optional<uint64_t> last_index;
  while (std::getline(in, text)) {
    ++line_no;
    if (text.empty()) continue;
    v1::AuditExportLine line;
    if (auto s = FromJson(text, &line); !s.ok()) {
      return absl::DataLossError(
          absl::StrCat("line ", line_no, ": not an export line: ", s.message()));
    }
    if (line.has_checkpoint()) {
      auto verified = audit::VerifyCheckpointNote(line.checkpoint().note(), verifier_key);
      if (!verified.ok()) {
        return absl::Status(
            verified.status().code(),
            absl::StrCat("line ", line_no, ": checkpoint: ", verified.status().message()));
      }
      if (cp) return absl::DataLossError(absl::StrCat("line ", line_no, ": a second checkpoint"));
      cp = *verified;
      const v1::SignedCheckpoint& sc = line.checkpoint();
      if (sc.size() != cp->size || sc.root() != std::string(cp->root.begin(), cp->root.end())) {
        return absl::DataLossError(absl::StrCat(
            "line ", line_no, ": checkpoint: size/root fields differ from the signed note"));
      }
      v1::AuditQuery q = line.query();
      q.clear_limit();
      q.clear_start_index();
      unfiltered = q.ByteSizeLong() == 0;
    } else if (line.has_record()) {
      if (!cp)
        return absl::DataLossError(absl::StrCat("line ", line_no, ": entry before checkpoint"));
      const v1::AuditEntryRecord& r = line.record();
      v1::AuditEntry hashed;
      const bool readable = hashed.ParseFromString(r.entry_bytes());
      uint64_t index = hashed.index();
      if (!readable) {
        // Reported by the broker as unreadable: its proof is for the index the
        // record names (the proof binds bytes to that leaf), which its bytes
        // must hold too when they can be read that far.
        if (r.unreadable().empty()) {
          return absl::DataLossError(absl::StrCat(
              "line ", line_no, ": entry bytes do not parse and the record does not say so"));
        }
        index = r.entry().index();
        std::optional<uint64_t> stored =
            ReadTopLevelVarint(r.entry_bytes(), v1::AuditEntry::kIndexFieldNumber);
        if (stored && *stored != index) {
          return absl::DataLossError(absl::StrCat("line ", line_no, ": unreadable entry ", index,
                                                  ": its bytes hold another index"));
        }
        ++unreadable_entries;
      }
      if (last_index && index <= *last_index) {
        return absl::DataLossError(
            absl::StrCat("line ", line_no, ": entry ", index, " is out of order or repeated"));
      }
      const uint64_t expected = last_index ? *last_index + 1 : 0;
      if (unfiltered && index != expected) {
        return absl::DataLossError(absl::StrCat("line ", line_no, ": entry ", expected,
                                                " is missing from an unfiltered export (next "
                                                "present is ",
                                                index, ")"));
      }
      last_index = index;
      if (readable && r.has_entry() &&
          r.entry().SerializeAsString() != hashed.SerializeAsString()) {
        return absl::DataLossError(
            absl::StrCat("line ", line_no, ": entry ", index,
                         ": the readable copy differs from the hashed bytes"));
      }
      auto s = audit::VerifyInclusion(index, cp->size, audit::LeafHash(r.entry_bytes()),
                                      ToHashes(line.inclusion_proof()), cp->root);
      if (!s.ok()) {
        return absl::DataLossError(absl::StrCat("line ", line_no, ": entry ", index,
                                                " is not in the checkpointed log: ", s.message()));
      }
      if (receipts && readable && hashed.event() == v1::AUDIT_EVENT_RECEIPT) {
        receipts->push_back(CheckReceiptEntry(hashed, DomainOf(cp->origin), peer_keys));
      }
      ++entries;
    } else if (line.has_consistency()) {
      const v1::ConsistencyEvidence& c = line.consistency();
      auto old_cp = audit::VerifyCheckpointNote(c.old_checkpoint().note(), verifier_key);
      auto new_cp = audit::VerifyCheckpointNote(c.new_checkpoint().note(), verifier_key);
      if (!old_cp.ok() || !new_cp.ok()) {
        return absl::PermissionDeniedError(
            absl::StrCat("line ", line_no, ": consistency: checkpoint signature: ",
                         (!old_cp.ok() ? old_cp.status() : new_cp.status()).message()));
      }
      auto s = audit::VerifyConsistency(old_cp->size, new_cp->size, old_cp->root, new_cp->root,
                                        ToHashes(c.hashes()));
      if (!s.ok()) {
        return absl::DataLossError(absl::StrCat("line ", line_no, ": the log of size ",
                                                new_cp->size, " does not extend the one of size ",
                                                old_cp->size, ": ", s.message()));
      }
    } else {
      return absl::DataLossError(absl::StrCat("line ", line_no, ": empty export line"));
    }
    if (progress) progress(line_no);
  }
  if (!cp) return absl::DataLossError("no checkpoint line: not an export");
  if (unfiltered && entries != cp->size) {
    return absl::DataLossError(absl::StrCat("the export ends after ", entries,
                                            " entries but the checkpoint covers ", cp->size,
                                            ": entries are missing"));
  }
  if (entries_verified) *entries_verified = entries;
  if (unreadable) *unreadable = unreadable_entries;
  if (complete) *complete = unfiltered;
  return absl::OkStatus();
}

void AuditCommands::Register(CLI::App& app) {
  auto* audit_app = app.add_subcommand("audit", "query, export, prove and verify the exchange log");
  audit_app->require_subcommand(1);
  auto add_filters = [this](CLI::App* c) {
    c->add_option("--from", from_, "from this time (RFC 3339, inclusive)");
    c->add_option("--to", to_, "to this time (RFC 3339, exclusive)");
    c->add_option("--agency", agency_, "as sender, recipient or actor");
    c->add_option("--officer", officer_, "officer id");
    c->add_option("--exchange", exchange_, "exchange id");
    c->add_option("--message-id", message_id_, "client message id");
    c->add_option("--case-ref", case_ref_, "case reference");
    c->add_option("--event", event_,
                  "collection|disclosure|denial|consultation|redelivery|erasure|policy_change|"
                  "security");
  };
  query_ = audit_app->add_subcommand("query", "entries matching filters, paged by index");
  add_filters(query_);
  query_->add_option("--start", start_, "first entry index (a stable cursor)");
  query_->add_option("--limit", limit_, "entries per page (default 1000)");
  query_->add_flag("--all", all_, "follow every page");
  tail_ = audit_app->add_subcommand("tail", "print new entries as they are appended");
  add_filters(tail_);
  tail_->add_option("--interval", interval_, "seconds between polls")->capture_default_str();
  export_ =
      audit_app->add_subcommand("export", "entries + checkpoint + inclusion proofs, JSON lines");
  add_filters(export_);
  export_->add_option("--out", out_, "file to write (default stdout)");
  export_->add_option("--previous-size", previous_size_,
                      "also prove the checkpoint of this size is a prefix (consistency)");
  prove_ = audit_app->add_subcommand("prove", "an inclusion or consistency proof");
  prove_->add_option("--index", index_, "entry index (inclusion)");
  prove_->add_option("--size", size_, "tree size (default: latest checkpoint)");
  prove_->add_option("--old", old_size_, "older checkpoint size (consistency)");
  prove_->add_option("--new", new_size_, "newer size (default: latest checkpoint)");
  verify_ = audit_app->add_subcommand("verify", "check an export offline against the broker key");
  verify_->add_option("--export", export_file_, "the export (JSON lines)")->required();
  verify_->add_option("--key", key_, "the broker's verifier key: a file, or the vkey text")
      ->required();
  verify_->add_option("--peer-key", peer_keys_,
                      "DOMAIN=VKEY: a peer domain's checkpoint key (a file, or the vkey text), "
                      "to check the receipts recorded from it; repeatable");
  receipt_ = audit_app->add_subcommand(
      "receipt",
      "check one peer receipt offline (JSON of a TransferReceipt, or of an "
      "AuditEntry or ReceiptForTransfer holding one)");
  receipt_->add_option("--receipt", receipt_file_, "the receipt (protobuf JSON)")->required();
  receipt_
      ->add_option("--peer-key", receipt_key_,
                   "the receiving peer's checkpoint key: a file, or the vkey text")
      ->required();
  receipt_->add_option("--exchange", exchange_,
                       "the exchange id in the sending domain (default: from an entry)");
  receipt_->add_option("--origin-domain", origin_domain_,
                       "the sending trust domain (default: from an entry's origin)");
  receipt_->add_option("--recipient", recipient_,
                       "the receiving agency (default: from an entry or ReceiptForTransfer)");
  receipt_->add_option("--peer-domain", peer_domain_,
                       "the receiving trust domain: the checkpoint must be its log (default: "
                       "from an entry)");
}

int AuditCommands::RunReceipt(bool json) {
  auto fail = [](const absl::Status& s, int code) {
    std::cerr << "corridorctl: " << FormatError(s) << "\n";
    return code;
  };
  auto vkey = ReadVerifierKey("--peer-key", receipt_key_);
  if (!vkey.ok()) return fail(vkey.status(), 2);
  std::string text;
  {
    std::ifstream in(receipt_file_);
    if (!in) {
      return fail(absl::NotFoundError(absl::StrCat("--receipt: cannot read ", receipt_file_)), 2);
    }
    text.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  // A TransferReceipt, a ReceiptForTransfer (as a LinkResponse carries it), or an
  // AuditEntry holding one (a RECEIPT entry, as `audit query --json` prints it);
  // the latter two supply the expectation's defaults.
  audit::ReceiptExpectation expect;
  v1::TransferReceipt receipt;
  v1::ReceiptForTransfer rft;
  v1::AuditEntry e;
  if (FromJson(text, &receipt).ok()) {
    // the expectation comes from the flags alone
  } else if (FromJson(text, &rft).ok() && rft.has_receipt()) {
    receipt = rft.receipt();
    expect.origin_exchange_id = rft.origin_exchange_id();
    expect.recipient_agency_id = rft.recipient_agency_id();
  } else if (FromJson(text, &e).ok() && e.has_receipt()) {
    receipt = e.receipt();
    expect.origin_domain = e.origin().domain();
    expect.origin_exchange_id = e.has_origin() ? e.origin().exchange_id() : e.exchange_id();
    expect.recipient_agency_id = e.recipient_agency_id();
    expect.peer_domain = e.peer_domain();
  } else {
    return fail(
        absl::InvalidArgumentError(absl::StrCat("--receipt: ", receipt_file_,
                                                " is not the JSON of a TransferReceipt, or of a "
                                                "ReceiptForTransfer or AuditEntry holding one")),
        2);
  }
  if (!exchange_.empty()) expect.origin_exchange_id = exchange_;
  if (!origin_domain_.empty()) expect.origin_domain = origin_domain_;
  if (!recipient_.empty()) expect.recipient_agency_id = recipient_;
  if (!peer_domain_.empty()) expect.peer_domain = peer_domain_;
  for (const auto& [value, flag] : {std::pair{&expect.origin_exchange_id, "--exchange"},
                                    std::pair{&expect.origin_domain, "--origin-domain"},
                                    std::pair{&expect.recipient_agency_id, "--recipient"}}) {
    if (value->empty()) {
      return fail(absl::InvalidArgumentError(absl::StrCat(
                      flag, ": required (the receipt does not say what it is expected to prove)")),
                  2);
    }
  }

  auto v = audit::VerifyTransferReceipt(receipt, *vkey, expect);
  if (json) {
    google::protobuf::Struct out;
    auto& f = *out.mutable_fields();
    f["verified"].set_bool_value(v.ok());
    if (v.ok()) {
      f["proves"] = StringValue(DescribeReceipt(*v));
      f["peer_log"] = StringValue(v->checkpoint.origin);
      f["tree_size"].set_number_value(static_cast<double>(v->checkpoint.size));
      f["root"] = StringValue(audit::HexOf(v->checkpoint.root));
      f["leaf_index"].set_number_value(static_cast<double>(v->entry.index()));
    } else {
      f["step"] = StringValue(audit::ReceiptStepOf(v.status()));
      f["error"] = StringValue(FormatError(v.status()));
    }
    std::cout << ToJson(out) << "\n";
  } else if (v.ok()) {
    std::cout << "OK: " << DescribeReceipt(*v) << "\n";
  } else {
    std::cout << "FAILED at step " << v.status().message() << " ("
              << absl::StatusCodeToString(v.status().code()) << ")\n";
  }
  return v.ok() ? 0 : 1;
}

int AuditCommands::Run(const ConnectionFlags& conn, bool json) {
  const bool ours = (query_ && query_->parsed()) || (tail_ && tail_->parsed()) ||
                    (export_ && export_->parsed()) || (prove_ && prove_->parsed()) ||
                    (verify_ && verify_->parsed()) || (receipt_ && receipt_->parsed());
  if (!ours) return -1;
  auto fail = [](const absl::Status& s, int code) {
    std::cerr << "corridorctl: " << FormatError(s) << "\n";
    return code;
  };

  if (receipt_->parsed()) return RunReceipt(json);

  if (verify_->parsed()) {
    auto vkey = ReadVerifierKey("--key", key_);
    if (!vkey.ok()) return fail(vkey.status(), 2);
    std::map<std::string, std::string> peer_keys;
    for (const std::string& flag : peer_keys_) {
      const size_t eq = flag.find('=');
      if (eq == std::string::npos || eq == 0 || eq + 1 == flag.size()) {
        return fail(
            absl::InvalidArgumentError(absl::StrCat("--peer-key: '", flag, "' is not DOMAIN=VKEY")),
            2);
      }
      auto peer_vkey = ReadVerifierKey("--peer-key", flag.substr(eq + 1));
      if (!peer_vkey.ok()) return fail(peer_vkey.status(), 2);
      if (!peer_keys.emplace(flag.substr(0, eq), *peer_vkey).second) {
        return fail(absl::InvalidArgumentError(
                        absl::StrCat("--peer-key: ", flag.substr(0, eq), " given twice")),
                    2);
      }
    }
    std::ifstream in(export_file_);
    if (!in)
      return fail(absl::NotFoundError(absl::StrCat("--export: cannot read ", export_file_)), 2);
    Progress progress("verified lines");
    uint64_t verified = 0;
    bool complete = false;
    uint64_t unreadable = 0;
    std::vector<ReceiptCheck> receipts;
    absl::Status s = VerifyExport(
        in, *vkey, [&](uint64_t n) { progress.Update(n, 0); }, &verified, &complete, &unreadable,
        peer_keys, &receipts);
    if (!s.ok()) return fail(s, 1);
    std::map<ReceiptCheck::Outcome, uint64_t> counts;
    for (const ReceiptCheck& r : receipts) ++counts[r.outcome];
    const uint64_t failed = counts[ReceiptCheck::Outcome::kFailed];
    if (json) {
      google::protobuf::ListValue list;
      for (const ReceiptCheck& r : receipts) {
        auto* fields = list.add_values()->mutable_struct_value()->mutable_fields();
        (*fields)["index"].set_number_value(static_cast<double>(r.index));
        (*fields)["peer_domain"] = StringValue(r.peer_domain);
        (*fields)["exchange_id"] = StringValue(r.exchange_id);
        (*fields)["recipient_agency_id"] = StringValue(r.recipient_agency_id);
        (*fields)["outcome"] = StringValue(OutcomeName(r.outcome));
        if (r.outcome == ReceiptCheck::Outcome::kFailed) {
          (*fields)["step"] = StringValue(r.step);
        }
        (*fields)["detail"] = StringValue(r.detail);
      }
      std::cout << "{\"verified_entries\":" << verified << ",\"unreadable_entries\":" << unreadable
                << ",\"complete\":" << (complete ? "true" : "false")
                << ",\"receipts_verified\":" << counts[ReceiptCheck::Outcome::kVerified]
                << ",\"receipts_failed\":" << failed
                << ",\"receipts_unverified\":" << counts[ReceiptCheck::Outcome::kNoKey]
                << ",\"receipts\":" << ToJson(list) << "}\n";
    } else {
      std::cout << "OK: checkpoint signature valid; " << verified << " entries proven included"
                << (unreadable > 0 ? absl::StrCat(" (", unreadable,
                                                  " of them unreadable: their bytes are proven, "
                                                  "their fields cannot be shown)")
                                   : std::string())
                << (complete ? "; the export is complete (no filters)\n"
                             : "; a filtered export: entries its filters left out are not "
                               "accounted for\n");
      for (const ReceiptCheck& r : receipts) {
        std::cout << "receipt #" << r.index << " (exchange " << r.exchange_id << " to "
                  << r.recipient_agency_id << " of " << r.peer_domain << "): ";
        switch (r.outcome) {
          case ReceiptCheck::Outcome::kVerified:
            std::cout << "verified: " << r.detail << "\n";
            break;
          case ReceiptCheck::Outcome::kFailed:
            // A receipt's error starts with its step: "inclusion: …".
            std::cout << (r.step.empty() ? "FAILED: " : "FAILED at step ") << r.detail << "\n";
            break;
          case ReceiptCheck::Outcome::kNoKey:
            std::cout << "unverified: " << r.detail << "\n";
            break;
        }
      }
      if (!receipts.empty()) {
        std::cout << "receipts: " << counts[ReceiptCheck::Outcome::kVerified] << " verified, "
                  << failed << " failed, " << counts[ReceiptCheck::Outcome::kNoKey]
                  << " unverified (no key given for their peer domain)\n";
      } else if (!peer_keys.empty()) {
        std::cout << "receipts: none in this export\n";
      }
    }
    if (failed > 0) {
      std::cerr << "corridorctl: " << failed << (failed == 1 ? " receipt" : " receipts")
                << " failed verification\n";
      return 1;
    }
    return 0;
  }

  v1::AuditQuery q;
  if (auto s = ParseTimeFlag(from_, "--from", q.mutable_from_time()); !s.ok()) return fail(s, 2);
  if (from_.empty()) q.clear_from_time();
  if (auto s = ParseTimeFlag(to_, "--to", q.mutable_to_time()); !s.ok()) return fail(s, 2);
  if (to_.empty()) q.clear_to_time();
  q.set_agency_id(agency_);
  q.set_officer_id(officer_);
  q.set_exchange_id(exchange_);
  q.set_client_message_id(message_id_);
  q.set_case_ref(case_ref_);
  if (!event_.empty()) {
    v1::AuditEvent ev;
    if (!v1::AuditEvent_Parse("AUDIT_EVENT_" + absl::AsciiStrToUpper(event_), &ev)) {
      return fail(absl::InvalidArgumentError(absl::StrCat("--event: unknown '", event_, "'")), 2);
    }
    q.set_event(ev);
  }
  auto opts = ToClientOptions(conn);
  if (!opts.ok()) return fail(opts.status(), 2);
  auto channel = MakeChannel(*opts);
  if (!channel.ok()) return fail(channel.status(), 2);
  auto stub = v1::Audit::NewStub(*channel);

  // One Query call; returns its records and where to continue.
  auto run_query = [&](const v1::AuditQuery& query, std::vector<v1::AuditEntryRecord>* out,
                       v1::AuditQueryResponse* last) -> absl::Status {
    grpc::ClientContext ctx;
    auto reader = stub->Query(&ctx, query);
    v1::AuditQueryResponse page;
    while (reader->Read(&page)) {
      for (auto& r : *page.mutable_records()) out->push_back(std::move(r));
      *last = page;
    }
    return FromGrpcStatus(reader->Finish());
  };

  if (query_->parsed()) {
    q.set_start_index(start_);
    q.set_limit(limit_);
    for (;;) {
      std::vector<v1::AuditEntryRecord> records;
      v1::AuditQueryResponse last;
      if (auto s = run_query(q, &records, &last); !s.ok()) return fail(s, 1);
      for (const auto& r : records) {
        std::cout << FormatRecord(r, json) << "\n";
      }
      if (!last.more_after()) break;
      if (!all_) {
        if (!json) {
          std::cerr << "more: continue with --start " << last.next_start_index() << " (or --all)\n";
        }
        break;
      }
      q.set_start_index(last.next_start_index());
    }
    return 0;
  }

  if (tail_->parsed()) {
    // Start at the log's current end, then poll. Each poll is itself recorded as
    // a consultation; this tail hides its own.
    v1::AuditQuery probe = q;
    probe.set_start_index(UINT64_MAX);
    std::vector<v1::AuditEntryRecord> none;
    v1::AuditQueryResponse last;
    if (auto s = run_query(probe, &none, &last); !s.ok()) return fail(s, 1);
    uint64_t next = last.tree_size();
    signal(SIGINT, [](int) { g_stop_tail.store(true); });
    signal(SIGTERM, [](int) { g_stop_tail.store(true); });
    while (!g_stop_tail.load()) {
      q.set_start_index(next);
      std::vector<v1::AuditEntryRecord> records;
      last.Clear();
      if (auto s = run_query(q, &records, &last); !s.ok()) return fail(s, 1);
      for (const auto& r : records) {
        next = r.entry().index() + 1;
        if (r.entry().event() == v1::AUDIT_EVENT_CONSULTATION && !r.entry().query().empty() &&
            r.entry().actor_spiffe_id().find("/auditor/") != std::string::npos &&
            r.entry().query().find("start_index") != std::string::npos) {
          continue;  // our own polls
        }
        std::cout << FormatRecord(r, json) << "\n" << std::flush;
      }
      // Sleep in small steps so Ctrl-C ends the tail promptly.
      for (int slept = 0;
           !last.more_after() && !g_stop_tail.load() && slept < static_cast<int>(interval_ * 1000);
           slept += 100) {
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
      }
    }
    return 0;
  }

  if (prove_->parsed()) {
    grpc::ClientContext ctx;
    if (old_size_ > 0) {
      v1::ConsistencyProofRequest req;
      req.set_old_size(old_size_);
      req.set_new_size(new_size_);
      v1::ConsistencyProofResponse resp;
      if (auto s = FromGrpcStatus(stub->GetConsistencyProof(&ctx, req, &resp)); !s.ok())
        return fail(s, 1);
      std::cout << ToJson(resp, !json) << "\n";
      return 0;
    }
    v1::InclusionProofRequest req;
    req.set_index(index_);
    req.set_tree_size(size_);
    v1::InclusionProofResponse resp;
    if (auto s = FromGrpcStatus(stub->GetInclusionProof(&ctx, req, &resp)); !s.ok())
      return fail(s, 1);
    std::cout << ToJson(resp, !json) << "\n";
    return 0;
  }

  // export; a failed export leaves no partial file behind.
  std::ofstream file;
  std::ostream* out = &std::cout;
  auto fail_export = [&](const absl::Status& st, int code) {
    if (!out_.empty()) {
      file.close();
      std::remove(out_.c_str());
    }
    return fail(st, code);
  };
  if (!out_.empty()) {
    file.open(out_);
    if (!file) return fail(absl::UnavailableError(absl::StrCat("--out: cannot write ", out_)), 2);
    out = &file;
  }
  v1::SignedCheckpoint cp;
  {
    grpc::ClientContext ctx;
    if (auto s = FromGrpcStatus(stub->GetCheckpoint(&ctx, v1::CheckpointRequest(), &cp)); !s.ok()) {
      return fail_export(s, 1);
    }
  }
  v1::AuditExportLine head;
  *head.mutable_checkpoint() = cp;
  *head.mutable_query() = q;
  *out << ToJson(head) << "\n";
  if (previous_size_ > 0) {
    v1::AuditExportLine line;
    auto* c = line.mutable_consistency();
    grpc::ClientContext ctx1, ctx2;
    v1::CheckpointRequest old_req;
    old_req.set_size(previous_size_);
    if (auto s = FromGrpcStatus(stub->GetCheckpoint(&ctx1, old_req, c->mutable_old_checkpoint()));
        !s.ok()) {
      return fail_export(s, 1);
    }
    *c->mutable_new_checkpoint() = cp;
    v1::ConsistencyProofRequest req;
    req.set_old_size(previous_size_);
    req.set_new_size(cp.size());
    v1::ConsistencyProofResponse resp;
    if (auto s = FromGrpcStatus(stub->GetConsistencyProof(&ctx2, req, &resp)); !s.ok())
      return fail_export(s, 1);
    *c->mutable_hashes() = resp.hashes();
    *out << ToJson(line) << "\n";
  }
  Progress progress("exported entries");
  uint64_t exported = 0;
  q.set_start_index(0);
  q.set_limit(1000);
  for (bool more = true; more;) {
    std::vector<v1::AuditEntryRecord> records;
    v1::AuditQueryResponse last;
    if (auto s = run_query(q, &records, &last); !s.ok()) return fail_export(s, 1);
    more = last.more_after();
    q.set_start_index(last.next_start_index());
    for (auto& r : records) {
      if (r.entry().index() >= cp.size()) {
        more = false;  // beyond the checkpoint: the next export covers it
        break;
      }
      grpc::ClientContext ctx;
      v1::InclusionProofRequest req;
      req.set_index(r.entry().index());
      req.set_tree_size(cp.size());
      v1::InclusionProofResponse proof;
      if (auto s = FromGrpcStatus(stub->GetInclusionProof(&ctx, req, &proof)); !s.ok())
        return fail_export(s, 1);
      v1::AuditExportLine line;
      *line.mutable_record() = std::move(r);
      *line.mutable_inclusion_proof() = proof.hashes();
      *out << ToJson(line) << "\n";
      progress.Update(++exported, cp.size());
    }
  }
  out->flush();
  std::cerr << "exported " << exported << " entries against checkpoint of size " << cp.size()
            << "\n";
  return 0;
}

}  // namespace corridor::cli
