// corridorctl (the real binary) checking peer receipts offline:
// `audit verify --peer-key DOMAIN=VKEY` on an export whose log records
// receipts, and `audit receipt` on one receipt. The logs are real AuditLogs
// over RocksDB: the receiving brokers' (zhuhai, hongkong) record collections of
// transfers and sign checkpoints; receipts are built from GetCheckpoint +
// GetInclusionProof + GetEntry as a receiving broker returns them; the sending
// broker's log (zhongshan) records them as AUDIT_EVENT_RECEIPT entries; the
// export is written line by line as `audit export` writes it.
#include <sys/wait.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "agency_adapters/cli/common.h"
#include "broker/audit/merkle.h"
#include "broker/audit_log.h"
#include "broker/store.h"
#include "corridor/v1/federation.pb.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/time_util.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"

namespace corridor {
namespace {

using ::corridor::testing::IsOk;
using google::protobuf::util::TimeUtil;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr int64_t kStart = 1796000400;  // 2026-11-17T01:00:00Z

// Runs corridorctl and returns its exit code; stdout and stderr in `output`.
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

// One broker's audit log in its own data dir.
struct Log {
  std::unique_ptr<broker::Store> store;
  std::unique_ptr<broker::AuditLog> log;
  int batches = 0;
};

class AuditReceiptCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Open(zhuhai_, "zhuhai.corridor/zh-broker", "zhuhai");
    Open(hongkong_, "hongkong.corridor/hk-broker", "hongkong");
    Open(zhongshan_, "zhongshan.corridor/zs-broker", "zhongshan");
    Open(forged_, "zhongshan.corridor/zs-broker", "forged");

    // Zhuhai stores two transfers of zs-01 and one of zs-02 among its own traffic.
    Write(zhuhai_, {Local(0), Local(1), Local(2), Collection("zs-01", "zh-police"),
                    Collection("zs-01", "zh-coastguard"), Collection("zs-02", "zh-police"),
                    Local(3), Local(4)});
    Write(hongkong_, {Local(0), Collection("zs-03", "hk-marine")});

    // Zhongshan records the receipts it got back.
    Write(zhongshan_,
          {Local(0), Local(1), Local(2),
           ReceiptEntry("zs-01", "zh-police", "zhuhai.corridor", ReceiptFor(zhuhai_, 3)),
           ReceiptEntry("zs-01", "zh-coastguard", "zhuhai.corridor", ReceiptFor(zhuhai_, 4)),
           ReceiptEntry("zs-03", "hk-marine", "hongkong.corridor", ReceiptFor(hongkong_, 1)),
           Local(3)});
    // A log that recorded receipts that prove nothing: one whose peer entry was
    // rewritten, one that is zs-02's receipt recorded as zs-01's.
    v1::TransferReceipt rewritten = ReceiptFor(zhuhai_, 4);
    v1::AuditEntry e;
    ASSERT_TRUE(e.ParseFromString(rewritten.entry()));
    e.set_recipient_agency_id("zh-police");
    rewritten.set_entry(e.SerializeAsString());
    Write(forged_, {ReceiptEntry("zs-01", "zh-police", "zhuhai.corridor", rewritten),
                    ReceiptEntry("zs-01", "zh-police", "zhuhai.corridor", ReceiptFor(zhuhai_, 5)),
                    ReceiptEntry("zs-01", "zh-police", "zhuhai.corridor", ReceiptFor(zhuhai_, 3))});

    export_ = Export(zhongshan_, "zhongshan.jsonl");
    forged_export_ = Export(forged_, "forged.jsonl");
    zs_vkey_ = VkeyFile(zhongshan_, "zhongshan.vkey");
    forged_vkey_ = VkeyFile(forged_, "forged.vkey");
    zh_vkey_ = VkeyFile(zhuhai_, "zhuhai.vkey");
  }

  void Open(Log& log, const std::string& origin, const std::string& name) {
    auto store = broker::Store::Open(dir_.path() / name / "db");
    ASSERT_THAT(store, IsOk());
    log.store = *std::move(store);
    broker::AuditLog::Options o;
    o.origin = origin;
    o.key_file = dir_.path() / name / "audit.key";
    o.checkpoint_interval = absl::ZeroDuration();  // a checkpoint per batch
    auto opened = broker::AuditLog::Open(log.store.get(), o);
    ASSERT_THAT(opened, IsOk());
    log.log = *std::move(opened);
  }

