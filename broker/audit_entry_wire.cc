#include "broker/audit_entry_wire.h"

#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/wire_format_lite.h"

namespace corridor::broker {

using google::protobuf::internal::WireFormatLite;

void EntryWriter::Message(int field, const google::protobuf::MessageLite& m) const {
  const size_t size = m.ByteSizeLong();
  AppendVarint(out_, (static_cast<uint64_t>(field) << 3) | 2);
  AppendVarint(out_, size);
  const size_t at = out_->size();
  out_->resize(at + size);
  m.SerializeWithCachedSizesToArray(reinterpret_cast<uint8_t*>(out_->data() + at));
}

size_t SerializedSize(const PreparedEntry& e, uint64_t index) {
  // Tags: index (field 1) one byte, delivery_seq (field 21) two; a 0 is not written.
  return (index == 0 ? 0 : 1 + VarintSize(index)) + e.bytes.size() +
         (e.delivery_seq == 0 ? 0 : 2 + VarintSize(e.delivery_seq));
}

void AppendSerialized(const PreparedEntry& e, uint64_t index, std::string* out) {
  // protobuf's order: index, fields 2..20, delivery_seq, the rest.
  if (index != 0) {
    AppendVarint(out, static_cast<uint64_t>(v1::AuditEntry::kIndexFieldNumber) << 3);
    AppendVarint(out, index);
  }
  out->append(e.bytes, 0, e.seq_at);
  if (e.delivery_seq != 0) {
    AppendVarint(out, static_cast<uint64_t>(v1::AuditEntry::kDeliverySeqFieldNumber) << 3);
    AppendVarint(out, e.delivery_seq);
  }
  out->append(e.bytes, e.seq_at);
}

namespace {

bool ReadString(google::protobuf::io::CodedInputStream& in, std::string_view bytes,
                std::string_view* out) {
  uint32_t size = 0;
  if (!in.ReadVarint32(&size)) return false;
  const int at = in.CurrentPosition();
  if (!in.Skip(static_cast<int>(size))) return false;
  *out = bytes.substr(static_cast<size_t>(at), size);
  return true;
}

bool ReadTimestamp(google::protobuf::io::CodedInputStream& in, absl::Time* out) {
  uint32_t size = 0;
  if (!in.ReadVarint32(&size)) return false;
  const auto limit = in.PushLimit(static_cast<int>(size));
  uint64_t seconds = 0;
  uint32_t nanos = 0;
  while (const uint32_t tag = in.ReadTag()) {
    switch (WireFormatLite::GetTagFieldNumber(tag)) {
      case google::protobuf::Timestamp::kSecondsFieldNumber:
        if (!in.ReadVarint64(&seconds)) return false;
        break;
      case google::protobuf::Timestamp::kNanosFieldNumber:
        if (!in.ReadVarint32(&nanos)) return false;
        break;
      default:
        if (!WireFormatLite::SkipField(&in, tag)) return false;
    }
  }
  if (!in.ConsumedEntireMessage()) return false;
  in.PopLimit(limit);
  *out = absl::FromUnixSeconds(static_cast<int64_t>(seconds)) +
         absl::Nanoseconds(static_cast<int32_t>(nanos));
  return true;
}

}  // namespace

bool ReadEntryFacts(std::string_view bytes, EntryFacts* facts) {
  *facts = EntryFacts();
  google::protobuf::io::CodedInputStream in(reinterpret_cast<const uint8_t*>(bytes.data()),
                                            static_cast<int>(bytes.size()));
  int previous = 0;
  while (const uint32_t tag = in.ReadTag()) {
    const int field = WireFormatLite::GetTagFieldNumber(tag);
    // protobuf writes fields in number order: bytes out of order are no
    // serialization of an entry (say, a PreparedEntry's seq_at misplaced).
    if (field < previous) return false;
    previous = field;
    const bool delimited =
        WireFormatLite::GetTagWireType(tag) == WireFormatLite::WIRETYPE_LENGTH_DELIMITED;
    bool ok = true;
    switch (field) {
      case v1::AuditEntry::kEventFieldNumber: {
        uint32_t v = 0;
        ok = !delimited && in.ReadVarint32(&v);
        facts->event = static_cast<v1::AuditEvent>(v);
        break;
      }
      case v1::AuditEntry::kBrokerTimeFieldNumber:
        ok = delimited && ReadTimestamp(in, &facts->broker_time);
        break;
      case v1::AuditEntry::kActorAgencyIdFieldNumber:
        ok = delimited && ReadString(in, bytes, &facts->actor_agency_id);
        break;
      case v1::AuditEntry::kOfficerIdFieldNumber:
        ok = delimited && ReadString(in, bytes, &facts->officer_id);
        break;
      case v1::AuditEntry::kRecipientAgencyIdFieldNumber:
        ok = delimited && ReadString(in, bytes, &facts->recipient_agency_id);
        break;
      case v1::AuditEntry::kExchangeIdFieldNumber:
        ok = delimited && ReadString(in, bytes, &facts->exchange_id);
        break;
      case v1::AuditEntry::kClientMessageIdFieldNumber:
        ok = delimited && ReadString(in, bytes, &facts->client_message_id);
        break;
      case v1::AuditEntry::kSenderAgencyIdFieldNumber:
        ok = delimited && ReadString(in, bytes, &facts->sender_agency_id);
        break;
      case v1::AuditEntry::kCaseRefFieldNumber:
        ok = delimited && ReadString(in, bytes, &facts->case_ref);
        break;
      case v1::AuditEntry::kRedeliveriesFieldNumber:
        ok = delimited && ReadString(in, bytes, &facts->redeliveries);
        break;
      default:
        ok = WireFormatLite::SkipField(&in, tag);
    }
    if (!ok) return false;
  }
  return in.ConsumedEntireMessage();
}

}  // namespace corridor::broker
