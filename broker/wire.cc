#include "broker/wire.h"

#include <algorithm>
#include <cstring>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "corridor/v1/exchange.pb.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/wire_format_lite.h"

namespace corridor::broker {
namespace {

using google::protobuf::io::CodedInputStream;
using google::protobuf::io::CodedOutputStream;
using WFL = google::protobuf::internal::WireFormatLite;

// One top-level field of a message, as Walk reads it.
struct Field {
  int number = 0;
  uint32_t wire_type = 0;
  std::string_view whole;     // as encoded, tag included
  std::string_view contents;  // a length-delimited field's bytes
  uint64_t varint = 0;        // a varint field's value
};

// Calls `on_field(const Field&)` for each top-level field of `bytes`, in order,
// until it returns false. False when `bytes` (up to where the walk stopped) is
// not a well-formed message.
template <typename OnField>
bool Walk(std::string_view bytes, OnField on_field) {
  CodedInputStream in(reinterpret_cast<const uint8_t*>(bytes.data()),
                      static_cast<int>(bytes.size()));
  for (;;) {
    const size_t start = static_cast<size_t>(in.CurrentPosition());
    const uint32_t tag = in.ReadTag();
    if (tag == 0) return in.CurrentPosition() == static_cast<int>(bytes.size());
    Field f;
    f.number = WFL::GetTagFieldNumber(tag);
    f.wire_type = WFL::GetTagWireType(tag);
    if (f.wire_type == WFL::WIRETYPE_LENGTH_DELIMITED) {
      uint32_t length = 0;
      if (!in.ReadVarint32(&length)) return false;
      const size_t at = static_cast<size_t>(in.CurrentPosition());
      if (length > bytes.size() - at || !in.Skip(static_cast<int>(length))) return false;
      f.contents = bytes.substr(at, length);
    } else if (f.wire_type == WFL::WIRETYPE_VARINT) {
      if (!in.ReadVarint64(&f.varint)) return false;
    } else if (!WFL::SkipField(&in, tag)) {
      return false;
    }
    f.whole = bytes.substr(start, static_cast<size_t>(in.CurrentPosition()) - start);
    if (!on_field(f)) return true;
  }
}

// Adapts `fn(number, contents, varint)` to Walk: called for length-delimited
// and varint fields only, and never stopping the walk.
template <typename Fn>
auto ScalarsAndBytes(Fn& fn) {
  return [&fn](const Field& f) {
    if (f.wire_type == WFL::WIRETYPE_LENGTH_DELIMITED || f.wire_type == WFL::WIRETYPE_VARINT) {
      fn(f.number, f.contents, f.varint);
    }
    return true;
  };
}

}  // namespace

absl::StatusOr<FieldSpan> FindField(std::string_view bytes, std::initializer_list<int> numbers) {
  FieldSpan found;
  const bool ok = Walk(bytes, [&](const Field& f) {
    if (f.wire_type != WFL::WIRETYPE_LENGTH_DELIMITED ||
        std::find(numbers.begin(), numbers.end(), f.number) == numbers.end()) {
      return true;
    }
    found = FieldSpan{f.whole, f.contents};
    return false;
  });
  if (!ok) return absl::InternalError("serialized bytes unreadable");
  return found;
}

absl::StatusOr<FieldSpan> FindPayload(std::string_view envelope_bytes) {
  return FindField(envelope_bytes,
                   {v1::Envelope::kTipOffFieldNumber, v1::Envelope::kCaseRecordFieldNumber,
                    v1::Envelope::kPatrolReportFieldNumber});
}

absl::StatusOr<std::shared_ptr<QueuedDelivery>> MakeQueuedDelivery(uint64_t seq, std::string wire) {
  auto d = std::make_shared<QueuedDelivery>();
  d->seq = seq;
  // Last one wins for a repeated scalar, and occurrences of a submessage merge,
  // as when protobuf parses the same bytes.
  bool ok = true;
  int64_t expires_seconds = 0;
  int64_t expires_nanos = 0;
  bool has_expires = false;
  auto on_timestamp = [&](int number, std::string_view, uint64_t v) {
    if (number == 1) expires_seconds = static_cast<int64_t>(v);
    if (number == 2) expires_nanos = static_cast<int32_t>(v);
  };
  auto on_sender = [&](int number, std::string_view s, uint64_t) {
    if (number == v1::Sender::kAgencyIdFieldNumber) d->sender_agency_id.assign(s);
  };
  auto on_envelope = [&](int number, std::string_view s, uint64_t v) {
    switch (number) {
      case v1::Envelope::kClientMessageIdFieldNumber:
        d->client_message_id.assign(s);
        break;
      case v1::Envelope::kKindFieldNumber:
        d->kind = static_cast<v1::MessageKind>(v);
        break;
      case v1::Envelope::kTopicFieldNumber:
        d->topic.assign(s);
        break;
      case v1::Envelope::kHandlingCodeFieldNumber:
        d->handling_code.assign(s);
        break;
      case v1::Envelope::kCaseRefFieldNumber:
        d->case_ref.assign(s);
        break;
      case v1::Envelope::kExchangeIdFieldNumber:
        d->exchange_id.assign(s);
        break;
      case v1::Envelope::kSenderFieldNumber:
        ok = ok && Walk(s, ScalarsAndBytes(on_sender));
        break;
      case v1::Envelope::kExpiresAtFieldNumber:
        has_expires = true;
        ok = ok && Walk(s, ScalarsAndBytes(on_timestamp));
        break;
      default:
        break;
    }
  };
  auto on_delivery = [&](int number, std::string_view s, uint64_t v) {
    if (number == v1::Delivery::kEnvelopeFieldNumber) {
      ok = ok && Walk(s, ScalarsAndBytes(on_envelope));
    }
    if (number == v1::Delivery::kAddressedFieldNumber) d->addressed = v != 0;
  };
  if (!Walk(wire, ScalarsAndBytes(on_delivery)) || !ok) {
    return absl::DataLossError(absl::StrCat("delivery ", seq, " is unreadable"));
  }
  if (has_expires)
    d->expires = absl::FromUnixSeconds(expires_seconds) + absl::Nanoseconds(expires_nanos);
  d->wire = std::move(wire);
  return d;
}

size_t DeliverySize(const QueuedDelivery& d, uint32_t attempt, std::string_view subscription) {
  size_t n = d.wire.size();
  if (d.seq != 0) n += 1 + CodedOutputStream::VarintSize64(d.seq);
  if (attempt != 0) n += 1 + CodedOutputStream::VarintSize32(attempt);
  if (!subscription.empty()) {
    n += 1 + CodedOutputStream::VarintSize32(static_cast<uint32_t>(subscription.size())) +
         subscription.size();
  }
  return n;
}

uint8_t* WriteDelivery(const QueuedDelivery& d, uint32_t attempt, std::string_view subscription,
                       uint8_t* out) {
  // The stored bytes first: the broker's own fields come after them, so they
  // win over anything the bytes might hold for the same fields.
  std::memcpy(out, d.wire.data(), d.wire.size());
  out += d.wire.size();
  if (d.seq != 0) {
    out = WFL::WriteUInt64ToArray(v1::Delivery::kSeqFieldNumber, d.seq, out);
  }
  if (attempt != 0) out = WFL::WriteUInt32ToArray(v1::Delivery::kAttemptFieldNumber, attempt, out);
  if (!subscription.empty()) {
    out = CodedOutputStream::WriteTagToArray(
        WFL::MakeTag(v1::Delivery::kSubscriptionFieldNumber, WFL::WIRETYPE_LENGTH_DELIMITED), out);
    out = CodedOutputStream::WriteVarint32ToArray(static_cast<uint32_t>(subscription.size()), out);
    std::memcpy(out, subscription.data(), subscription.size());
    out += subscription.size();
  }
  return out;
}

}  // namespace corridor::broker
