// Histogram: latency counts in log-linear buckets with a bounded relative error,
// in the manner of HdrHistogram (written for Corridor, not copied).
//
//   Histogram h;
//   h.Record(1234);                 // nanoseconds (any unit: it only sees integers)
//   uint64_t p99 = h.Percentile(99);
//
// Values below 2^kSubBits are counted exactly; above, each power-of-two range is
// split into 2^(kSubBits-1) equal buckets, so a bucket's width is at most
// 2^-(kSubBits-1) = 1/256 (0.39%) of its lower bound. Percentile() reports the
// upper bound of the bucket holding the requested rank (never below the true
// value, at most 0.39% above it), clamped to the largest value recorded.
//
// Threading: not thread-safe; callers keep one per thread or lock around it.
#pragma once

#include <array>
#include <cstdint>
#include <memory>

namespace corridor::load {

class Histogram {
 public:
  static constexpr int kSubBits = 9;
  static constexpr uint64_t kSub = uint64_t{1} << kSubBits;
  static constexpr uint64_t kHalf = kSub / 2;
  static constexpr size_t kBuckets = (64 - kSubBits + 1) * kHalf + kHalf;

  Histogram();
  void Record(uint64_t value);
  void Merge(const Histogram& other);
  void Reset();

  uint64_t count() const { return count_; }
  uint64_t min() const { return count_ == 0 ? 0 : min_; }
  uint64_t max() const { return max_; }
  double mean() const { return count_ == 0 ? 0.0 : static_cast<double>(sum_) / count_; }
  // The value at `percent` (0 < percent <= 100) as described above; 0 when empty.
  uint64_t Percentile(double percent) const;

  // Bucket arithmetic, public for the tests.
  static size_t IndexOf(uint64_t value);
  static uint64_t LowerBound(size_t index);
  static uint64_t UpperBound(size_t index);

 private:
  std::unique_ptr<std::array<uint64_t, kBuckets>> counts_;
  uint64_t count_ = 0;
  uint64_t min_ = UINT64_MAX;
  uint64_t max_ = 0;
  unsigned __int128 sum_ = 0;
};

}  // namespace corridor::load
