// Group commit: every durable change of the broker goes through one thread that
// swaps out all pending tasks, lets each add its writes to one WriteBatch, writes
// the batch with sync=true, and only then completes the tasks.
//
//   committer.Enqueue({.prepare = [&](rocksdb::WriteBatch& b) { b.Put(...); return OkStatus(); },
//                      .done = [](absl::Status s) { /* durable when s.ok() */ }});
//
// Threading: Enqueue is thread-safe and never blocks on I/O. `prepare` and the
// hooks run on the committer thread, in enqueue order; `done` runs in enqueue
// order too, on the committer thread for a batch of a few tasks and on the
// completion thread ("commit-done") for larger ones, so the committer goes on
// with the next batch while replies are written. None of them may block (they
// may read RocksDB). A task whose prepare fails is rolled back out of
// the batch and completed with that status; the rest of the batch goes on. A
// failed write fails every task of the batch (nothing in it is acknowledged)
// and pauses the committer: later tasks complete with the write's error
// (RESOURCE_EXHAUSTED for a full disk) without being prepared, and every
// kResumeInterval (on a batch or the idle tick) the committer asks the store to
// Resume(); once that succeeds — space was freed — it goes on, no restart.
// `after_batch` learns of the failure so that its owners can roll back what
// their prepares did to memory.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "rocksdb/write_batch.h"

namespace corridor::broker {

class Store;

class Committer {
 public:
  struct Task {
    std::function<absl::Status(rocksdb::WriteBatch&)> prepare;
    std::function<void(absl::Status)> done;
    // False for changes whose loss in a crash costs nothing but a repeat (ack
    // floors): a batch of only such tasks is written without fsync, and the next
    // synced write makes it durable (the WAL is sequential). `done` then means
    // "applied", not "durable".
    bool sync = true;
  };
  struct Hooks {
    // Called once per batch after every prepare, before the write (e.g. to add counters).
    // Returns true when what it added must be synced even if no task asked.
    std::function<bool(rocksdb::WriteBatch&)> before_write;
    // Called once per batch after the write, before any task's `done`.
    std::function<void(const absl::Status&, bool synced)> after_batch;
    // Called when no task arrived for `idle_interval` (it may Enqueue). Not
    // while paused.
    std::function<void()> on_idle;
    // Called when a failed write pauses the committer (the write's status) and
    // when Resume() ends the pause (OK). It may Enqueue.
    std::function<void(const absl::Status&)> on_pause_change;
  };
  // How often a paused committer tries Store::Resume().
  static constexpr absl::Duration kResumeInterval = absl::Milliseconds(500);

  Committer(Store* store, Hooks hooks, size_t max_batch = 4096,
            absl::Duration idle_interval = absl::Milliseconds(200));
  ~Committer();  // Stop()s

  void Start();
  // Completes queued tasks, then joins the thread. Later Enqueues fail with UNAVAILABLE.
  void Stop();

  void Enqueue(Task task);

  // OK while writing; the failed write's status while paused. Thread-safe.
  absl::Status pause_status() const;

  uint64_t batches() const { return batches_.load(std::memory_order_relaxed); }
  uint64_t tasks() const { return tasks_.load(std::memory_order_relaxed); }

 private:
  void Run();
  // Committer thread, while paused: tries Resume() when kResumeInterval passed.
  void MaybeResume();

  Store* const store_;
  const Hooks hooks_;
  const size_t max_batch_;
  const absl::Duration idle_interval_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Task> queue_;  // guarded by mu_
  bool stopping_ = false;    // guarded by mu_
  // Committer thread only: the pause (see the class comment).
  bool paused_ = false;
  absl::Status pause_cause_;
  absl::Time last_resume_attempt_ = absl::InfinitePast();
  mutable std::mutex pause_mu_;
  absl::Status pause_status_;  // guarded by pause_mu_: pause_cause_ for other threads
  std::thread thread_;

  // Completion thread: dones of large batches, in order.
  struct Completed {
    std::vector<Task> tasks;
    std::vector<absl::Status> results;
  };
  void RunCompletions();
  std::mutex done_mu_;
  std::condition_variable done_cv_;
  std::vector<Completed> done_queue_;  // guarded by done_mu_
  bool done_stopping_ = false;         // guarded by done_mu_
  bool completing_ = false;            // guarded by done_mu_: a handed-off batch is running
  std::thread done_thread_;

  std::atomic<uint64_t> batches_{0};
  std::atomic<uint64_t> tasks_{0};
};

}  // namespace corridor::broker
