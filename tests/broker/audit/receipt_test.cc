// VerifyTransferReceipt on real receipts: a real AuditLog over RocksDB (the
// receiving broker's log, "zhuhai.corridor/zh-broker") records transfers as
// collection entries and signs a checkpoint; a receipt is built from
// GetCheckpoint + GetInclusionProof + GetEntry exactly as a broker returns it.
// Every forgery or alteration must fail at the step that catches it.
#include "broker/audit/receipt.h"

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "broker/audit/checkpoint.h"
#include "broker/audit/merkle.h"
#include "broker/audit_log.h"
#include "broker/store.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/time_util.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"

namespace corridor::broker::audit {
namespace {

using ::corridor::testing::IsOk;
using ::corridor::testing::StatusIs;
using google::protobuf::util::TimeUtil;
using ::testing::HasSubstr;
using ::testing::StartsWith;

constexpr char kOrigin[] = "zhuhai.corridor/zh-broker";
constexpr char kSender[] = "zhongshan.corridor";
constexpr int64_t kStart = 1796000400;  // 2026-11-17T01:00:00Z

// The receiving broker's entry for a transfer it stored (or, for `event` DENIAL,
// its own policy withholding it from the recipient).
v1::AuditEntry Transfer(const std::string& origin_exchange_id, const std::string& recipient,
                        v1::AuditEvent event = v1::AUDIT_EVENT_COLLECTION) {
  v1::AuditEntry e;
  e.set_event(event);
  *e.mutable_broker_time() = TimeUtil::SecondsToTimestamp(kStart);
  e.set_actor_spiffe_id("spiffe://zhongshan.corridor/broker/zs-broker");
  e.set_sender_agency_id("zs-police");
  e.set_recipient_agency_id(recipient);
  e.set_exchange_id("zh-" + origin_exchange_id);
  e.set_peer_domain(kSender);
  e.mutable_origin()->set_domain(kSender);
  e.mutable_origin()->set_exchange_id(origin_exchange_id);
  e.mutable_origin()->set_agency_id("zs-police");
  return e;
}

v1::AuditEntry Local(int n) {
  v1::AuditEntry e;
  e.set_event(n % 2 == 0 ? v1::AUDIT_EVENT_COLLECTION : v1::AUDIT_EVENT_DISCLOSURE);
  *e.mutable_broker_time() = TimeUtil::SecondsToTimestamp(kStart + n);
  e.set_actor_agency_id("zh-police");
  e.set_sender_agency_id("zh-police");
  if (n % 2 == 1) e.set_recipient_agency_id("zh-msa");
  e.set_exchange_id(absl::StrCat("zh-local-", n / 2));
  return e;
}

class ReceiptTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto store = Store::Open(dir_.path() / "db");
    ASSERT_THAT(store, IsOk());
    store_ = *std::move(store);
    AuditLog::Options o;
    o.origin = kOrigin;
    o.key_file = dir_.path() / "audit.key";
    o.checkpoint_every = 1000;
    o.checkpoint_interval = absl::ZeroDuration();  // a checkpoint per batch
    auto log = AuditLog::Open(store_.get(), o);
    ASSERT_THAT(log, IsOk());
    log_ = *std::move(log);

    // Local traffic, the transfers, more local traffic: the entries of
    // interest sit inside the tree, with non-trivial paths.
    std::vector<v1::AuditEntry> first;
    for (int n = 0; n < 5; ++n) first.push_back(Local(n));
    Write(first);
    std::vector<v1::AuditEntry> second = {
        Transfer("zs-01", "zh-police"),                          // 5
        Transfer("zs-01", "zh-coastguard"),                      // 6
        Transfer("zs-02", "zh-police"),                          // 7
        Transfer("zs-03", "zh-police", v1::AUDIT_EVENT_DENIAL),  // 8
    };
    Write(second);
    std::vector<v1::AuditEntry> third;
    for (int n = 5; n < 12; ++n) third.push_back(Local(n));
    Write(third);
    ASSERT_EQ(log_->durable_size(), 16u);
  }

  void Write(std::vector<v1::AuditEntry>& entries) {
    rocksdb::WriteBatch batch;
    log_->Append(entries, batch);
    ASSERT_TRUE(
        log_->BeforeWrite(batch, absl::FromUnixSeconds(kStart) + absl::Seconds(++batches_)));
    ASSERT_THAT(store_->Write(&batch, /*sync=*/true), IsOk());
    log_->AfterWrite(true);
  }

