// Store on a real RocksDB: point reads answer NOT_FOUND naming the column
// family; keys written in any order under the memtable's insert hints (and
// without them) read back complete and sorted, before and after a reopen.
#include "broker/store.h"

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "tests/testing/temp_dir.h"

namespace corridor::broker {
namespace {

class StoreTest : public ::testing::Test {
 protected:
  void SetUp() override { Reopen(); }
  void Reopen() {
    store_.reset();
    auto store = Store::Open(dir_.path() / "data");
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = *std::move(store);
  }
  std::vector<std::string> Keys(Store::Cf cf) const {
    std::vector<std::string> out;
    std::unique_ptr<rocksdb::Iterator> it(
        store_->db()->NewIterator(rocksdb::ReadOptions(), store_->cf(cf)));
    for (it->SeekToFirst(); it->Valid(); it->Next()) out.push_back(it->key().ToString());
    EXPECT_TRUE(it->status().ok());
    return out;
  }

  ::corridor::testing::TempDir dir_;
  std::unique_ptr<Store> store_;
};

TEST_F(StoreTest, GetAnswersNotFoundNamingTheColumnFamily) {
  for (int i = 0; i < 2; ++i) {  // the second answer is the same
    auto missing = store_->Get(Store::kMessages, MessageKey("zs-police", "tip-1"));
    EXPECT_TRUE(absl::IsNotFound(missing.status())) << missing.status();
    EXPECT_EQ(missing.status().message(), "messages: NotFound: ");
  }
  auto meta = store_->Get(Store::kMeta, "nothing");
  EXPECT_TRUE(absl::IsNotFound(meta.status()));
  EXPECT_EQ(meta.status().message(), "meta: NotFound: ");
  rocksdb::WriteBatch batch;
  ASSERT_TRUE(batch.Put(store_->cf(Store::kMessages), MessageKey("zs-police", "tip-1"), "m").ok());
  ASSERT_TRUE(store_->Write(&batch, true).ok());
  auto found = store_->Get(Store::kMessages, MessageKey("zs-police", "tip-1"));
  ASSERT_TRUE(found.ok()) << found.status();
  EXPECT_EQ(*found, "m");
}

TEST_F(StoreTest, ABuildWithoutTileMergesCannotOpenTheDb) {
  // A tile merge in the WAL, as audit format 3 writes them.
  rocksdb::WriteBatch batch;
  ASSERT_TRUE(batch.Merge(store_->cf(Store::kAuditTiles), "tile", std::string(32, 'h')).ok());
  ASSERT_TRUE(store_->Write(&batch, true).ok());
  store_.reset();
  // The column families an older build lists (all but the marker), and no
  // merge operator: RocksDB refuses before replaying anything.
  std::vector<rocksdb::ColumnFamilyDescriptor> older{
      {rocksdb::kDefaultColumnFamilyName, rocksdb::ColumnFamilyOptions()}};
  for (const char* name :
       {"messages", "deliveries", "dedupe", "subscriptions", "acks", "meta", "audit", "audit_index",
        "merkle", "checkpoints", "expiry", "audit_tiles"}) {
    older.emplace_back(name, rocksdb::ColumnFamilyOptions());
  }
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* raw = nullptr;
  rocksdb::Status s = rocksdb::DB::Open(rocksdb::DBOptions(), (dir_.path() / "data").string(),
                                        older, &handles, &raw);
  EXPECT_TRUE(s.IsInvalidArgument()) << s.ToString();
  EXPECT_NE(s.ToString().find("corridor_audit_format_3"), std::string::npos) << s.ToString();
  ASSERT_EQ(raw, nullptr);
  // This build opens it, the merge applied.
  Reopen();
  auto tile = store_->Get(Store::kAuditTiles, "tile");
  ASSERT_TRUE(tile.ok()) << tile.status();
  EXPECT_EQ(*tile, std::string(32, 'h'));
}

TEST_F(StoreTest, KeysInterleavedAcrossHintedPrefixesReadBackSorted) {
  // Deliveries of three agencies interleaved, posting lists of recurring
  // values (hinted) between one-off ones (not hinted), time keys, expiry keys
  // out of order, across several batches; one batch in descending order.
  const std::vector<std::string> agencies = {"zs-msa", "zs-customs", "zs-coastguard"};
  std::vector<std::string> deliveries, index, expiry;
  for (int b = 0; b < 20; ++b) {
    rocksdb::WriteBatch batch;
    for (int i = 0; i < 30; ++i) {
      const int n = b % 7 == 3 ? 29 - i : i;
      const uint64_t seq = 1 + b * 30 + n;
      for (const auto& a : agencies) {
        deliveries.push_back(DeliveryKey(a, seq));
        ASSERT_TRUE(batch.Put(store_->cf(Store::kDeliveries), deliveries.back(), "d").ok());
      }
      for (const std::string& prefix :
           {std::string("Azs-police") + '\0', "X" + std::to_string(seq) + '\0',
            "M" + std::to_string(seq * 7919 % 1000) + '\0', std::string("T")}) {
        std::string key = prefix;
        AppendBe64(&key, seq);
        index.push_back(key);
        ASSERT_TRUE(batch.Put(store_->cf(Store::kAuditIndex), key, "").ok());
      }
      std::string when;
      AppendBe64(&when, (seq * 104729) % 977);
      AppendBe64(&when, seq);
      expiry.push_back(when);
      ASSERT_TRUE(batch.Put(store_->cf(Store::kExpiry), when, "m").ok());
    }
    ASSERT_TRUE(store_->Write(&batch, b % 2 == 0).ok());
  }
  for (auto* keys : {&deliveries, &index, &expiry}) std::sort(keys->begin(), keys->end());
  for (int round = 0; round < 2; ++round) {
    SCOPED_TRACE(round == 0 ? "memtable" : "after reopen");
    EXPECT_EQ(Keys(Store::kDeliveries), deliveries);
    EXPECT_EQ(Keys(Store::kAuditIndex), index);
    EXPECT_EQ(Keys(Store::kExpiry), expiry);
    for (const auto& a : agencies) {
      auto last = store_->LastDeliverySeq(a);
      ASSERT_TRUE(last.ok());
      EXPECT_EQ(*last, 600u);
    }
    ASSERT_NO_FATAL_FAILURE(Reopen());
  }
}

}  // namespace
}  // namespace corridor::broker
