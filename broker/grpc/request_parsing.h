// The failure path of the raw methods' request parsing: what to answer when
// protobuf's strict parse of a request failed.
//
// A proto3 parser refuses a whole message when one string in it is not UTF-8
// (GBK text from an older agency system, say), with the same answer as for
// random bytes. SubmitRequest carries a run of envelopes, each answered on
// its own; so after a failed parse, SalvageSubmitRequest reads the request
// again envelope by envelope: those that parse are submitted as usual, one
// whose string field is not UTF-8 gets INVALID_ARGUMENT naming that field.
// Valid requests never come here: the hot path parses once, as before.
//
// Pure functions; safe from any thread.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "corridor/v1/exchange.pb.h"
#include "grpcpp/support/byte_buffer.h"

namespace corridor::broker::grpc_transport {

// The bytes of `buffer`, copied into one string.
std::string BufferBytes(const grpc::ByteBuffer& buffer);

// One envelope of a salvaged request that is answered with an error instead
// of being submitted.
struct RefusedEnvelope {
  size_t position = 0;  // 0 = `envelope`, i = more[i - 1]
  absl::Status status;  // INVALID_ARGUMENT "envelope.tip_off.vessel.name: not valid UTF-8"
  std::string client_message_id;  // the envelope's, when it is readable UTF-8
};

struct SalvagedSubmitRequest {
  // Every envelope in its place; a refused one is left empty (a set
  // `envelope` stays set, so that positions do not shift).
  v1::SubmitRequest request;
  std::vector<RefusedEnvelope> refused;  // by position, ascending; not empty
};

// `bytes` failed SubmitRequest's strict parse. When that is only because some
// envelopes hold a string that is not UTF-8, returns the request with those
// envelopes refused (their field named as "envelope.<path>", whichever
// position they hold, as ValidateEnvelope names fields). nullopt when the
// bytes are not a SubmitRequest for any other reason.
std::optional<SalvagedSubmitRequest> SalvageSubmitRequest(const std::string& bytes);

}  // namespace corridor::broker::grpc_transport
