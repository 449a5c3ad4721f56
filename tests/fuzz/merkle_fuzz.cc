// libFuzzer target: the RFC 9162 proof verifiers and the frontier codec
// (broker/audit/merkle.h). The first byte picks what the rest is:
//   0  inclusion:   index (8, big endian) | size (8) | leaf hash (32) | root (32) | proof hashes
//   1  consistency: old size (8) | new size (8) | old root (32) | new root (32) | proof hashes
//   2  frontier:    MerkleFrontier::Parse of the rest; what parses must serialize back
//   3  self-check:  a tree of 1..256 leaves made from the rest; every proof the code
//                   computes for it must verify, and a proof of another leaf must not
// (first byte modulo 4; a trailing partial hash is ignored). make_seeds writes real
// proofs in modes 0 and 1.
//
// Commands: tests/fuzz/README.md.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "broker/audit/merkle.h"

namespace audit = corridor::broker::audit;

namespace {

struct Reader {
  const uint8_t* p;
  size_t n;
  uint64_t U64() {
    uint64_t v = 0;
    for (int i = 0; i < 8; ++i) v = (v << 8) | Byte();
    return v;
  }
  uint8_t Byte() {
    if (n == 0) return 0;
    --n;
    return *p++;
  }
  audit::Hash H() {
    audit::Hash h{};
    for (auto& b : h) b = Byte();
    return h;
  }
  std::vector<audit::Hash> Rest() {
    std::vector<audit::Hash> v;
    while (n >= 32) v.push_back(H());
    return v;
  }
};

void SelfCheck(Reader r) {
  const uint64_t size = 1 + r.Byte();  // 1..256
  const uint64_t index = r.Byte() % size;
  const uint64_t old_size = 1 + r.Byte() % size;
  audit::MemoryNodeStore store;
  audit::MerkleFrontier frontier;
  audit::MerkleFrontier old_frontier;
  std::vector<audit::Hash> leaves;
  for (uint64_t i = 0; i < size; ++i) {
    // Leaf data: 1-3 bytes of the input (wrapping), so leaves may repeat.
    std::string leaf = std::to_string(i);
    if (r.n > 0) {
      const size_t off = i % r.n;
      leaf.assign(reinterpret_cast<const char*>(r.p) + off, std::min<size_t>(1 + i % 3, r.n - off));
    }
    leaves.push_back(audit::LeafHash(leaf));
    frontier.Append(leaves.back(), store.Recorder());
    if (i + 1 == old_size) old_frontier = frontier;
  }
  const audit::Hash root = frontier.Root();
  auto at = audit::RootAt(size, store);
  if (!at.ok() || *at != root) __builtin_trap();
  auto old_at = audit::RootAt(old_size, store);
  if (!old_at.ok() || *old_at != old_frontier.Root()) __builtin_trap();
  auto rebuilt = audit::MerkleFrontier::FromNodes(size, store);
  if (!rebuilt.ok() || rebuilt->Serialize() != frontier.Serialize()) __builtin_trap();

  auto path = audit::InclusionProof(index, size, store);
  if (!path.ok()) __builtin_trap();
  if (!audit::VerifyInclusion(index, size, leaves[index], *path, root).ok()) __builtin_trap();
  const uint64_t other = (index + 1) % size;
  if (leaves[other] != leaves[index] &&
      audit::VerifyInclusion(index, size, leaves[other], *path, root).ok()) {
    __builtin_trap();
  }
  auto consistency = audit::ConsistencyProof(old_size, size, store);
  if (!consistency.ok()) __builtin_trap();
  if (!audit::VerifyConsistency(old_size, size, *old_at, root, *consistency).ok()) {
    __builtin_trap();
  }
  if (!consistency->empty()) {
    std::vector<audit::Hash> bad = *consistency;
    bad.back()[0] ^= 1;
    if (audit::VerifyConsistency(old_size, size, *old_at, root, bad).ok()) __builtin_trap();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  Reader r{data + 1, size - 1};
  switch (data[0] % 4) {
    case 0: {
      const uint64_t index = r.U64();
      const uint64_t tree_size = r.U64();
      const audit::Hash leaf = r.H();
      const audit::Hash root = r.H();
      (void)audit::VerifyInclusion(index, tree_size, leaf, r.Rest(), root);
      break;
    }
    case 1: {
      const uint64_t old_size = r.U64();
      const uint64_t new_size = r.U64();
      const audit::Hash old_root = r.H();
      const audit::Hash new_root = r.H();
      (void)audit::VerifyConsistency(old_size, new_size, old_root, new_root, r.Rest());
      break;
    }
    case 2: {
      const std::string_view bytes(reinterpret_cast<const char*>(r.p), r.n);
      auto f = audit::MerkleFrontier::Parse(bytes);
      if (f.ok()) {
        if (f->Serialize() != bytes) __builtin_trap();
        (void)f->Root();
        if (f->size() < UINT64_MAX) f->Append(audit::LeafHash("x"), nullptr);
      }
      (void)audit::HashFromHex(bytes);
      break;
    }
    default:
      SelfCheck(r);
      break;
  }
  return 0;
}
