// Signed checkpoints of the audit log: the C2SP tlog-checkpoint body (origin, tree size,
// root) wrapped in a C2SP signed note with an Ed25519 signature, so an auditor holding the
// broker's verifier key can check offline what the log committed to.
//
//   CORRIDOR_ASSIGN_OR_RETURN(Ed25519Signer signer,
//                             Ed25519Signer::LoadOrCreate(dir / "audit-key.pem", origin));
//   std::string note = signer.SignNote(CheckpointBody({origin, frontier.size(), frontier.Root()}));
//   ...                                                   // on the auditor's side:
//   CORRIDOR_ASSIGN_OR_RETURN(Checkpoint cp, VerifyCheckpointNote(note, vkey));
//
// Formats: https://c2sp.org/tlog-checkpoint and https://c2sp.org/signed-note (Ed25519,
// signature type 0x01). Base64 and SHA-256 come from OpenSSL.
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "broker/audit/merkle.h"

struct evp_pkey_st;  // OpenSSL's EVP_PKEY, kept out of this header

namespace corridor::broker::audit {

// A tree head: the log `origin` had `size` leaves with root hash `root`.
struct Checkpoint {
  std::string origin;
  uint64_t size = 0;
  Hash root{};
  // Optional opaque lines after the root (non-empty, no newline). Not recommended by
  // C2SP; kept so that checkpoints carrying them still parse.
  std::vector<std::string> extensions;
  friend bool operator==(const Checkpoint&, const Checkpoint&) = default;
};

// OK if `checkpoint` can be written as a checkpoint body: origin non-empty and extension
// lines non-empty, neither containing a newline or another control character, all valid
// UTF-8. INVALID_ARGUMENT naming the field otherwise. Use it on configured origins at
// start-up: CheckpointBody and SignNote assume it holds.
absl::Status ValidateCheckpoint(const Checkpoint& checkpoint);

// "<origin>\n<size>\n<base64 root>\n" followed by one "<extension>\n" per extension.
// Precondition: ValidateCheckpoint(checkpoint) is OK (not checked here).
std::string CheckpointBody(const Checkpoint& checkpoint);

// Parses a checkpoint body (the note text, including its final newline): at least three
// lines, decimal size without leading zeros, a base64 32-byte root, non-empty extension
// lines. INVALID_ARGUMENT naming the line that is wrong.
absl::StatusOr<Checkpoint> ParseCheckpointBody(std::string_view body);

// An Ed25519 signing key with its signed-note key name. Copies share the same key
// (immutable after construction). Thread-safe: SignNote and Sign may run concurrently on
// one object or its copies.
class Ed25519Signer {
 public:
  // Loads a PKCS#8 PEM Ed25519 private key from `key_pem`, or, when the file does not
  // exist, generates one and writes it there with mode 0600: the PEM goes to a new
  // temporary file (O_CREAT | O_EXCL, 0600) in the same directory, is fsynced, then is
  // linked into place with link(2), which never replaces an existing file (if another
  // process created the key first, that key is loaded instead), and the directory is
  // fsynced. The directory must exist. Errors: INVALID_ARGUMENT for a bad key_name or a
  // file that is not an Ed25519 private key; the errno's code (NOT_FOUND,
  // PERMISSION_DENIED, ...) for I/O failures.
  static absl::StatusOr<Ed25519Signer> LoadOrCreate(const std::filesystem::path& key_pem,
                                                    std::string key_name);
  // A fresh in-memory key (tests, tools). INVALID_ARGUMENT for a bad key_name.
  static absl::StatusOr<Ed25519Signer> Generate(std::string key_name);
  // The key with RFC 8032 private key (seed) `seed`, 32 bytes. INVALID_ARGUMENT for a bad
  // key_name or seed length. For known-answer tests and key import.
  static absl::StatusOr<Ed25519Signer> FromSeed(std::string_view seed, std::string key_name);

  // A signed note: body + "\n" + "— <key_name> <base64(key id (4 bytes, big endian) ||
  // signature (64 bytes))>\n". Precondition: `body` is valid note text (non-empty, ends
  // with a newline, valid UTF-8, no control characters other than newline), as
  // CheckpointBody produces for a valid Checkpoint; aborts otherwise (a programming error).
  std::string SignNote(std::string_view body) const;

  // The raw 64-byte Ed25519 signature of `message`.
  std::string Sign(std::string_view message) const;

  // C2SP verifier key: "<key_name>+<8 hex digits of key id>+<base64(0x01 || public key)>".
  std::string VerifierKey() const;
  // The signed-note key name (by C2SP convention, the checkpoint origin).
  const std::string& key_name() const { return key_name_; }
  // First 4 bytes (big endian) of SHA-256(key_name || "\n" || 0x01 || public key).
  uint32_t key_id() const { return key_id_; }
  // The 32-byte RFC 8032 public key.
  const std::array<uint8_t, 32>& public_key() const { return public_key_; }

 private:
  Ed25519Signer(std::shared_ptr<evp_pkey_st> key, std::string key_name);
  static absl::StatusOr<Ed25519Signer> FromKey(std::shared_ptr<evp_pkey_st> key,
                                               std::string key_name);

  std::shared_ptr<evp_pkey_st> key_;
  std::string key_name_;
  std::array<uint8_t, 32> public_key_{};
  uint32_t key_id_ = 0;
};

// Verifies a C2SP signed note against one verifier key (as VerifierKey() formats it) and
// returns its text (including the final newline). Signatures by other keys are ignored,
// as the spec requires. Errors:
//  - INVALID_ARGUMENT: the verifier key is malformed, or the note is (no blank line
//    before the signatures, not UTF-8, a control character, "malformed line N", over 100
//    signatures or 1 MiB);
//  - PERMISSION_DENIED: no signature line by this key ("signed only by unknown keys"),
//    or a signature by this key that does not verify ("bad signature").
// Thread-safe.
absl::StatusOr<std::string> VerifyNote(std::string_view note, std::string_view verifier_key);

// VerifyNote, then ParseCheckpointBody on the verified text. The caller should also check
// that the checkpoint's origin is the log it expects.
absl::StatusOr<Checkpoint> VerifyCheckpointNote(std::string_view note,
                                                std::string_view verifier_key);

}  // namespace corridor::broker::audit
