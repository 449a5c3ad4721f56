#include "broker/audit/checkpoint.h"

#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <optional>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "broker/audit/internal/crypto_util.h"
#include "common/status_macros.h"
#include "common/utf8.h"

namespace corridor::broker::audit {
namespace {

using internal::AsView;
using internal::CheckOrDie;

constexpr uint8_t kEd25519Type = 0x01;
constexpr std::string_view kSignaturePrefix = "\xE2\x80\x94 ";  // U+2014 em dash, space
constexpr size_t kMaxNoteBytes = 1 << 20;
constexpr size_t kMaxSignatures = 100;
constexpr size_t kMaxKeyFileBytes = 64 << 10;

// absl::string_view is not std::string_view in this Abseil build.
absl::string_view Absl(std::string_view s) { return absl::string_view(s.data(), s.size()); }

struct PkeyDeleter {
  void operator()(EVP_PKEY* key) const { EVP_PKEY_free(key); }
};
struct MdCtxDeleter {
  void operator()(EVP_MD_CTX* ctx) const { EVP_MD_CTX_free(ctx); }
};
struct BioDeleter {
  void operator()(BIO* bio) const { BIO_free(bio); }
};
using UniquePkey = std::unique_ptr<EVP_PKEY, PkeyDeleter>;
using UniqueMdCtx = std::unique_ptr<EVP_MD_CTX, MdCtxDeleter>;
using UniqueBio = std::unique_ptr<BIO, BioDeleter>;

std::shared_ptr<evp_pkey_st> Share(UniquePkey key) {
  return std::shared_ptr<evp_pkey_st>(key.release(), PkeyDeleter());
}

// Wipes a string that held key material before it is freed.
struct Cleansed {
  std::string bytes;
  ~Cleansed() { OPENSSL_cleanse(bytes.data(), bytes.size()); }
};

// Why `line` cannot be a line of note text (nullopt if it can): valid UTF-8, no control
// characters (the newline is the separator and never part of `line`).
std::optional<std::string> LineProblem(std::string_view line) {
  for (char c : line) {
    if (static_cast<uint8_t>(c) < 0x20 || c == 0x7F) return "control character";
  }
  if (!corridor::IsValidUtf8(line)) return "not valid UTF-8";
  return std::nullopt;
}

// Splits text that ends with '\n' into its lines (without the newlines).
std::vector<std::string_view> SplitLines(std::string_view text) {
  std::vector<std::string_view> lines;
  size_t start = 0;
  while (start < text.size()) {
    const size_t newline = text.find('\n', start);
    lines.push_back(text.substr(start, newline - start));
    start = newline + 1;
  }
  return lines;
}

uint32_t ComputeKeyId(std::string_view name, const std::array<uint8_t, 32>& public_key) {
  const char type = static_cast<char>(kEd25519Type);
  const Hash digest = internal::Sha256(
      {name, std::string_view("\n", 1), std::string_view(&type, 1), AsView(public_key)});
  return uint32_t{digest[0]} << 24 | uint32_t{digest[1]} << 16 | uint32_t{digest[2]} << 8 |
         uint32_t{digest[3]};
}

std::string KeyIdHex(uint32_t key_id) {
  const char bytes[4] = {static_cast<char>(key_id >> 24), static_cast<char>(key_id >> 16),
                         static_cast<char>(key_id >> 8), static_cast<char>(key_id)};
  return internal::HexEncode(std::string_view(bytes, 4));
}

// A parsed C2SP verifier key of type Ed25519.
struct VerifierKeyParts {
  std::string name;
  uint32_t key_id = 0;
  std::array<uint8_t, 32> public_key{};
};

absl::StatusOr<VerifierKeyParts> ParseVerifierKey(std::string_view vkey) {
  // <name>+<hex key id>+<base64(type || key)>; the name has no '+', the base64 may.
  const size_t plus1 = vkey.find('+');
  const size_t plus2 = plus1 == std::string_view::npos ? plus1 : vkey.find('+', plus1 + 1);
  if (plus2 == std::string_view::npos) {
    return absl::InvalidArgumentError("verifier key: expected <name>+<key id>+<key>");
  }
  VerifierKeyParts parts;
  parts.name = std::string(vkey.substr(0, plus1));
  if (!internal::IsValidKeyName(parts.name)) {
    return absl::InvalidArgumentError("verifier key: invalid key name");
  }
  const std::string_view hex = vkey.substr(plus1 + 1, plus2 - plus1 - 1);
  if (hex.size() != 8) {
    return absl::InvalidArgumentError("verifier key: key id is not 8 hex digits");
  }
  for (char c : hex) {
    int digit;
    if (c >= '0' && c <= '9') {
      digit = c - '0';
    } else if (c >= 'a' && c <= 'f') {
      digit = c - 'a' + 10;
    } else if (c >= 'A' && c <= 'F') {
      digit = c - 'A' + 10;
    } else {
      return absl::InvalidArgumentError("verifier key: key id is not 8 hex digits");
    }
    parts.key_id = parts.key_id << 4 | static_cast<uint32_t>(digit);
  }
  const std::optional<std::string> key = internal::Base64Decode(vkey.substr(plus2 + 1));
  if (!key.has_value()) {
    return absl::InvalidArgumentError("verifier key: key is not valid base64");
  }
  if (key->empty() || static_cast<uint8_t>((*key)[0]) != kEd25519Type) {
    return absl::InvalidArgumentError(
        "verifier key: unsupported signature type (only Ed25519, 0x01)");
  }
  if (key->size() != 1 + parts.public_key.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("verifier key: Ed25519 key of ", key->size() - 1, " bytes, expected 32"));
  }
  std::copy(key->begin() + 1, key->end(), parts.public_key.begin());
  if (ComputeKeyId(parts.name, parts.public_key) != parts.key_id) {
    return absl::InvalidArgumentError("verifier key: key id does not match the name and key");
  }
  return parts;
}

bool VerifyEd25519(const std::array<uint8_t, 32>& public_key, std::string_view message,
                   std::string_view signature) {
  if (signature.size() != 64) return false;
  UniquePkey key(
      EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nullptr, public_key.data(), public_key.size()));
  UniqueMdCtx ctx(EVP_MD_CTX_new());
  if (key == nullptr || ctx == nullptr) return false;
  if (EVP_DigestVerifyInit(ctx.get(), nullptr, nullptr, nullptr, key.get()) != 1) return false;
  return EVP_DigestVerify(ctx.get(), reinterpret_cast<const unsigned char*>(signature.data()),
                          signature.size(), reinterpret_cast<const unsigned char*>(message.data()),
                          message.size()) == 1;
}

