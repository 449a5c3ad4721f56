// The exchange log over real mTLS: auditor-only access, every exchange and ack
// recorded, proofs that verify, a tree that continues across restarts, and an
// offline verifier that catches tampering and says where.
#include <sys/wait.h>

#include <fstream>
#include <sstream>

#include "agency_adapters/cli/audit_commands.h"
#include "agency_adapters/cli/common.h"
#include "broker/audit/checkpoint.h"
#include "broker/audit/merkle.h"
#include "broker/audit_entry_wire.h"
#include "broker/audit_log.h"
#include "broker/store.h"
#include "corridor/v1/audit.grpc.pb.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/time_util.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "tests/integration/broker_fixture.h"
#include "tests/testing/envelopes.h"
#include "tests/testing/status_matchers.h"

namespace corridor::testing {
namespace {

namespace audit = corridor::broker::audit;
using ::testing::HasSubstr;
using ::testing::SizeIs;

audit::Hash H(const std::string& b) {
  audit::Hash h{};
  std::copy_n(b.begin(), std::min<size_t>(32, b.size()), h.begin());
  return h;
}
std::vector<audit::Hash> Hs(const google::protobuf::RepeatedPtrField<std::string>& in) {
  std::vector<audit::Hash> out;
  for (const auto& b : in) out.push_back(H(b));
  return out;
}

class AuditE2eTest : public BrokerFixture {
 protected:
  void Customize(broker::BrokerConfig& config) override {
    config.audit.checkpoint_every = 1;  // a checkpoint after every batch
  }

  std::unique_ptr<v1::Audit::Stub> AuditStub(const std::string& stem) {
    auto channel = MakeChannel(OptionsFor(stem));
    EXPECT_TRUE(channel.ok());
    return v1::Audit::NewStub(*channel);
  }

  grpc::Status Query(v1::Audit::Stub* stub, const v1::AuditQuery& q,
                     std::vector<v1::AuditEntry>* out, v1::AuditQueryResponse* last = nullptr) {
    grpc::ClientContext ctx;
    auto reader = stub->Query(&ctx, q);
    v1::AuditQueryResponse page;
    while (reader->Read(&page)) {
      for (const auto& r : page.records()) out->push_back(r.entry());
      if (last) *last = page;
    }
    return reader->Finish();
  }

  v1::SignedCheckpoint Checkpoint(v1::Audit::Stub* stub, uint64_t size = 0) {
    grpc::ClientContext ctx;
    v1::CheckpointRequest req;
    req.set_size(size);
    v1::SignedCheckpoint cp;
    grpc::Status s = stub->GetCheckpoint(&ctx, req, &cp);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return cp;
  }

  // Submits one tip-off from police to a subscribed customs node and waits for its ack.
  std::string ExchangeOne(const std::string& id) {
    auto customs = Client("zs-customs");
    std::atomic<int> got{0};
    SubscriptionOptions o;
    o.open.set_name("duty");
    o.open.add_topic_filters("smuggling.*");
    auto sub = customs->Subscribe(o, [&](const v1::Delivery&) {
      got++;
      return true;
    });
    EXPECT_TRUE(sub->WaitOpened(absl::Seconds(5)).ok());
    v1::Envelope e = SampleTipOff(id);
    e.set_case_ref("ZS-2026-0200");
    auto r = Client("zs-police")->Submit(e);
    EXPECT_TRUE(r.ok()) << r.status();
    for (int i = 0; i < 100 && got.load() == 0; ++i) absl::SleepFor(absl::Milliseconds(50));
    absl::SleepFor(absl::Milliseconds(400));  // the ack reaches the broker and is recorded
    sub->Stop();
    return r.ok() ? r->exchange_id() : "";
  }

