#include "broker/validation.h"

#include <string>
#include <unordered_map>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/message.h"
#include "google/protobuf/timestamp.pb.h"
#include "google/protobuf/unknown_field_set.h"
#include "google/protobuf/util/time_util.h"

namespace corridor::broker {
namespace {

using absl::InvalidArgumentError;
using absl::StrCat;

absl::string_view AV(std::string_view s) { return absl::string_view(s.data(), s.size()); }

bool IsLabelChar(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'; }

absl::Time ToTime(const google::protobuf::Timestamp& ts) {
  return absl::FromUnixSeconds(ts.seconds()) + absl::Nanoseconds(ts.nanos());
}

absl::Status ValidateTimestamp(const google::protobuf::Timestamp& ts, std::string_view field) {
  if (ts.seconds() < 0 || ts.seconds() > 253402300799 || ts.nanos() < 0 || ts.nanos() > 999999999) {
    return InvalidArgumentError(StrCat(AV(field), ": not a valid timestamp"));
  }
  return absl::OkStatus();
}

// The fields of a message type that are google.protobuf.Timestamp or lead to
// one (a message, at any depth, holding a Timestamp field), listed once per
// type. `listed` is false while the type is being listed: a type that refers
// back to it (a recursive schema) keeps its field, since walking a branch
// without Timestamps costs little and missing one would let a bad time through.
struct TimestampFields {
  bool listed = false;
  std::vector<const google::protobuf::FieldDescriptor*> fields;
};
// A node map: references stay valid while the recursion below adds types.
using TimestampFieldCache =
    std::unordered_map<const google::protobuf::Descriptor*, TimestampFields>;

const TimestampFields& ListTimestampFields(const google::protobuf::Descriptor* d,
                                           TimestampFieldCache& cache) {
  using google::protobuf::FieldDescriptor;
  auto [it, added] = cache.try_emplace(d);
  // A reference, not the iterator: the recursion may rehash the map.
  TimestampFields& entry = it->second;
  if (!added) return entry;
  for (int i = 0; i < d->field_count(); ++i) {
    const FieldDescriptor* f = d->field(i);
    if (f->cpp_type() != FieldDescriptor::CPPTYPE_MESSAGE) continue;
    const google::protobuf::Descriptor* type = f->message_type();
    if (type == google::protobuf::Timestamp::descriptor()) {
      entry.fields.push_back(f);
      continue;
    }
    const TimestampFields& inner = ListTimestampFields(type, cache);
    if (!inner.listed || !inner.fields.empty()) entry.fields.push_back(f);
  }
  entry.listed = true;
  return entry;
}

// Every Timestamp set anywhere in `m`, by ValidateTimestamp, named by path
// (`path` is the name of `m`, extended in place while a field is checked).
absl::Status ValidateTimestampsIn(const google::protobuf::Message& m, std::string& path,
                                  TimestampFieldCache& cache) {
  const google::protobuf::Reflection* r = m.GetReflection();
  for (const google::protobuf::FieldDescriptor* f :
       ListTimestampFields(m.GetDescriptor(), cache).fields) {
    const bool is_timestamp = f->message_type() == google::protobuf::Timestamp::descriptor();
    const int n = f->is_repeated() ? r->FieldSize(m, f) : (r->HasField(m, f) ? 1 : 0);
    for (int j = 0; j < n; ++j) {
      const google::protobuf::Message& inner =
          f->is_repeated() ? r->GetRepeatedMessage(m, f, j) : r->GetMessage(m, f);
      const size_t path_size = path.size();
      absl::StrAppend(&path, ".", f->name());
      if (f->is_repeated()) absl::StrAppend(&path, "[", j, "]");
      // A generated message's Timestamp fields hold generated Timestamps.
      absl::Status s =
          is_timestamp
              ? ValidateTimestamp(static_cast<const google::protobuf::Timestamp&>(inner), path)
              : ValidateTimestampsIn(inner, path, cache);
      path.resize(path_size);
      if (!s.ok()) return s;
    }
  }
  return absl::OkStatus();
}

absl::Status ValidateVessel(const v1::Vessel& v, const std::string& field) {
  if (!v.mmsi().empty()) {
    bool digits = v.mmsi().size() == 9;
    for (char c : v.mmsi()) digits = digits && c >= '0' && c <= '9';
    if (!digits) {
      return InvalidArgumentError(
          StrCat(field, ".mmsi: must be 9 digits, got '", v.mmsi().substr(0, 32), "'"));
    }
  }
  return absl::OkStatus();
}

absl::Status ValidatePoint(const v1::GeoPoint& p, const std::string& field) {
  if (!(p.lat() >= -90 && p.lat() <= 90)) {
    return InvalidArgumentError(StrCat(field, ".lat: must be within [-90, 90]"));
  }
  if (!(p.lon() >= -180 && p.lon() <= 180)) {
    return InvalidArgumentError(StrCat(field, ".lon: must be within [-180, 180]"));
  }
  return absl::OkStatus();
}

absl::Status ValidatePayload(const v1::Envelope& env) {
  switch (env.payload_case()) {
    case v1::Envelope::kTipOff: {
      const auto& t = env.tip_off();
      if (t.has_vessel()) {
        if (auto s = ValidateVessel(t.vessel(), "envelope.tip_off.vessel"); !s.ok()) return s;
      }
      if (t.has_location() && t.location().has_point()) {
        if (auto s = ValidatePoint(t.location().point(), "envelope.tip_off.location.point");
            !s.ok()) {
          return s;
        }
      }
      if (t.has_expected_time()) {
        if (auto s = ValidateTimestamp(t.expected_time(), "envelope.tip_off.expected_time");
            !s.ok()) {
          return s;
        }
      }
      return absl::OkStatus();
    }
    case v1::Envelope::kCaseRecord: {
      const auto& c = env.case_record();
      if (c.case_id().empty()) {
        return InvalidArgumentError("envelope.case_record.case_id: required");
      }
      for (int i = 0; i < c.vessels_size(); ++i) {
        if (auto s = ValidateVessel(c.vessels(i), StrCat("envelope.case_record.vessels[", i, "]"));
            !s.ok()) {
          return s;
        }
      }
      for (int i = 0; i < c.seizures_size(); ++i) {
        if (c.seizures(i).quantity() < 0 || c.seizures(i).value_cny() < 0) {
          return InvalidArgumentError(
              StrCat("envelope.case_record.seizures[", i, "]: quantity and value must be >= 0"));
        }
      }
      return absl::OkStatus();
    }
    case v1::Envelope::kPatrolReport: {
      const auto& p = env.patrol_report();
      if (p.unit().id().empty()) {
        return InvalidArgumentError("envelope.patrol_report.unit.id: required");
      }
      for (int i = 0; i < p.track_size(); ++i) {
        if (auto s = ValidatePoint(p.track(i).point(),
                                   StrCat("envelope.patrol_report.track[", i, "].point"));
            !s.ok()) {
          return s;
        }
      }
      for (int i = 0; i < p.vessels_checked_size(); ++i) {
        if (auto s =
                ValidateVessel(p.vessels_checked(i).vessel(),
                               StrCat("envelope.patrol_report.vessels_checked[", i, "].vessel"));
            !s.ok()) {
          return s;
        }
      }
      return absl::OkStatus();
    }
    case v1::Envelope::PAYLOAD_NOT_SET:
      break;
  }
  return InvalidArgumentError("envelope.payload: required (tip_off, case_record or patrol_report)");
}

v1::MessageKind KindOfPayload(v1::Envelope::PayloadCase c) {
  switch (c) {
    case v1::Envelope::kTipOff:
      return v1::MESSAGE_KIND_TIP_OFF;
    case v1::Envelope::kCaseRecord:
      return v1::MESSAGE_KIND_CASE_RECORD;
    case v1::Envelope::kPatrolReport:
      return v1::MESSAGE_KIND_PATROL_REPORT;
    default:
      return v1::MESSAGE_KIND_UNSPECIFIED;
  }
}

}  // namespace

absl::Status ValidateTopic(std::string_view topic, std::string_view field) {
  if (topic.empty()) return InvalidArgumentError(StrCat(AV(field), ": required"));
  if (topic.size() > 200) {
    return InvalidArgumentError(StrCat(AV(field), ": longer than 200 characters"));
  }
  bool label_start = true;
  for (char c : topic) {
    if (c == '.') {
      if (label_start) break;
      label_start = true;
      continue;
    }
    if (!IsLabelChar(c)) {
      return InvalidArgumentError(
          StrCat(AV(field), ": '", AV(topic).substr(0, 64),
                 "' must be dot-separated labels of [a-z0-9_] (wildcards only in filters)"));
    }
    label_start = false;
  }
  if (label_start) {
    return InvalidArgumentError(
        StrCat(AV(field), ": '", AV(topic).substr(0, 64), "' has an empty label"));
  }
  return absl::OkStatus();
}

absl::Status ValidateTopicFilter(std::string_view filter, std::string_view field) {
  if (filter == "*") return absl::OkStatus();
  if (absl::EndsWith(AV(filter), ".*"))
    return ValidateTopic(filter.substr(0, filter.size() - 2), field);
  return ValidateTopic(filter, field);
}

bool TopicMatches(std::string_view filter, std::string_view topic) {
  if (filter == "*") return true;
  if (filter.size() >= 2 && filter.substr(filter.size() - 2) == ".*") {
    std::string_view prefix = filter.substr(0, filter.size() - 1);  // keeps the dot
    return topic.size() > prefix.size() && topic.substr(0, prefix.size()) == prefix;
  }
  return filter == topic;
}

absl::Status ValidateSubscriptionName(std::string_view name, std::string_view field) {
  if (name.empty()) return InvalidArgumentError(StrCat(AV(field), ": required"));
  if (name.size() > 64) return InvalidArgumentError(StrCat(AV(field), ": longer than 64"));
  for (size_t i = 0; i < name.size(); ++i) {
    char c = name[i];
    bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              (i > 0 && (c == '_' || c == '.' || c == '-'));
    if (!ok) {
      return InvalidArgumentError(StrCat(AV(field), ": '", AV(name).substr(0, 64),
                                         "' must match [a-z0-9][a-z0-9_.-]{0,63}"));
    }
  }
  return absl::OkStatus();
}

// A field this broker's schema does not have, anywhere in `m`: policy cannot
// see it, so it could carry what a rule withholds past the rule. Also an enum
// value the schema does not name (proto3 keeps it as a bare number). Named by
// path.
absl::Status RejectUnknownFields(const google::protobuf::Message& m, const std::string& path) {
  using google::protobuf::FieldDescriptor;
  const google::protobuf::Reflection* r = m.GetReflection();
  const google::protobuf::UnknownFieldSet& unknown = r->GetUnknownFields(m);
  if (!unknown.empty()) {
    return InvalidArgumentError(StrCat(path, ": unknown field number ", unknown.field(0).number(),
                                       " (not in this broker's schema, so policy cannot see it)"));
  }
  // The message- and enum-typed fields of each type, listed once per thread
  // (a node map: the recursion below may add types while a list is walked).
  thread_local std::unordered_map<const google::protobuf::Descriptor*,
                                  std::vector<const FieldDescriptor*>>
      checked_fields;
  auto [listed, added] = checked_fields.try_emplace(m.GetDescriptor());
  if (added) {
    const google::protobuf::Descriptor* d = m.GetDescriptor();
    for (int i = 0; i < d->field_count(); ++i) {
      const auto type = d->field(i)->cpp_type();
      if (type == FieldDescriptor::CPPTYPE_MESSAGE || type == FieldDescriptor::CPPTYPE_ENUM) {
        listed->second.push_back(d->field(i));
      }
    }
  }
  for (const FieldDescriptor* f : listed->second) {
    if (f->cpp_type() == FieldDescriptor::CPPTYPE_ENUM) {
      const int n = f->is_repeated() ? r->FieldSize(m, f) : 1;
      for (int j = 0; j < n; ++j) {
        const int v = f->is_repeated() ? r->GetRepeatedEnumValue(m, f, j) : r->GetEnumValue(m, f);
        if (f->enum_type()->FindValueByNumber(v) == nullptr) {
          return InvalidArgumentError(StrCat(path, ".", f->name(),
                                             f->is_repeated() ? StrCat("[", j, "]") : "",
                                             ": unknown value ", v));
        }
      }
      continue;
    }
    if (f->is_repeated()) {
      for (int j = 0, n = r->FieldSize(m, f); j < n; ++j) {
        if (auto s = RejectUnknownFields(r->GetRepeatedMessage(m, f, j),
                                         StrCat(path, ".", f->name(), "[", j, "]"));
            !s.ok()) {
          return s;
        }
      }
    } else if (r->HasField(m, f)) {
      if (auto s = RejectUnknownFields(r->GetMessage(m, f), StrCat(path, ".", f->name()));
          !s.ok()) {
        return s;
      }
    }
  }
  return absl::OkStatus();
}

namespace {

// What a submitted and a transferred envelope must both satisfy: everything
// but who sent it, the broker's stamp and the addressees.
absl::Status ValidateContent(const v1::Envelope& env, const policy::Registry& registry,
                             absl::Time now) {
  // Idempotency key.
  const std::string& id = env.client_message_id();
  if (id.empty()) return InvalidArgumentError("envelope.client_message_id: required");
  if (id.size() > 128) {
    return InvalidArgumentError("envelope.client_message_id: longer than 128 characters");
  }
  for (char c : id) {
    if (c < 0x21 || c > 0x7e) {
      return InvalidArgumentError(
          "envelope.client_message_id: must be printable ASCII without spaces");
    }
  }
  // Kind and payload.
  if (env.kind() == v1::MESSAGE_KIND_UNSPECIFIED) {
    return InvalidArgumentError("envelope.kind: required");
  }
  if (!v1::MessageKind_IsValid(env.kind())) {
    return InvalidArgumentError("envelope.kind: unknown value");
  }
  if (auto s = ValidatePayload(env); !s.ok()) return s;
  if (KindOfPayload(env.payload_case()) != env.kind()) {
    return InvalidArgumentError(
        StrCat("envelope.kind: ", v1::MessageKind_Name(env.kind()), " does not match the payload"));
  }
  if (auto s = ValidateTopic(env.topic(), "envelope.topic"); !s.ok()) return s;
  // Handling, classification, grading.
  if (!registry.handling_codes.empty()) {
    if (env.handling_code().empty() || !registry.HasHandlingCode(env.handling_code())) {
      std::vector<std::string> codes;
      for (const auto& hc : registry.handling_codes) codes.push_back(hc.code);
      return InvalidArgumentError(StrCat("envelope.handling_code: '",
                                         env.handling_code().substr(0, 32), "' is not one of ",
                                         absl::StrJoin(codes, ", ")));
    }
  }
  if (!v1::Classification_IsValid(env.classification())) {
    return InvalidArgumentError("envelope.classification: unknown value");
  }
  if (!v1::SourceReliability_IsValid(env.grading().reliability())) {
    return InvalidArgumentError("envelope.grading.reliability: unknown value");
  }
  if (env.grading().credibility() > 6) {
    return InvalidArgumentError("envelope.grading.credibility: must be 0 (ungraded) to 6");
  }
  if (env.purpose().size() > 256) {
    return InvalidArgumentError("envelope.purpose: longer than 256 bytes");
  }
  if (env.case_ref().size() > 128) {
    return InvalidArgumentError("envelope.case_ref: longer than 128 bytes");
  }
  if (env.officer_id().size() > 128) {
    return InvalidArgumentError("envelope.officer_id: longer than 128 bytes");
  }
  // Times.
  if (env.has_observed_time()) {
    if (auto s = ValidateTimestamp(env.observed_time(), "envelope.observed_time"); !s.ok()) {
      return s;
    }
    if (ToTime(env.observed_time()) > now + absl::Minutes(10)) {
      return InvalidArgumentError("envelope.observed_time: more than 10 minutes in the future");
    }
  }
  if (env.has_expires_at()) {
    if (auto s = ValidateTimestamp(env.expires_at(), "envelope.expires_at"); !s.ok()) return s;
    if (ToTime(env.expires_at()) <= now) {
      return InvalidArgumentError("envelope.expires_at: already in the past");
    }
  }
  // Every Timestamp set, at any depth (those above again, the payload's times,
  // any the schema gains later): one out of range would be stored and delivered,
  // and protobuf's JSON printer refuses it, so a recipient could not print the
  // message. Per thread: the listing, and a path buffer that stops allocating
  // once grown.
  thread_local TimestampFieldCache timestamp_fields;
  thread_local std::string path;
  path.assign("envelope");
  if (auto s = ValidateTimestampsIn(env, path, timestamp_fields); !s.ok()) return s;
  return absl::OkStatus();
}

}  // namespace

absl::Status ValidateEnvelope(const v1::Envelope& env, const PeerIdentity& sender,
                              const policy::Registry& registry, const EnvelopeLimits& limits,
                              absl::Time now) {
  const size_t bytes = env.ByteSizeLong();
  if (bytes > limits.max_message_bytes) {
    return InvalidArgumentError(
        StrCat("envelope: ", bytes, " bytes exceeds max_message_bytes ", limits.max_message_bytes));
  }
  if (auto s = RejectUnknownFields(env, "envelope"); !s.ok()) return s;
  // Who: the sender fields may only repeat the caller's own identity.
  if (!env.sender().agency_id().empty() && env.sender().agency_id() != sender.agency_id) {
    return absl::PermissionDeniedError(StrCat("envelope.sender.agency_id: a node of '",
                                              sender.agency_id, "' cannot send as '",
                                              env.sender().agency_id().substr(0, 64), "'"));
  }
  if (!env.sender().node().empty() && env.sender().node() != sender.node) {
    return absl::PermissionDeniedError(StrCat("envelope.sender.node: the calling node is '",
                                              sender.node, "', not '",
                                              env.sender().node().substr(0, 64), "'"));
  }
  if (!env.exchange_id().empty()) {
    return InvalidArgumentError("envelope.exchange_id: assigned by the broker, must be empty");
  }
  if (env.has_broker_time()) {
    return InvalidArgumentError("envelope.broker_time: assigned by the broker, must be unset");
  }
  if (env.has_origin()) {
    return InvalidArgumentError("envelope.origin: set by the broker, must be unset");
  }
  // Addressees.
  if (static_cast<size_t>(env.addressees_size()) > limits.max_addressees) {
    return InvalidArgumentError(
        StrCat("envelope.addressees: more than ", limits.max_addressees, " agencies"));
  }
  for (int i = 0; i < env.addressees_size(); ++i) {
    const std::string& a = env.addressees(i);
    const policy::Agency* agency = registry.Find(a);
    if (agency == nullptr) {
      return InvalidArgumentError(
          StrCat("envelope.addressees[", i, "]: unknown agency '", a.substr(0, 64), "'"));
    }
    for (int j = 0; j < i; ++j) {
      if (env.addressees(j) == a) {
        return InvalidArgumentError(StrCat("envelope.addressees[", i, "]: duplicate '", a, "'"));
      }
    }
  }
  return ValidateContent(env, registry, now);
}

absl::Status ValidateTransferredEnvelope(const v1::Envelope& env, std::string_view peer,
                                         const policy::Registry& registry,
                                         const EnvelopeLimits& limits, absl::Time now) {
  const std::string peer_domain(peer);
  const size_t bytes = env.ByteSizeLong();
  if (bytes > limits.max_message_bytes) {
    return InvalidArgumentError(StrCat("transfer.envelope: ", bytes,
                                       " bytes exceeds max_message_bytes ",
                                       limits.max_message_bytes));
  }
  if (auto s = RejectUnknownFields(env, "envelope"); !s.ok()) return s;
  const policy::Agency* sender = registry.Find(env.sender().agency_id());
  if (sender == nullptr) {
    return absl::PermissionDeniedError(StrCat("envelope.sender.agency_id: '",
                                              env.sender().agency_id().substr(0, 64),
                                              "' is not an agency of peer domain ", peer_domain));
  }
  if (sender->domain != peer_domain) {
    return absl::PermissionDeniedError(
        StrCat("envelope.sender.agency_id: '", sender->id, "' is an agency of ",
               registry.IsLocal(*sender) ? "this exchange" : sender->domain,
               ", not of the sending peer ", peer_domain));
  }
  if (env.exchange_id().empty()) {
    return InvalidArgumentError("envelope.exchange_id: required (the origin's exchange id)");
  }
  if (env.exchange_id().size() > 128) {
    return InvalidArgumentError("envelope.exchange_id: longer than 128 characters");
  }
  if (!env.has_broker_time()) {
    return InvalidArgumentError("envelope.broker_time: required (when the origin stored it)");
  }
  if (auto s = ValidateTimestamp(env.broker_time(), "envelope.broker_time"); !s.ok()) return s;
  if (env.has_origin()) {
    return absl::PermissionDeniedError(
        "envelope.origin: the exchange was itself transferred to the peer; it is not sent on "
        "to a third domain");
  }
  if (static_cast<size_t>(env.addressees_size()) > limits.max_addressees) {
    return InvalidArgumentError(
        StrCat("envelope.addressees: more than ", limits.max_addressees, " agencies"));
  }
  return ValidateContent(env, registry, now);
}

}  // namespace corridor::broker
