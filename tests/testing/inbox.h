// Inbox: collects the deliveries a Subscription's handler thread receives,
// for tests to wait on. Thread-safe.
#pragma once

#include <condition_variable>
#include <functional>
#include <mutex>
#include <vector>

#include "absl/time/time.h"
#include "corridor/v1/exchange.pb.h"

namespace corridor::testing {

// Collects deliveries from a Subscription's thread; acks them when `ack`.
class Inbox {
 public:
  explicit Inbox(bool ack = true) : ack_(ack) {}
  std::function<bool(const v1::Delivery&)> Handler() {
    return [this](const v1::Delivery& d) {
      std::lock_guard<std::mutex> lock(mu_);
      got_.push_back(d);
      cv_.notify_all();
      return ack_;
    };
  }
  std::vector<v1::Delivery> WaitFor(size_t n, absl::Duration timeout = absl::Seconds(10)) {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait_for(lock, absl::ToChronoMilliseconds(timeout), [&] { return got_.size() >= n; });
    return got_;
  }
  std::vector<v1::Delivery> Now() {
    std::lock_guard<std::mutex> lock(mu_);
    return got_;
  }

 private:
  const bool ack_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<v1::Delivery> got_;
};

}  // namespace corridor::testing