// ---- Key file I/O ----------------------------------------------------------------------

absl::Status ErrnoError(int error, std::string_view what, const std::filesystem::path& path) {
  return absl::ErrnoToStatus(error, absl::StrCat(Absl(what), " ", path.string()));
}

// Reads `path`; nullopt (with no error) if it does not exist.
absl::StatusOr<std::optional<Cleansed>> ReadKeyFile(const std::filesystem::path& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return std::optional<Cleansed>();
    return ErrnoError(errno, "opening audit signing key", path);
  }
  std::optional<Cleansed> contents(std::in_place);
  char buffer[4096];
  while (true) {
    const ssize_t n = ::read(fd, buffer, sizeof(buffer));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int error = errno;
      ::close(fd);
      return ErrnoError(error, "reading audit signing key", path);
    }
    if (n == 0) break;
    contents->bytes.append(buffer, static_cast<size_t>(n));
    if (contents->bytes.size() > kMaxKeyFileBytes) {
      ::close(fd);
      return absl::InvalidArgumentError(
          absl::StrCat("audit signing key ", path.string(), " is larger than 64 KiB"));
    }
  }
  OPENSSL_cleanse(buffer, sizeof(buffer));
  ::close(fd);
  return contents;
}

absl::StatusOr<UniquePkey> ParsePrivateKeyPem(std::string_view pem,
                                              const std::filesystem::path& path) {
  UniqueBio bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  CheckOrDie(bio != nullptr, "BIO_new_mem_buf failed");
  // A callback that supplies no passphrase, so an encrypted key fails instead of prompting.
  pem_password_cb* no_passphrase = [](char*, int, int, void*) { return 0; };
  UniquePkey key(PEM_read_bio_PrivateKey(bio.get(), nullptr, no_passphrase, nullptr));
  if (key == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat("audit signing key ", path.string(),
                                                   " is not an unencrypted PEM private key"));
  }
  if (EVP_PKEY_get_id(key.get()) != EVP_PKEY_ED25519) {
    return absl::InvalidArgumentError(
        absl::StrCat("audit signing key ", path.string(), " is not an Ed25519 key"));
  }
  return key;
}

