#include "agency_adapters/cli/common.h"

#include <cstdlib>
#include <map>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "google/protobuf/util/json_util.h"
#include "google/protobuf/util/time_util.h"

namespace corridor::cli {
namespace {

using google::protobuf::util::TimeUtil;

std::string EnvOr(const char* name, const std::string& fallback) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? std::string(v) : fallback;
}

std::string Time(const google::protobuf::Timestamp& ts) {
  if (ts.seconds() == 0 && ts.nanos() == 0) return "-";
  return TimeUtil::ToString(ts);
}

std::string EnumSuffix(const std::string& full, const std::string& prefix) {
  if (full.rfind(prefix, 0) == 0) return full.substr(prefix.size());
  return full;
}

void AppendVessel(std::ostringstream& out, const v1::Vessel& v, const std::string& indent) {
  out << indent << "vessel: " << (v.name().empty() ? "(no name)" : v.name());
  if (!v.mmsi().empty()) out << "  MMSI " << v.mmsi();
  if (!v.hull_number().empty()) out << "  hull " << v.hull_number();
  if (!v.flag().empty()) out << "  flag " << v.flag();
  if (!v.type().empty()) out << "  " << v.type();
  if (v.unregistered()) out << "  [three-no / unregistered]";
  out << "\n";
}

}  // namespace

void AddConnectionFlags(CLI::App& app, ConnectionFlags* flags) {
  flags->broker = EnvOr("CORRIDOR_BROKER", flags->broker);
  flags->certs_dir = EnvOr("CORRIDOR_CERTS_DIR", flags->certs_dir);
  flags->as = EnvOr("CORRIDOR_AS", flags->as);
  app.add_option("--broker", flags->broker, "broker host:port [env CORRIDOR_BROKER]")
      ->capture_default_str();
  app.add_option("--certs-dir", flags->certs_dir,
                 "directory of <as>.crt/.key and ca.crt [env CORRIDOR_CERTS_DIR]")
      ->capture_default_str();
  app.add_option(
      "--as", flags->as,
      "certificate to present, by stem in --certs-dir, e.g. zs-police [env CORRIDOR_AS]");
  app.add_option("--cert", flags->cert, "certificate file (overrides --as)");
  app.add_option("--key", flags->key, "private key file (overrides --as)");
  app.add_option("--ca", flags->ca, "exchange CA file (default <certs-dir>/ca.crt)");
  app.add_option("--server-name", flags->server_name, "TLS name expected of the broker");
  app.add_option("--timeout", flags->timeout_seconds, "seconds to wait for the broker")
      ->capture_default_str();
}

absl::StatusOr<ClientOptions> ToClientOptions(const ConnectionFlags& f) {
  ClientOptions o;
  o.target = f.broker;
  o.server_name = f.server_name;
  if (!f.cert.empty() || !f.key.empty()) {
    if (f.cert.empty() || f.key.empty()) {
      return absl::InvalidArgumentError("--cert and --key go together");
    }
    o.cert_file = f.cert;
    o.key_file = f.key;
  } else if (!f.as.empty()) {
    o.cert_file = absl::StrCat(f.certs_dir, "/", f.as, ".crt");
    o.key_file = absl::StrCat(f.certs_dir, "/", f.as, ".key");
  } else {
    return absl::InvalidArgumentError(
        "who are you? give --as <name> (a certificate in --certs-dir) or --cert/--key");
  }
  o.ca_file = f.ca.empty() ? absl::StrCat(f.certs_dir, "/ca.crt") : f.ca;
  o.connect_timeout = absl::Seconds(f.timeout_seconds);
  return o;
}

std::string ToJson(const google::protobuf::Message& message, bool pretty) {
  google::protobuf::util::JsonPrintOptions opts;
  opts.preserve_proto_field_names = true;
  opts.add_whitespace = pretty;
  std::string out;
  (void)google::protobuf::util::MessageToJsonString(message, &out, opts);
  return out;
}

absl::Status FromJson(const std::string& json, google::protobuf::Message* message) {
  google::protobuf::util::JsonParseOptions opts;
  opts.ignore_unknown_fields = false;
  auto s = google::protobuf::util::JsonStringToMessage(json, message, opts);
  if (!s.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("JSON: ", std::string(s.message())));
  }
  return absl::OkStatus();
}