  static void Write(Log& log, std::vector<v1::AuditEntry> entries) {
    rocksdb::WriteBatch batch;
    log.log->Append(entries, batch);
    ASSERT_TRUE(log.log->BeforeWrite(batch, absl::FromUnixSeconds(kStart + ++log.batches)));
    ASSERT_THAT(log.store->Write(&batch, /*sync=*/true), IsOk());
    log.log->AfterWrite(true);
  }

  static v1::AuditEntry Local(int n) {
    v1::AuditEntry e;
    e.set_event(v1::AUDIT_EVENT_COLLECTION);
    *e.mutable_broker_time() = TimeUtil::SecondsToTimestamp(kStart + n);
    e.set_actor_agency_id("local-agency");
    e.set_exchange_id(absl::StrCat("local-", n));
    return e;
  }

  // The receiving broker's collection of a transfer from zhongshan.
  static v1::AuditEntry Collection(const std::string& origin_exchange_id,
                                   const std::string& recipient) {
    v1::AuditEntry e;
    e.set_event(v1::AUDIT_EVENT_COLLECTION);
    *e.mutable_broker_time() = TimeUtil::SecondsToTimestamp(kStart);
    e.set_actor_spiffe_id("spiffe://zhongshan.corridor/broker/zs-broker");
    e.set_sender_agency_id("zs-police");
    e.set_recipient_agency_id(recipient);
    e.set_exchange_id("peer-" + origin_exchange_id);
    e.set_peer_domain("zhongshan.corridor");
    e.mutable_origin()->set_domain("zhongshan.corridor");
    e.mutable_origin()->set_exchange_id(origin_exchange_id);
    e.mutable_origin()->set_agency_id("zs-police");
    return e;
  }

  // The sending broker's record of a receipt.
  static v1::AuditEntry ReceiptEntry(const std::string& exchange_id, const std::string& recipient,
                                     const std::string& peer_domain, v1::TransferReceipt receipt) {
    v1::AuditEntry e;
    e.set_event(v1::AUDIT_EVENT_RECEIPT);
    *e.mutable_broker_time() = TimeUtil::SecondsToTimestamp(kStart + 60);
    e.set_exchange_id(exchange_id);
    e.set_recipient_agency_id(recipient);
    e.set_peer_domain(peer_domain);
    *e.mutable_receipt() = std::move(receipt);
    return e;
  }

  static v1::TransferReceipt ReceiptFor(const Log& log, uint64_t index) {
    v1::TransferReceipt r;
    auto cp = log.log->GetCheckpoint(0);
    EXPECT_THAT(cp, IsOk());
    auto proof = log.log->GetInclusionProof(index, cp->size());
    EXPECT_THAT(proof, IsOk());
    auto record = log.log->GetEntry(index);
    EXPECT_THAT(record, IsOk());
    r.set_checkpoint(cp->note());
    r.set_leaf_index(index);
    *r.mutable_inclusion_path() = proof->hashes();
    r.set_entry(record->entry_bytes());
    return r;
  }

  // An unfiltered export of the whole log, as `audit export` writes it.
  std::string Export(const Log& log, const std::string& name) {
    const std::string path = (dir_.path() / name).string();
    std::ofstream out(path);
    auto cp = log.log->GetCheckpoint(0);
    EXPECT_THAT(cp, IsOk());
    v1::AuditExportLine head;
    *head.mutable_checkpoint() = *cp;
    out << cli::ToJson(head) << "\n";
    for (uint64_t i = 0; i < cp->size(); ++i) {
      auto proof = log.log->GetInclusionProof(i, cp->size());
      EXPECT_THAT(proof, IsOk());
      auto record = log.log->GetEntry(i);
      EXPECT_THAT(record, IsOk());
      v1::AuditExportLine line;
      *line.mutable_record() = *record;
      *line.mutable_inclusion_proof() = proof->hashes();
      out << cli::ToJson(line) << "\n";
    }
    return path;
  }

