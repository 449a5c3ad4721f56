// Replaces protobuf's UTF-8 validator in the programs that link this file
// (corridord, corridor-bridge, corridor-load and the tests): see README.md.
//
// protobuf 3.21 checks every proto3 string field with
// google::protobuf::internal::IsStructurallyValidUTF8 when it parses one and
// again when it serializes one, through a byte-at-a-time state table that
// costs ~8 cycles per byte of Chinese text: 9 % of the broker's CPU and a
// quarter of the load generator's. libprotobuf calls the function through its
// PLT, so a definition in the executable takes its place everywhere — the
// generated code's parse checks and libprotobuf's own serialize checks alike.
// The rules are the same (tests/common/utf8_test.cc compares the two on every
// string of up to 3 bytes, every continuation of every partial sequence, and
// random mixed text); only the speed differs. protobuf 22 and later made the
// same change upstream (utf8_range).
//
// Two differences, both harmless: protobuf's own accepts everything until its
// module initializer has run (static initialization), this one validates from
// the start; and a program linking libprotobuf statically cannot link this
// file (a duplicate definition: a link error, not a silent fallback).
#include "common/protobuf_utf8.h"

#include <string_view>

#include "common/utf8.h"
#include "google/protobuf/stubs/common.h"

namespace corridor {
namespace {
thread_local uint64_t checks = 0;  // an executable's TLS: one increment, no sharing
}  // namespace

uint64_t ProtobufUtf8ChecksOnThisThread() { return checks; }

}  // namespace corridor

namespace google::protobuf::internal {

bool IsStructurallyValidUTF8(const char* buf, int len) {
  ++corridor::checks;
  if (len < 0) return false;
  return corridor::IsValidUtf8(std::string_view(buf, static_cast<size_t>(len)));
}

}  // namespace google::protobuf::internal
