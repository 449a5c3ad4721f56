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
#include <string_view>

#include "common/utf8.h"
#include "google/protobuf/stubs/common.h"

namespace google::protobuf::internal {

bool IsStructurallyValidUTF8(const char* buf, int len) {
  if (len < 0) return false;
  return corridor::IsValidUtf8(std::string_view(buf, static_cast<size_t>(len)));
}

}  // namespace google::protobuf::internal