absl::StatusOr<UniquePkey> NewEd25519Key() {
  UniquePkey key(EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519"));
  if (key == nullptr) return absl::InternalError("Ed25519 key generation failed");
  return key;
}

Cleansed PrivateKeyPem(EVP_PKEY* key) {
  UniqueBio bio(BIO_new(BIO_s_mem()));
  CheckOrDie(bio != nullptr, "BIO_new failed");
  CheckOrDie(PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr) == 1,
             "PEM_write_bio_PrivateKey failed");
  char* data = nullptr;
  const long size = BIO_get_mem_data(bio.get(), &data);
  CheckOrDie(size > 0 && data != nullptr, "BIO_get_mem_data failed");
  Cleansed pem{std::string(data, static_cast<size_t>(size))};
  OPENSSL_cleanse(data, static_cast<size_t>(size));
  return pem;
}

absl::Status WriteAll(int fd, std::string_view bytes) {
  while (!bytes.empty()) {
    const ssize_t n = ::write(fd, bytes.data(), bytes.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return absl::ErrnoToStatus(errno, "write");
    bytes.remove_prefix(static_cast<size_t>(n));
  }
  return absl::OkStatus();
}

// Writes `pem` to a fresh 0600 temporary file next to `path` and links it to `path`.
// Returns false (and no error) if `path` already exists.
absl::StatusOr<bool> PublishKeyFile(const std::filesystem::path& path, std::string_view pem) {
  unsigned char nonce[8];
  CheckOrDie(RAND_bytes(nonce, sizeof(nonce)) == 1, "RAND_bytes failed");
  std::filesystem::path tmp = path;
  tmp += absl::StrCat(".tmp.", ::getpid(), ".",
                      internal::HexEncode(std::string_view(reinterpret_cast<char*>(nonce), 8)));
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) return ErrnoError(errno, "creating", tmp);
  absl::Status status;
  if (::fchmod(fd, 0600) != 0) status = ErrnoError(errno, "chmod", tmp);
  if (status.ok()) status = WriteAll(fd, pem);
  if (status.ok() && ::fsync(fd) != 0) status = ErrnoError(errno, "fsync", tmp);
  if (::close(fd) != 0 && status.ok()) status = ErrnoError(errno, "closing", tmp);
  if (!status.ok()) {
    ::unlink(tmp.c_str());
    return status;
  }
  // link(2) fails with EEXIST rather than replacing a key another process wrote first.
  const int link_result = ::link(tmp.c_str(), path.c_str());
  const int link_error = errno;
  ::unlink(tmp.c_str());
  if (link_result != 0) {
    if (link_error == EEXIST) return false;
    return ErrnoError(link_error, "linking the new audit signing key to", path);
  }
  std::filesystem::path dir = path.parent_path();
  if (dir.empty()) dir = ".";
  const int dir_fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir_fd < 0) return ErrnoError(errno, "opening directory", dir);
  const bool synced = ::fsync(dir_fd) == 0;
  const int sync_error = errno;
  ::close(dir_fd);
  if (!synced) return ErrnoError(sync_error, "fsync directory", dir);
  return true;
}

}  // namespace

// ---- Checkpoint body -------------------------------------------------------------------

absl::Status ValidateCheckpoint(const Checkpoint& checkpoint) {
  if (checkpoint.origin.empty()) return absl::InvalidArgumentError("checkpoint origin is empty");
  if (std::optional<std::string> problem = LineProblem(checkpoint.origin)) {
    return absl::InvalidArgumentError(absl::StrCat("checkpoint origin: ", *problem));
  }
  for (size_t i = 0; i < checkpoint.extensions.size(); ++i) {
    const std::string& extension = checkpoint.extensions[i];
    if (extension.empty()) {
      return absl::InvalidArgumentError(absl::StrCat("checkpoint extension ", i, " is empty"));
    }
    if (std::optional<std::string> problem = LineProblem(extension)) {
      return absl::InvalidArgumentError(absl::StrCat("checkpoint extension ", i, ": ", *problem));
    }
  }
  return absl::OkStatus();
}

