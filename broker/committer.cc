#include "broker/committer.h"

#include <pthread.h>

#include <cstdio>
#include <string>
#include <utility>

#include "absl/time/clock.h"
#include "broker/store.h"

namespace corridor::broker {

Committer::Committer(Store* store, Hooks hooks, size_t max_batch, absl::Duration idle_interval)
    : store_(store),
      hooks_(std::move(hooks)),
      max_batch_(max_batch),
      idle_interval_(idle_interval) {}

Committer::~Committer() { Stop(); }

namespace {
// Batches of at most this many tasks are completed on the committer thread
// itself: a lone submission is answered without a thread hop; larger batches
// are handed to the completion thread, whose gRPC writes (TLS, sendmsg) then
// overlap the next batch.
constexpr size_t kInlineDones = 2;
// The WriteBatch is reused from batch to batch, so its buffer is not grown
// again (copy on every doubling, fresh pages) for each one; a batch that grew
// past this is dropped instead, so one burst does not pin its memory for good.
constexpr size_t kKeepBatchBytes = 16 << 20;
}  // namespace

void Committer::Start() {
  done_thread_ = std::thread([this] {
    pthread_setname_np(pthread_self(), "commit-done");
    RunCompletions();
  });
  thread_ = std::thread([this] {
    pthread_setname_np(pthread_self(), "committer");  // shows in top -H, perf, gdb
    Run();
  });
}

void Committer::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  // Every batch the committer finished is completed before Stop returns.
  {
    std::lock_guard<std::mutex> lock(done_mu_);
    done_stopping_ = true;
  }
  done_cv_.notify_all();
  if (done_thread_.joinable()) done_thread_.join();
}

void Committer::RunCompletions() {
  std::vector<Completed> work;
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(done_mu_);
      done_cv_.wait(lock, [&] { return done_stopping_ || !done_queue_.empty(); });
      if (done_queue_.empty()) return;  // stopping and drained
      work.swap(done_queue_);
      completing_ = true;
    }
    for (Completed& c : work) {
      for (size_t i = 0; i < c.tasks.size(); ++i) {
        if (c.tasks[i].done) c.tasks[i].done(c.results[i]);
      }
    }
    work.clear();  // tasks (and what they hold) are destroyed here, not on the committer
    std::lock_guard<std::mutex> lock(done_mu_);
    completing_ = false;
  }
}

void Committer::Enqueue(Task task) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!stopping_) {
      queue_.push_back(std::move(task));
      cv_.notify_one();
      return;
    }
  }
  task.done(absl::UnavailableError("broker is shutting down"));
}

absl::Status Committer::pause_status() const {
  std::lock_guard<std::mutex> lock(pause_mu_);
  return pause_status_;
}

void Committer::MaybeResume() {
  const absl::Time now = absl::Now();
  if (now - last_resume_attempt_ < kResumeInterval) return;
  last_resume_attempt_ = now;
  absl::Status s = store_->Resume();
  if (!s.ok()) return;  // still full (or RocksDB's own recovery runs): the cause stands
  paused_ = false;
  pause_cause_ = absl::OkStatus();
  {
    std::lock_guard<std::mutex> lock(pause_mu_);
    pause_status_ = absl::OkStatus();
  }
  std::fprintf(stderr, "corridord: storage resumed\n");
  if (hooks_.on_pause_change) hooks_.on_pause_change(absl::OkStatus());
}

void Committer::Run() {
  std::vector<Task> tasks;
  std::vector<absl::Status> results;
  rocksdb::WriteBatch batch;
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(mu_);
      bool woke = cv_.wait_for(lock, absl::ToChronoMilliseconds(idle_interval_),
                               [&] { return stopping_ || !queue_.empty(); });
      if (!woke) {
        lock.unlock();
        if (paused_) MaybeResume();
        if (hooks_.on_idle && !paused_) hooks_.on_idle();
        continue;
      }
      if (queue_.empty()) return;  // stopping and drained
      if (queue_.size() <= max_batch_) {
        tasks.swap(queue_);
      } else {
        tasks.assign(std::make_move_iterator(queue_.begin()),
                     std::make_move_iterator(queue_.begin() + max_batch_));
        queue_.erase(queue_.begin(), queue_.begin() + max_batch_);
      }
    }
    results.assign(tasks.size(), absl::OkStatus());
    absl::Status write_status;
    bool synced = false;
    if (paused_) MaybeResume();
    if (paused_) {
      write_status = pause_cause_;
    } else {
      if (batch.GetDataSize() > kKeepBatchBytes) {
        batch = rocksdb::WriteBatch();
      } else {
        batch.Clear();
      }
      for (size_t i = 0; i < tasks.size(); ++i) {
        if (!tasks[i].prepare) continue;
        batch.SetSavePoint();
        results[i] = tasks[i].prepare(batch);
        if (results[i].ok()) {
          batch.PopSavePoint();
          synced = synced || tasks[i].sync;
        } else {
          batch.RollbackToSavePoint();
        }
      }
      if (hooks_.before_write && hooks_.before_write(batch)) synced = true;
      if (batch.Count() > 0) write_status = store_->Write(&batch, synced);
      if (!write_status.ok()) {
        // Nothing of the batch is stored: every task fails with it (below).
        paused_ = true;
        pause_cause_ = write_status;
        last_resume_attempt_ = absl::Now();
        {
          std::lock_guard<std::mutex> lock(pause_mu_);
          pause_status_ = write_status;
        }
        std::fprintf(stderr, "corridord: storage paused: %s\n",
                     std::string(write_status.message()).c_str());
        if (hooks_.on_pause_change) hooks_.on_pause_change(write_status);
      }
    }
    // State that callers may observe once answered (counters, queue heads, the
    // audit log's durable size) is published before anyone is answered.
    if (hooks_.after_batch) hooks_.after_batch(write_status, synced);
    for (size_t i = 0; i < tasks.size(); ++i) {
      if (results[i].ok()) results[i] = write_status;
    }
    batches_.fetch_add(1, std::memory_order_relaxed);
    tasks_.fetch_add(tasks.size(), std::memory_order_relaxed);
    bool inline_dones = tasks.size() <= kInlineDones;
    if (inline_dones) {
      // Still in order: earlier batches handed off must complete first.
      std::lock_guard<std::mutex> lock(done_mu_);
      inline_dones = done_queue_.empty() && !completing_;
    }
    if (inline_dones) {
      for (size_t i = 0; i < tasks.size(); ++i) {
        if (tasks[i].done) tasks[i].done(results[i]);
      }
      tasks.clear();
    } else {
      {
        std::lock_guard<std::mutex> lock(done_mu_);
        done_queue_.push_back(Completed{std::move(tasks), std::move(results)});
      }
      done_cv_.notify_one();
      tasks.clear();
      results.clear();
    }
  }
}

}  // namespace corridor::broker
