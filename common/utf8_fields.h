// Finding which string field of a serialized message is not UTF-8.
//
// proto3 parsers refuse a message whose string field is not well-formed
// UTF-8, and say only that the message did not parse — the same answer as for
// random bytes. These functions look at such bytes again, on the failure path
// only, and name the field:
//
//   v1::SubmitRequest req;
//   if (!req.ParseFromString(bytes)) {
//     if (auto field = FindInvalidUtf8Field(*v1::SubmitRequest::descriptor(), bytes)) {
//       // *field == "envelope.tip_off.vessel.name"
//     }
//   }
//
// They read the wire format by the message's descriptor, without the UTF-8
// check, so they cost a second pass over the bytes; call them only after a
// strict parse failed. Stateless and thread-safe.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "google/protobuf/descriptor.h"
#include "google/protobuf/message.h"

namespace corridor {

// The path of the first string field (in wire order, depth first) of the
// `type` message serialized in `bytes` whose value is not well-formed UTF-8
// (common/utf8.h's rules, the same as protobuf's): field names joined by '.',
// repeated fields with their index ("more[2].tip_off.vessel.name"), after
// `root` and a '.' when `root` is not empty. nullopt when every string field
// is valid, or when `bytes` (or a nested message within them) is not wire
// format at all: then the message is malformed for another reason. Fields the
// descriptor does not know are not looked at.
std::optional<std::string> FindInvalidUtf8Field(const google::protobuf::Descriptor& type,
                                                std::string_view bytes, std::string_view root = {});

// The varint field `number` at the top level of the message serialized in
// `bytes` (the last occurrence, as a parser would keep it), read without
// parsing strings; nullopt when it is absent or `bytes` are not wire format.
// For reading an entry's index from bytes that do not parse strictly.
std::optional<uint64_t> ReadTopLevelVarint(std::string_view bytes, int number);

// The length-delimited field `number` at the top level of `bytes` (the last
// occurrence), unchecked: it may hold any bytes. nullopt when absent or when
// `bytes` are not wire format.
std::optional<std::string> ReadTopLevelBytes(std::string_view bytes, int number);

// Replaces, in `message` and every message within it, each string field value
// that is not valid UTF-8 by ScrubUtf8 (common/utf8.h) of it; returns how many were replaced.
// For text from outside (a certificate's SAN, an error naming one) that must
// not make a stored record unparseable; reflection, so not for a hot path.
int ScrubInvalidUtf8Strings(google::protobuf::Message* message);

}  // namespace corridor
