// AuditLog on real RocksDB (audit format 3): proofs from the tiles equal those
// of an in-memory tree fed by the frontier, across batch sizes that straddle
// tile edges and a reopen; entries read back byte for byte across value
// boundaries; queries driven by posting lists; older data dirs are refused.
#include "broker/audit_log.h"

#include <algorithm>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "broker/audit/merkle.h"
#include "broker/store.h"
#include "gmock/gmock.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/io/zero_copy_stream_impl_lite.h"
#include "google/protobuf/util/time_util.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"

namespace corridor::broker {
namespace {

namespace audit = corridor::broker::audit;
using ::corridor::testing::IsOk;
using ::corridor::testing::StatusIs;
using google::protobuf::util::TimeUtil;
using ::testing::HasSubstr;

constexpr int64_t kStart = 1795910400;  // 2026-11-16T00:00:00Z

std::string Deterministic(const v1::AuditEntry& e) {
  std::string out;
  {
    google::protobuf::io::StringOutputStream raw(&out);
    google::protobuf::io::CodedOutputStream coded(&raw);
    coded.SetSerializationDeterministic(true);
    e.SerializeToCodedStream(&coded);
  }
  return out;
}

audit::Hash H(const std::string& b) {
  audit::Hash h{};
  EXPECT_EQ(b.size(), h.size());
  std::copy_n(b.begin(), std::min(h.size(), b.size()), h.begin());
  return h;
}

std::vector<audit::Hash> Hs(const google::protobuf::RepeatedPtrField<std::string>& in) {
  std::vector<audit::Hash> out;
  for (const auto& b : in) out.push_back(H(b));
  return out;
}

// Entry number n (its index once appended), at kStart + n seconds; fields vary
// so that every index kind has several values and entries differ in size.
v1::AuditEntry MakeEntry(uint64_t n) {
  static const char* const kAgencies[] = {"zs-police", "zs-customs", "zh-msa"};
  v1::AuditEntry e;
  e.set_event(n % 3 == 0 ? v1::AUDIT_EVENT_COLLECTION : v1::AUDIT_EVENT_DISCLOSURE);
  *e.mutable_broker_time() = TimeUtil::SecondsToTimestamp(kStart + static_cast<int64_t>(n));
  e.set_actor_agency_id(kAgencies[n % 3]);
  e.set_sender_agency_id(kAgencies[n % 3]);
  if (n % 3 != 0) e.set_recipient_agency_id(kAgencies[(n / 3) % 3]);
  if (n % 5 == 0) e.set_officer_id("officer-" + std::to_string(n % 4));
  e.set_exchange_id("x-" + std::to_string(n / 3));
  e.set_client_message_id("m-" + std::to_string(n / 3));
  if (n % 7 < 3) e.set_case_ref("case-" + std::to_string(n % 2));
  e.set_detail(std::string(n % 41, 'd'));
  return e;
}

class AuditLogTest : public ::testing::Test {
 protected:
  void SetUp() override { Reopen(); }

  void Reopen() {
    log_.reset();
    store_.reset();
    auto store = Store::Open(dir_.path() / "db");
    ASSERT_THAT(store, IsOk());
    store_ = *std::move(store);
    auto log = AuditLog::Open(store_.get(), Options());
    ASSERT_THAT(log, IsOk());
    log_ = *std::move(log);
  }

  AuditLog::Options Options() const {
    AuditLog::Options o;
    o.origin = "test.corridor/broker";
    o.key_file = dir_.path() / "audit.key";
    o.checkpoint_every = 100;
    o.checkpoint_interval = absl::Hours(1);
    return o;
  }

  // Appends `count` entries in groups (Append calls) of 1, 2, 3, 1, 2, 3, …
  // (or one group when `one_group`), then writes the batch. Returns the keys
  // the batch carried.
  int Batch(uint64_t count, bool sync = true, bool one_group = false) {
    rocksdb::WriteBatch batch;
    uint64_t done = 0;
    for (int g = 0; done < count; ++g) {
      const uint64_t n = one_group ? count : std::min<uint64_t>(count - done, 1 + g % 3);
      std::vector<v1::AuditEntry> entries;
      for (uint64_t i = 0; i < n; ++i) entries.push_back(MakeEntry(expected_.size() + i));
      log_->Append(entries, batch);
      for (const auto& e : entries) {
        EXPECT_EQ(e.index(), expected_.size());
        expected_.push_back(Deterministic(e));
        reference_.Append(audit::LeafHash(expected_.back()), nodes_.Recorder());
      }
      done += n;
    }
    if (log_->BeforeWrite(batch, absl::FromUnixSeconds(kStart) + absl::Seconds(batches_++))) {
      checkpoints_.push_back(expected_.size());
    }
    const int keys = batch.Count();
    EXPECT_THAT(store_->Write(&batch, sync), IsOk());
    log_->AfterWrite(sync);
    return keys;
  }

  audit::Hash Root(uint64_t size) const {
    auto root = audit::RootAt(size, nodes_);
    EXPECT_THAT(root, IsOk());
    return root.ok() ? *root : audit::Hash{};
  }

