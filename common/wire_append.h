// Appending protobuf wire-format fields to a byte string by hand, for code
// that builds or rewrites serialized messages without parsing them (the
// broker's stored records, policy's redaction of serialized envelopes).
// Pure functions.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace corridor {

// Appends `v` as a base-128 varint.
inline void AppendVarint(std::string* out, uint64_t v) {
  while (v >= 0x80) {
    out->push_back(static_cast<char>(v | 0x80));
    v >>= 7;
  }
  out->push_back(static_cast<char>(v));
}

// The number of bytes AppendVarint writes for `v`.
inline size_t VarintSize(uint64_t v) {
  size_t n = 1;
  for (; v >= 0x80; v >>= 7) ++n;
  return n;
}

// Appends a length-delimited field `field` holding `bytes`: tag, length, bytes.
inline void AppendLengthDelimited(std::string* out, int field, std::string_view bytes) {
  AppendVarint(out, (static_cast<uint64_t>(field) << 3) | 2);
  AppendVarint(out, bytes.size());
  out->append(bytes);
}

}  // namespace corridor
