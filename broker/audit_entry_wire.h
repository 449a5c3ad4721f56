// Audit entries in wire form, for the paths that write one or more per
// exchange and per ack: an exchange's collection, disclosure and denial
// entries are built straight as the bytes protobuf would serialize (the parts
// every entry of the exchange shares serialized once), and the audit log
// indexes an entry by reading its bytes. Building, copying and destroying
// AuditEntry objects was ~13 % of the broker's CPU.
//
// Pure functions and plain values; safe from any thread. Internal to broker/.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/time/time.h"
#include "common/wire_append.h"
#include "corridor/v1/audit.pb.h"
#include "google/protobuf/message_lite.h"

namespace corridor::broker {

// An audit entry as protobuf serializes it, less the two fields only the
// committer knows: index (field 1) and delivery_seq (field 21). `bytes` holds
// fields 2..20 up to `seq_at`, then fields 22 and on (`seq_at` must be set
// even when delivery_seq stays 0; the log refuses an entry whose fields come
// out of order); AuditLog::Append writes
// index first and delivery_seq (when not 0) at `seq_at`, so the stored bytes
// are exactly the serialization of the AuditEntry the fields describe.
struct PreparedEntry {
  std::string bytes;
  size_t seq_at = 0;
  uint64_t delivery_seq = 0;
};
// The size of the entry `e` describes, numbered `index`, serialized; and
// appending that serialization to `out`.
size_t SerializedSize(const PreparedEntry& e, uint64_t index);
void AppendSerialized(const PreparedEntry& e, uint64_t index, std::string* out);

// Appends proto3 fields to `out` as protobuf writes them, for a caller that
// appends them in field-number order: a string, bytes or number field only
// when it is not empty or 0; every element of a repeated field; a message
// field always (a set message field is present even when empty).
class EntryWriter {
 public:
  explicit EntryWriter(std::string* out) : out_(out) {}
  void String(int field, std::string_view v) const {
    if (!v.empty()) AppendLengthDelimited(out_, field, v);
  }
  template <typename Strings>
  void Repeated(int field, const Strings& values) const {
    for (const auto& v : values) AppendLengthDelimited(out_, field, v);
  }
  void Number(int field, uint64_t v) const {
    if (v == 0) return;
    AppendVarint(out_, static_cast<uint64_t>(field) << 3);
    AppendVarint(out_, v);
  }
  void Enum(int field, int v) const {
    Number(field, static_cast<uint64_t>(static_cast<int64_t>(v)));
  }
  void Message(int field, const google::protobuf::MessageLite& m) const;

 private:
  std::string* out_;
};

// What the audit log indexes an entry by, read from its serialized bytes
// (views into them).
struct EntryFacts {
  v1::AuditEvent event = v1::AUDIT_EVENT_UNSPECIFIED;
  absl::Time broker_time = absl::UnixEpoch();
  std::string_view actor_agency_id;
  std::string_view officer_id;
  std::string_view recipient_agency_id;
  std::string_view exchange_id;
  std::string_view client_message_id;
  std::string_view sender_agency_id;
  std::string_view case_ref;
  std::string_view redeliveries;  // a RedeliverySummary's bytes, when set
};

// False when `bytes` is not a well-formed message with its fields in number
// order (as protobuf serializes). For the broker's own bytes only: it is not
// a validator of untrusted input (a literal 0 tag after a well-formed
// submessage reads as the end).
bool ReadEntryFacts(std::string_view bytes, EntryFacts* facts);

}  // namespace corridor::broker
