// Tracker: what the load generator knows about every message it sent — when it
// was meant to go, whether and when the broker acknowledged it, which
// subscribers should receive it and how often each one did.
//
//   Tracker t(/*senders=*/2, /*subscribers=*/3);
//   t.MarkSent(sender, n, intended_ns);             // the sender thread, in order of n
//   t.OnAck(sender, n, ok, expected_mask, now_ns);  // any thread
//   t.OnDelivery(subscriber, id, now_ns);          // any thread
//   DeliveryCheck c = t.Check();                    // after the run, when quiet
//
// Message ids are "<run tag>-<sender>-<n>", unique per run (the broker dedupes
// on them). Latencies are measured from the *intended* send time, so a sender
// that fell behind its schedule (open loop) cannot hide the wait (no coordinated
// omission), and only for messages intended inside the measurement window.
//
// Threading: every method is thread-safe. Per-message state lives in chunked
// arrays of atomics that never move; histograms are per sender / per subscriber
// behind their own mutexes.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "bench/load/histogram.h"

namespace corridor::load {

int64_t NowNs();  // CLOCK_MONOTONIC

constexpr int kMaxSubscribers = 8;

struct DeliveryCheck {
  uint64_t acked = 0;       // messages the broker acknowledged
  uint64_t failed = 0;      // messages it answered with an error
  uint64_t unanswered = 0;  // sent, never answered
  uint64_t expected = 0;    // (acked message, permitted subscriber) pairs
  uint64_t delivered = 0;   // of those, delivered at least once
  uint64_t missing = 0;     // of those, never delivered
  uint64_t duplicates = 0;  // extra deliveries (redeliveries) of expected pairs
  uint64_t unexpected = 0;  // deliveries to a subscriber the message was not for
  uint64_t foreign = 0;     // deliveries of ids not from this run
  bool exactly_once() const { return missing == 0 && duplicates == 0 && unexpected == 0; }
};

class Tracker {
 public:
  Tracker(int senders, int subscribers, std::string run_tag);
  ~Tracker();

  const std::string& run_tag() const { return run_tag_; }
  int senders() const { return senders_; }
  int subscribers() const { return subscribers_; }
  std::string MessageId(int sender, uint64_t n) const;
  // Parses an id of this run; false for anything else.
  bool ParseId(std::string_view id, int* sender, uint64_t* n) const;

  // Latency is recorded for messages intended within [start, end).
  void SetWindow(int64_t start_ns, int64_t end_ns);

  // Sender thread, n = 0, 1, 2, … in order. Counts the message in flight.
  void MarkSent(int sender, uint64_t n, int64_t intended_ns);
  // The broker's answer. expected_mask: bit i = subscriber i should receive it.
  void OnAck(int sender, uint64_t n, bool ok, uint32_t expected_mask, int64_t now_ns);
  void OnDelivery(int subscriber, std::string_view id, int64_t now_ns);
  void OnDeliveryOf(int subscriber, int sender, uint64_t n, int64_t now_ns);

  // Window control for senders: blocks until fewer than `window` of sender's
  // messages are in flight, or until deadline_ns (0 = no deadline). True when a
  // slot is free.
  bool WaitForSlot(int sender, uint64_t window, int64_t deadline_ns);
  uint64_t in_flight(int sender) const;
  uint64_t sent(int sender) const;

  // Totals for progress and rates.
  uint64_t total_sent() const;
  uint64_t total_acked() const { return acked_.load(std::memory_order_relaxed); }
  uint64_t total_failed() const { return failed_.load(std::memory_order_relaxed); }
  uint64_t total_deliveries() const { return deliveries_.load(std::memory_order_relaxed); }
  uint64_t deliveries_of(int subscriber) const;
  std::string first_error() const;
  void NoteError(const std::string& what);

  // Latency histograms (nanoseconds), merged.
  Histogram AckLatency() const;
  Histogram DeliveryLatency() const;

  // Blocks until every sent message is answered and every expected delivery
  // arrived, or until deadline_ns. True when everything settled.
  bool WaitSettled(int64_t deadline_ns) const;
  // Counts per (message, subscriber). Call when quiet (after WaitSettled).
  DeliveryCheck Check() const;

 private:
  struct Slot {
    std::atomic<int64_t> intended_ns{0};
    std::atomic<uint8_t> state{0};  // 0 unanswered, 1 acked, 2 failed
    std::atomic<uint8_t> expected{0};
    std::atomic<uint8_t> deliveries[kMaxSubscribers] = {};
  };
  static constexpr size_t kChunkBits = 16;
  static constexpr size_t kChunk = size_t{1} << kChunkBits;
  static constexpr size_t kMaxChunks = 1 << 14;  // 2^30 messages per sender
  struct SenderState {
    std::unique_ptr<std::atomic<Slot*>[]> chunks;
    std::atomic<uint64_t> sent{0};
    std::atomic<uint64_t> answered{0};
    mutable std::mutex mu;  // guards ack_hist; cv for the window
    std::condition_variable cv;
    bool waiting = false;  // guarded by mu
    Histogram ack_hist;
  };
  struct SubscriberState {
    std::atomic<uint64_t> deliveries{0};
    mutable std::mutex mu;
    Histogram hist;
  };
  Slot* Find(int sender, uint64_t n) const;

  const int senders_;
  const int subscribers_;
  const std::string run_tag_;
  std::vector<std::unique_ptr<SenderState>> send_;
  std::vector<std::unique_ptr<SubscriberState>> sub_;
  std::atomic<int64_t> window_start_{0};
  std::atomic<int64_t> window_end_{INT64_MAX};
  std::atomic<uint64_t> acked_{0}, failed_{0}, deliveries_{0}, foreign_{0};
  std::atomic<uint64_t> expected_total_{0}, expected_delivered_{0};
  mutable std::mutex err_mu_;
  std::string first_error_;
};

}  // namespace corridor::load
