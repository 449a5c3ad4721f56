// Protobuf wire-format helpers for the delivery path: a delivery is serialized
// once, when it is staged, and from then on travels as bytes — stored, held in
// the hub, written to every subscriber — without being parsed or serialized
// again. What the hub must know about it (routing, expiry, audit) is read from
// those bytes by skipping over the payload.
//
// Pure functions and an immutable value type; safe from any thread.
// Internal to broker/.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/wire_append.h"
#include "corridor/v1/envelope.pb.h"

namespace corridor::broker {

// Where a length-delimited field sits inside a serialized message: `field` is
// the whole wire-format field (tag, length, bytes), `contents` its bytes.
struct FieldSpan {
  std::string_view field;
  std::string_view contents;
};
// The first length-delimited field whose number is in `numbers`; both spans
// empty when there is none; an error when `bytes` is not a message.
absl::StatusOr<FieldSpan> FindField(std::string_view bytes, std::initializer_list<int> numbers);

// The payload (the oneof message) inside a serialized envelope. A submessage is
// serialized the same inside its parent as alone, so hashing its contents
// equals hashing the payload serialized alone, without serializing it again.
absl::StatusOr<FieldSpan> FindPayload(std::string_view envelope_bytes);

// AppendLengthDelimited (common/wire_append.h) writes such a field.

// A committed delivery as the hub and the transport share it: immutable once
// made, one object for the tail, every subscription and every attempt.
//
// `wire` is the v1::Delivery exactly as stored in the deliveries CF: the
// envelope as this recipient may see it (already redacted), redacted_fields and
// addressed, without seq, attempt and subscription. A transport sends it by
// appending those three fields (WriteDelivery); a parser reads the result as
// the whole v1::Delivery, since protobuf fields may come in any order.
struct QueuedDelivery {
  uint64_t seq = 0;
  std::string wire;
  // Read from `wire` by MakeQueuedDelivery.
  bool addressed = false;
  absl::Time expires = absl::InfiniteFuture();  // the envelope's expires_at
  std::string exchange_id;
  std::string client_message_id;
  std::string sender_agency_id;
  v1::MessageKind kind = v1::MESSAGE_KIND_UNSPECIFIED;
  std::string topic;
  std::string handling_code;
  std::string case_ref;
};

// Reads what the hub needs from a stored delivery's bytes (skipping the
// payload, never validating or copying it). An error when they are not a
// well-formed message.
absl::StatusOr<std::shared_ptr<QueuedDelivery>> MakeQueuedDelivery(uint64_t seq, std::string wire);

// The v1::Delivery of `d` as attempt `attempt` of subscription `subscription`:
// its size, and writing it at `out` (DeliverySize bytes; returns the end).
size_t DeliverySize(const QueuedDelivery& d, uint32_t attempt, std::string_view subscription);
uint8_t* WriteDelivery(const QueuedDelivery& d, uint32_t attempt, std::string_view subscription,
                       uint8_t* out);

}  // namespace corridor::broker
