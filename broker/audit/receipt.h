// Offline verification of a peer exchange's transfer receipt: the evidence that
// another city's broker stored an exchange this broker transferred to it.
//
// The receiving broker records the transfer in its own audit log as an
// AUDIT_EVENT_COLLECTION entry (origin = the sending domain and its exchange
// id, recipient_agency_id = the receiving agency) and returns a
// v1::TransferReceipt: a checkpoint it signed, the entry's leaf index, the
// RFC 9162 inclusion path to that checkpoint's root, and the entry's bytes
// exactly as hashed. With the peer's checkpoint verifier key (C2SP vkey),
// anyone can check the receipt without asking either broker:
//
//   ReceiptExpectation expect{.origin_domain = "zhongshan.corridor",
//                             .origin_exchange_id = "01JF...",
//                             .recipient_agency_id = "zh-police",
//                             .peer_domain = "zhuhai.corridor"};
//   absl::StatusOr<VerifiedReceipt> v = VerifyTransferReceipt(receipt, zhuhai_vkey, expect);
//   if (!v.ok()) { ... ReceiptStepOf(v.status()) names the failed step ... }
//   // v->checkpoint.size, v->checkpoint.root, v->entry.index(): what it proves.
//
// Pure and stateless (no I/O, no clock): thread-safe.
#pragma once

#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "broker/audit/checkpoint.h"
#include "corridor/v1/audit.pb.h"

namespace corridor::broker::audit {

// What a receipt must show: the peer recorded the collection of exchange
// `origin_exchange_id` of `origin_domain` for `recipient_agency_id`.
struct ReceiptExpectation {
  std::string origin_domain;        // the sending trust domain, e.g. "zhongshan.corridor"
  std::string origin_exchange_id;   // the exchange id in the sending domain
  std::string recipient_agency_id;  // the receiving agency, e.g. "zh-police"
  // Optional: the peer's trust domain. When set, the checkpoint's origin line
  // must be "<peer_domain>/<broker id>" (the receipt is from that domain's log).
  std::string peer_domain;
};

// What a verified receipt proves: `entry` is leaf `entry.index()` of the peer's
// log in the tree that `checkpoint` (signed by the peer's key) commits to.
struct VerifiedReceipt {
  Checkpoint checkpoint;
  v1::AuditEntry entry;
};

// The verification steps, in the order they run. Every error of
// VerifyTransferReceipt has the message "<step>: <detail>" with one of them.
inline constexpr char kReceiptStepSignature[] = "signature";
inline constexpr char kReceiptStepCheckpoint[] = "checkpoint";
inline constexpr char kReceiptStepInclusion[] = "inclusion";
inline constexpr char kReceiptStepEntry[] = "entry";
inline constexpr char kReceiptStepContent[] = "content";

// Verifies `receipt` against the peer's verifier key `peer_verifier_key` (the
// vkey text, "<name>+<hex id>+<base64>", as AuditLog::verifier_key() gives it)
// and the expectation. Checks, in this order, and stops at the first failure:
//   1. signature  — receipt.checkpoint is a signed note carrying a valid
//                   signature by that key (signatures by other keys are ignored);
//   2. checkpoint — the signed text is a checkpoint body (origin, size, root)
//                   and, when expect.peer_domain is set, its origin line is
//                   "<peer_domain>/<something>";
//   3. inclusion  — every path element is 32 bytes and SHA-256(0x00 || entry)
//                   is leaf leaf_index of the tree of the checkpoint's size and
//                   root (RFC 9162 §2.1.3.2);
//   4. entry      — the entry bytes parse as a v1::AuditEntry;
//   5. content    — it is an AUDIT_EVENT_COLLECTION whose index is leaf_index,
//                   whose origin.domain, origin.exchange_id and
//                   recipient_agency_id equal the expectation's.
// Returns the checkpoint and the entry on success.
//
// Status codes (the message always starts with the step, e.g.
// "inclusion: computed root 3f2a… does not match root …"):
//  - INVALID_ARGUMENT: something is malformed — the verifier key, the note's
//    syntax, the checkpoint body, a path element that is not 32 bytes, entry
//    bytes that are not an AuditEntry — or an expectation that lacks
//    origin_domain, origin_exchange_id or recipient_agency_id (step "content":
//    an empty expected value would prove nothing).
//  - DATA_LOSS: the receipt is well-formed but does not prove the expectation:
//    the note is not signed by the key (wrong key, forged or altered note),
//    the checkpoint is of another domain's log, the entry is not in the signed
//    tree at leaf_index (altered entry, index or path), or the entry records
//    something else (another exchange or recipient, not a collection).
absl::StatusOr<VerifiedReceipt> VerifyTransferReceipt(const v1::TransferReceipt& receipt,
                                                      std::string_view peer_verifier_key,
                                                      const ReceiptExpectation& expect);

// The step named by a VerifyTransferReceipt error ("signature", "checkpoint",
// "inclusion", "entry" or "content"); empty for OK or any other status.
std::string_view ReceiptStepOf(const absl::Status& status);

}  // namespace corridor::broker::audit
