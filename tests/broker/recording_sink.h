// A DeliverySink that records what the core or hub sends, for the broker tests.
// Thread-safe: Send/Close come from the hub thread, the test waits on the others.
#pragma once

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/clock.h"
#include "broker/exchange_core.h"

namespace corridor::broker::testing {

// Each delivery is kept twice: as the shared object the sink was given (to
// check sharing) and parsed from the bytes a transport would send for this
// attempt and subscription (WriteDelivery), as a client would read them.
class RecordingSink : public DeliverySink {
 public:
  void Send(std::shared_ptr<const QueuedDelivery> d, uint32_t attempt,
            const std::string& subscription) override {
    std::string bytes(DeliverySize(*d, attempt, subscription), '\0');
    uint8_t* begin = reinterpret_cast<uint8_t*>(bytes.data());
    uint8_t* end = WriteDelivery(*d, attempt, subscription, begin);
    std::lock_guard<std::mutex> lock(mu_);
    times_.push_back(absl::Now());
    shared_.push_back(d);
    v1::Delivery& got = got_.emplace_back();
    if (end != begin + bytes.size() || !got.ParseFromString(bytes))
      got.set_subscription("UNREADABLE");
    cv_.notify_all();
  }
  void Close(const absl::Status& why) override {
    std::lock_guard<std::mutex> lock(mu_);
    closed_ = why;
    cv_.notify_all();
  }
  // Waits until `n` deliveries arrived (or 10 s); returns all so far.
  std::vector<v1::Delivery> WaitFor(size_t n) {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait_for(lock, std::chrono::seconds(10), [&] { return got_.size() >= n; });
    return got_;
  }
  std::vector<v1::Delivery> got() {
    std::lock_guard<std::mutex> lock(mu_);
    return got_;
  }
  // When each delivery of got() arrived.
  std::vector<absl::Time> times() {
    std::lock_guard<std::mutex> lock(mu_);
    return times_;
  }
  std::vector<std::shared_ptr<const QueuedDelivery>> shared() {
    std::lock_guard<std::mutex> lock(mu_);
    return shared_;
  }
  absl::Status WaitClosed() {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait_for(lock, std::chrono::seconds(10), [&] { return closed_.has_value(); });
    return closed_.value_or(absl::DeadlineExceededError("not closed"));
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<v1::Delivery> got_;
  std::vector<std::shared_ptr<const QueuedDelivery>> shared_;
  std::vector<absl::Time> times_;
  std::optional<absl::Status> closed_;
};

}  // namespace corridor::broker::testing
