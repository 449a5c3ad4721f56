// corridorctl — Corridor for officers, duty commanders and operators.
//
//   corridorctl --as zs-police tip submit --vessel-name 粤中渔12345 --offence frozen-goods
//       --waterway 磨刀门水道 --lat 22.21 --lon 113.42 --to zs-customs   (one line)
//   corridorctl --as zs-customs watch --topic 'smuggling.*'
//   corridorctl --as zs-police status
//
// Human-readable output by default; --json for scripts. Exit codes: 0 ok,
// 1 the broker said no (or a delivery failed), 2 usage or input errors.
#include <signal.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <iostream>
#include <map>
#include <optional>
#include <random>
#include <sstream>
#include <thread>

#include "CLI/CLI.hpp"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "agency_adapters/cli/audit_commands.h"
#include "agency_adapters/cli/common.h"
#include "agency_adapters/cli/policy_commands.h"
#include "agency_adapters/client/agency_client.h"
#include "google/protobuf/util/time_util.h"

namespace {

using corridor::cli::FormatError;
namespace v1 = corridor::v1;
using google::protobuf::util::TimeUtil;

std::atomic<bool> g_interrupted{false};

struct TipFlags {
  std::string json_file;
  std::string id, topic, handling = "H1", classification = "restricted", purpose, case_ref, zone;
  std::vector<std::string> to;
  std::string reliability, observed, expires, officer;
  unsigned credibility = 0;
  std::string vessel_name, mmsi, hull, flag, vessel_type;
  bool unregistered = false;
  double lat = 0, lon = 0;
  bool has_point = false;
  std::string waterway, location, expected, offence = "other", cargo, narrative;
  std::string informant_name, informant_contact, informant_reliability;
};

std::string RandomId() {
  std::random_device rd;
  std::mt19937_64 rng(rd());
  return absl::StrCat("ctl-", absl::ToUnixMillis(absl::Now()), "-", rng() % 1000000);
}

absl::Status ParseTime(const std::string& text, const std::string& flag,
                       google::protobuf::Timestamp* out) {
  if (!TimeUtil::FromString(text, out)) {
    return absl::InvalidArgumentError(
        absl::StrCat(flag, ": '", text, "' is not an RFC 3339 time (2026-11-29T02:00:00+08:00)"));
  }
  return absl::OkStatus();
}

absl::StatusOr<v1::SourceReliability> ParseReliability(const std::string& s,
                                                       const std::string& flag) {
  if (s.empty()) return v1::SOURCE_RELIABILITY_UNSPECIFIED;
  if (s.size() == 1 && s[0] >= 'A' && s[0] <= 'F') {
    return static_cast<v1::SourceReliability>(s[0] - 'A' + 1);
  }
  return absl::InvalidArgumentError(absl::StrCat(flag, ": '", s, "' must be one of A-F"));
}

absl::StatusOr<v1::Envelope> BuildTip(const TipFlags& f) {
  v1::Envelope e;
  if (!f.json_file.empty()) {
    std::ifstream in(f.json_file);
    if (!in) return absl::NotFoundError(absl::StrCat("--json: cannot read ", f.json_file));
    std::stringstream ss;
    ss << in.rdbuf();
    if (auto s = corridor::cli::FromJson(ss.str(), &e); !s.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(f.json_file, ": ", s.message()));
    }
    if (e.client_message_id().empty()) e.set_client_message_id(RandomId());
    return e;
  }
  static const std::map<std::string, v1::Offence> kOffences = {
      {"frozen-goods", v1::OFFENCE_FROZEN_GOODS_SMUGGLING},
      {"fuel", v1::OFFENCE_FUEL_SMUGGLING},
      {"drug", v1::OFFENCE_DRUG_SMUGGLING},
      {"firearm", v1::OFFENCE_FIREARM_SMUGGLING},
      {"illegal-migration", v1::OFFENCE_ILLEGAL_MIGRATION},
      {"other", v1::OFFENCE_OTHER}};
  static const std::map<std::string, v1::Classification> kClassifications = {
      {"unclassified", v1::CLASSIFICATION_UNCLASSIFIED},
      {"restricted", v1::CLASSIFICATION_RESTRICTED},
      {"confidential", v1::CLASSIFICATION_CONFIDENTIAL},
      {"secret", v1::CLASSIFICATION_SECRET}};
  auto offence = kOffences.find(f.offence);
  if (offence == kOffences.end()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--offence: '", f.offence,
        "' is not one of frozen-goods, fuel, drug, firearm, illegal-migration, other"));
  }
  auto cls = kClassifications.find(f.classification);
  if (cls == kClassifications.end()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--classification: '", f.classification,
                     "' is not one of unclassified, restricted, confidential, secret"));
  }
  e.set_client_message_id(f.id.empty() ? RandomId() : f.id);
  e.set_kind(v1::MESSAGE_KIND_TIP_OFF);
  std::string offence_topic = f.offence;
  std::replace(offence_topic.begin(), offence_topic.end(), '-', '_');
  e.set_topic(f.topic.empty() ? absl::StrCat("smuggling.", offence_topic) : f.topic);
  for (const auto& a : f.to) e.add_addressees(a);
  e.set_handling_code(f.handling);
  e.set_classification(cls->second);
  e.set_purpose(f.purpose);
  e.set_case_ref(f.case_ref);
  e.set_defence_zone(f.zone);
  auto rel = ParseReliability(f.reliability, "--reliability");
  if (!rel.ok()) return rel.status();
  e.mutable_grading()->set_reliability(*rel);
  e.mutable_grading()->set_credibility(f.credibility);
  if (!f.observed.empty()) {
    if (auto s = ParseTime(f.observed, "--observed", e.mutable_observed_time()); !s.ok()) return s;
  } else {
    *e.mutable_observed_time() = TimeUtil::GetCurrentTime();
  }
  if (!f.expires.empty()) {
    if (auto s = ParseTime(f.expires, "--expires", e.mutable_expires_at()); !s.ok()) return s;
  }
  e.set_officer_id(f.officer);
  v1::TipOff* t = e.mutable_tip_off();
  v1::Vessel* v = t->mutable_vessel();
  v->set_name(f.vessel_name);
  v->set_mmsi(f.mmsi);
  v->set_hull_number(f.hull);
  v->set_flag(f.flag);
  v->set_type(f.vessel_type);
  v->set_unregistered(f.unregistered);
  if (f.has_point) {
    t->mutable_location()->mutable_point()->set_lat(f.lat);
    t->mutable_location()->mutable_point()->set_lon(f.lon);
  }
  if (!f.waterway.empty()) t->mutable_location()->set_waterway(f.waterway);
  if (!f.location.empty()) t->mutable_location()->set_description(f.location);
  if (!f.expected.empty()) {
    if (auto s = ParseTime(f.expected, "--expected", t->mutable_expected_time()); !s.ok()) return s;
  }
  t->set_suspected_offence(offence->second);
  t->set_cargo(f.cargo);
  t->set_narrative(f.narrative);
  if (!f.informant_name.empty() || !f.informant_contact.empty()) {
    t->mutable_informant()->set_name(f.informant_name);
    t->mutable_informant()->set_contact(f.informant_contact);
    auto irel = ParseReliability(f.informant_reliability, "--informant-reliability");
    if (!irel.ok()) return irel.status();
    t->mutable_informant()->set_reliability(*irel);
  }
  return e;
}

