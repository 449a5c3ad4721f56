// Well-formed UTF-8 (RFC 3629, Unicode table 3-7): no overlong forms, no
// surrogates (U+D800..U+DFFF), nothing above U+10FFFF, no stray continuation
// bytes, no truncated sequence at the end. U+0000 is allowed.
//
// A shift-based DFA: each byte's transitions for all nine states are packed
// into one 64-bit word (6 bits per state), and a state is the bit offset of
// its slot. The next state is one shift of a word chosen by the byte alone,
// so the only serial dependency per byte is that shift; protobuf 3.21's
// table scanner has a byte load and a state-dependent table load per byte in
// its chain. Text of 64 bytes or more is cut into quarters at character
// boundaries and the four run side by side, so the core overlaps four chains.
// Leading ASCII is skipped 16 bytes at a time, later runs of it 8 at a time.
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>

namespace corridor {
namespace utf8_internal {

// States, as offsets of their 6-bit slot in a transition word.
inline constexpr uint64_t kAccept = 0;    // between characters
inline constexpr uint64_t kError = 6;     // absorbing
inline constexpr uint64_t kNeed1 = 12;    // one continuation byte (80..BF) left
inline constexpr uint64_t kNeed2 = 18;    // two left
inline constexpr uint64_t kNeed3 = 24;    // three left
inline constexpr uint64_t kAfterE0 = 30;  // next must be A0..BF (no overlong), then one
inline constexpr uint64_t kAfterED = 36;  // next must be 80..9F (no surrogate), then one
inline constexpr uint64_t kAfterF0 = 42;  // next must be 90..BF (no overlong), then two
inline constexpr uint64_t kAfterF4 = 48;  // next must be 80..8F (<= U+10FFFF), then two

constexpr uint64_t Next(uint64_t state, unsigned b) {
  const bool cont = b >= 0x80 && b <= 0xBF;
  switch (state) {
    case kAccept:
      if (b < 0x80) return kAccept;
      if (b >= 0xC2 && b <= 0xDF) return kNeed1;
      if (b == 0xE0) return kAfterE0;
      if (b == 0xED) return kAfterED;
      if (b >= 0xE1 && b <= 0xEF) return kNeed2;
      if (b == 0xF0) return kAfterF0;
      if (b >= 0xF1 && b <= 0xF3) return kNeed3;
      if (b == 0xF4) return kAfterF4;
      return kError;  // 80..C1 (stray continuation, overlong lead), F5..FF
    case kNeed1:
      return cont ? kAccept : kError;
    case kNeed2:
      return cont ? kNeed1 : kError;
    case kNeed3:
      return cont ? kNeed2 : kError;
    case kAfterE0:
      return b >= 0xA0 && b <= 0xBF ? kNeed1 : kError;
    case kAfterED:
      return b >= 0x80 && b <= 0x9F ? kNeed1 : kError;
    case kAfterF0:
      return b >= 0x90 && b <= 0xBF ? kNeed2 : kError;
    case kAfterF4:
      return b >= 0x80 && b <= 0x8F ? kNeed2 : kError;
    default:
      return kError;
  }
}

constexpr std::array<uint64_t, 256> MakeTransitions() {
  std::array<uint64_t, 256> t{};
  constexpr uint64_t kStates[] = {kAccept,  kError,   kNeed1,   kNeed2,  kNeed3,
                                  kAfterE0, kAfterED, kAfterF0, kAfterF4};
  for (unsigned b = 0; b < 256; ++b) {
    for (uint64_t s : kStates) t[b] |= Next(s, b) << s;
  }
  return t;
}

inline constexpr std::array<uint64_t, 256> kTransitions = MakeTransitions();

// Runs the DFA over [p, end) from `state`; returns the state at `end`.
inline uint64_t Run(const unsigned char* p, const unsigned char* end, uint64_t state) {
  while (end - p >= 8) {
    uint64_t word;
    std::memcpy(&word, p, 8);
    if ((state & 63) != kAccept || (word & 0x8080808080808080ULL) != 0) {
      for (int i = 0; i < 8; ++i) state = kTransitions[p[i]] >> (state & 63);
    }
    p += 8;
  }
  while (p < end) state = kTransitions[*p++] >> (state & 63);
  return state & 63;
}

// The nearest character boundary at or before `at` (a byte that is not a
// continuation byte), looking back at most 3 bytes; nullptr if there is none,
// which no well-formed text allows (4 continuation bytes in a row).
inline const unsigned char* BoundaryAtOrBefore(const unsigned char* at) {
  for (int back = 0; back < 4; ++back, --at) {
    if ((*at & 0xC0) != 0x80) return at;
  }
  return nullptr;
}

// Long text: four DFAs over four quarters, cut at character boundaries, in
// lockstep — four independent dependency chains instead of one. The whole is
// well-formed exactly when every quarter is (each starts a character).
inline bool ValidInQuarters(const unsigned char* p, const unsigned char* end) {
  const size_t n = static_cast<size_t>(end - p);
  const unsigned char* cut[5] = {p, nullptr, nullptr, nullptr, end};
  for (int i = 1; i < 4; ++i) {
    cut[i] = BoundaryAtOrBefore(p + n * static_cast<size_t>(i) / 4);
    if (cut[i] == nullptr) return false;
  }
  size_t common = n;
  for (int i = 0; i < 4; ++i) common = std::min(common, static_cast<size_t>(cut[i + 1] - cut[i]));
  uint64_t s0 = kAccept, s1 = kAccept, s2 = kAccept, s3 = kAccept;
  const unsigned char *a = cut[0], *b = cut[1], *c = cut[2], *d = cut[3];
  for (size_t k = 0; k < common; ++k) {
    s0 = kTransitions[a[k]] >> (s0 & 63);
    s1 = kTransitions[b[k]] >> (s1 & 63);
    s2 = kTransitions[c[k]] >> (s2 & 63);
    s3 = kTransitions[d[k]] >> (s3 & 63);
  }
  return Run(a + common, cut[1], s0) == kAccept && Run(b + common, cut[2], s1) == kAccept &&
         Run(c + common, cut[3], s2) == kAccept && Run(d + common, cut[4], s3) == kAccept;
}

}  // namespace utf8_internal

inline bool IsValidUtf8(std::string_view text) {
  using namespace utf8_internal;
  const auto* p = reinterpret_cast<const unsigned char*>(text.data());
  const unsigned char* const end = p + text.size();
  // Leading ASCII, 16 bytes at a time.
  while (end - p >= 16) {
    uint64_t w0, w1;
    std::memcpy(&w0, p, 8);
    std::memcpy(&w1, p + 8, 8);
    if (((w0 | w1) & 0x8080808080808080ULL) != 0) break;
    p += 16;
  }
  if (end - p >= 64) return ValidInQuarters(p, end);
  return Run(p, end, kAccept) == kAccept;
}

// The offset of the first byte of `text` that is not part of a well-formed
// character, or nullopt when `text` is valid. For pointing at the error.
inline std::optional<size_t> FirstInvalidUtf8(std::string_view text) {
  if (IsValidUtf8(text)) return std::nullopt;
  size_t i = 0;
  while (i < text.size()) {
    const auto b = static_cast<unsigned char>(text[i]);
    const size_t n = b < 0x80 ? 1 : b < 0xE0 ? 2 : b < 0xF0 ? 3 : 4;
    if (i + n > text.size() || !IsValidUtf8(text.substr(i, n))) return i;
    i += n;
  }
  return std::nullopt;  // not reached: the whole was invalid
}

// `text` with every byte that is not part of a well-formed character replaced
// by U+FFFD, one per byte (so a caret counted per character still lines up);
// a copy of `text` when it is valid. For echoing untrusted text in messages.
inline std::string ScrubUtf8(std::string_view text) {
  if (IsValidUtf8(text)) return std::string(text);
  std::string out;
  out.reserve(text.size() + 16);
  size_t i = 0;
  while (i < text.size()) {
    const auto b = static_cast<unsigned char>(text[i]);
    const size_t n = b < 0x80 ? 1 : b < 0xE0 ? 2 : b < 0xF0 ? 3 : 4;
    if (i + n <= text.size() && IsValidUtf8(text.substr(i, n))) {
      out.append(text.substr(i, n));
      i += n;
    } else {
      out.append("\xEF\xBF\xBD");
      ++i;
    }
  }
  return out;
}

// The longest prefix of `text` of at most `max_bytes` that does not end inside
// a character (it backs up over continuation bytes, at most 3).
inline std::string_view Utf8Prefix(std::string_view text, size_t max_bytes) {
  if (text.size() <= max_bytes) return text;
  size_t end = max_bytes;
  for (int back = 0; back < 3 && end > 0 && (static_cast<unsigned char>(text[end]) & 0xC0) == 0x80;
       ++back) {
    --end;
  }
  return text.substr(0, end);
}

// `text` cut to at most `max_bytes` on a character boundary, with "…" (3
// bytes, included in the limit) when something was cut. For quoting input
// of any length in an error message.
inline std::string Utf8Truncated(std::string_view text, size_t max_bytes) {
  if (text.size() <= max_bytes) return std::string(text);
  std::string out(Utf8Prefix(text, max_bytes > 3 ? max_bytes - 3 : 0));
  out.append("\xE2\x80\xA6");
  return out;
}

}  // namespace corridor