  void ExpectInclusion(uint64_t index, uint64_t size) {
    SCOPED_TRACE(::testing::Message() << "inclusion of " << index << " in " << size);
    auto got = log_->GetInclusionProof(index, size);
    ASSERT_THAT(got, IsOk());
    auto want = audit::InclusionProof(index, size, nodes_);
    ASSERT_THAT(want, IsOk());
    EXPECT_EQ(Hs(got->hashes()), *want);
    EXPECT_EQ(got->record().entry_bytes(), expected_[index]);
    EXPECT_THAT(audit::VerifyInclusion(index, size, audit::LeafHash(expected_[index]),
                                       Hs(got->hashes()), Root(size)),
                IsOk());
  }

  void ExpectConsistency(uint64_t old_size, uint64_t new_size) {
    SCOPED_TRACE(::testing::Message() << "consistency " << old_size << " -> " << new_size);
    auto got = log_->GetConsistencyProof(old_size, new_size);
    ASSERT_THAT(got, IsOk());
    auto want = audit::ConsistencyProof(old_size, new_size, nodes_);
    ASSERT_THAT(want, IsOk());
    EXPECT_EQ(Hs(got->hashes()), *want);
    EXPECT_THAT(audit::VerifyConsistency(old_size, new_size, Root(old_size), Root(new_size),
                                         Hs(got->hashes())),
                IsOk());
  }

  // Every index of `query` with index >= start_index among the entries written,
  // by brute force (times are monotone, so the time keys never hide one).
  std::vector<uint64_t> Expected(const v1::AuditQuery& q) const {
    std::vector<uint64_t> out;
    for (uint64_t i = q.start_index(); i < log_->durable_size(); ++i) {
      v1::AuditEntry e;
      EXPECT_TRUE(e.ParseFromString(expected_[i]));
      const int64_t t = e.broker_time().seconds();
      if (q.has_from_time() && t < q.from_time().seconds()) continue;
      if (q.has_to_time() && t >= q.to_time().seconds()) continue;
      if (!q.agency_id().empty() && e.actor_agency_id() != q.agency_id() &&
          e.sender_agency_id() != q.agency_id() && e.recipient_agency_id() != q.agency_id()) {
        continue;
      }
      if (!q.officer_id().empty() && e.officer_id() != q.officer_id()) continue;
      if (!q.exchange_id().empty() && e.exchange_id() != q.exchange_id()) continue;
      if (!q.client_message_id().empty() && e.client_message_id() != q.client_message_id()) {
        continue;
      }
      if (!q.case_ref().empty() && e.case_ref() != q.case_ref()) continue;
      if (q.event() != v1::AUDIT_EVENT_UNSPECIFIED && e.event() != q.event()) continue;
      out.push_back(i);
    }
    return out;
  }

  // Runs `query` page by page (limit `page`) from its start_index.
  std::vector<uint64_t> Paged(v1::AuditQuery q, uint32_t page) const {
    std::vector<uint64_t> out;
    q.set_limit(page);
    for (int pages = 0; pages < 10000; ++pages) {
      size_t before = out.size();
      auto next = log_->Query(q, [&](const v1::AuditEntryRecord& r) {
        EXPECT_EQ(r.entry_bytes(), expected_[r.entry().index()]);
        out.push_back(r.entry().index());
        return true;
      });
      EXPECT_THAT(next, IsOk());
      if (!next.ok() || !next->has_value()) break;
      EXPECT_EQ(out.size() - before, page);
      q.set_start_index(**next);
    }
    return out;
  }