  std::string VerifierKey() {
    std::ifstream in(std::filesystem::path(config_.data_dir) / "audit-signing.key.vkey");
    std::string vkey;
    std::getline(in, vkey);
    return vkey;
  }
};

TEST_F(AuditE2eTest, OnlyAuditorsMayReadTheLog) {
  for (const char* who : {"zs-police", "admin"}) {
    std::vector<v1::AuditEntry> out;
    grpc::Status s = Query(AuditStub(who).get(), v1::AuditQuery(), &out);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED) << who;
    grpc::ClientContext ctx;
    v1::SignedCheckpoint cp;
    EXPECT_EQ(AuditStub(who)->GetCheckpoint(&ctx, v1::CheckpointRequest(), &cp).error_code(),
              grpc::StatusCode::PERMISSION_DENIED)
        << who;
  }
  std::vector<v1::AuditEntry> out;
  EXPECT_TRUE(Query(AuditStub("auditor").get(), v1::AuditQuery(), &out).ok());
}

TEST_F(AuditE2eTest, WhoSawThisTipOffWhenAndWhy) {
  const std::string exchange_id = ExchangeOne("tip-audit-1");
  auto stub = AuditStub("auditor");
  v1::AuditQuery q;
  q.set_exchange_id(exchange_id);
  std::vector<v1::AuditEntry> entries;
  ASSERT_TRUE(Query(stub.get(), q, &entries).ok());
  ASSERT_THAT(entries, SizeIs(3));
  EXPECT_EQ(entries[0].event(), v1::AUDIT_EVENT_COLLECTION);
  EXPECT_EQ(entries[0].actor_agency_id(), "zs-police");
  EXPECT_EQ(entries[0].officer_id(), "police-0417");
  EXPECT_EQ(entries[0].payload_sha256().size(), 32u);
  EXPECT_EQ(entries[1].event(), v1::AUDIT_EVENT_DISCLOSURE);
  EXPECT_EQ(entries[1].recipient_agency_id(), "zs-customs");
  EXPECT_EQ(entries[1].delivery_seq(), 1u);
  EXPECT_FALSE(entries[1].rule_ids().empty());
  EXPECT_EQ(entries[2].event(), v1::AUDIT_EVENT_CONSULTATION);  // customs acked it
  EXPECT_EQ(entries[2].actor_agency_id(), "zs-customs");
  for (const auto& e : entries) {
    // Never the payload itself: no Chinese narrative or informant in the entry.
    EXPECT_THAT(e.DebugString(), ::testing::Not(HasSubstr("线人甲")));
    EXPECT_EQ(e.case_ref(), "ZS-2026-0200");
  }
  // The same story by case ref and by agency; and the auditor's own queries are entries.
  v1::AuditQuery by_case;
  by_case.set_case_ref("ZS-2026-0200");
  std::vector<v1::AuditEntry> by_case_entries;
  ASSERT_TRUE(Query(stub.get(), by_case, &by_case_entries).ok());
  EXPECT_THAT(by_case_entries, SizeIs(3));
  v1::AuditQuery consultations;
  consultations.set_event(v1::AUDIT_EVENT_CONSULTATION);
  std::vector<v1::AuditEntry> seen;
  ASSERT_TRUE(Query(stub.get(), consultations, &seen).ok());
  int auditor_queries = 0;
  for (const auto& e : seen) {
    if (e.actor_spiffe_id() == "spiffe://zhongshan.corridor/auditor/auditor1") {
      ++auditor_queries;
      EXPECT_FALSE(e.query().empty());
    }
  }
  EXPECT_EQ(auditor_queries, 2);  // the exchange-id query and the case-ref query
}

TEST_F(AuditE2eTest, AgencyAndTimeRangeQueriesArePagedByIndex) {
  auto police = Client("zs-police");
  absl::Time before = absl::Now();
  for (int i = 0; i < 30; ++i) {
    v1::Envelope e = SampleTipOff(absl::StrCat("page-", i));
    e.add_addressees("zs-msa");
    ASSERT_TRUE(police->Submit(e).ok());
  }
  auto stub = AuditStub("auditor");
  v1::AuditQuery q;
  q.set_agency_id("zs-msa");
  *q.mutable_from_time() =
      google::protobuf::util::TimeUtil::NanosecondsToTimestamp(absl::ToUnixNanos(before));
  q.set_limit(7);
  std::vector<v1::AuditEntry> all;
  for (int page = 0; page < 10; ++page) {
    v1::AuditQueryResponse last;
    std::vector<v1::AuditEntry> got;
    ASSERT_TRUE(Query(stub.get(), q, &got, &last).ok());
    EXPECT_LE(got.size(), 7u);
    all.insert(all.end(), got.begin(), got.end());
    if (!last.more_after()) break;
    q.set_start_index(last.next_start_index());
  }
  ASSERT_THAT(all, SizeIs(30));  // the disclosures (or denials) to zs-msa, one per exchange
  for (size_t i = 1; i < all.size(); ++i) EXPECT_LT(all[i - 1].index(), all[i].index());
  for (const auto& e : all) EXPECT_EQ(e.recipient_agency_id(), "zs-msa");
}

TEST_F(AuditE2eTest, SpoofAttemptIsASecurityEvent) {
  v1::Envelope e = SampleTipOff("spoof");
  e.mutable_sender()->set_agency_id("zs-customs");
  EXPECT_FALSE(Client("zs-police")->Submit(e).ok());
  absl::SleepFor(absl::Milliseconds(300));
  v1::AuditQuery q;
  q.set_event(v1::AUDIT_EVENT_SECURITY);
  std::vector<v1::AuditEntry> out;
  ASSERT_TRUE(Query(AuditStub("auditor").get(), q, &out).ok());
  ASSERT_THAT(out, SizeIs(1));
  EXPECT_EQ(out[0].actor_agency_id(), "zs-police");
  EXPECT_THAT(out[0].detail(), HasSubstr("envelope.sender.agency_id"));
}

TEST_F(AuditE2eTest, ProofsVerifyAgainstSignedCheckpoints) {
  ExchangeOne("p-1");
  auto stub = AuditStub("auditor");
  v1::SignedCheckpoint first = Checkpoint(stub.get());
  ExchangeOne("p-2");
  v1::SignedCheckpoint second = Checkpoint(stub.get());
  ASSERT_GT(second.size(), first.size());
  const std::string vkey = VerifierKey();
  auto cp = audit::VerifyCheckpointNote(second.note(), vkey);
  ASSERT_TRUE(cp.ok()) << cp.status();
  for (uint64_t i = 0; i < second.size(); ++i) {
    grpc::ClientContext ctx;
    v1::InclusionProofRequest req;
    req.set_index(i);
    req.set_tree_size(second.size());
    v1::InclusionProofResponse proof;
    ASSERT_TRUE(stub->GetInclusionProof(&ctx, req, &proof).ok());
    EXPECT_TRUE(audit::VerifyInclusion(i, second.size(),
                                       audit::LeafHash(proof.record().entry_bytes()),
                                       Hs(proof.hashes()), cp->root)
                    .ok())
        << i;
  }
  grpc::ClientContext ctx;
  v1::ConsistencyProofRequest req;
  req.set_old_size(first.size());
  req.set_new_size(second.size());
  v1::ConsistencyProofResponse proof;
  ASSERT_TRUE(stub->GetConsistencyProof(&ctx, req, &proof).ok());
  EXPECT_TRUE(audit::VerifyConsistency(first.size(), second.size(), H(first.root()),
                                       H(second.root()), Hs(proof.hashes()))
                  .ok());
}

TEST_F(AuditE2eTest, TreeContinuesExactlyAfterRestart) {
  ExchangeOne("r-1");
  v1::SignedCheckpoint before = Checkpoint(AuditStub("auditor").get());
  StopBroker();
  StartBroker();
  auto stub = AuditStub("auditor");
  v1::SignedCheckpoint same = Checkpoint(stub.get(), before.size());
  EXPECT_EQ(same.root(), before.root());
  ExchangeOne("r-2");
  v1::SignedCheckpoint after = Checkpoint(stub.get());
  ASSERT_GT(after.size(), before.size());
  grpc::ClientContext ctx;
  v1::ConsistencyProofRequest req;
  req.set_old_size(before.size());
  req.set_new_size(after.size());
  v1::ConsistencyProofResponse proof;
  ASSERT_TRUE(stub->GetConsistencyProof(&ctx, req, &proof).ok());
  EXPECT_TRUE(audit::VerifyConsistency(before.size(), after.size(), H(before.root()),
                                       H(after.root()), Hs(proof.hashes()))
                  .ok());
  EXPECT_EQ(after.verifier_key(), before.verifier_key());  // same signing key
}

// Runs corridorctl (the real binary) and returns its exit code.
int Corridorctl(const std::vector<std::string>& args, std::string* output) {
  std::string cmd = CORRIDORCTL_PATH;
  for (const auto& a : args) cmd += " '" + a + "'";
  cmd += " 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  char buf[4096];
  output->clear();
  while (size_t n = fread(buf, 1, sizeof(buf), p)) output->append(buf, n);
  int status = pclose(p);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

TEST_F(AuditE2eTest, ExportVerifiesOfflineAndTamperingIsCaughtWhereItHappened) {
  ExchangeOne("x-1");
  const uint64_t earlier = Checkpoint(AuditStub("auditor").get()).size();
  ExchangeOne("x-2");
  const std::string exported = (dir_.path() / "export.jsonl").string();
  const std::string vkey_file =
      (std::filesystem::path(config_.data_dir) / "audit-signing.key.vkey").string();
  std::string out;
  ASSERT_EQ(Corridorctl(
                {"--broker", Target(), "--certs-dir", certs_dir_.string(), "--as", "auditor",
                 "audit", "export", "--out", exported, "--previous-size", std::to_string(earlier)},
                &out),
            0)
      << out;
  ASSERT_EQ(Corridorctl({"audit", "verify", "--export", exported, "--key", vkey_file}, &out), 0)
      << out;
  EXPECT_THAT(out, HasSubstr("OK"));

  std::vector<std::string> lines;
  {
    std::ifstream in(exported);
    for (std::string l; std::getline(in, l);) lines.push_back(l);
  }
  ASSERT_GE(lines.size(), 5u);  // checkpoint, consistency, entries
  auto write = [&](const std::vector<std::string>& ls, const std::string& path) {
    std::ofstream o(path);
    for (const auto& l : ls) o << l << "\n";
  };

  // 1. One flipped byte in one entry's hashed bytes: caught, and named.
  {
    std::vector<std::string> t = lines;
    v1::AuditExportLine line;
    ASSERT_TRUE(cli::FromJson(t[3], &line).ok());
    std::string* bytes = line.mutable_record()->mutable_entry_bytes();
    (*bytes)[bytes->size() / 2] ^= 0x01;
    line.mutable_record()->clear_entry();
    t[3] = cli::ToJson(line);
    const std::string path = (dir_.path() / "flipped.jsonl").string();
    write(t, path);
    EXPECT_EQ(Corridorctl({"audit", "verify", "--export", path, "--key", vkey_file}, &out), 1);
    EXPECT_THAT(out, HasSubstr("line 4"));
  }
  // 1b. An entry left out of an unfiltered export: caught, naming the missing index.
  {
    std::vector<std::string> t = lines;
    t.erase(t.begin() + 4);
    const std::string path = (dir_.path() / "dropped.jsonl").string();
    write(t, path);
    EXPECT_EQ(Corridorctl({"audit", "verify", "--export", path, "--key", vkey_file}, &out), 1);
    EXPECT_THAT(out, HasSubstr("is missing"));
  }
  // 2. The readable copy edited (e.g. a recipient changed): caught.
  {
    std::vector<std::string> t = lines;
    v1::AuditExportLine line;
    ASSERT_TRUE(cli::FromJson(t[3], &line).ok());
    line.mutable_record()->mutable_entry()->set_recipient_agency_id("zh-police");
    t[3] = cli::ToJson(line);
    const std::string path = (dir_.path() / "edited.jsonl").string();
    write(t, path);
    EXPECT_EQ(Corridorctl({"audit", "verify", "--export", path, "--key", vkey_file}, &out), 1);
    EXPECT_THAT(out, HasSubstr("readable copy differs"));
  }
  // 3. History rewritten and re-signed with another key: every proof is
  // self-consistent, but the checkpoint is not the broker's.
  {
    audit::MemoryNodeStore nodes;
    audit::MerkleFrontier frontier;
    std::vector<v1::AuditExportLine> entries;
    for (size_t i = 2; i < lines.size(); ++i) {
      v1::AuditExportLine line;
      ASSERT_TRUE(cli::FromJson(lines[i], &line).ok());
      if (!line.has_record()) continue;
      v1::AuditEntry e = line.record().entry();
      if (e.event() == v1::AUDIT_EVENT_DISCLOSURE) e.set_recipient_agency_id("zh-police");
      line.mutable_record()->set_entry_bytes(e.SerializeAsString());
      *line.mutable_record()->mutable_entry() = e;
      entries.push_back(line);
    }
    for (auto& l : entries) {
      frontier.Append(audit::LeafHash(l.record().entry_bytes()), nodes.Recorder());
    }
    auto forger = audit::Ed25519Signer::Generate("zhongshan.corridor/zs-broker");
    ASSERT_TRUE(forger.ok());
    audit::Checkpoint cp{"zhongshan.corridor/zs-broker", frontier.size(), frontier.Root(), {}};
    std::vector<std::string> t;
    v1::AuditExportLine head;
    head.mutable_checkpoint()->set_note(forger->SignNote(audit::CheckpointBody(cp)));
    head.mutable_checkpoint()->set_size(cp.size);
    head.mutable_checkpoint()->set_root(std::string(cp.root.begin(), cp.root.end()));
    t.push_back(cli::ToJson(head));
    for (size_t i = 0; i < entries.size(); ++i) {
      auto proof = audit::InclusionProof(i, frontier.size(), nodes);
      ASSERT_TRUE(proof.ok());
      entries[i].clear_inclusion_proof();
      for (const auto& h : *proof) {
        entries[i].add_inclusion_proof(std::string(h.begin(), h.end()));
      }
      t.push_back(cli::ToJson(entries[i]));
    }
    const std::string path = (dir_.path() / "forged.jsonl").string();
    write(t, path);
    EXPECT_EQ(Corridorctl({"audit", "verify", "--export", path, "--key", vkey_file}, &out), 1);
    EXPECT_THAT(out, HasSubstr("line 1: checkpoint"));
    // With the forger's own key it would verify: the pinned key is what matters.
    std::ofstream(dir_.path() / "forger.vkey") << forger->VerifierKey() << "\n";
    EXPECT_EQ(Corridorctl({"audit", "verify", "--export", path, "--key",
                           (dir_.path() / "forger.vkey").string()},
                          &out),
              0)
        << out;
  }
}

// An audit entry whose stored bytes do not parse (GBK text in its reasons,
// as an older broker stored unchecked policy text) used to make every query
// and export of the log fail with DATA_LOSS from then on. It is written here
// straight into the stopped broker's log; the real tools then report it by
// index with its bytes, go on past it, and prove it like any other entry.
TEST_F(AuditE2eTest, AnUnreadableEntryIsReportedExportedAndVerifiedNeverStoppingTheLog) {
  ExchangeOne("before-bad");
  StopBroker();
  uint64_t bad_index = 0;
  {
    auto store = broker::Store::Open(config_.data_dir);
    ASSERT_TRUE(store.ok()) << store.status();
    broker::AuditLog::Options o;
    o.origin = absl::StrCat(config_.registry->trust_domain, "/", config_.broker_id);
    o.key_file = std::filesystem::path(config_.data_dir) / "audit-signing.key";
    o.checkpoint_every = 1;
    auto log = broker::AuditLog::Open(store->get(), o);
    ASSERT_TRUE(log.ok()) << log.status();
    broker::PreparedEntry bad;
    broker::EntryWriter w(&bad.bytes);
    w.Enum(v1::AuditEntry::kEventFieldNumber, v1::AUDIT_EVENT_DENIAL);
    w.Message(v1::AuditEntry::kBrokerTimeFieldNumber,
              google::protobuf::util::TimeUtil::GetCurrentTime());
    w.String(v1::AuditEntry::kActorAgencyIdFieldNumber, "zs-police");
    bad.seq_at = bad.bytes.size();
    w.Repeated(v1::AuditEntry::kReasonsFieldNumber,
               std::vector<std::string>{"\xB2\xBB\xB9\xB2\xCF\xED"});  // GBK
    bad_index = (*log)->durable_size();
    rocksdb::WriteBatch batch;
    (*log)->Append(std::vector<broker::PreparedEntry>{bad}, batch);
    (*log)->BeforeWrite(batch, absl::Now());
    ASSERT_TRUE((*store)->Write(&batch, true).ok());
    (*log)->AfterWrite(true);
  }
  StartBroker();
  ExchangeOne("after-bad");

  // The API: the entry in its place, with why and its bytes; the rest after it.
  auto stub = AuditStub("auditor");
  {
    grpc::ClientContext ctx;
    auto reader = stub->Query(&ctx, v1::AuditQuery());
    v1::AuditQueryResponse page;
    std::vector<v1::AuditEntryRecord> records;
    while (reader->Read(&page)) {
      for (const auto& r : page.records()) records.push_back(r);
    }
    grpc::Status s = reader->Finish();
    ASSERT_TRUE(s.ok()) << s.error_message();
    ASSERT_GT(records.size(), bad_index + 1);
    const v1::AuditEntryRecord& r = records[bad_index];
    EXPECT_EQ(r.entry().index(), bad_index);
    EXPECT_EQ(r.unreadable(), "reasons[0]: not valid UTF-8");
    EXPECT_THAT(r.entry_bytes(), HasSubstr("\xB2\xBB\xB9\xB2\xCF\xED"));
    EXPECT_TRUE(records.back().unreadable().empty());
    EXPECT_GT(records.back().entry().index(), bad_index);
  }
  // corridorctl: query --all prints it (index, why, bytes in hex) and goes on.
  std::string out;
  const std::vector<std::string> conn = {"--broker",          Target(), "--certs-dir",
                                         certs_dir_.string(), "--as",   "auditor"};
  auto with = [&](std::vector<std::string> args) {
    args.insert(args.begin(), conn.begin(), conn.end());
    return args;
  };
  ASSERT_EQ(Corridorctl(with({"audit", "query", "--all"}), &out), 0) << out;
  EXPECT_THAT(out,
              HasSubstr(absl::StrCat("#", bad_index, "  UNREADABLE: reasons[0]: not valid UTF-8")));
  EXPECT_THAT(out, HasSubstr("b2bbb9b2cfed"));
  EXPECT_THAT(out, HasSubstr("after-bad"));
  // export holds it; verify proves it with the rest.
  const std::string exported = (dir_.path() / "export.jsonl").string();
  ASSERT_EQ(Corridorctl(with({"audit", "export", "--out", exported}), &out), 0) << out;
  const std::string vkey_file =
      (std::filesystem::path(config_.data_dir) / "audit-signing.key.vkey").string();
  ASSERT_EQ(Corridorctl({"audit", "verify", "--export", exported, "--key", vkey_file}, &out), 0)
      << out;
  EXPECT_THAT(out, HasSubstr("1 of them unreadable"));
  EXPECT_THAT(out, HasSubstr("the export is complete"));
  // Its bytes are still tamper-evident: one flipped byte is caught.
  std::vector<std::string> lines;
  {
    std::ifstream in(exported);
    for (std::string l; std::getline(in, l);) lines.push_back(l);
  }
  bool flipped = false;
  for (std::string& l : lines) {
    v1::AuditExportLine line;
    ASSERT_TRUE(cli::FromJson(l, &line).ok());
    if (!line.has_record() || line.record().unreadable().empty()) continue;
    std::string* bytes = line.mutable_record()->mutable_entry_bytes();
    (*bytes)[bytes->size() - 1] ^= 0x01;
    l = cli::ToJson(line);
    flipped = true;
  }
  ASSERT_TRUE(flipped);
  const std::string tampered = (dir_.path() / "tampered.jsonl").string();
  {
    std::ofstream o(tampered);
    for (const auto& l : lines) o << l << "\n";
  }
  EXPECT_EQ(Corridorctl({"audit", "verify", "--export", tampered, "--key", vkey_file}, &out), 1);
  EXPECT_THAT(out, HasSubstr(absl::StrCat("entry ", bad_index, " is not in the checkpointed log")));
}

// A filter that is not UTF-8 gets INVALID_ARGUMENT naming it (gRPC's typed
// handler answered UNIMPLEMENTED).
TEST_F(AuditE2eTest, AQueryFilterThatIsNotUtf8IsInvalidArgumentNamingIt) {
  auto stub = AuditStub("auditor");
  v1::AuditQuery q;
  q.set_case_ref("\xB0\xB8\xBC\xFE");  // "案件" in GBK
  grpc::ClientContext ctx;
  auto reader = stub->Query(&ctx, q);
  v1::AuditQueryResponse page;
  while (reader->Read(&page)) {
  }
  grpc::Status s = reader->Finish();
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(s.error_message(), "query.case_ref: not valid UTF-8");
  // The service goes on answering.
  std::vector<v1::AuditEntry> all;
  EXPECT_TRUE(Query(stub.get(), v1::AuditQuery(), &all).ok());
}

}  // namespace
}  // namespace corridor::testing
