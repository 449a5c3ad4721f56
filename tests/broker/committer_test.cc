// Committer on a real RocksDB: callbacks keep enqueue order whether a batch is
// completed inline or on the completion thread, and Stop completes everything.
#include "broker/committer.h"

#include <atomic>
#include <future>
#include <mutex>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "broker/store.h"
#include "gtest/gtest.h"
#include "tests/testing/temp_dir.h"

namespace corridor::broker {
namespace {

class CommitterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto store = Store::Open(dir_.path() / "data");
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = *std::move(store);
  }

  // A task that puts key `n` and records `n` when done.
  Committer::Task Put(int n) {
    return Committer::Task{.prepare =
                               [this, n](rocksdb::WriteBatch& batch) {
                                 return FromRocks(
                                     batch.Put(store_->cf(Store::kMeta), absl::StrCat("k", n), "v"),
                                     "meta");
                               },
                           .done =
                               [this, n](absl::Status s) {
                                 std::lock_guard<std::mutex> lock(mu_);
                                 EXPECT_TRUE(s.ok()) << s;
                                 done_.push_back(n);
                               }};
  }

  ::corridor::testing::TempDir dir_;
  std::unique_ptr<Store> store_;
  std::mutex mu_;
  std::vector<int> done_;  // guarded by mu_
};

TEST_F(CommitterTest, CallbacksKeepEnqueueOrderAcrossInlineAndHandedOffBatches) {
  Committer committer(store_.get(), Committer::Hooks{});
  committer.Start();
  // Bursts from several threads make batches of every size: single tasks
  // (completed inline) and large ones (completed on the completion thread).
  constexpr int kThreads = 4, kPerThread = 2000;
  std::vector<std::thread> threads;
  std::mutex order_mu;
  std::vector<int> enqueued;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        const int n = t * kPerThread + i;
        std::lock_guard<std::mutex> lock(order_mu);  // defines the enqueue order
        enqueued.push_back(n);
        committer.Enqueue(Put(n));
        if (i % 97 == 0) std::this_thread::yield();
      }
    });
  }
  for (auto& th : threads) th.join();
  committer.Stop();
  std::lock_guard<std::mutex> lock(mu_);
  ASSERT_EQ(done_.size(), enqueued.size());
  EXPECT_EQ(done_, enqueued);
  EXPECT_GT(committer.batches(), 1u);
  EXPECT_LT(committer.batches(), static_cast<uint64_t>(kThreads * kPerThread));
  // Everything answered OK is in the store.
  for (int n : {0, kPerThread, kThreads * kPerThread - 1}) {
    EXPECT_TRUE(store_->Get(Store::kMeta, absl::StrCat("k", n)).ok()) << n;
  }
}

// A lone task must not overtake a large batch whose callbacks are still running
// on the completion thread.
TEST_F(CommitterTest, ALoneTaskWaitsForTheBatchHandedOffBeforeIt) {
  Committer committer(store_.get(), Committer::Hooks{});
  std::vector<int> order;
  std::mutex order_mu;
  auto slow = [&](int n) {
    return Committer::Task{.prepare = nullptr, .done = [&, n](absl::Status) {
                             absl::SleepFor(absl::Milliseconds(2));
                             std::lock_guard<std::mutex> lock(order_mu);
                             order.push_back(n);
                           }};
  };
  for (int n = 0; n < 50; ++n) committer.Enqueue(slow(n));  // one batch of 50
  committer.Start();
  absl::SleepFor(absl::Milliseconds(10));  // its callbacks take ~100 ms
  for (int n = 50; n < 55; ++n) {
    committer.Enqueue(Committer::Task{.prepare = nullptr, .done = [&, n](absl::Status) {
                                        std::lock_guard<std::mutex> lock(order_mu);
                                        order.push_back(n);
                                      }});
    absl::SleepFor(absl::Milliseconds(2));  // each its own batch of one
  }
  committer.Stop();
  ASSERT_EQ(order.size(), 55u);
  for (int n = 0; n < 55; ++n) EXPECT_EQ(order[n], n);
}

TEST_F(CommitterTest, ACallbackMayEnqueueAndStopStillCompletesEverything) {
  Committer committer(store_.get(), Committer::Hooks{});
  committer.Start();
  std::atomic<int> chained{0};
  for (int i = 0; i < 50; ++i) {
    committer.Enqueue(Committer::Task{.prepare = nullptr, .done = [&](absl::Status s) {
                                        EXPECT_TRUE(s.ok()) << s;
                                        // From inside a callback (committer or completion thread).
                                        committer.Enqueue(Committer::Task{
                                            .prepare = nullptr,
                                            .done = [&](absl::Status) { chained.fetch_add(1); }});
                                      }});
  }
  absl::SleepFor(absl::Milliseconds(200));
  committer.Stop();
  // Each chained task either ran or was refused as shutting down: none is lost.
  EXPECT_EQ(chained.load(), 50);
  // After Stop, an Enqueue is answered at once.
  absl::Status late;
  committer.Enqueue(Committer::Task{.prepare = nullptr, .done = [&](absl::Status s) { late = s; }});
  EXPECT_EQ(late.code(), absl::StatusCode::kUnavailable);
}

TEST_F(CommitterTest, EachBatchWritesOnlyItsOwnTasksKeys) {
  // The batch object is reused: what one group staged (written, rolled back,
  // or larger than the batch kept) must never reach the next group's write.
  std::vector<int> counts;  // keys of each batch, seen by before_write
  Committer::Hooks hooks;
  hooks.before_write = [&](rocksdb::WriteBatch& b) {
    counts.push_back(b.Count());
    return false;
  };
  Committer committer(store_.get(), std::move(hooks));
  committer.Start();
  auto run = [&](Committer::Task task) {
    std::promise<absl::Status> p;
    task.done = [&](absl::Status s) { p.set_value(s); };
    committer.Enqueue(std::move(task));
    return p.get_future().get();
  };
  auto put = [&](std::string key, size_t value_size) {
    Committer::Task task;
    task.prepare = [this, key, value_size](rocksdb::WriteBatch& b) {
      return FromRocks(b.Put(store_->cf(Store::kMeta), key, std::string(value_size, 'v')), "meta");
    };
    return task;
  };
  EXPECT_TRUE(run(put("a", 1)).ok());
  EXPECT_TRUE(run(put("b", 1)).ok());
  // A task that stages a key and fails: rolled back, nothing written.
  Committer::Task failing;
  failing.prepare = [this](rocksdb::WriteBatch& b) {
    (void)b.Put(store_->cf(Store::kMeta), "rolled-back", "v");
    return absl::InternalError("refused");
  };
  EXPECT_EQ(run(std::move(failing)).code(), absl::StatusCode::kInternal);
  EXPECT_TRUE(run(put("big", 20 << 20)).ok());  // larger than the batch kept for reuse
  EXPECT_TRUE(run(put("c", 1)).ok());
  committer.Stop();
  EXPECT_EQ(counts, (std::vector<int>{1, 1, 0, 1, 1}));
  EXPECT_EQ(store_->keys_written(), 4u);
  EXPECT_TRUE(absl::IsNotFound(store_->Get(Store::kMeta, "rolled-back").status()));
  for (const char* key : {"a", "b", "c"}) {
    EXPECT_EQ(*store_->Get(Store::kMeta, key), "v") << key;
  }
  EXPECT_EQ(store_->Get(Store::kMeta, "big")->size(), size_t{20} << 20);
}

}  // namespace
}  // namespace corridor::broker