  std::string VkeyFile(const Log& log, const std::string& name) {
    const std::string path = (dir_.path() / name).string();
    std::ofstream(path) << log.log->verifier_key() << "\n";
    return path;
  }

  std::string WriteFile(const std::string& name, const std::string& text) {
    const std::string path = (dir_.path() / name).string();
    std::ofstream(path) << text;
    return path;
  }

  corridor::testing::TempDir dir_;
  Log zhuhai_, hongkong_, zhongshan_, forged_;
  std::string export_, forged_export_, zs_vkey_, forged_vkey_, zh_vkey_;
};

TEST_F(AuditReceiptCliTest, VerifyChecksEachRecordedReceiptWithItsPeersKey) {
  std::string out;
  ASSERT_EQ(Corridorctl({"audit", "verify", "--export", export_, "--key", zs_vkey_, "--peer-key",
                         "zhuhai.corridor=" + zh_vkey_},
                        &out),
            0)
      << out;
  EXPECT_THAT(out, HasSubstr("OK: checkpoint signature valid; 7 entries proven included"));
  EXPECT_THAT(out, HasSubstr("receipt #3 (exchange zs-01 to zh-police of zhuhai.corridor): "
                             "verified: zhuhai.corridor recorded the collection of exchange "
                             "zs-01 of zhongshan.corridor for zh-police (its exchange "
                             "peer-zs-01)"));
  EXPECT_THAT(out, HasSubstr("leaf 3 of its log zhuhai.corridor/zh-broker, tree size 8"));
  EXPECT_THAT(out, HasSubstr("receipt #4 (exchange zs-01 to zh-coastguard of zhuhai.corridor): "
                             "verified"));
  EXPECT_THAT(out, HasSubstr("receipt #5 (exchange zs-03 to hk-marine of hongkong.corridor): "
                             "unverified: no key given for hongkong.corridor"));
  EXPECT_THAT(out, HasSubstr("receipts: 2 verified, 0 failed, 1 unverified"));

  // Hong Kong's key as text, Zhuhai's from its file: all three verify.
  ASSERT_EQ(Corridorctl({"--json", "audit", "verify", "--export", export_, "--key", zs_vkey_,
                         "--peer-key", "zhuhai.corridor=" + zh_vkey_, "--peer-key",
                         "hongkong.corridor=" + hongkong_.log->verifier_key()},
                        &out),
            0)
      << out;
  EXPECT_THAT(out, HasSubstr("\"receipts_verified\":3,\"receipts_failed\":0,"
                             "\"receipts_unverified\":0"));
}

TEST_F(AuditReceiptCliTest, WithoutPeerKeysReceiptsAreReportedUnverified) {
  std::string out;
  ASSERT_EQ(Corridorctl({"audit", "verify", "--export", export_, "--key", zs_vkey_}, &out), 0)
      << out;
  EXPECT_THAT(out, HasSubstr("receipts: 0 verified, 0 failed, 3 unverified"));
  EXPECT_THAT(out, HasSubstr("no key given for zhuhai.corridor"));
}

TEST_F(AuditReceiptCliTest, WrongPeerKeyFailsNamingSignature) {
  std::string out;
  EXPECT_EQ(Corridorctl({"audit", "verify", "--export", export_, "--key", zs_vkey_, "--peer-key",
                         "zhuhai.corridor=" + hongkong_.log->verifier_key()},
                        &out),
            1)
      << out;
  EXPECT_THAT(out, HasSubstr("receipt #3 (exchange zs-01 to zh-police of zhuhai.corridor): "
                             "FAILED at step signature: note: not signed by key "
                             "hongkong.corridor/hk-broker+"));
  EXPECT_THAT(out, HasSubstr("receipts: 0 verified, 2 failed, 1 unverified"));
  EXPECT_THAT(out, HasSubstr("2 receipts failed verification"));
}

