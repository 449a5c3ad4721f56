#include "broker/committer.h"

#include <pthread.h>

#include <utility>

#include "broker/store.h"

namespace corridor::broker {

Committer::Committer(Store* store, Hooks hooks, size_t max_batch, absl::Duration idle_interval)
    : store_(store),
      hooks_(std::move(hooks)),
      max_batch_(max_batch),
      idle_interval_(idle_interval) {}

Committer::~Committer() { Stop(); }

void Committer::Start() {
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

void Committer::Run() {
  std::vector<Task> tasks;
  std::vector<absl::Status> results;
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(mu_);
      bool woke = cv_.wait_for(lock, absl::ToChronoMilliseconds(idle_interval_),
                               [&] { return stopping_ || !queue_.empty(); });
      if (!woke) {
        lock.unlock();
        if (hooks_.on_idle && !failed_) hooks_.on_idle();
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
    if (failed_) {
      write_status = absl::UnavailableError("broker storage failed earlier; restart required");
    } else {
      rocksdb::WriteBatch batch;
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
        failed_ = true;
        write_status = absl::UnavailableError(std::string("storage write failed: ") +
                                              std::string(write_status.message()));
      }
    }
    // State that callers may observe once answered (counters, queue heads, the
    // audit log's durable size) is published before anyone is answered.
    if (hooks_.after_batch) hooks_.after_batch(write_status, synced);
    for (size_t i = 0; i < tasks.size(); ++i) {
      if (tasks[i].done) tasks[i].done(results[i].ok() ? write_status : results[i]);
    }
    batches_.fetch_add(1, std::memory_order_relaxed);
    tasks_.fetch_add(tasks.size(), std::memory_order_relaxed);
    tasks.clear();
  }
}

}  // namespace corridor::broker
