// Redaction of payload fields by path, with protobuf reflection.
//
// A path names a field of the Envelope's `payload` oneof and then fields of
// nested messages, joined by '.': "tip_off.informant",
// "case_record.suspects.id_number". A path that passes through a repeated
// message field applies to every element. The broker redacts each recipient's
// copy with the union of the `redact` lists of the permits that matched:
//
//   corridor::v1::Envelope copy = msg;
//   CORRIDOR_RETURN_IF_ERROR(Redact(&copy, decision.redact));
//
// Pure functions; thread-safe (Redact mutates only *msg).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "corridor/v1/envelope.pb.h"

namespace corridor::policy {

// OK when `path` names a field reachable from the Envelope's payload oneof;
// INVALID_ARGUMENT naming the first unknown segment otherwise (e.g.
// "unknown payload field path 'tip_off.informer': corridor.v1.TipOff has no
// field 'informer'"). Does not allocate on success for short paths.
absl::Status ValidatePayloadPath(std::string_view path);

// Clears every field named by `paths` in *msg. A path whose payload is not the
// one set, or whose intermediate message is absent, is a no-op (nothing is
// created). All paths are validated first: on INVALID_ARGUMENT *msg is unchanged.
absl::Status Redact(corridor::v1::Envelope* msg, const std::vector<std::string>& paths);

// The same on a serialized Envelope, without parsing it: every occurrence of a
// field named by `paths` is cut out of the bytes (and the lengths of the
// messages around it shortened); everything else is copied as it is. For bytes
// protobuf serialized, the result equals serializing the Redact()ed message;
// for any bytes, it parses to the Redact()ed parse. INVALID_ARGUMENT for an
// unknown path (as Redact), DATA_LOSS when `envelope` is not a message.
absl::StatusOr<std::string> RedactSerialized(std::string_view envelope,
                                             const std::vector<std::string>& paths);

}  // namespace corridor::policy