TEST_F(AuditReceiptCliTest, ReceiptsThatProveNothingFailNamingTheStep) {
  std::string out;
  EXPECT_EQ(Corridorctl({"audit", "verify", "--export", forged_export_, "--key", forged_vkey_,
                         "--peer-key", "zhuhai.corridor=" + zh_vkey_},
                        &out),
            1)
      << out;
  EXPECT_THAT(out, HasSubstr("receipt #0 (exchange zs-01 to zh-police of zhuhai.corridor): "
                             "FAILED at step inclusion"));
  EXPECT_THAT(out, HasSubstr("receipt #1 (exchange zs-01 to zh-police of zhuhai.corridor): "
                             "FAILED at step content"));
  EXPECT_THAT(out, HasSubstr("receipt #2 (exchange zs-01 to zh-police of zhuhai.corridor): "
                             "verified"));
  EXPECT_THAT(out, HasSubstr("receipts: 1 verified, 2 failed, 0 unverified"));

  ASSERT_EQ(Corridorctl({"--json", "audit", "verify", "--export", forged_export_, "--key",
                         forged_vkey_, "--peer-key", "zhuhai.corridor=" + zh_vkey_},
                        &out),
            1);
  EXPECT_THAT(out, HasSubstr("\"step\":\"inclusion\""));
  EXPECT_THAT(out, HasSubstr("\"step\":\"content\""));
}

TEST_F(AuditReceiptCliTest, MalformedPeerKeyFlagsAreUsageErrors) {
  std::string out;
  for (const std::string& flag :
       {std::string("zhuhai.corridor"), std::string("=") + zh_vkey_,
        std::string("zhuhai.corridor="), std::string("zhuhai.corridor=/no/such/file")}) {
    SCOPED_TRACE(flag);
    EXPECT_EQ(
        Corridorctl({"audit", "verify", "--export", export_, "--key", zs_vkey_, "--peer-key", flag},
                    &out),
        2)
        << out;
    EXPECT_THAT(out, HasSubstr("--peer-key"));
  }
  EXPECT_EQ(
      Corridorctl({"audit", "verify", "--export", export_, "--key", zs_vkey_, "--peer-key",
                   "zhuhai.corridor=" + zh_vkey_, "--peer-key", "zhuhai.corridor=" + zh_vkey_},
                  &out),
      2)
      << out;
  EXPECT_THAT(out, HasSubstr("given twice"));
}

TEST_F(AuditReceiptCliTest, ReceiptCommandSaysWhatAReceiptProves) {
  const std::string file = WriteFile("r.json", cli::ToJson(ReceiptFor(zhuhai_, 3), true));
  auto cp = zhuhai_.log->GetCheckpoint(0);
  ASSERT_THAT(cp, IsOk());
  std::string root_hex;
  for (unsigned char c : cp->root()) absl::StrAppend(&root_hex, absl::Hex(c, absl::kZeroPad2));
  std::string out;
  ASSERT_EQ(Corridorctl({"audit", "receipt", "--receipt", file, "--peer-key", zh_vkey_,
                         "--exchange", "zs-01", "--origin-domain", "zhongshan.corridor",
                         "--recipient", "zh-police", "--peer-domain", "zhuhai.corridor"},
                        &out),
            0)
      << out;
  EXPECT_THAT(out, HasSubstr("OK: zhuhai.corridor recorded the collection of exchange zs-01 of "
                             "zhongshan.corridor for zh-police (its exchange peer-zs-01)"));
  EXPECT_THAT(out, HasSubstr(absl::StrCat("leaf 3 of its log zhuhai.corridor/zh-broker, tree "
                                          "size 8, root ",
                                          root_hex)));

  ASSERT_EQ(Corridorctl({"--json", "audit", "receipt", "--receipt", file, "--peer-key", zh_vkey_,
                         "--exchange", "zs-01", "--origin-domain", "zhongshan.corridor",
                         "--recipient", "zh-police"},
                        &out),
            0)
      << out;
  EXPECT_THAT(out, HasSubstr("\"verified\":true"));
  EXPECT_THAT(out, HasSubstr("\"tree_size\":8"));
}