int Fail(const absl::Status& s, int code) {
  std::cerr << "corridorctl: " << FormatError(s) << "\n";
  return code;
}

absl::StatusOr<std::unique_ptr<corridor::AgencyClient>> ConnectOrExplain(
    const corridor::cli::ConnectionFlags& flags) {
  auto opts = corridor::cli::ToClientOptions(flags);
  if (!opts.ok()) return opts.status();
  return corridor::AgencyClient::Connect(*opts);
}

int RunTipSubmit(const corridor::cli::ConnectionFlags& conn, const TipFlags& tip, bool json) {
  auto env = BuildTip(tip);
  if (!env.ok()) return Fail(env.status(), 2);
  auto client = ConnectOrExplain(conn);
  if (!client.ok()) return Fail(client.status(), absl::IsInvalidArgument(client.status()) ? 2 : 1);
  auto reply = (*client)->Submit(*env);
  if (!reply.ok()) return Fail(reply.status(), 1);
  std::cout << (json ? corridor::cli::ToJson(*reply) + "\n"
                     : corridor::cli::FormatSubmitResponse(*reply));
  return 0;
}

struct WatchFlags {
  std::string subscription;
  std::vector<std::string> topics;
  uint64_t from_seq = 0;
  bool new_only = false;
  bool no_ack = false;
  uint64_t count = 0;
  double idle_exit_seconds = 0;
};