  ::corridor::testing::TempDir dir_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<AuditLog> log_;
  std::vector<std::string> expected_;  // entry bytes by index
  audit::MerkleFrontier reference_;
  audit::MemoryNodeStore nodes_;  // every node, from the reference frontier
  std::vector<uint64_t> checkpoints_;
  int batches_ = 0;
};

TEST_F(AuditLogTest, TileProofsEqualTheReferenceTreeAcrossBatchesAndReopen) {
  const uint64_t kSizes[] = {1, 3, 255, 256, 257, 1, 2, 17, 128, 40};  // 956 entries
  std::vector<uint64_t> boundaries;
  for (size_t b = 0; b < std::size(kSizes); ++b) {
    if (b == 4) {
      ASSERT_NO_FATAL_FAILURE(Reopen());  // midway, with partial tiles on levels 0 and 1
      ASSERT_EQ(log_->durable_size(), expected_.size());
    }
    // Every third batch unsynced: its entries become readable with the next.
    Batch(kSizes[b], /*sync=*/b % 3 != 1);
    boundaries.push_back(expected_.size());
    if (b % 3 != 1) {
      ASSERT_EQ(log_->durable_size(), expected_.size());
      // Every entry against the tree as it is right now.
      for (uint64_t i = 0; i < expected_.size(); ++i) ExpectInclusion(i, expected_.size());
    }
  }
  const uint64_t n = expected_.size();
  ASSERT_EQ(log_->durable_size(), n);
  ASSERT_NO_FATAL_FAILURE(Reopen());
  ASSERT_EQ(log_->durable_size(), n);

  for (uint64_t size = 1; size <= 600; ++size) {
    for (uint64_t i : {uint64_t{0}, size / 2, size * 7 / 11, size - 1}) ExpectInclusion(i, size);
    ExpectConsistency(size / 3 + 1, size);
    ExpectConsistency(size, n);
  }
  for (uint64_t a : boundaries) {
    for (uint64_t b : boundaries) {
      if (a <= b) ExpectConsistency(a, b);
    }
  }
  ASSERT_FALSE(checkpoints_.empty());
  for (uint64_t size : checkpoints_) {
    auto cp = log_->GetCheckpoint(size);
    ASSERT_THAT(cp, IsOk());
    EXPECT_EQ(H(cp->root()), Root(size)) << size;
  }
  for (uint64_t i = 0; i < n; ++i) {
    auto r = log_->GetEntry(i);
    ASSERT_THAT(r, IsOk());
    EXPECT_EQ(r->entry_bytes(), expected_[i]);
    EXPECT_EQ(r->entry().index(), i);
  }
  EXPECT_THAT(log_->GetEntry(n), StatusIs(absl::StatusCode::kOutOfRange));

  // The log continues exactly after the reopen.
  Batch(300);
  for (uint64_t i = 0; i < expected_.size(); i += 37) ExpectInclusion(i, expected_.size());
  ExpectConsistency(n, expected_.size());
}

TEST_F(AuditLogTest, AGroupLargerThanOneValueIsSplitAndReadBack) {
  Batch(2);
  Batch(9000, /*sync=*/true, /*one_group=*/true);  // values of at most 32 KiB or 1024 entries
  Batch(1);
  ASSERT_NO_FATAL_FAILURE(Reopen());
  for (uint64_t i : {0, 1, 2, 3, 4097, 4098, 4099, 8193, 8194, 8195, 9001, 9002}) {
    auto r = log_->GetEntry(i);
    ASSERT_THAT(r, IsOk());
    EXPECT_EQ(r->entry_bytes(), expected_[i]) << i;
  }
  for (uint64_t i : {0, 4097, 4098, 9002}) ExpectInclusion(i, expected_.size());
  v1::AuditQuery q;
  q.set_start_index(4000);
  EXPECT_EQ(Paged(q, 1000), Expected(q));
}

TEST_F(AuditLogTest, ABatchWritesAFewKeysNotOnePerEntryOrExchange) {
  Batch(1);  // the format key and the first checkpoint
  rocksdb::WriteBatch batch;
  // 100 exchanges between two agencies (collection, disclosure), then their
  // acks (consultations by the recipient), all in one batch; no officer or case.
  auto entry = [](int x, v1::AuditEvent event) {
    v1::AuditEntry e;
    e.set_event(event);
    *e.mutable_broker_time() = TimeUtil::SecondsToTimestamp(kStart);
    e.set_actor_agency_id(event == v1::AUDIT_EVENT_CONSULTATION ? "zs-customs" : "zs-police");
    e.set_sender_agency_id("zs-police");
    if (event != v1::AUDIT_EVENT_COLLECTION) e.set_recipient_agency_id("zs-customs");
    e.set_exchange_id("zs-broker-" + std::to_string(x + 1));
    e.set_client_message_id("m-" + std::to_string(x));
    return e;
  };
  for (int x = 0; x < 100; ++x) {
    std::vector<v1::AuditEntry> entries{entry(x, v1::AUDIT_EVENT_COLLECTION),
                                        entry(x, v1::AUDIT_EVENT_DISCLOSURE)};
    log_->Append(entries, batch);
    for (const auto& e : entries) expected_.push_back(Deterministic(e));
  }
  for (int x = 0; x < 100; ++x) {
    std::vector<v1::AuditEntry> acks{entry(x, v1::AUDIT_EVENT_CONSULTATION)};
    log_->Append(acks, batch);
    expected_.push_back(Deterministic(acks[0]));
  }
  EXPECT_EQ(batch.Count(), 1);  // the tile of level 0 filled (entry 255): its last hashes
  EXPECT_TRUE(log_->BeforeWrite(batch, absl::FromUnixSeconds(kStart)));
  // + the batch's one audit value, the frontier, the time key, 2 agency lists,
  // 2 exchange buckets (ids 1..63 and 64..100), 100 client-id lists (the acks
  // add none), what the batch added to the partial tiles of levels 0 and 8,
  // the checkpoint (300 entries since the last).
  EXPECT_EQ(batch.Count(), 1 + 1 + 1 + 1 + 2 + 2 + 100 + 2 + 1);
  ASSERT_THAT(store_->Write(&batch, true), IsOk());
  log_->AfterWrite(true);
  v1::AuditQuery q;
  q.set_agency_id("zs-customs");
  q.set_start_index(150);  // inside the batch's posting list
  auto got = Paged(q, 1000);
  ASSERT_EQ(got.size(), 126u);  // disclosures of exchanges 74..99, and the 100 acks
  EXPECT_EQ(got.front(), 150u);
  EXPECT_EQ(got.back(), 300u);
  // An exchange's entries, and a client id's (its ack found through the exchange).
  q.Clear();
  q.set_exchange_id("zs-broker-71");
  EXPECT_EQ(Paged(q, 1000), (std::vector<uint64_t>{141, 142, 271}));
  q.Clear();
  q.set_client_message_id("m-70");
  EXPECT_EQ(Paged(q, 1000), (std::vector<uint64_t>{141, 142, 271}));
  q.set_start_index(142);
  EXPECT_EQ(Paged(q, 1), (std::vector<uint64_t>{142, 271}));
  q.set_start_index(200);
  EXPECT_EQ(Paged(q, 1000), (std::vector<uint64_t>{271}));
}

TEST_F(AuditLogTest, QueriesStartInsidePostingListsAndHonourTimeBounds) {
  for (uint64_t size : {5, 64, 1, 200, 33, 100}) Batch(size);
  ASSERT_NO_FATAL_FAILURE(Reopen());
  const uint64_t n = expected_.size();
  std::vector<v1::AuditQuery> queries;
  for (const char* agency : {"zs-police", "zs-customs", "zh-msa", "nobody"}) {
    v1::AuditQuery q;
    q.set_agency_id(agency);
    queries.push_back(q);
  }
  {
    v1::AuditQuery q;
    q.set_officer_id("officer-1");
    queries.push_back(q);
    q.set_agency_id("zs-police");
    queries.push_back(q);
  }
  {
    v1::AuditQuery q;
    q.set_exchange_id("x-40");
    queries.push_back(q);
    q.set_exchange_id("x-41");
    q.set_event(v1::AUDIT_EVENT_DISCLOSURE);
    queries.push_back(q);
  }
  {
    v1::AuditQuery q;
    q.set_case_ref("case-1");
    queries.push_back(q);
    q.set_agency_id("zh-msa");
    queries.push_back(q);
  }
  {
    v1::AuditQuery q;  // everything
    queries.push_back(q);
  }
  for (v1::AuditQuery q : queries) {
    for (uint64_t start : {uint64_t{0}, uint64_t{1}, uint64_t{7}, uint64_t{70}, uint64_t{71},
                           uint64_t{250}, n - 1, n, n + 5}) {
      q.set_start_index(start);
      q.clear_from_time();
      q.clear_to_time();
      SCOPED_TRACE(q.ShortDebugString());
      const std::vector<uint64_t> want = Expected(q);
      EXPECT_EQ(Paged(q, 1000), want);
      EXPECT_EQ(Paged(q, 7), want);
      // Time bounds well inside the log (the time keys narrow the scan).
      *q.mutable_from_time() = TimeUtil::SecondsToTimestamp(kStart + 150);
      *q.mutable_to_time() = TimeUtil::SecondsToTimestamp(kStart + 290);
      EXPECT_EQ(Paged(q, 5), Expected(q));
      q.clear_from_time();
      EXPECT_EQ(Paged(q, 1000), Expected(q));
    }
  }
  // A sanity check that the brute force is not trivially empty.
  v1::AuditQuery q;
  q.set_agency_id("zs-customs");
  q.set_start_index(71);
  EXPECT_GT(Expected(q).size(), 100u);
}

// The audit_index puts of one batch, in batch order.
class IndexPuts : public rocksdb::WriteBatch::Handler {
 public:
  explicit IndexPuts(uint32_t cf) : cf_(cf) {}
  rocksdb::Status PutCF(uint32_t cf, const rocksdb::Slice& key,
                        const rocksdb::Slice& value) override {
    if (cf == cf_) puts.emplace_back(key.ToString(), value.ToString());
    return rocksdb::Status::OK();
  }
  rocksdb::Status MergeCF(uint32_t, const rocksdb::Slice&, const rocksdb::Slice&) override {
    return rocksdb::Status::OK();  // tiles
  }
  std::vector<std::pair<std::string, std::string>> puts;

