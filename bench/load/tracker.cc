#include "bench/load/tracker.h"

#include <time.h>

#include <charconv>

#include "absl/strings/str_cat.h"

namespace corridor::load {

int64_t NowNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

Tracker::Tracker(int senders, int subscribers, std::string run_tag)
    : senders_(senders), subscribers_(subscribers), run_tag_(std::move(run_tag)) {
  for (int i = 0; i < senders; ++i) {
    auto s = std::make_unique<SenderState>();
    s->chunks = std::make_unique<std::atomic<Slot*>[]>(kMaxChunks);
    for (size_t c = 0; c < kMaxChunks; ++c) s->chunks[c].store(nullptr);
    send_.push_back(std::move(s));
  }
  for (int i = 0; i < subscribers; ++i) sub_.push_back(std::make_unique<SubscriberState>());
}

Tracker::~Tracker() {
  for (auto& s : send_) {
    for (size_t c = 0; c < kMaxChunks; ++c) delete[] s->chunks[c].load();
  }
}

std::string Tracker::MessageId(int sender, uint64_t n) const {
  return absl::StrCat(run_tag_, "-", sender, "-", n);
}

bool Tracker::ParseId(std::string_view id, int* sender, uint64_t* n) const {
  if (id.size() < run_tag_.size() + 4 || id.substr(0, run_tag_.size()) != run_tag_ ||
      id[run_tag_.size()] != '-') {
    return false;
  }
  std::string_view rest = id.substr(run_tag_.size() + 1);
  size_t dash = rest.find('-');
  if (dash == std::string_view::npos) return false;
  auto r1 = std::from_chars(rest.data(), rest.data() + dash, *sender);
  auto r2 = std::from_chars(rest.data() + dash + 1, rest.data() + rest.size(), *n);
  return r1.ec == std::errc() && r2.ec == std::errc() && r2.ptr == rest.data() + rest.size() &&
         *sender >= 0 && *sender < senders_;
}

void Tracker::SetWindow(int64_t start_ns, int64_t end_ns) {
  window_start_.store(start_ns);
  window_end_.store(end_ns);
}

Tracker::Slot* Tracker::Find(int sender, uint64_t n) const {
  if (sender < 0 || sender >= senders_) return nullptr;
  const size_t c = n >> kChunkBits;
  if (c >= kMaxChunks) return nullptr;
  Slot* chunk = send_[sender]->chunks[c].load(std::memory_order_acquire);
  return chunk == nullptr ? nullptr : &chunk[n & (kChunk - 1)];
}

void Tracker::MarkSent(int sender, uint64_t n, int64_t intended_ns) {
  SenderState& s = *send_[sender];
  const size_t c = n >> kChunkBits;
  if (s.chunks[c].load(std::memory_order_relaxed) == nullptr) {
    s.chunks[c].store(new Slot[kChunk], std::memory_order_release);
  }
  Find(sender, n)->intended_ns.store(intended_ns, std::memory_order_relaxed);
  s.sent.store(n + 1, std::memory_order_release);
}

void Tracker::OnAck(int sender, uint64_t n, bool ok, uint32_t expected_mask, int64_t now_ns) {
  Slot* slot = Find(sender, n);
  if (slot == nullptr) return;
  SenderState& s = *send_[sender];
  slot->expected.store(static_cast<uint8_t>(ok ? expected_mask : 0), std::memory_order_relaxed);
  slot->state.store(ok ? 1 : 2, std::memory_order_release);
  if (ok) {
    acked_.fetch_add(1, std::memory_order_relaxed);
    expected_total_.fetch_add(__builtin_popcount(expected_mask), std::memory_order_relaxed);
  } else {
    failed_.fetch_add(1, std::memory_order_relaxed);
  }
  const int64_t intended = slot->intended_ns.load(std::memory_order_relaxed);
  std::lock_guard<std::mutex> lock(s.mu);
  s.answered.fetch_add(1, std::memory_order_release);
  if (ok && intended >= window_start_.load(std::memory_order_relaxed) &&
      intended < window_end_.load(std::memory_order_relaxed)) {
    s.ack_hist.Record(static_cast<uint64_t>(std::max<int64_t>(0, now_ns - intended)));
  }
  if (s.waiting) s.cv.notify_all();
}

void Tracker::OnDelivery(int subscriber, std::string_view id, int64_t now_ns) {
  int sender;
  uint64_t n;
  if (!ParseId(id, &sender, &n)) {
    foreign_.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  OnDeliveryOf(subscriber, sender, n, now_ns);
}

void Tracker::OnDeliveryOf(int subscriber, int sender, uint64_t n, int64_t now_ns) {
  Slot* slot = Find(sender, n);
  if (slot == nullptr || n >= send_[sender]->sent.load(std::memory_order_acquire) ||
      subscriber < 0 || subscriber >= subscribers_) {
    foreign_.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  deliveries_.fetch_add(1, std::memory_order_relaxed);
  SubscriberState& sub = *sub_[subscriber];
  sub.deliveries.fetch_add(1, std::memory_order_relaxed);
  const uint8_t before = slot->deliveries[subscriber].load(std::memory_order_relaxed);
  if (before < 255) slot->deliveries[subscriber].fetch_add(1, std::memory_order_relaxed);
  if (before != 0) return;  // latency of the first delivery only
  expected_delivered_.fetch_add(1, std::memory_order_relaxed);
  const int64_t intended = slot->intended_ns.load(std::memory_order_relaxed);
  if (intended >= window_start_.load(std::memory_order_relaxed) &&
      intended < window_end_.load(std::memory_order_relaxed)) {
    std::lock_guard<std::mutex> lock(sub.mu);
    sub.hist.Record(static_cast<uint64_t>(std::max<int64_t>(0, now_ns - intended)));
  }
}

bool Tracker::WaitForSlot(int sender, uint64_t window, int64_t deadline_ns) {
  SenderState& s = *send_[sender];
  auto free = [&] {
    return s.sent.load(std::memory_order_relaxed) - s.answered.load(std::memory_order_acquire) <
           window;
  };
  if (free()) return true;
  std::unique_lock<std::mutex> lock(s.mu);
  s.waiting = true;
  while (!free()) {
    const int64_t now = NowNs();
    int64_t wait = 50'000'000;  // re-check the caller's stop flag at least this often
    if (deadline_ns != 0) {
      if (now >= deadline_ns) break;
      wait = std::min(wait, deadline_ns - now);
    }
    s.cv.wait_for(lock, std::chrono::nanoseconds(wait));
    if (deadline_ns == 0) break;  // let the caller look at its stop flag
  }
  s.waiting = false;
  return free();
}

uint64_t Tracker::in_flight(int sender) const {
  const SenderState& s = *send_[sender];
  return s.sent.load() - s.answered.load();
}
uint64_t Tracker::sent(int sender) const { return send_[sender]->sent.load(); }

uint64_t Tracker::total_sent() const {
  uint64_t t = 0;
  for (const auto& s : send_) t += s->sent.load(std::memory_order_relaxed);
  return t;
}

uint64_t Tracker::deliveries_of(int subscriber) const {
  return sub_[subscriber]->deliveries.load(std::memory_order_relaxed);
}

std::string Tracker::first_error() const {
  std::lock_guard<std::mutex> lock(err_mu_);
  return first_error_;
}

void Tracker::NoteError(const std::string& what) {
  std::lock_guard<std::mutex> lock(err_mu_);
  if (first_error_.empty()) first_error_ = what;
}

Histogram Tracker::AckLatency() const {
  Histogram h;
  for (const auto& s : send_) {
    std::lock_guard<std::mutex> lock(s->mu);
    h.Merge(s->ack_hist);
  }
  return h;
}

Histogram Tracker::DeliveryLatency() const {
  Histogram h;
  for (const auto& s : sub_) {
    std::lock_guard<std::mutex> lock(s->mu);
    h.Merge(s->hist);
  }
  return h;
}

bool Tracker::WaitSettled(int64_t deadline_ns) const {
  for (;;) {
    bool answered = true;
    for (const auto& s : send_) answered = answered && s->answered.load() == s->sent.load();
    if (answered && expected_delivered_.load() >= expected_total_.load()) return true;
    if (NowNs() >= deadline_ns) return false;
    struct timespec ts = {0, 10'000'000};
    nanosleep(&ts, nullptr);
  }
}

DeliveryCheck Tracker::Check() const {
  DeliveryCheck c;
  c.foreign = foreign_.load();
  for (int sd = 0; sd < senders_; ++sd) {
    const uint64_t sent = send_[sd]->sent.load();
    for (uint64_t n = 0; n < sent; ++n) {
      const Slot* slot = Find(sd, n);
      const uint8_t state = slot->state.load(std::memory_order_acquire);
      const uint8_t expected = slot->expected.load();
      if (state == 1) ++c.acked;
      if (state == 2) ++c.failed;
      if (state == 0) ++c.unanswered;
      for (int sb = 0; sb < subscribers_; ++sb) {
        const uint8_t got = slot->deliveries[sb].load();
        const bool should = state == 1 && (expected >> sb) & 1;
        if (should) {
          ++c.expected;
          if (got == 0) ++c.missing;
          if (got > 0) ++c.delivered;
          if (got > 1) c.duplicates += got - 1;
        } else if (got > 0 && state == 1) {
          c.unexpected += got;
        } else if (got > 1) {
          // Not acked (failed or unanswered) yet delivered: the broker may have
          // stored it before the answer was lost. Count repeats as duplicates.
          c.duplicates += got - 1;
        }
      }
    }
  }
  return c;
}

}  // namespace corridor::load