int RunWatch(const corridor::cli::ConnectionFlags& conn, const WatchFlags& w, bool json) {
  auto client = ConnectOrExplain(conn);
  if (!client.ok()) return Fail(client.status(), absl::IsInvalidArgument(client.status()) ? 2 : 1);
  corridor::SubscriptionOptions opts;
  opts.open.set_name(w.subscription.empty()
                         ? absl::StrCat("watch-", conn.as.empty() ? "node" : conn.as)
                         : w.subscription);
  for (const auto& t : w.topics) opts.open.add_topic_filters(t);
  if (w.from_seq > 0) {
    opts.open.set_start(v1::START_POSITION_FROM_SEQ);
    opts.open.set_start_seq(w.from_seq);
  } else if (w.new_only) {
    opts.open.set_start(v1::START_POSITION_NEW_ONLY);
  }
  std::mutex mu;
  std::condition_variable cv;
  uint64_t seen = 0;
  absl::Time last = absl::Now();
  std::optional<absl::Status> ended;  // a stream end that retrying cannot fix
  auto sub = (*client)->Subscribe(
      opts,
      [&](const v1::Delivery& d) {
        std::lock_guard<std::mutex> lock(mu);
        // Past --count: neither shown nor acked, so it stays queued for later.
        if (w.count > 0 && seen >= w.count) return false;
        std::cout << (json ? corridor::cli::ToJson(d) + "\n"
                           : corridor::cli::FormatDelivery(d) + "\n")
                  << std::flush;
        ++seen;
        last = absl::Now();
        cv.notify_all();
        return !w.no_ack;
      },
      [&](const absl::Status& s) {
        std::lock_guard<std::mutex> lock(mu);
        std::cerr << "corridorctl: stream ended: " << corridor::cli::FormatError(s) << "\n";
        if (s.code() == absl::StatusCode::kAborted ||
            s.code() == absl::StatusCode::kPermissionDenied ||
            s.code() == absl::StatusCode::kUnauthenticated ||
            s.code() == absl::StatusCode::kInvalidArgument) {
          ended = s;
        }
        cv.notify_all();
      });
  auto opened = sub->WaitOpened(absl::Seconds(conn.timeout_seconds));
  if (!opened.ok()) return Fail(opened.status(), 1);
  if (!json) {
    std::cerr << "watching subscription " << opened->name()
              << (opened->created() ? " (new)" : " (resumed)") << ", queue head "
              << opened->queue_head() << ", acked below " << opened->ack_floor()
              << "; Ctrl-C to stop\n";
  }
  std::unique_lock<std::mutex> lock(mu);
  while (!g_interrupted.load()) {
    if (ended) {
      lock.unlock();
      sub->Stop();
      return Fail(*ended, 1);
    }
    if (w.count > 0 && seen >= w.count) break;
    if (w.idle_exit_seconds > 0 && absl::Now() - last > absl::Seconds(w.idle_exit_seconds)) break;
    cv.wait_for(lock, std::chrono::milliseconds(100));
  }
  lock.unlock();
  // Give the last acks a moment to leave before the stream is cancelled.
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  sub->Stop();
  return 0;
}