 private:
  uint32_t cf_;
};

// The exchange-id bucket of format 3: "<prefix>-<n>" -> "<prefix>-<n / 64>";
// empty for an id of another shape (indexed exactly).
std::string Bucket(const std::string& x) {
  const size_t dash = x.rfind('-');
  if (dash == std::string::npos || dash + 1 == x.size() ||
      x.find_first_not_of("0123456789", dash + 1) != std::string::npos) {
    return "";
  }
  return x.substr(0, dash + 1) + std::to_string(std::stoull(x.substr(dash + 1)) / 64);
}

TEST_F(AuditLogTest, PostingListsAreEachValuesIndicesInKeyOrderBatchByBatch) {
  Batch(1);
  // Values that come back after others within a group and across groups and
  // batches, that extend one another (x-1, x-10), and that are equal under two
  // kinds (an agency and an exchange both "x-1"); some fields left empty.
  // Exchange ids x-1, x-10, x-2 share a bucket; "zs-police" as an exchange id
  // has another shape. Acks (consultations) repeat an exchange and client id
  // pair an earlier entry named, as the broker's do.
  const char* const kValues[] = {"x-1", "x-10", "x-2", "zs-police", "zs-customs", ""};
  std::vector<std::pair<std::string, std::string>> named;  // (exchange, client id)
  uint64_t seed = 7;
  auto next = [&] {
    seed = seed * 6364136223846793005u + 1442695040888963407u;
    return seed >> 33;
  };
  const uint32_t index_cf = store_->cf(Store::kAuditIndex)->GetID();
  for (int b = 0; b < 6; ++b) {
    rocksdb::WriteBatch batch;
    // The lists as the format defines them: each (kind, value) prefix's indices
    // in order, without repeats, in key order.
    std::map<std::string, std::vector<uint64_t>> want_lists;
    std::map<std::string, std::vector<uint8_t>> want_slots;  // 'E' lists: n % 64 per index
    const int groups = 1 + static_cast<int>(next() % 40);
    for (int g = 0; g < groups; ++g) {
      std::vector<v1::AuditEntry> entries(1 + next() % 4);
      for (auto& e : entries) {
        e.set_event(v1::AUDIT_EVENT_DISCLOSURE);
        *e.mutable_broker_time() = TimeUtil::SecondsToTimestamp(kStart + b);
        e.set_actor_agency_id(kValues[next() % 6]);
        e.set_sender_agency_id(next() % 2 ? e.actor_agency_id() : kValues[next() % 6]);
        e.set_recipient_agency_id(kValues[next() % 6]);
        e.set_officer_id(kValues[next() % 6]);
        if (!named.empty() && next() % 3 == 0) {
          e.set_event(next() % 2 ? v1::AUDIT_EVENT_CONSULTATION : v1::AUDIT_EVENT_REDELIVERY);
          const auto& [x, m] = named[next() % named.size()];
          e.set_exchange_id(x);
          e.set_client_message_id(m);
        } else {
          e.set_exchange_id(kValues[next() % 4]);
          e.set_client_message_id(next() % 3 ? e.exchange_id() : kValues[next() % 6]);
          if (!e.client_message_id().empty()) {
            named.emplace_back(e.exchange_id(), e.client_message_id());
          }
        }
        e.set_case_ref(kValues[next() % 6]);
      }
      log_->Append(entries, batch);
      for (const auto& e : entries) {
        expected_.push_back(Deterministic(e));
        const std::string bucket = Bucket(e.exchange_id());
        const bool ack = e.event() != v1::AUDIT_EVENT_DISCLOSURE;
        for (const auto& [kind, value] : std::vector<std::pair<char, std::string>>{
                 {'A', e.actor_agency_id()},
                 {'A', e.sender_agency_id()},
                 {'A', e.recipient_agency_id()},
                 {'O', e.officer_id()},
                 bucket.empty() ? std::pair<char, std::string>{'X', e.exchange_id()}
                                : std::pair<char, std::string>{'E', bucket},
                 {'M', ack ? std::string() : e.client_message_id()},
                 {'R', e.case_ref()}}) {
          if (value.empty()) continue;
          const std::string prefix = std::string(1, kind) + value + '\0';
          auto& list = want_lists[prefix];
          if (list.empty() || list.back() != e.index()) {
            list.push_back(e.index());
            if (kind == 'E') {
              const std::string& x = e.exchange_id();
              want_slots[prefix].push_back(std::stoull(x.substr(x.rfind('-') + 1)) % 64);
            }
          }
        }
      }
    }
    log_->BeforeWrite(batch, absl::FromUnixSeconds(kStart + b));
    std::vector<std::pair<std::string, std::string>> want;
    for (const auto& [prefix, list] : want_lists) {
      std::string key = prefix;
      AppendBe64(&key, list.front());
      // Each index's slot first in a bucket's list, then the delta to the next.
      std::string deltas;
      for (size_t i = 0; i < list.size(); ++i) {
        if (prefix[0] == 'E') deltas.push_back(static_cast<char>(want_slots[prefix][i]));
        if (i + 1 == list.size()) break;
        for (uint64_t d = list[i + 1] - list[i];; d >>= 7) {
          deltas.push_back(static_cast<char>((d & 0x7f) | (d >= 0x80 ? 0x80 : 0)));
          if (d < 0x80) break;
        }
      }
      want.emplace_back(key, deltas);
    }
    IndexPuts got(index_cf);
    ASSERT_TRUE(batch.Iterate(&got).ok());
    ASSERT_FALSE(got.puts.empty());
    EXPECT_EQ(got.puts.front().first[0], 'T');  // the batch's time key first
    got.puts.erase(got.puts.begin());
    EXPECT_EQ(got.puts, want) << "batch " << b;
    ASSERT_THAT(store_->Write(&batch, true), IsOk());
    log_->AfterWrite(true);
  }
  // And the queries they drive, across the batches.
  for (const char* value : kValues) {
    if (*value == '\0') continue;
    v1::AuditQuery q;
    q.set_exchange_id(value);
    EXPECT_EQ(Paged(q, 3), Expected(q)) << value;
    q.clear_exchange_id();
    q.set_client_message_id(value);
    EXPECT_EQ(Paged(q, 1000), Expected(q)) << value;
    q.clear_client_message_id();
    q.set_agency_id(value);
    EXPECT_EQ(Paged(q, 4), Expected(q)) << value;
    q.clear_agency_id();
    q.set_officer_id(value);
    q.set_start_index(5);
    EXPECT_EQ(Paged(q, 1000), Expected(q)) << value;
    q.clear_officer_id();
    q.set_case_ref(value);
    EXPECT_EQ(Paged(q, 2), Expected(q)) << value;
    EXPECT_FALSE(Expected(q).empty()) << value;
  }
}

TEST_F(AuditLogTest, ReadersSeeOnlyTheDurableLogWhileTilesRunAhead) {
  Batch(250);
  Batch(20, /*sync=*/false);  // written: the level-0 tile fills, level 8 starts
  const uint64_t durable = 250;
  ASSERT_EQ(log_->durable_size(), durable);
  EXPECT_THAT(log_->GetEntry(durable), StatusIs(absl::StatusCode::kOutOfRange));
  EXPECT_THAT(log_->GetInclusionProof(0, durable + 1), StatusIs(absl::StatusCode::kOutOfRange));
  for (uint64_t i = 0; i < durable; i += 7) ExpectInclusion(i, durable);
  ExpectConsistency(1, durable);
  v1::AuditQuery q;
  q.set_agency_id("zs-police");
  q.set_start_index(200);
  std::vector<uint64_t> got = Paged(q, 1000);
  ASSERT_FALSE(got.empty());
  EXPECT_LT(got.back(), durable);
  EXPECT_EQ(got, Expected(q));
  Batch(1);  // synced: the 20 become durable with it
  EXPECT_EQ(log_->durable_size(), 271u);
  for (uint64_t i = 240; i < 271; ++i) ExpectInclusion(i, 271);
}

TEST_F(AuditLogTest, RefusesADataDirWithTheOlderLayout) {
  log_.reset();
  // An audit entry as the older layout stored it (be64(index) -> entry bytes),
  // with no audit_format key.
  rocksdb::WriteBatch batch;
  ASSERT_TRUE(batch.Put(store_->cf(Store::kAudit), std::string(8, '\0'), "old").ok());
  ASSERT_THAT(store_->Write(&batch, true), IsOk());
  EXPECT_THAT(AuditLog::Open(store_.get(), Options()),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       HasSubstr("older Corridor with a different audit layout")));
}

TEST_F(AuditLogTest, AFreshDirWithoutEntriesOpensAndRecordsTheFormat) {
  Batch(3);
  auto format = store_->GetCounter("audit_format");
  ASSERT_THAT(format, IsOk());
  EXPECT_EQ(*format, 3u);
  ASSERT_NO_FATAL_FAILURE(Reopen());
  EXPECT_EQ(log_->durable_size(), 3u);
}

TEST_F(AuditLogTest, AFormat2DirIsReadAndContinuedAsFormat3) {
  Batch(50);  // exchanges x-0 .. x-16 (three entries each; x-16 continues below)
  // Rewrite the index and tiles as format 2 wrote them: exchange ids listed
  // exactly (one list per id per batch), whole tiles put, not merged.
  log_.reset();
  rocksdb::WriteBatch batch;
  std::unique_ptr<rocksdb::Iterator> it(
      store_->db()->NewIterator(rocksdb::ReadOptions(), store_->cf(Store::kAuditIndex)));
  int buckets = 0;
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    if (it->key()[0] != 'E') continue;
    ASSERT_TRUE(batch.Delete(store_->cf(Store::kAuditIndex), it->key()).ok());
    ++buckets;
  }
  ASSERT_EQ(buckets, 1);
  it.reset();  // before the store closes
  std::map<std::string, std::vector<uint64_t>> exact;
  for (uint64_t i = 0; i < expected_.size(); ++i) {
    v1::AuditEntry e;
    ASSERT_TRUE(e.ParseFromString(expected_[i]));
    exact[e.exchange_id()].push_back(i);
  }
  for (const auto& [x, list] : exact) {
    std::string key = "X" + x + '\0';
    AppendBe64(&key, list.front());
    std::string deltas;
    for (size_t i = 1; i < list.size(); ++i)
      deltas.push_back(static_cast<char>(list[i] - list[i - 1]));
    ASSERT_TRUE(batch.Put(store_->cf(Store::kAuditIndex), key, deltas).ok());
  }
  std::string tile_key(1, '\0');
  AppendBe64(&tile_key, 0);
  auto tile = store_->Get(Store::kAuditTiles, tile_key);
  ASSERT_THAT(tile, IsOk());
  ASSERT_EQ(tile->size(), 50u * 32);
  ASSERT_TRUE(batch.Put(store_->cf(Store::kAuditTiles), tile_key, *tile).ok());
  std::string two;
  AppendBe64(&two, 2);
  ASSERT_TRUE(batch.Put(store_->cf(Store::kMeta), "audit_format", two).ok());
  ASSERT_THAT(store_->Write(&batch, true), IsOk());

