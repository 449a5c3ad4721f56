// fuzz_make_seeds DIR — writes the generated seed corpora of the fuzz targets
// into DIR/<target>/ (tests/fuzz/corpus in the repository): envelopes of each
// payload kind as SubmitRequest bytes and as JSON lines, Subscribe opens and
// acks, checkpoints signed with the fuzz key, and real inclusion and
// consistency proofs. Deterministic: the same files every run, so re-running
// it leaves the checked-in corpus unchanged. Built with the fuzz targets.
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "agency_adapters/cli/common.h"
#include "broker/audit/checkpoint.h"
#include "broker/audit/merkle.h"
#include "broker/validation.h"
#include "corridor/v1/exchange.pb.h"
#include "google/protobuf/util/time_util.h"
#include "tests/fuzz/fuzz_support.h"
#include "tests/testing/envelopes.h"

namespace v1 = corridor::v1;
namespace audit = corridor::broker::audit;
using google::protobuf::util::TimeUtil;

namespace {

std::filesystem::path g_root;

void Write(const std::string& target, const std::string& name, const std::string& bytes) {
  const std::filesystem::path dir = g_root / target;
  std::filesystem::create_directories(dir);
  std::ofstream out(dir / name, std::ios::binary | std::ios::trunc);
  out << bytes;
  if (!out) {
    std::fprintf(stderr, "cannot write %s\n", (dir / name).c_str());
    std::exit(1);
  }
}

google::protobuf::Timestamp At(int64_t seconds_before_now) {
  return TimeUtil::SecondsToTimestamp(absl::ToUnixSeconds(corridor::fuzz::FuzzNow()) -
                                      seconds_before_now);
}

v1::Envelope TipOff() {
  v1::Envelope e = corridor::testing::SampleTipOff("tip-0001");
  *e.mutable_observed_time() = At(3600);
  e.add_addressees("zs-customs");
  e.add_addressees("zs-coastguard");
  e.mutable_sender()->set_agency_id("zs-police");
  e.mutable_sender()->set_node("node1");
  *e.mutable_expires_at() = At(-86400);
  e.set_case_ref("ZS-2026-0117");
  return e;
}

v1::Envelope MinimalTipOff() {
  v1::Envelope e;
  e.set_client_message_id("m");
  e.set_kind(v1::MESSAGE_KIND_TIP_OFF);
  e.set_topic("smuggling.fuel");
  e.set_handling_code("H0");
  e.mutable_tip_off()->set_suspected_offence(v1::OFFENCE_FUEL_SMUGGLING);
  return e;
}

v1::Envelope CaseRecord() {
  v1::Envelope e = corridor::testing::SampleTipOff("case-0001", "case.frozen_goods");
  e.set_kind(v1::MESSAGE_KIND_CASE_RECORD);
  *e.mutable_observed_time() = At(7200);
  e.set_handling_code("H2");
  e.set_classification(v1::CLASSIFICATION_CONFIDENTIAL);
  e.add_addressees("zs-customs");
  v1::CaseRecord* c = e.mutable_case_record();  // replaces the tip-off
  c->set_case_id("ZS-2026-0117");
  c->set_title("磨刀门水道冻品走私案");
  c->set_status(v1::CASE_STATUS_UNDER_INVESTIGATION);
  c->add_offences(v1::OFFENCE_FROZEN_GOODS_SMUGGLING);
  c->add_offences(v1::OFFENCE_FUEL_SMUGGLING);
  v1::Suspect* s = c->add_suspects();
  s->set_name("李四");
  s->set_id_number("440000199001011234");
  v1::Vessel* v = c->add_vessels();
  v->set_name("粤中山渔运12345");
  v->set_mmsi("412345678");
  v1::Seizure* z = c->add_seizures();
  z->set_goods("冻品");
  z->set_quantity(20);
  z->set_unit("吨");
  z->set_value_cny(1.2e6);
  c->set_lead_agency("zs-customs");
  c->set_narrative("联合查获");
  return e;
}

v1::Envelope PatrolReport() {
  v1::Envelope e = corridor::testing::SampleTipOff("patrol-0001", "patrol.zs_north");
  e.set_kind(v1::MESSAGE_KIND_PATROL_REPORT);
  *e.mutable_observed_time() = At(600);
  e.set_handling_code("H0");
  v1::PatrolReport* p = e.mutable_patrol_report();
  p->mutable_unit()->set_id("粤中山海警 31502");
  p->mutable_unit()->set_kind(v1::UNIT_KIND_BOAT);
  p->set_zone("zs-north");
  for (int i = 0; i < 2; ++i) {
    v1::TrackPoint* t = p->add_track();
    *t->mutable_time() = At(1200 - 300 * i);
    t->mutable_point()->set_lat(22.2 + i * 0.01);
    t->mutable_point()->set_lon(113.4);
    v1::VesselCheck* c = p->add_vessels_checked();
    c->mutable_vessel()->set_name("粤中山渔12345");
    *c->mutable_time() = At(900);
    c->set_outcome(i ? v1::CHECK_OUTCOME_WARNED : v1::CHECK_OUTCOME_CLEARED);
    c->set_notes("证件齐全");
    v1::Incident* n = p->add_incidents();
    *n->mutable_time() = At(800);
    n->mutable_location()->set_waterway("横门水道");
    n->set_description("无灯快艇逃逸");
  }
  return e;
}

// Invalid in one field each: they start the fuzzer next to the checks.
std::vector<std::pair<std::string, v1::Envelope>> Refused() {
  std::vector<std::pair<std::string, v1::Envelope>> out;
  v1::Envelope e = TipOff();
  e.mutable_tip_off()->mutable_vessel()->set_mmsi("12345");
  out.push_back({"bad_mmsi", e});
  e = TipOff();
  e.mutable_sender()->set_agency_id("zs-msa");
  out.push_back({"spoofed_sender", e});
  e = TipOff();
  e.set_handling_code("H9");
  out.push_back({"unknown_handling_code", e});
  e = TipOff();
  e.set_kind(v1::MESSAGE_KIND_CASE_RECORD);
  out.push_back({"kind_mismatch", e});
  e = PatrolReport();
  e.mutable_patrol_report()->mutable_track(1)->mutable_time()->set_nanos(-1);
  out.push_back({"bad_track_time", e});
  return out;
}

// The seeds say what they are: the valid ones pass ValidateEnvelope at the
// fuzz clock and peer, the refused ones do not.
void Expect(const std::string& name, const v1::Envelope& env, bool valid) {
  const absl::Status s = corridor::broker::ValidateEnvelope(
      env, corridor::fuzz::FuzzPeer(), corridor::fuzz::DemoRegistry(),
      corridor::broker::EnvelopeLimits{}, corridor::fuzz::FuzzNow());
  if (s.ok() != valid) {
    std::fprintf(stderr, "seed %s: expected %s, got %s\n", name.c_str(),
                 valid ? "valid" : "refused", s.ToString().c_str());
    std::exit(1);
  }
}

std::string Bytes(const google::protobuf::Message& m) {
  std::string s;
  if (!m.SerializeToString(&s)) std::abort();
  return s;
}

void SubmitSeeds() {
  const std::vector<std::pair<std::string, v1::Envelope>> valid = {
      {"tip_off", TipOff()},
      {"tip_off_minimal", MinimalTipOff()},
      {"case_record", CaseRecord()},
      {"patrol_report", PatrolReport()}};
  for (const auto& [name, env] : valid) {
    Expect(name, env, true);
    v1::SubmitRequest r;
    *r.mutable_envelope() = env;
    Write("submit_request", name + ".bin", Bytes(r));
  }
  for (const auto& [name, env] : Refused()) {
    Expect(name, env, false);
    v1::SubmitRequest r;
    *r.mutable_envelope() = env;
    Write("submit_request", name + ".bin", Bytes(r));
  }
  v1::SubmitRequest stream;  // a SubmitStream message with every kind
  *stream.mutable_envelope() = TipOff();
  *stream.add_more() = CaseRecord();
  *stream.add_more() = PatrolReport();
  *stream.add_more() = MinimalTipOff();
  stream.set_batch_replies(true);
  Write("submit_request", "stream_batch.bin", Bytes(stream));
  Write("submit_request", "empty.bin", "");
}

void SubscribeSeeds() {
  v1::SubscribeRequest r;
  r.mutable_open()->set_name("duty");
  Write("subscribe_request", "open_minimal.bin", Bytes(r));
  r.mutable_open()->add_topic_filters("smuggling.*");
  r.mutable_open()->add_topic_filters("patrol.zs_north");
  r.mutable_open()->add_topic_filters("*");
  r.mutable_open()->set_start(v1::START_POSITION_FROM_SEQ);
  r.mutable_open()->set_start_seq(42);
  r.mutable_open()->set_max_in_flight(1024);
  r.mutable_open()->set_ack_deadline_ms(5000);
  r.mutable_open()->set_max_batch(64);
  Write("subscribe_request", "open_full.bin", Bytes(r));
  r.Clear();
  r.mutable_open()->set_name("ops.night-1");
  r.mutable_open()->set_start(v1::START_POSITION_NEW_ONLY);
  Write("subscribe_request", "open_new_only.bin", Bytes(r));
  r.Clear();
  r.mutable_open()->set_name("Bad Name");
  r.mutable_open()->add_topic_filters("smuggling..*");
  Write("subscribe_request", "open_refused.bin", Bytes(r));
  r.Clear();
  for (uint64_t s : {1, 2, 3, 64, 1000000}) r.mutable_ack()->add_seqs(s);
  Write("subscribe_request", "ack.bin", Bytes(r));
}

void BridgeSeeds() {
  const std::string tip = corridor::cli::ToJson(TipOff());
  const std::string cr = corridor::cli::ToJson(CaseRecord());
  const std::string pr = corridor::cli::ToJson(PatrolReport());
  Write("bridge_line", "tip_off.jsonl", tip + "\n");
  Write("bridge_line", "case_record.jsonl", cr + "\n");
  Write("bridge_line", "patrol_report.jsonl", pr + "\n");
  Write("bridge_line", "minimal.jsonl", corridor::cli::ToJson(MinimalTipOff()) + "\n");
  Write("bridge_line", "mixed.jsonl",
        tip + "\n\n  \t\r\n{\"kind\": \"MESSAGE_KIND_TIP_OFF\", \"nope\": 1}\n" + cr +
            "\r\nnot json\n" + pr);
  Write("bridge_line", "refused.jsonl", corridor::cli::ToJson(Refused()[0].second) + "\n");
}

void CheckpointSeeds() {
  auto signer = audit::Ed25519Signer::FromSeed(corridor::fuzz::CheckpointKeySeed(),
                                               corridor::fuzz::kCheckpointOrigin);
  if (!signer.ok()) std::abort();
  audit::MerkleFrontier f;
  for (int i = 0; i < 1000; ++i) f.Append(audit::LeafHash(std::to_string(i)), nullptr);
  audit::Checkpoint cp{corridor::fuzz::kCheckpointOrigin, f.size(), f.Root(), {}};
  Write("checkpoint", "signed_note.txt", signer->SignNote(audit::CheckpointBody(cp)));
  Write("checkpoint", "body.txt", audit::CheckpointBody(cp));
  audit::Checkpoint empty{corridor::fuzz::kCheckpointOrigin, 0, audit::EmptyRoot(), {}};
  Write("checkpoint", "signed_empty.txt", signer->SignNote(audit::CheckpointBody(empty)));
  audit::Checkpoint ext = cp;
  ext.extensions = {"timestamp 1772330400", "中山 corridor"};
  Write("checkpoint", "signed_extensions.txt", signer->SignNote(audit::CheckpointBody(ext)));
  // Co-signed: a note with a second signature line by another key first.
  auto other = audit::Ed25519Signer::FromSeed(std::string(32, '\x07'), "witness.example");
  if (!other.ok()) std::abort();
  const std::string by_other = other->SignNote(audit::CheckpointBody(cp));
  const std::string by_fuzz = signer->SignNote(audit::CheckpointBody(cp));
  const std::string body = audit::CheckpointBody(cp);
  Write("checkpoint", "cosigned.txt",
        by_other + by_fuzz.substr(body.size() + 1));  // body, blank line, both signatures
  Write("checkpoint", "other_key_only.txt", by_other);
  Write("checkpoint", "verifier_key.txt", signer->VerifierKey() + "\n");
}

std::string U64(uint64_t v) {
  std::string s(8, '\0');
  for (int i = 7; i >= 0; --i) {
    s[i] = static_cast<char>(v & 0xff);
    v >>= 8;
  }
  return s;
}
std::string H(const audit::Hash& h) { return std::string(h.begin(), h.end()); }

void MerkleSeeds() {
  audit::MemoryNodeStore store;
  audit::MerkleFrontier f;
  std::vector<audit::Hash> leaves;
  std::vector<audit::Hash> roots;  // roots[n] = root of the first n leaves
  roots.push_back(audit::EmptyRoot());
  for (int i = 0; i < 77; ++i) {
    leaves.push_back(audit::LeafHash("entry " + std::to_string(i)));
    f.Append(leaves.back(), store.Recorder());
    roots.push_back(f.Root());
  }
  for (auto [index, size] : std::vector<std::pair<uint64_t, uint64_t>>{
           {0, 1}, {3, 7}, {6, 7}, {12, 13}, {31, 64}, {40, 77}}) {
    auto proof = audit::InclusionProof(index, size, store);
    if (!proof.ok() ||
        !audit::VerifyInclusion(index, size, leaves[index], *proof, roots[size]).ok()) {
      std::abort();
    }
    std::string s =
        std::string(1, '\0') + U64(index) + U64(size) + H(leaves[index]) + H(roots[size]);
    for (const auto& h : *proof) s += H(h);
    Write("merkle", "inclusion_" + std::to_string(index) + "_" + std::to_string(size), s);
  }
  for (auto [old_size, size] : std::vector<std::pair<uint64_t, uint64_t>>{
           {1, 2}, {3, 7}, {4, 8}, {7, 7}, {13, 64}, {50, 77}}) {
    auto proof = audit::ConsistencyProof(old_size, size, store);
    if (!proof.ok() ||
        !audit::VerifyConsistency(old_size, size, roots[old_size], roots[size], *proof).ok()) {
      std::abort();
    }
    std::string s =
        std::string(1, '\1') + U64(old_size) + U64(size) + H(roots[old_size]) + H(roots[size]);
    for (const auto& h : *proof) s += H(h);
    Write("merkle", "consistency_" + std::to_string(old_size) + "_" + std::to_string(size), s);
  }
  Write("merkle", "frontier_77", std::string(1, '\2') + f.Serialize());
  Write("merkle", "frontier_empty", std::string(1, '\2') + audit::MerkleFrontier().Serialize());
  Write("merkle", "selfcheck", std::string(1, '\3') + "\x4c\x05\x21" + "corridor audit leaves");
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: fuzz_make_seeds DIR   (DIR: tests/fuzz/corpus)\n");
    return 2;
  }
  g_root = argv[1];
  SubmitSeeds();
  SubscribeSeeds();
  BridgeSeeds();
  CheckpointSeeds();
  MerkleSeeds();
  return 0;
}
