#include "broker/audit/receipt.h"

#include <algorithm>
#include <array>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "broker/audit/merkle.h"
#include "common/utf8_fields.h"

namespace corridor::broker::audit {
namespace {

constexpr std::array<const char*, 5> kSteps = {kReceiptStepSignature, kReceiptStepCheckpoint,
                                                    kReceiptStepInclusion, kReceiptStepEntry,
                                                    kReceiptStepContent};

// `status` with its message prefixed by the step; INVALID_ARGUMENT stays (malformed input),
// any other code becomes DATA_LOSS (well-formed, but it does not prove what it must).
absl::Status AtStep(const char* step, const absl::Status& status) {
  const absl::StatusCode code = status.code() == absl::StatusCode::kInvalidArgument
                                    ? absl::StatusCode::kInvalidArgument
                                    : absl::StatusCode::kDataLoss;
  return absl::Status(code, absl::StrCat(step, ": ", status.message()));
}

absl::Status Mismatch(const char* field, const std::string& got, const std::string& want) {
  return absl::DataLossError(absl::StrCat(kReceiptStepContent, ": the entry's ", field, " is '",
                                          got, "', expected '", want, "'"));
}

absl::Status CheckContent(const v1::AuditEntry& entry, uint64_t leaf_index,
                          const ReceiptExpectation& expect) {
  if (expect.origin_domain.empty() || expect.origin_exchange_id.empty() ||
      expect.recipient_agency_id.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(kReceiptStepContent, ": expectation.",
                                                   expect.origin_domain.empty() ? "origin_domain"
                                                   : expect.origin_exchange_id.empty()
                                                       ? "origin_exchange_id"
                                                       : "recipient_agency_id",
                                                   " is empty"));
  }
  if (entry.event() != v1::AUDIT_EVENT_COLLECTION) {
    return absl::DataLossError(absl::StrCat(kReceiptStepContent, ": the entry is ",
                                            v1::AuditEvent_Name(entry.event()),
                                            ", not AUDIT_EVENT_COLLECTION"));
  }
  if (entry.index() != leaf_index) {
    return absl::DataLossError(absl::StrCat(kReceiptStepContent, ": the entry's index is ",
                                            entry.index(), " but it is leaf ", leaf_index));
  }
  if (entry.origin().domain() != expect.origin_domain) {
    return Mismatch("origin.domain", entry.origin().domain(), expect.origin_domain);
  }
  if (entry.origin().exchange_id() != expect.origin_exchange_id) {
    return Mismatch("origin.exchange_id", entry.origin().exchange_id(), expect.origin_exchange_id);
  }
  if (entry.recipient_agency_id() != expect.recipient_agency_id) {
    return Mismatch("recipient_agency_id", entry.recipient_agency_id(), expect.recipient_agency_id);
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<VerifiedReceipt> VerifyTransferReceipt(const v1::TransferReceipt& receipt,
                                                      std::string_view peer_verifier_key,
                                                      const ReceiptExpectation& expect) {
  // 1. signature
  absl::StatusOr<std::string> body = VerifyNote(receipt.checkpoint(), peer_verifier_key);
  if (!body.ok()) return AtStep(kReceiptStepSignature, body.status());

  // 2. checkpoint
  VerifiedReceipt out;
  {
    absl::StatusOr<Checkpoint> cp = ParseCheckpointBody(*body);
    if (!cp.ok()) return AtStep(kReceiptStepCheckpoint, cp.status());
    out.checkpoint = *std::move(cp);
  }
  if (!expect.peer_domain.empty() &&
      !absl::StartsWith(out.checkpoint.origin, absl::StrCat(expect.peer_domain, "/"))) {
    return absl::DataLossError(absl::StrCat(kReceiptStepCheckpoint, ": origin '",
                                            out.checkpoint.origin, "' is not a log of domain ",
                                            expect.peer_domain));
  }

  // 3. inclusion
  std::vector<Hash> path;
  path.reserve(receipt.inclusion_path_size());
  for (int i = 0; i < receipt.inclusion_path_size(); ++i) {
    const std::string& h = receipt.inclusion_path(i);
    if (h.size() != Hash().size()) {
      return absl::InvalidArgumentError(absl::StrCat(kReceiptStepInclusion, ": inclusion_path[", i,
                                                     "] is ", h.size(), " bytes, not 32"));
    }
    Hash& hash = path.emplace_back();
    std::copy(h.begin(), h.end(), hash.begin());
  }
  // A path that does not lead to the signed root is a forgery or an alteration, not a
  // malformed receipt: DATA_LOSS, whatever VerifyInclusion's reason.
  if (absl::Status s = VerifyInclusion(receipt.leaf_index(), out.checkpoint.size,
                                       LeafHash(receipt.entry()), path, out.checkpoint.root);
      !s.ok()) {
    return absl::DataLossError(absl::StrCat(kReceiptStepInclusion, ": leaf ", receipt.leaf_index(),
                                            " of the tree of size ", out.checkpoint.size, ": ",
                                            s.message()));
  }

  // 4. entry
  if (!out.entry.ParseFromString(receipt.entry())) {
    std::optional<std::string> field =
        FindInvalidUtf8Field(*v1::AuditEntry::descriptor(), receipt.entry());
    return absl::InvalidArgumentError(
        absl::StrCat(kReceiptStepEntry, ": the entry bytes are not a corridor.v1.AuditEntry",
                     field ? absl::StrCat(" (", *field, ": not valid UTF-8)") : std::string()));
  }

  // 5. content
  if (absl::Status s = CheckContent(out.entry, receipt.leaf_index(), expect); !s.ok()) return s;
  return out;
}

std::string_view ReceiptStepOf(const absl::Status& status) {
  if (status.ok()) return {};
  for (const char* step : kSteps) {
    if (absl::StartsWith(status.message(), absl::StrCat(step, ": "))) return step;
  }
  return {};
}

}  // namespace corridor::broker::audit