  ASSERT_NO_FATAL_FAILURE(Reopen());
  for (const char* x : {"x-0", "x-5", "x-16"}) {
    v1::AuditQuery q;
    q.set_exchange_id(x);
    EXPECT_EQ(Paged(q, 1000), Expected(q)) << x;
    EXPECT_FALSE(Expected(q).empty()) << x;
  }
  Batch(20);  // entries 50..69: x-16's last entry, then x-17 .. x-22
  auto format = store_->GetCounter("audit_format");
  ASSERT_THAT(format, IsOk());
  EXPECT_EQ(*format, 3u);
  ASSERT_NO_FATAL_FAILURE(Reopen());
  for (const char* x : {"x-5", "x-16", "x-20"}) {
    v1::AuditQuery q;
    q.set_exchange_id(x);
    EXPECT_EQ(Paged(q, 2), Expected(q)) << x;
    q.clear_exchange_id();
    q.set_client_message_id(std::string("m-") + (x + 2));
    EXPECT_EQ(Paged(q, 1000), Expected(q)) << x;
  }
  v1::AuditQuery q;
  q.set_exchange_id("x-16");
  EXPECT_EQ(Expected(q), (std::vector<uint64_t>{48, 49, 50}));  // across the two formats
  for (uint64_t i = 0; i < expected_.size(); i += 3) ExpectInclusion(i, expected_.size());
  ExpectConsistency(50, expected_.size());
}