int RunStatus(const corridor::cli::ConnectionFlags& conn, bool json) {
  auto client = ConnectOrExplain(conn);
  if (!client.ok()) return Fail(client.status(), absl::IsInvalidArgument(client.status()) ? 2 : 1);
  auto st = (*client)->Status();
  if (!st.ok()) return Fail(st.status(), 1);
  std::cout << (json ? corridor::cli::ToJson(*st) + "\n" : corridor::cli::FormatStatus(*st));
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"corridorctl — submit tip-offs, watch deliveries, check status and policy"};
  app.require_subcommand(1);
  corridor::cli::ConnectionFlags conn;
  bool json = false;
  corridor::cli::AddConnectionFlags(app, &conn);
  app.add_flag("--json", json, "machine-readable output (JSON, one object per line)");

  auto* tip = app.add_subcommand("tip", "tip-offs")->require_subcommand(1);
  auto* submit = tip->add_subcommand("submit", "submit a tip-off (flags or --json FILE)");
  TipFlags t;
  submit->add_option("--json", t.json_file, "an Envelope in protobuf JSON instead of the flags");
  submit->add_option("--id", t.id, "client message id (idempotency key; default: generated)");
  submit->add_option("--topic", t.topic, "topic (default smuggling.<offence>)");
  submit->add_option("--to", t.to, "addressee agency id (repeatable)");
  submit->add_option("--handling", t.handling, "handling code")->capture_default_str();
  submit
      ->add_option("--classification", t.classification,
                   "unclassified|restricted|confidential|secret")
      ->capture_default_str();
  submit->add_option("--purpose", t.purpose, "why it is shared");
  submit->add_option("--case-ref", t.case_ref, "case reference");
  submit->add_option("--zone", t.zone, "defence zone");
  submit->add_option("--reliability", t.reliability, "source reliability A-F");
  submit->add_option("--credibility", t.credibility, "information credibility 1-6");
  submit->add_option("--observed", t.observed, "when it was seen (RFC 3339; default now)");
  submit->add_option("--expires", t.expires, "when it stops mattering (RFC 3339)");
  submit->add_option("--officer", t.officer, "reporting officer id");
  submit->add_option("--vessel-name", t.vessel_name, "vessel name");
  submit->add_option("--mmsi", t.mmsi, "MMSI (9 digits)");
  submit->add_option("--hull", t.hull, "hull number");
  submit->add_option("--flag", t.flag, "flag state");
  submit->add_option("--vessel-type", t.vessel_type, "e.g. speedboat");
  submit->add_flag("--unregistered", t.unregistered, "a three-no vessel (三无船舶)");
  auto* lat = submit->add_option("--lat", t.lat, "latitude");
  auto* lon = submit->add_option("--lon", t.lon, "longitude");
  lat->needs(lon);
  lon->needs(lat);
  submit->add_option("--waterway", t.waterway, "waterway name, e.g. 磨刀门水道");
  submit->add_option("--location", t.location, "landmark description");
  submit->add_option("--expected", t.expected, "expected time of the movement (RFC 3339)");
  submit
      ->add_option("--offence", t.offence, "frozen-goods|fuel|drug|firearm|illegal-migration|other")
      ->capture_default_str();
  submit->add_option("--cargo", t.cargo, "cargo");
  submit->add_option("--narrative", t.narrative, "free text");
  submit->add_option("--informant-name", t.informant_name, "informant (policy may withhold it)");
  submit->add_option("--informant-contact", t.informant_contact, "informant contact");
  submit->add_option("--informant-reliability", t.informant_reliability, "A-F");

  auto* watch = app.add_subcommand("watch", "subscribe, print deliveries and ack them");
  WatchFlags w;
  watch->add_option("--subscription", w.subscription, "durable subscription name");
  watch->add_option("--topic", w.topics,
                    "topic filter, e.g. 'smuggling.*' (repeatable); none: everything queued for "
                    "your agency");
  watch->add_option("--from-seq", w.from_seq, "replay from this sequence");
  watch->add_flag("--new-only", w.new_only, "a new subscription skips what is queued");
  watch->add_flag("--no-ack", w.no_ack, "print without acking (they come back)");
  watch->add_option("--count", w.count, "exit after this many deliveries");
  watch->add_option("--idle-exit", w.idle_exit_seconds, "exit after this many idle seconds");

  auto* status = app.add_subcommand("status", "what the broker says about itself and you");

  corridor::cli::PolicyCommands policy_commands;
  policy_commands.Register(app);
  corridor::cli::AuditCommands audit_commands;
  audit_commands.Register(app);

  signal(SIGINT, [](int) { g_interrupted.store(true); });
  signal(SIGTERM, [](int) { g_interrupted.store(true); });

  CLI11_PARSE(app, argc, argv);
  if (submit->parsed()) {
    t.has_point = lat->count() > 0;
    return RunTipSubmit(conn, t, json);
  }
  if (watch->parsed()) return RunWatch(conn, w, json);
  if (status->parsed()) return RunStatus(conn, json);
  if (int rc = policy_commands.Run(conn, json); rc >= 0) return rc;
  if (int rc = audit_commands.Run(conn, json); rc >= 0) return rc;
  std::cerr << app.help();
  return 2;
}
