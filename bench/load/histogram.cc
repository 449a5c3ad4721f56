#include "bench/load/histogram.h"

#include <algorithm>
#include <cmath>

namespace corridor::load {

Histogram::Histogram() : counts_(std::make_unique<std::array<uint64_t, kBuckets>>()) {
  counts_->fill(0);
}

size_t Histogram::IndexOf(uint64_t v) {
  if (v < kSub) return static_cast<size_t>(v);
  const int msb = 63 - __builtin_clzll(v);
  const int shift = msb - kSubBits + 1;  // >= 1
  const uint64_t top = v >> shift;       // in [kHalf, kSub)
  return static_cast<size_t>(shift) * kHalf + static_cast<size_t>(top);
}

uint64_t Histogram::LowerBound(size_t i) {
  if (i < kSub) return i;
  const uint64_t shift = i / kHalf - 1;
  const uint64_t top = i - shift * kHalf;
  return top << shift;
}

uint64_t Histogram::UpperBound(size_t i) {
  if (i < kSub) return i;
  const uint64_t shift = i / kHalf - 1;
  const uint64_t top = i - shift * kHalf;
  // The last bucket's bound would overflow 64 bits; saturate.
  const unsigned __int128 upper = (static_cast<unsigned __int128>(top + 1) << shift) - 1;
  return upper > UINT64_MAX ? UINT64_MAX : static_cast<uint64_t>(upper);
}

void Histogram::Record(uint64_t v) {
  ++(*counts_)[IndexOf(v)];
  ++count_;
  min_ = std::min(min_, v);
  max_ = std::max(max_, v);
  sum_ += v;
}

void Histogram::Merge(const Histogram& o) {
  if (o.count_ == 0) return;
  for (size_t i = 0; i < kBuckets; ++i) (*counts_)[i] += (*o.counts_)[i];
  count_ += o.count_;
  min_ = std::min(min_, o.min_);
  max_ = std::max(max_, o.max_);
  sum_ += o.sum_;
}

void Histogram::Reset() {
  counts_->fill(0);
  count_ = 0;
  min_ = UINT64_MAX;
  max_ = 0;
  sum_ = 0;
}

uint64_t Histogram::Percentile(double percent) const {
  if (count_ == 0) return 0;
  percent = std::clamp(percent, 0.0, 100.0);
  uint64_t rank = static_cast<uint64_t>(std::ceil(percent / 100.0 * static_cast<double>(count_)));
  rank = std::clamp<uint64_t>(rank, 1, count_);
  uint64_t seen = 0;
  for (size_t i = 0; i < kBuckets; ++i) {
    seen += (*counts_)[i];
    if (seen >= rank) return std::clamp(UpperBound(i), min_, max_);
  }
  return max_;
}

}  // namespace corridor::load