TEST_F(AuditLogTest, ATamperedTileIsCaughtAtOpen) {
  Batch(300);  // checkpointed; root = level-8 node 0 + nodes folded from leaves 256..299
  log_.reset();
  std::string key(1, '\0');
  AppendBe64(&key, 1);  // the partial tile of level 0: leaves 256..299
  auto tile = store_->Get(Store::kAuditTiles, key);
  ASSERT_THAT(tile, IsOk());
  ASSERT_EQ(tile->size(), 44u * 32);
  (*tile)[5 * 32] ^= 1;
  rocksdb::WriteBatch batch;
  ASSERT_TRUE(batch.Put(store_->cf(Store::kAuditTiles), key, *tile).ok());
  ASSERT_THAT(store_->Write(&batch, true), IsOk());
  EXPECT_THAT(AuditLog::Open(store_.get(), Options()), StatusIs(absl::StatusCode::kDataLoss));
}

}  // namespace
}  // namespace corridor::broker

namespace corridor::broker {
namespace {

// An entry whose stored bytes do not parse (GBK text in `reasons`, as policy
// text that was never checked would have put there), written in wire form as
// the exchange path writes entries, so that no validation stands in the way.
TEST_F(AuditLogTest, AnUnparseableEntryIsReportedByIndexWithItsBytesAndNeverStopsAQuery) {
  Batch(5);  // entries 0..4
  {
    PreparedEntry bad;
    EntryWriter w(&bad.bytes);
    w.Enum(v1::AuditEntry::kEventFieldNumber, v1::AUDIT_EVENT_DENIAL);
    w.Message(v1::AuditEntry::kBrokerTimeFieldNumber, TimeUtil::SecondsToTimestamp(kStart + 5));
    w.String(v1::AuditEntry::kActorAgencyIdFieldNumber, "zs-police");
    w.String(v1::AuditEntry::kRecipientAgencyIdFieldNumber, "zs-msa");
    bad.seq_at = bad.bytes.size();
    w.Repeated(v1::AuditEntry::kReasonsFieldNumber,
               std::vector<std::string>{"\xB9\xFA\xBC\xD2 GBK"});  // "国家" in GBK
    rocksdb::WriteBatch batch;
    log_->Append(std::vector<PreparedEntry>{bad}, batch);
    std::string stored;
    AppendSerialized(bad, expected_.size(), &stored);
    expected_.push_back(stored);
    reference_.Append(audit::LeafHash(stored), nodes_.Recorder());
    log_->BeforeWrite(batch, absl::FromUnixSeconds(kStart) + absl::Seconds(batches_++));
    ASSERT_THAT(store_->Write(&batch, true), IsOk());
    log_->AfterWrite(true);
  }
  Batch(4);  // entries 6..9
  const uint64_t n = expected_.size();
  ASSERT_EQ(n, 10u);
  v1::AuditEntry probe;
  ASSERT_FALSE(probe.ParseFromString(expected_[5]));  // the premise

  auto check_bad = [&](const v1::AuditEntryRecord& r) {
    EXPECT_EQ(r.entry().index(), 5u);
    EXPECT_EQ(r.unreadable(), "reasons[0]: not valid UTF-8");
    EXPECT_EQ(r.entry_bytes(), expected_[5]);  // the raw stored bytes, as hashed
  };
  // Unfiltered, filtered by an index the entry is listed under, and paged
  // across it: the entry is reported in its place and the query goes on.
  for (const char* agency : {"", "zs-police"}) {
    v1::AuditQuery q;
    q.set_agency_id(agency);
    std::vector<uint64_t> got;
    auto next = log_->Query(q, [&](const v1::AuditEntryRecord& r) {
      got.push_back(r.entry().index());
      EXPECT_EQ(r.entry_bytes(), expected_[r.entry().index()]);
      if (r.entry().index() == 5) {
        check_bad(r);
      } else {
        EXPECT_TRUE(r.unreadable().empty()) << r.entry().index();
      }
      return true;
    });
    ASSERT_THAT(next, IsOk()) << agency;
    EXPECT_FALSE(next->has_value());
    EXPECT_THAT(got, ::testing::Contains(5u)) << agency;
    EXPECT_EQ(got.back(), n - 1) << agency;  // past the bad entry, to the end
  }
  EXPECT_THAT(Paged(v1::AuditQuery(), 2), ::testing::ElementsAre(0, 1, 2, 3, 4, 5, 6, 7, 8, 9));

  // Read alone, and proven: its leaf hash is over the stored bytes.
  auto one = log_->GetEntry(5);
  ASSERT_THAT(one, IsOk());
  check_bad(*one);
  auto proof = log_->GetInclusionProof(5, n);
  ASSERT_THAT(proof, IsOk());
  check_bad(proof->record());
  EXPECT_THAT(audit::VerifyInclusion(5, n, audit::LeafHash(proof->record().entry_bytes()),
                                     Hs(proof->hashes()), Root(n)),
              IsOk());
  ExpectInclusion(5, n);
  ExpectInclusion(9, n);
  ASSERT_NO_FATAL_FAILURE(Reopen());  // the stored tree still matches at open
  EXPECT_THAT(log_->GetEntry(5), IsOk());
}

TEST_F(AuditLogTest, AQueryFilterThatIsNotUtf8IsRefusedNamingIt) {
  Batch(3);
  v1::AuditQuery q;
  q.set_case_ref("\xB0\xB8");  // GBK
  EXPECT_THAT(log_->Query(q, [](const v1::AuditEntryRecord&) { return true; }),
              StatusIs(absl::StatusCode::kInvalidArgument, "query.case_ref: not valid UTF-8"));
}

TEST_F(AuditLogTest, AnEntryBuiltAsAMessageNeverStoresInvalidUtf8) {
  // A refused peer's certificate text, say: scrubbed at Append, never stored unparseable.
  v1::AuditEntry e;
  e.set_event(v1::AUDIT_EVENT_SECURITY);
  e.set_detail("peer refused: spiffe://zhongshan.corridor/\xFF\xFE");
  std::vector<v1::AuditEntry> entries{e};
  rocksdb::WriteBatch batch;
  log_->Append(entries, batch);
  log_->BeforeWrite(batch, absl::FromUnixSeconds(kStart));
  ASSERT_THAT(store_->Write(&batch, true), IsOk());
  log_->AfterWrite(true);
  auto got = log_->GetEntry(0);
  ASSERT_THAT(got, IsOk());
  EXPECT_TRUE(got->unreadable().empty());
  EXPECT_EQ(got->entry().detail(),
            "peer refused: spiffe://zhongshan.corridor/\xEF\xBF\xBD\xEF\xBF\xBD");
}

// A redelivery summary names many exchanges in one entry: queries by any of
// their ids, client ids or senders find it, as they found the one entry per
// redelivery it replaces; it is written in wire form, as the hub writes it.
TEST_F(AuditLogTest, ARedeliverySummaryIsFoundByEachExchangeItLists) {
  rocksdb::WriteBatch batch;
  std::vector<v1::AuditEntry> own;  // the exchanges' own entries
  for (int n : {70, 71, 72}) {
    v1::AuditEntry& e = own.emplace_back();
    e.set_event(v1::AUDIT_EVENT_COLLECTION);
    *e.mutable_broker_time() = TimeUtil::SecondsToTimestamp(kStart);
    e.set_actor_agency_id(n == 72 ? "zs-msa" : "zs-police");
    e.set_sender_agency_id(e.actor_agency_id());
    e.set_exchange_id(absl::StrCat("zs-broker-", n));
    e.set_client_message_id(absl::StrCat("c-", n));
  }
  log_->Append(own, batch);
  v1::AuditEntry summary;
  summary.set_event(v1::AUDIT_EVENT_REDELIVERY);
  *summary.mutable_broker_time() = TimeUtil::SecondsToTimestamp(kStart + 1);
  summary.set_actor_agency_id("zs-customs");
  summary.set_recipient_agency_id("zs-customs");
  summary.mutable_redeliveries()->set_subscription("duty");
  summary.mutable_redeliveries()->set_count(5);
  for (int n : {70, 71}) {
    v1::RedeliveredExchange& x = *summary.mutable_redeliveries()->add_exchanges();
    x.set_exchange_id(absl::StrCat("zs-broker-", n));
    x.set_client_message_id(absl::StrCat("c-", n));
    x.set_sender_agency_id("zs-police");
    x.set_delivery_seq(static_cast<uint64_t>(n - 69));
  }
  std::vector<PreparedEntry> wire(1);
  summary.SerializeToString(&wire[0].bytes);
  log_->Append(wire, batch);
  log_->BeforeWrite(batch, absl::FromUnixSeconds(kStart));
  ASSERT_THAT(store_->Write(&batch, true), IsOk());
  log_->AfterWrite(true);
  ASSERT_EQ(log_->durable_size(), 4u);

  auto indices = [&](v1::AuditQuery q) {
    std::vector<uint64_t> out;
    EXPECT_THAT(log_->Query(q,
                            [&](const v1::AuditEntryRecord& r) {
                              out.push_back(r.entry().index());
                              return true;
                            }),
                IsOk());
    return out;
  };
  v1::AuditQuery q;
  q.set_exchange_id("zs-broker-70");
  EXPECT_THAT(indices(q), ::testing::ElementsAre(0, 3));
  q.set_exchange_id("zs-broker-72");  // not listed
  EXPECT_THAT(indices(q), ::testing::ElementsAre(2));
  q.Clear();
  q.set_client_message_id("c-71");
  EXPECT_THAT(indices(q), ::testing::ElementsAre(1, 3));
  q.Clear();
  q.set_agency_id("zs-police");  // the sender of what was sent again
  EXPECT_THAT(indices(q), ::testing::ElementsAre(0, 1, 3));
  q.Clear();
  q.set_agency_id("zs-customs");  // the subscriber
  EXPECT_THAT(indices(q), ::testing::ElementsAre(3));
  q.Clear();
  q.set_event(v1::AUDIT_EVENT_REDELIVERY);
  q.set_exchange_id("zs-broker-71");
  EXPECT_THAT(indices(q), ::testing::ElementsAre(3));
}

}  // namespace
}  // namespace corridor::broker