TEST_F(AuditReceiptCliTest, ReceiptCommandNamesTheFailedStep) {
  const v1::TransferReceipt good = ReceiptFor(zhuhai_, 3);
  const std::string file = WriteFile("r.json", cli::ToJson(good));
  v1::TransferReceipt moved = good;
  moved.set_leaf_index(4);
  const std::string moved_file = WriteFile("moved.json", cli::ToJson(moved));
  const std::vector<std::string> expect = {"--exchange",         "zs-01",       "--origin-domain",
                                           "zhongshan.corridor", "--recipient", "zh-police"};
  auto run = [&](const std::string& receipt, const std::string& key, std::vector<std::string> flags,
                 std::string* out) {
    std::vector<std::string> args = {"audit", "receipt", "--receipt", receipt, "--peer-key", key};
    args.insert(args.end(), flags.begin(), flags.end());
    return Corridorctl(args, out);
  };
  std::string out;
  EXPECT_EQ(run(file, hongkong_.log->verifier_key(), expect, &out), 1) << out;
  EXPECT_THAT(out, HasSubstr("FAILED at step signature"));
  EXPECT_EQ(run(moved_file, zh_vkey_, expect, &out), 1) << out;
  EXPECT_THAT(out, HasSubstr("FAILED at step inclusion"));
  EXPECT_EQ(run(file, zh_vkey_,
                {"--exchange", "zs-02", "--origin-domain", "zhongshan.corridor", "--recipient",
                 "zh-police"},
                &out),
            1)
      << out;
  EXPECT_THAT(out, HasSubstr("FAILED at step content"));
  EXPECT_THAT(out, Not(HasSubstr("OK")));
  std::vector<std::string> hk = expect;
  hk.insert(hk.end(), {"--peer-domain", "hongkong.corridor"});
  EXPECT_EQ(run(file, zh_vkey_, hk, &out), 1) << out;
  EXPECT_THAT(out, HasSubstr("FAILED at step checkpoint"));
  // What it should prove must be said.
  EXPECT_EQ(run(file, zh_vkey_, {"--exchange", "zs-01", "--recipient", "zh-police"}, &out), 2)
      << out;
  EXPECT_THAT(out, HasSubstr("--origin-domain: required"));
  EXPECT_EQ(run(WriteFile("junk.json", "{\"nope\": 1}"), zh_vkey_, expect, &out), 2) << out;
}

TEST_F(AuditReceiptCliTest, ReceiptCommandTakesAnEntryOrAReceiptForTransfer) {
  std::string out;
  // The sending broker's RECEIPT entry, as `audit query --json` prints it: the
  // exchange, recipient and peer domain come from it.
  auto entry = zhongshan_.log->GetEntry(3);
  ASSERT_THAT(entry, IsOk());
  const std::string entry_file = WriteFile("entry.json", cli::ToJson(entry->entry()));
  EXPECT_EQ(Corridorctl({"audit", "receipt", "--receipt", entry_file, "--peer-key", zh_vkey_,
                         "--origin-domain", "zhongshan.corridor"},
                        &out),
            0)
      << out;
  EXPECT_THAT(out, HasSubstr("for zh-police"));
  // Entry 4 is zh-coastguard's: asking for zh-police's fails.
  auto other = zhongshan_.log->GetEntry(4);
  ASSERT_THAT(other, IsOk());
  EXPECT_EQ(
      Corridorctl({"audit", "receipt", "--receipt",
                   WriteFile("other.json", cli::ToJson(other->entry())), "--peer-key", zh_vkey_,
                   "--origin-domain", "zhongshan.corridor", "--recipient", "zh-police"},
                  &out),
      1)
      << out;
  EXPECT_THAT(out, HasSubstr("FAILED at step content"));

  v1::ReceiptForTransfer rft;
  rft.set_recipient_agency_id("zh-coastguard");
  rft.set_seq(7);
  rft.set_origin_exchange_id("zs-01");
  *rft.mutable_receipt() = ReceiptFor(zhuhai_, 4);
  EXPECT_EQ(Corridorctl({"audit", "receipt", "--receipt", WriteFile("rft.json", cli::ToJson(rft)),
                         "--peer-key", zh_vkey_, "--origin-domain", "zhongshan.corridor"},
                        &out),
            0)
      << out;
  EXPECT_THAT(out, HasSubstr("for zh-coastguard"));
}

}  // namespace
}  // namespace corridor