  // What the receiving broker returns for its entry `index`: the latest
  // checkpoint, the path to it, the entry's bytes.
  v1::TransferReceipt ReceiptFor(uint64_t index) {
    v1::TransferReceipt r;
    auto cp = log_->GetCheckpoint(0);
    EXPECT_THAT(cp, IsOk());
    if (!cp.ok()) return r;
    auto proof = log_->GetInclusionProof(index, cp->size());
    EXPECT_THAT(proof, IsOk());
    auto record = log_->GetEntry(index);
    EXPECT_THAT(record, IsOk());
    if (!proof.ok() || !record.ok()) return r;
    r.set_checkpoint(cp->note());
    r.set_leaf_index(index);
    *r.mutable_inclusion_path() = proof->hashes();
    r.set_entry(record->entry_bytes());
    return r;
  }

  static ReceiptExpectation Expect(std::string exchange = "zs-01",
                                   std::string recipient = "zh-police") {
    return ReceiptExpectation{.origin_domain = kSender,
                              .origin_exchange_id = std::move(exchange),
                              .recipient_agency_id = std::move(recipient),
                              .peer_domain = "zhuhai.corridor"};
  }

  absl::StatusOr<VerifiedReceipt> Verify(const v1::TransferReceipt& r,
                                         const ReceiptExpectation& expect = Expect()) {
    return VerifyTransferReceipt(r, log_->verifier_key(), expect);
  }

  // The receiving broker's own signing key, as a forger who stole it would hold it.
  Ed25519Signer PeerSigner() {
    auto signer = Ed25519Signer::LoadOrCreate(dir_.path() / "audit.key", kOrigin);
    EXPECT_THAT(signer, IsOk());
    return *std::move(signer);
  }

  corridor::testing::TempDir dir_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<AuditLog> log_;
  int batches_ = 0;
};

// The step a failure names, checked against its code.
MATCHER_P2(FailsAt, code, step, "") {
  const absl::Status& s = arg.status();
  *result_listener << "status " << s;
  return s.code() == code && ReceiptStepOf(s) == step &&
         absl::StartsWith(s.message(), absl::StrCat(step, ": "));
}

TEST_F(ReceiptTest, RealReceiptVerifiesAndSaysWhatItProves) {
  auto v = Verify(ReceiptFor(5));
  ASSERT_THAT(v, IsOk());
  EXPECT_EQ(v->checkpoint.origin, kOrigin);
  EXPECT_EQ(v->checkpoint.size, 16u);
  EXPECT_EQ(v->entry.index(), 5u);
  EXPECT_EQ(v->entry.event(), v1::AUDIT_EVENT_COLLECTION);
  EXPECT_EQ(v->entry.origin().exchange_id(), "zs-01");
  EXPECT_EQ(v->entry.recipient_agency_id(), "zh-police");
  EXPECT_EQ(v->entry.exchange_id(), "zh-zs-01");
  // The same receipt for the other recipient and exchange of the batch.
  EXPECT_THAT(Verify(ReceiptFor(6), Expect("zs-01", "zh-coastguard")), IsOk());
  EXPECT_THAT(Verify(ReceiptFor(7), Expect("zs-02")), IsOk());
  // Without a peer domain to compare the origin line with.
  ReceiptExpectation no_domain = Expect();
  no_domain.peer_domain.clear();
  EXPECT_THAT(Verify(ReceiptFor(5), no_domain), IsOk());
}

TEST_F(ReceiptTest, ReceiptAgainstAnOlderCheckpointVerifies) {
  // A receipt taken when the tree was 9 entries long stays valid later.
  auto cp = log_->GetCheckpoint(9);
  ASSERT_THAT(cp, IsOk());
  auto proof = log_->GetInclusionProof(5, 9);
  ASSERT_THAT(proof, IsOk());
  v1::TransferReceipt r = ReceiptFor(5);
  r.set_checkpoint(cp->note());
  *r.mutable_inclusion_path() = proof->hashes();
  auto v = Verify(r);
  ASSERT_THAT(v, IsOk());
  EXPECT_EQ(v->checkpoint.size, 9u);
}