std::string CheckpointBody(const Checkpoint& checkpoint) {
  std::string body = absl::StrCat(checkpoint.origin, "\n", checkpoint.size, "\n",
                                  internal::Base64Encode(AsView(checkpoint.root)), "\n");
  for (const std::string& extension : checkpoint.extensions)
    absl::StrAppend(&body, extension, "\n");
  return body;
}

absl::StatusOr<Checkpoint> ParseCheckpointBody(std::string_view body) {
  if (body.empty() || body.back() != '\n') {
    return absl::InvalidArgumentError("checkpoint: body does not end with a newline");
  }
  const std::vector<std::string_view> lines = SplitLines(body);
  if (lines.size() < 3) {
    return absl::InvalidArgumentError(
        absl::StrCat("checkpoint: ", lines.size(), " lines, expected at least 3"));
  }
  for (size_t i = 0; i < lines.size(); ++i) {
    if (lines[i].empty()) {
      return absl::InvalidArgumentError(absl::StrCat("checkpoint line ", i + 1, " is empty"));
    }
    if (std::optional<std::string> problem = LineProblem(lines[i])) {
      return absl::InvalidArgumentError(absl::StrCat("checkpoint line ", i + 1, ": ", *problem));
    }
  }
  Checkpoint checkpoint;
  checkpoint.origin = std::string(lines[0]);

  const std::string_view size = lines[1];
  const bool leading_zero = size.size() > 1 && size[0] == '0';
  if (size.size() > 20 || leading_zero) {
    return absl::InvalidArgumentError("checkpoint line 2 (tree size) is not a canonical decimal");
  }
  for (char c : size) {
    if (c < '0' || c > '9') {
      return absl::InvalidArgumentError("checkpoint line 2 (tree size) is not a decimal number");
    }
    const uint64_t digit = static_cast<uint64_t>(c - '0');
    if (checkpoint.size > (UINT64_MAX - digit) / 10) {
      return absl::InvalidArgumentError("checkpoint line 2 (tree size) overflows 64 bits");
    }
    checkpoint.size = checkpoint.size * 10 + digit;
  }

  const std::optional<std::string> root = internal::Base64Decode(lines[2]);
  if (!root.has_value() || root->size() != checkpoint.root.size()) {
    return absl::InvalidArgumentError(
        "checkpoint line 3 (root hash) is not the base64 of 32 bytes");
  }
  std::copy(root->begin(), root->end(), checkpoint.root.begin());
  for (size_t i = 3; i < lines.size(); ++i) checkpoint.extensions.emplace_back(lines[i]);
  return checkpoint;
}

// ---- Ed25519Signer ---------------------------------------------------------------------

Ed25519Signer::Ed25519Signer(std::shared_ptr<evp_pkey_st> key, std::string key_name)
    : key_(std::move(key)), key_name_(std::move(key_name)) {}

absl::StatusOr<Ed25519Signer> Ed25519Signer::FromKey(std::shared_ptr<evp_pkey_st> key,
                                                     std::string key_name) {
  if (!internal::IsValidKeyName(key_name)) {
    return absl::InvalidArgumentError(
        "key_name must be non-empty UTF-8 without spaces, '+' or control characters");
  }
  Ed25519Signer signer(std::move(key), std::move(key_name));
  size_t length = signer.public_key_.size();
  if (EVP_PKEY_get_raw_public_key(signer.key_.get(), signer.public_key_.data(), &length) != 1 ||
      length != signer.public_key_.size()) {
    return absl::InternalError("cannot read the Ed25519 public key");
  }
  signer.key_id_ = ComputeKeyId(signer.key_name_, signer.public_key_);
  return signer;
}

absl::StatusOr<Ed25519Signer> Ed25519Signer::Generate(std::string key_name) {
  CORRIDOR_ASSIGN_OR_RETURN(UniquePkey key, NewEd25519Key());
  return FromKey(Share(std::move(key)), std::move(key_name));
}

