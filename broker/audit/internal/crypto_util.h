// Thin wrappers over OpenSSL for the audit crypto: SHA-256, strict base64, hex and
// the checks the note format needs. Private to broker/audit.
//
// Thread-safety: every function is thread-safe (SHA-256 uses a thread_local digest
// context; nothing else keeps state).
#pragma once

#include <array>
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>

namespace corridor::broker::audit::internal {

// SHA-256 of the concatenation of `parts`. Aborts only if OpenSSL itself fails (out of
// memory, broken provider), which is an unrecoverable environment failure.
std::array<uint8_t, 32> Sha256(std::initializer_list<std::string_view> parts);

// Views a byte array as a string_view (no copy).
template <size_t N>
std::string_view AsView(const std::array<uint8_t, N>& bytes) {
  return std::string_view(reinterpret_cast<const char*>(bytes.data()), N);
}

// Standard base64 (RFC 4648 §4) with padding, via EVP_EncodeBlock.
std::string Base64Encode(std::string_view bytes);
// Strict standard base64: padded, no whitespace, canonical (re-encoding gives back the
// input, so trailing bits are zero). nullopt on any deviation.
std::optional<std::string> Base64Decode(std::string_view text);

// Lower-case hex of `bytes`.
std::string HexEncode(std::string_view bytes);

// True if `name` is a valid signed-note key name: non-empty, valid UTF-8, no Unicode
// space (White_Space property), no '+', and no control character.
bool IsValidKeyName(std::string_view name);

// Aborts the process with `message` when `condition` is false. For broken invariants
// (programming errors), active in every build type.
void CheckOrDie(bool condition, const char* message);

}  // namespace corridor::broker::audit::internal