TEST_F(ReceiptTest, WrongKeyFailsAtSignature) {
  const v1::TransferReceipt r = ReceiptFor(5);
  // Another key under the same name (a forger's), and another broker's key.
  auto same_name = Ed25519Signer::Generate(kOrigin);
  ASSERT_THAT(same_name, IsOk());
  auto other = Ed25519Signer::Generate("zhongshan.corridor/zs-broker");
  ASSERT_THAT(other, IsOk());
  for (const std::string& key : {same_name->VerifierKey(), other->VerifierKey()}) {
    SCOPED_TRACE(key);
    EXPECT_THAT(VerifyTransferReceipt(r, key, Expect()),
                FailsAt(absl::StatusCode::kDataLoss, "signature"));
  }
  // A note the forger signed with their own key over the genuine body.
  auto body = VerifyNote(r.checkpoint(), log_->verifier_key());
  ASSERT_THAT(body, IsOk());
  v1::TransferReceipt forged = r;
  forged.set_checkpoint(same_name->SignNote(*body));
  EXPECT_THAT(Verify(forged), FailsAt(absl::StatusCode::kDataLoss, "signature"));
  // A malformed key is the caller's error.
  EXPECT_THAT(VerifyTransferReceipt(r, "not a vkey", Expect()),
              FailsAt(absl::StatusCode::kInvalidArgument, "signature"));
}

TEST_F(ReceiptTest, AlteredNoteFailsAtSignature) {
  const v1::TransferReceipt r = ReceiptFor(5);
  const std::string& note = r.checkpoint();
  const size_t origin_end = note.find('\n');
  const size_t size_end = note.find('\n', origin_end + 1);
  ASSERT_NE(size_end, std::string::npos);
  struct Case {
    const char* what;
    size_t at;
  };
  for (const Case& c :
       {Case{"origin", 0}, Case{"size", origin_end + 1}, Case{"root", size_end + 5}}) {
    SCOPED_TRACE(c.what);
    v1::TransferReceipt altered = r;
    std::string& n = *altered.mutable_checkpoint();
    n[c.at] = n[c.at] == 'A' ? 'B' : (c.what == std::string("size") ? '9' : 'A');
    ASSERT_NE(n, note);
    EXPECT_THAT(Verify(altered), FailsAt(absl::StatusCode::kDataLoss, "signature"));
  }
  // The signature line itself altered, and the note cut off.
  v1::TransferReceipt sig = r;
  std::string& n = *sig.mutable_checkpoint();
  n[n.size() - 10] = n[n.size() - 10] == 'A' ? 'B' : 'A';
  EXPECT_THAT(Verify(sig), FailsAt(absl::StatusCode::kDataLoss, "signature"));
  v1::TransferReceipt cut = r;
  cut.set_checkpoint(note.substr(0, size_end + 1));
  EXPECT_THAT(Verify(cut), FailsAt(absl::StatusCode::kInvalidArgument, "signature"));
}

TEST_F(ReceiptTest, SignedTextThatIsNotACheckpointOrOfAnotherDomainFailsAtCheckpoint) {
  v1::TransferReceipt r = ReceiptFor(5);
  // Signed by the peer's own key, but not a checkpoint body.
  r.set_checkpoint(PeerSigner().SignNote("zhuhai.corridor/zh-broker\nsixteen\n"));
  EXPECT_THAT(Verify(r), FailsAt(absl::StatusCode::kInvalidArgument, "checkpoint"));
  // A genuine receipt checked as another domain's.
  ReceiptExpectation hk = Expect();
  hk.peer_domain = "hongkong.corridor";
  auto v = Verify(ReceiptFor(5), hk);
  EXPECT_THAT(v, FailsAt(absl::StatusCode::kDataLoss, "checkpoint"));
  EXPECT_THAT(v.status().message(), HasSubstr("hongkong.corridor"));
  // A prefix of the domain is not the domain.
  hk.peer_domain = "zhuhai.corr";
  EXPECT_THAT(Verify(ReceiptFor(5), hk), FailsAt(absl::StatusCode::kDataLoss, "checkpoint"));
}