absl::StatusOr<Ed25519Signer> Ed25519Signer::FromSeed(std::string_view seed, std::string key_name) {
  if (seed.size() != 32) {
    return absl::InvalidArgumentError(absl::StrCat("seed: ", seed.size(), " bytes, expected 32"));
  }
  UniquePkey key(EVP_PKEY_new_raw_private_key(
      EVP_PKEY_ED25519, nullptr, reinterpret_cast<const unsigned char*>(seed.data()), 32));
  if (key == nullptr) return absl::InternalError("cannot build the Ed25519 key from its seed");
  return FromKey(Share(std::move(key)), std::move(key_name));
}

absl::StatusOr<Ed25519Signer> Ed25519Signer::LoadOrCreate(const std::filesystem::path& key_pem,
                                                          std::string key_name) {
  if (!internal::IsValidKeyName(key_name)) {
    return absl::InvalidArgumentError(
        "key_name must be non-empty UTF-8 without spaces, '+' or control characters");
  }
  // Two rounds at most: if another process publishes the key between our read and our
  // link, the second round loads it.
  for (int round = 0; round < 2; ++round) {
    CORRIDOR_ASSIGN_OR_RETURN(std::optional<Cleansed> existing, ReadKeyFile(key_pem));
    if (existing.has_value()) {
      CORRIDOR_ASSIGN_OR_RETURN(UniquePkey key, ParsePrivateKeyPem(existing->bytes, key_pem));
      return FromKey(Share(std::move(key)), std::move(key_name));
    }
    CORRIDOR_ASSIGN_OR_RETURN(UniquePkey key, NewEd25519Key());
    const Cleansed pem = PrivateKeyPem(key.get());
    CORRIDOR_ASSIGN_OR_RETURN(bool published, PublishKeyFile(key_pem, pem.bytes));
    if (published) return FromKey(Share(std::move(key)), std::move(key_name));
  }
  return absl::AbortedError(
      absl::StrCat("audit signing key ", key_pem.string(), " keeps appearing and vanishing"));
}

std::string Ed25519Signer::Sign(std::string_view message) const {
  UniqueMdCtx ctx(EVP_MD_CTX_new());
  CheckOrDie(ctx != nullptr, "EVP_MD_CTX_new failed");
  CheckOrDie(EVP_DigestSignInit(ctx.get(), nullptr, nullptr, nullptr, key_.get()) == 1,
             "EVP_DigestSignInit(Ed25519) failed");
  std::string signature(64, '\0');
  size_t length = signature.size();
  CheckOrDie(
      EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(signature.data()), &length,
                     reinterpret_cast<const unsigned char*>(message.data()), message.size()) == 1 &&
          length == 64,
      "EVP_DigestSign(Ed25519) failed");
  return signature;
}

std::string Ed25519Signer::SignNote(std::string_view body) const {
  CheckOrDie(!body.empty() && body.back() == '\n', "SignNote: body must end with a newline");
  for (std::string_view line : SplitLines(body)) {
    CheckOrDie(!LineProblem(line).has_value(),
               "SignNote: body must be UTF-8 without control characters");
  }
  const char key_id[4] = {static_cast<char>(key_id_ >> 24), static_cast<char>(key_id_ >> 16),
                          static_cast<char>(key_id_ >> 8), static_cast<char>(key_id_)};
  const std::string blob = absl::StrCat(absl::string_view(key_id, 4), Sign(body));
  return absl::StrCat(Absl(body), "\n", Absl(kSignaturePrefix), key_name_, " ",
                      internal::Base64Encode(blob), "\n");
}

std::string Ed25519Signer::VerifierKey() const {
  std::string typed_key(1, static_cast<char>(kEd25519Type));
  typed_key.append(AsView(public_key_));
  return absl::StrCat(key_name_, "+", KeyIdHex(key_id_), "+", internal::Base64Encode(typed_key));
}

// ---- Verification ----------------------------------------------------------------------

