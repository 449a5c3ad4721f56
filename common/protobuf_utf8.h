// See protobuf_utf8.cc: the UTF-8 validator that replaces protobuf's in the
// programs that link corridor::protobuf_utf8.
#pragma once

#include <cstdint>

namespace corridor {

// How many times protobuf's UTF-8 check (parse or serialize, generated code
// or libprotobuf's own) ran this validator on the calling thread: a test's
// proof that the replacement is in effect.
uint64_t ProtobufUtf8ChecksOnThisThread();

}  // namespace corridor