TEST_F(ReceiptTest, AlteredEntryBytesFailAtInclusion) {
  const v1::TransferReceipt r = ReceiptFor(6);  // zs-01 for zh-coastguard
  // The peer's entry rewritten to name another recipient: parses, but it is not the leaf.
  v1::AuditEntry e;
  ASSERT_TRUE(e.ParseFromString(r.entry()));
  e.set_recipient_agency_id("zh-police");
  v1::TransferReceipt rewritten = r;
  rewritten.set_entry(e.SerializeAsString());
  EXPECT_THAT(Verify(rewritten), FailsAt(absl::StatusCode::kDataLoss, "inclusion"));
  // One byte flipped, and one appended.
  v1::TransferReceipt flipped = r;
  (*flipped.mutable_entry())[3] ^= 0x01;
  EXPECT_THAT(Verify(flipped, Expect("zs-01", "zh-coastguard")),
              FailsAt(absl::StatusCode::kDataLoss, "inclusion"));
  v1::TransferReceipt longer = r;
  longer.mutable_entry()->push_back('\0');
  EXPECT_THAT(Verify(longer, Expect("zs-01", "zh-coastguard")),
              FailsAt(absl::StatusCode::kDataLoss, "inclusion"));
  // Unaltered, it verifies.
  EXPECT_THAT(Verify(r, Expect("zs-01", "zh-coastguard")), IsOk());
}

TEST_F(ReceiptTest, WrongLeafIndexFailsAtInclusion) {
  for (uint64_t index : {4u, 6u, 15u, 16u, 1000u}) {
    SCOPED_TRACE(index);
    v1::TransferReceipt r = ReceiptFor(5);
    r.set_leaf_index(index);
    EXPECT_THAT(Verify(r), FailsAt(absl::StatusCode::kDataLoss, "inclusion"));
  }
}

TEST_F(ReceiptTest, AlteredPathFailsAtInclusion) {
  const v1::TransferReceipt r = ReceiptFor(5);
  ASSERT_EQ(r.inclusion_path_size(), 4);  // 16 leaves
  for (int i = 0; i < r.inclusion_path_size(); ++i) {
    SCOPED_TRACE(i);
    v1::TransferReceipt altered = r;
    (*altered.mutable_inclusion_path(i))[17] ^= 0x80;
    EXPECT_THAT(Verify(altered), FailsAt(absl::StatusCode::kDataLoss, "inclusion"));
  }
  v1::TransferReceipt shorter = r;
  shorter.mutable_inclusion_path()->RemoveLast();
  EXPECT_THAT(Verify(shorter), FailsAt(absl::StatusCode::kDataLoss, "inclusion"));
  v1::TransferReceipt longer = r;
  longer.add_inclusion_path(r.inclusion_path(0));
  EXPECT_THAT(Verify(longer), FailsAt(absl::StatusCode::kDataLoss, "inclusion"));
  v1::TransferReceipt swapped = r;
  swapped.mutable_inclusion_path()->SwapElements(0, 1);
  EXPECT_THAT(Verify(swapped), FailsAt(absl::StatusCode::kDataLoss, "inclusion"));
  v1::TransferReceipt truncated_hash = r;
  truncated_hash.mutable_inclusion_path(2)->pop_back();
  EXPECT_THAT(Verify(truncated_hash), FailsAt(absl::StatusCode::kInvalidArgument, "inclusion"));
}

TEST_F(ReceiptTest, GenuineEntryOfAnotherExchangeOrRecipientFailsAtContent) {
  // Entry 7 is zs-02's genuine collection: it proves nothing about zs-01.
  auto v = Verify(ReceiptFor(7), Expect("zs-01"));
  EXPECT_THAT(v, FailsAt(absl::StatusCode::kDataLoss, "content"));
  EXPECT_THAT(v.status().message(), HasSubstr("origin.exchange_id"));
  // Entry 6 is zs-01 for zh-coastguard, not for zh-police.
  v = Verify(ReceiptFor(6), Expect("zs-01", "zh-police"));
  EXPECT_THAT(v, FailsAt(absl::StatusCode::kDataLoss, "content"));
  EXPECT_THAT(v.status().message(), HasSubstr("recipient_agency_id"));
  // Entry 5 names zs-01 of zhongshan, not of another sending domain.
  ReceiptExpectation from_hk = Expect();
  from_hk.origin_domain = "hongkong.corridor";
  v = Verify(ReceiptFor(5), from_hk);
  EXPECT_THAT(v, FailsAt(absl::StatusCode::kDataLoss, "content"));
  EXPECT_THAT(v.status().message(), HasSubstr("origin.domain"));
  // A local collection (no origin at all).
  EXPECT_THAT(Verify(ReceiptFor(0), Expect("zh-local-0")),
              FailsAt(absl::StatusCode::kDataLoss, "content"));
}

