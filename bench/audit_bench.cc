// Micro-benchmarks of the audit-log crypto (broker/audit): MerkleFrontier::Append,
// proof generation from a 1M-leaf MemoryNodeStore, proof verification, checkpoint
// signing and verification.
//
//   ninja -C build corridor_audit_bench && build/bench/corridor_audit_bench
#include <benchmark/benchmark.h>

#include <cstdint>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "broker/audit/checkpoint.h"
#include "broker/audit/merkle.h"

namespace corridor::broker::audit {
namespace {

constexpr uint64_t kTreeSize = 1'000'000;  // deliberately not a power of two

std::vector<Hash> LeafHashes(size_t n) {
  std::vector<Hash> hashes;
  hashes.reserve(n);
  for (size_t i = 0; i < n; ++i) hashes.push_back(LeafHash("audit entry " + std::to_string(i)));
  return hashes;
}

// The 1M-leaf tree shared by the proof benchmarks, built once.
struct Tree {
  MemoryNodeStore store;
  std::vector<Hash> leaves;
  Hash root;
};

const Tree& SharedTree() {
  static const Tree* const tree = [] {
    auto* t = new Tree;
    t->leaves = LeafHashes(kTreeSize);
    MerkleFrontier frontier;
    const MerkleFrontier::NodeCallback record = t->store.Recorder();
    for (const Hash& leaf : t->leaves) frontier.Append(leaf, record);
    t->root = frontier.Root();
    return t;
  }();
  return *tree;
}

void BM_LeafHash(benchmark::State& state) {
  const std::string entry(static_cast<size_t>(state.range(0)), 'e');
  for (auto _ : state) benchmark::DoNotOptimize(LeafHash(entry));
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_LeafHash)->Arg(64)->Arg(512);

void BM_NodeHash(benchmark::State& state) {
  Hash hash = LeafHash("a");
  const Hash other = LeafHash("b");
  for (auto _ : state) {
    hash = NodeHash(hash, other);
    benchmark::DoNotOptimize(hash);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_NodeHash);

void BM_AppendNoOpCallback(benchmark::State& state) {
  const std::vector<Hash> leaves = LeafHashes(1 << 16);
  MerkleFrontier frontier;
  const MerkleFrontier::NodeCallback noop = [](NodeId, const Hash&) {};
  size_t i = 0;
  for (auto _ : state) {
    frontier.Append(leaves[i++ & 0xFFFF], noop);
  }
  benchmark::DoNotOptimize(frontier.Root());
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_AppendNoOpCallback);

void BM_AppendRecordingCallback(benchmark::State& state) {
  const std::vector<Hash> leaves = LeafHashes(1 << 16);
  MerkleFrontier frontier;
  std::vector<std::pair<NodeId, Hash>> nodes;
  nodes.reserve(1 << 21);
  const MerkleFrontier::NodeCallback record = [&nodes](NodeId id, const Hash& hash) {
    nodes.emplace_back(id, hash);
  };
  size_t i = 0;
  for (auto _ : state) {
    frontier.Append(leaves[i++ & 0xFFFF], record);
    if (nodes.size() >= (1 << 21) - 64) nodes.clear();  // keeps capacity; amortised away
  }
  benchmark::DoNotOptimize(frontier.Root());
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_AppendRecordingCallback);

// What the commit pipeline pays per audit entry: hash a ~300-byte entry, append, record.
void BM_AppendEntryWithLeafHash(benchmark::State& state) {
  std::string entry(300, 'x');
  MerkleFrontier frontier;
  std::vector<std::pair<NodeId, Hash>> nodes;
  nodes.reserve(64);
  const MerkleFrontier::NodeCallback record = [&nodes](NodeId id, const Hash& hash) {
    nodes.emplace_back(id, hash);
  };
  uint64_t i = 0;
  for (auto _ : state) {
    entry[0] = static_cast<char>(i++);
    nodes.clear();
    frontier.Append(LeafHash(entry), record);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_AppendEntryWithLeafHash);

void BM_RootAt(benchmark::State& state) {
  const Tree& tree = SharedTree();
  std::mt19937_64 rng(1);
  for (auto _ : state) {
    benchmark::DoNotOptimize(RootAt(1 + rng() % kTreeSize, tree.store));
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_RootAt);

void BM_InclusionProof(benchmark::State& state) {
  const Tree& tree = SharedTree();
  std::mt19937_64 rng(2);
  for (auto _ : state) {
    benchmark::DoNotOptimize(InclusionProof(rng() % kTreeSize, kTreeSize, tree.store));
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_InclusionProof);

void BM_ConsistencyProof(benchmark::State& state) {
  const Tree& tree = SharedTree();
  std::mt19937_64 rng(3);
  for (auto _ : state) {
    benchmark::DoNotOptimize(ConsistencyProof(1 + rng() % (kTreeSize - 1), kTreeSize, tree.store));
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_ConsistencyProof);

void BM_VerifyInclusion(benchmark::State& state) {
  const Tree& tree = SharedTree();
  std::mt19937_64 rng(4);
  struct Case {
    uint64_t index;
    std::vector<Hash> proof;
  };
  std::vector<Case> cases;
  for (int i = 0; i < 256; ++i) {
    const uint64_t index = rng() % kTreeSize;
    cases.push_back({index, *InclusionProof(index, kTreeSize, tree.store)});
  }
  size_t i = 0;
  for (auto _ : state) {
    const Case& c = cases[i++ & 255];
    absl::Status status =
        VerifyInclusion(c.index, kTreeSize, tree.leaves[c.index], c.proof, tree.root);
    if (!status.ok()) state.SkipWithError("verification failed");
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_VerifyInclusion);

void BM_VerifyConsistency(benchmark::State& state) {
  const Tree& tree = SharedTree();
  std::mt19937_64 rng(5);
  struct Case {
    uint64_t old_size;
    Hash old_root;
    std::vector<Hash> proof;
  };
  std::vector<Case> cases;
  for (int i = 0; i < 256; ++i) {
    const uint64_t old_size = 1 + rng() % (kTreeSize - 1);
    cases.push_back({old_size, *RootAt(old_size, tree.store),
                     *ConsistencyProof(old_size, kTreeSize, tree.store)});
  }
  size_t i = 0;
  for (auto _ : state) {
    const Case& c = cases[i++ & 255];
    absl::Status status = VerifyConsistency(c.old_size, kTreeSize, c.old_root, tree.root, c.proof);
    if (!status.ok()) state.SkipWithError("verification failed");
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_VerifyConsistency);

void BM_SignCheckpoint(benchmark::State& state) {
  const Ed25519Signer signer = *Ed25519Signer::Generate("corridor.example/audit");
  Checkpoint checkpoint{"corridor.example/audit", 0, LeafHash("root"), {}};
  for (auto _ : state) {
    ++checkpoint.size;
    benchmark::DoNotOptimize(signer.SignNote(CheckpointBody(checkpoint)));
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_SignCheckpoint);

void BM_VerifyCheckpointNote(benchmark::State& state) {
  const Ed25519Signer signer = *Ed25519Signer::Generate("corridor.example/audit");
  const std::string note =
      signer.SignNote(CheckpointBody({"corridor.example/audit", kTreeSize, LeafHash("r"), {}}));
  const std::string vkey = signer.VerifierKey();
  for (auto _ : state) {
    absl::StatusOr<Checkpoint> checkpoint = VerifyCheckpointNote(note, vkey);
    if (!checkpoint.ok()) state.SkipWithError("verification failed");
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_VerifyCheckpointNote);

}  // namespace
}  // namespace corridor::broker::audit

BENCHMARK_MAIN();