std::string FormatDelivery(const v1::Delivery& d) {
  const v1::Envelope& e = d.envelope();
  std::ostringstream out;
  out << "#" << d.seq() << "  " << EnumSuffix(v1::MessageKind_Name(e.kind()), "MESSAGE_KIND_")
      << "  " << e.topic() << "  " << e.exchange_id()
      << (d.attempt() > 1 ? absl::StrCat("  (redelivery ", d.attempt(), ")") : "") << "\n";
  out << "  from " << e.sender().agency_id() << "/" << e.sender().node();
  if (!e.officer_id().empty()) out << "  officer " << e.officer_id();
  out << "  at " << Time(e.broker_time()) << (d.addressed() ? "  (addressed to you)" : "") << "\n";
  out << "  handling " << (e.handling_code().empty() ? "-" : e.handling_code()) << "  "
      << EnumSuffix(v1::Classification_Name(e.classification()), "CLASSIFICATION_");
  if (!e.purpose().empty()) out << "  purpose: " << e.purpose();
  if (!e.case_ref().empty()) out << "  case " << e.case_ref();
  if (!e.defence_zone().empty()) out << "  zone " << e.defence_zone();
  out << "\n";
  if (e.has_tip_off()) {
    const auto& t = e.tip_off();
    out << "  offence: " << EnumSuffix(v1::Offence_Name(t.suspected_offence()), "OFFENCE_");
    if (!t.cargo().empty()) out << "  cargo: " << t.cargo();
    out << "\n";
    if (t.has_vessel()) AppendVessel(out, t.vessel(), "  ");
    if (t.has_location()) {
      out << "  where: " << t.location().waterway();
      if (t.location().has_point()) {
        out << " (" << t.location().point().lat() << ", " << t.location().point().lon() << ")";
      }
      if (!t.location().description().empty()) out << " " << t.location().description();
      out << "\n";
    }
    if (t.has_expected_time()) out << "  expected: " << Time(t.expected_time()) << "\n";
    if (!t.narrative().empty()) out << "  narrative: " << t.narrative() << "\n";
    if (t.has_informant()) {
      out << "  informant: " << (t.informant().name().empty() ? "-" : t.informant().name()) << "\n";
    }
  } else if (e.has_case_record()) {
    const auto& c = e.case_record();
    out << "  case " << c.case_id() << ": " << c.title() << "  ("
        << EnumSuffix(v1::CaseStatus_Name(c.status()), "CASE_STATUS_") << ")\n";
    for (const auto& s : c.suspects()) {
      out << "  suspect: " << (s.name().empty() ? "-" : s.name()) << "\n";
    }
    for (const auto& v : c.vessels()) AppendVessel(out, v, "  ");
    for (const auto& s : c.seizures()) {
      out << "  seized: " << s.quantity() << " " << s.unit() << " " << s.goods() << " (CNY "
          << s.value_cny() << ")\n";
    }
  } else if (e.has_patrol_report()) {
    const auto& p = e.patrol_report();
    out << "  unit " << p.unit().id() << "  zone " << p.zone() << "  " << p.track_size()
        << " track points, " << p.vessels_checked_size() << " vessels checked, "
        << p.incidents_size() << " incidents\n";
  }
  if (d.redacted_fields_size() > 0) {
    out << "  withheld by policy: " << absl::StrJoin(d.redacted_fields(), ", ") << "\n";
  }
  return out.str();
}

std::string FormatSubmitResponse(const v1::SubmitResponse& r) {
  std::ostringstream out;
  out << (r.duplicate() ? "already stored as " : "stored as ") << r.exchange_id() << " at "
      << Time(r.broker_time()) << "\n";
  out << "  delivered to: "
      << (r.recipients().empty() ? "(no agency)" : absl::StrJoin(r.recipients(), ", ")) << "\n";
  if (r.withheld() > 0) {
    out << "  withheld by policy from " << r.withheld()
        << (r.withheld() == 1 ? " agency" : " agencies") << "\n";
  }
  return out.str();
}

std::string FormatStatus(const v1::StatusResponse& s) {
  std::ostringstream out;
  out << "broker " << s.broker_id() << " (" << s.trust_domain() << ") version " << s.version()
      << ", up since " << Time(s.started_at()) << "\n";
  out << "  you are " << s.caller() << "\n";
  out << "  policy " << s.policy_version() << "\n";
  for (const std::string& w : s.tls_warnings()) out << "  WARNING (tls): " << w << "\n";
  if (s.storage_paused()) out << "  WARNING (storage): " << s.storage_pause_reason() << "\n";
  if (s.storage_floor_bytes() > 0 || s.storage_free_bytes() > 0) {
    out << "  storage: " << s.storage_free_bytes() / (1 << 20) << " MiB free, floor "
        << s.storage_floor_bytes() / (1 << 20) << " MiB";
    if (s.storage_refused_submissions() > 0) {
      out << ", " << s.storage_refused_submissions() << " submissions refused below it";
    }
    out << "\n";
  }
  if (s.caller().find("/admin/") == std::string::npos) {
    out << "  (broker-wide traffic figures are shown to admin certificates only)\n";
  } else {
    out << "  exchanges stored " << s.exchanges_stored() << ", deliveries stored "
        << s.deliveries_stored() << ", streams connected " << s.connected_streams() << "\n";
  }
  if (s.synced_writes() > 0) {
    out << "  synced writes " << s.synced_writes() << " carrying " << s.keys_written()
        << " keys in " << s.bytes_written() << " bytes; audit log " << s.audit_entries()
        << " entries\n";
  }
  if (!s.limits_hit().empty()) {
    std::map<std::string, uint64_t> sorted(s.limits_hit().begin(), s.limits_hit().end());
    out << "  limits hit:";
    for (const auto& [name, count] : sorted) out << " " << name << " " << count;
    out << "\n";
  }
  for (const auto& sub : s.subscriptions()) {
    out << "  subscription " << sub.agency_id() << "/" << sub.name() << "  filters ["
        << absl::StrJoin(sub.topic_filters(), ", ") << "]  head " << sub.queue_head()
        << "  ack floor " << sub.ack_floor() << "  pending " << sub.pending()
        << (sub.connected() ? "  connected" : "  offline") << "\n";
  }
  return out.str();
}

std::string FormatError(const absl::Status& status) {
  return absl::StrCat(absl::StatusCodeToString(status.code()), ": ", status.message());
}

}  // namespace corridor::cli