TEST_F(ReceiptTest, DenialEntryFailsAtContent) {
  auto v = Verify(ReceiptFor(8), Expect("zs-03"));
  EXPECT_THAT(v, FailsAt(absl::StatusCode::kDataLoss, "content"));
  EXPECT_THAT(v.status().message(), HasSubstr("AUDIT_EVENT_DENIAL"));
  // A disclosure is not a collection either.
  EXPECT_THAT(Verify(ReceiptFor(1), Expect("zh-local-0", "zh-msa")),
              FailsAt(absl::StatusCode::kDataLoss, "content"));
}

TEST_F(ReceiptTest, EmptyExpectationIsRefusedNotMatched) {
  // Entry 0 has no origin and no recipient: empty expected values would match it.
  ReceiptExpectation empty;
  EXPECT_THAT(Verify(ReceiptFor(0), empty), FailsAt(absl::StatusCode::kInvalidArgument, "content"));
  ReceiptExpectation no_recipient = Expect();
  no_recipient.recipient_agency_id.clear();
  auto v = Verify(ReceiptFor(5), no_recipient);
  EXPECT_THAT(v, FailsAt(absl::StatusCode::kInvalidArgument, "content"));
  EXPECT_THAT(v.status().message(), HasSubstr("recipient_agency_id"));
}

// Logs an AuditLog never writes (it refuses to store such entries), signed by
// the peer's key: the steps after inclusion must still hold on their own.
class HandmadeLogTest : public ReceiptTest {
 protected:
  // A receipt for leaf `at` of a tree of `leaves`, signed with the peer's key.
  v1::TransferReceipt Sign(const std::vector<std::string>& leaves, uint64_t at) {
    MemoryNodeStore nodes;
    MerkleFrontier frontier;
    for (const std::string& l : leaves) frontier.Append(LeafHash(l), nodes.Recorder());
    v1::TransferReceipt r;
    r.set_checkpoint(
        PeerSigner().SignNote(CheckpointBody({kOrigin, frontier.size(), frontier.Root(), {}})));
    r.set_leaf_index(at);
    auto path = InclusionProof(at, leaves.size(), nodes);
    EXPECT_THAT(path, IsOk());
    for (const Hash& h : *path) r.add_inclusion_path(std::string(h.begin(), h.end()));
    r.set_entry(leaves[at]);
    return r;
  }
};

TEST_F(HandmadeLogTest, EntryBytesThatAreNotAnEntryFailAtEntry) {
  const std::string genuine = Transfer("zs-01", "zh-police").SerializeAsString();
  // Field 9 (recipient_agency_id), length 2, not UTF-8.
  const std::string bad_utf8 = std::string("\x4a\x02\xff\xfe", 4);
  auto v = Verify(Sign({genuine, "\xff\xff\xff", bad_utf8}, 1));
  EXPECT_THAT(v, FailsAt(absl::StatusCode::kInvalidArgument, "entry"));
  v = Verify(Sign({genuine, "\xff\xff\xff", bad_utf8}, 2));
  EXPECT_THAT(v, FailsAt(absl::StatusCode::kInvalidArgument, "entry"));
  EXPECT_THAT(v.status().message(), HasSubstr("recipient_agency_id"));
  // Leaf 0 of the same tree verifies: the failures above are the entry's.
  EXPECT_THAT(Verify(Sign({genuine, "\xff\xff\xff", bad_utf8}, 0)), IsOk());
}

TEST_F(HandmadeLogTest, EntryWhoseIndexIsNotItsLeafFailsAtContent) {
  v1::AuditEntry e = Transfer("zs-01", "zh-police");
  e.set_index(1);
  const std::string at_1 = e.SerializeAsString();
  EXPECT_THAT(Verify(Sign({"x", at_1}, 1)), IsOk());
  auto v = Verify(Sign({at_1, "x"}, 0));  // claims index 1, is leaf 0
  EXPECT_THAT(v, FailsAt(absl::StatusCode::kDataLoss, "content"));
  EXPECT_THAT(v.status().message(), HasSubstr("index"));
}

TEST(ReceiptStepOfTest, NamesOnlyTheFiveSteps) {
  EXPECT_EQ(ReceiptStepOf(absl::DataLossError("inclusion: x")), "inclusion");
  EXPECT_EQ(ReceiptStepOf(absl::InvalidArgumentError("entry: x")), "entry");
  EXPECT_EQ(ReceiptStepOf(absl::DataLossError("inclusionx: x")), "");
  EXPECT_EQ(ReceiptStepOf(absl::DataLossError("something else")), "");
  EXPECT_EQ(ReceiptStepOf(absl::OkStatus()), "");
}

}  // namespace
}  // namespace corridor::broker::audit