absl::StatusOr<std::string> VerifyNote(std::string_view note, std::string_view verifier_key) {
  CORRIDOR_ASSIGN_OR_RETURN(const VerifierKeyParts key, ParseVerifierKey(verifier_key));
  const std::string key_label = absl::StrCat(key.name, "+", KeyIdHex(key.key_id));
  if (note.size() > kMaxNoteBytes) {
    return absl::InvalidArgumentError(absl::StrCat("note: ", note.size(), " bytes, over 1 MiB"));
  }
  if (note.empty() || note.back() != '\n') {
    return absl::InvalidArgumentError("note: does not end with a newline");
  }
  const std::vector<std::string_view> lines = SplitLines(note);
  for (size_t i = 0; i < lines.size(); ++i) {
    if (std::optional<std::string> problem = LineProblem(lines[i])) {
      return absl::InvalidArgumentError(
          absl::StrCat("note: malformed line ", i + 1, ": ", *problem));
    }
  }
  // The text ends at the last blank line; everything after it is signatures.
  const size_t blank = note.rfind("\n\n");
  if (blank == std::string_view::npos) {
    return absl::InvalidArgumentError("note: no blank line between the text and the signatures");
  }
  const std::string_view text = note.substr(0, blank + 1);
  const std::vector<std::string_view> signature_lines = SplitLines(note.substr(blank + 2));
  const size_t first_line = SplitLines(text).size() + 2;  // 1-based, after the blank line
  if (signature_lines.empty()) {
    return absl::InvalidArgumentError("note: no signature lines after the blank line");
  }
  if (signature_lines.size() > kMaxSignatures) {
    return absl::InvalidArgumentError(
        absl::StrCat("note: ", signature_lines.size(), " signatures, over the limit of 100"));
  }

  struct ParsedSignature {
    size_t line;
    std::string name;
    uint32_t key_id;
    std::string signature;
  };
  std::vector<ParsedSignature> signatures;
  for (size_t i = 0; i < signature_lines.size(); ++i) {
    const size_t line_number = first_line + i;
    std::string_view line = signature_lines[i];
    const auto malformed = [&](std::string_view why) {
      return absl::InvalidArgumentError(
          absl::StrCat("note: malformed line ", line_number, ": ", Absl(why)));
    };
    if (line.substr(0, kSignaturePrefix.size()) != kSignaturePrefix) {
      return malformed("signature line does not start with an em dash and a space");
    }
    line.remove_prefix(kSignaturePrefix.size());
    const size_t space = line.find(' ');
    if (space == std::string_view::npos) return malformed("no space after the key name");
    const std::string_view name = line.substr(0, space);
    if (!internal::IsValidKeyName(name)) return malformed("invalid key name");
    std::optional<std::string> blob = internal::Base64Decode(line.substr(space + 1));
    if (!blob.has_value()) return malformed("signature is not valid base64");
    if (blob->size() < 5) return malformed("signature shorter than a key id and one byte");
    const auto byte = [&](size_t j) {
      return static_cast<uint32_t>(static_cast<uint8_t>((*blob)[j]));
    };
    signatures.push_back({line_number, std::string(name),
                          byte(0) << 24 | byte(1) << 16 | byte(2) << 8 | byte(3), blob->substr(4)});
  }

  bool verified = false;
  std::vector<std::string> others;
  for (const ParsedSignature& signature : signatures) {
    if (signature.name != key.name || signature.key_id != key.key_id) {
      others.push_back(absl::StrCat(signature.name, "+", KeyIdHex(signature.key_id)));
      continue;  // unknown keys are ignored (C2SP signed-note)
    }
    if (!VerifyEd25519(key.public_key, text, signature.signature)) {
      return absl::PermissionDeniedError(
          absl::StrCat("note: bad signature by key ", key_label, " on line ", signature.line));
    }
    verified = true;
  }
  if (!verified) {
    return absl::PermissionDeniedError(
        absl::StrCat("note: not signed by key ", key_label,
                     "; signed only by unknown keys: ", absl::StrJoin(others, ", ")));
  }
  return std::string(text);
}

absl::StatusOr<Checkpoint> VerifyCheckpointNote(std::string_view note,
                                                std::string_view verifier_key) {
  CORRIDOR_ASSIGN_OR_RETURN(const std::string text, VerifyNote(note, verifier_key));
  return ParseCheckpointBody(text);
}

}  // namespace corridor::broker::audit
