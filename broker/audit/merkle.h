// RFC 9162 §2.1 Merkle tree hashing for the audit log: leaf and node hashes, the
// append-only frontier the broker keeps in memory, and inclusion / consistency proofs
// computed from stored perfect-subtree hashes in O(log n) reads.
//
//   MerkleFrontier frontier;                       // or MerkleFrontier::Parse(persisted)
//   frontier.Append(LeafHash(entry_bytes), [&](NodeId id, const Hash& h) {
//     batch.Put(merkle_cf, KeyOf(id), AsBytes(h));  // broker's encoding; same WriteBatch
//   });
//   batch.Put(meta_cf, "frontier", frontier.Serialize());
//   ...
//   CORRIDOR_ASSIGN_OR_RETURN(std::vector<Hash> path, InclusionProof(i, n, rocks_reader));
//   CORRIDOR_RETURN_IF_ERROR(VerifyInclusion(i, n, leaf_hash, path, root));
//
// Pure: no I/O except through the NodeReader the caller passes in.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace corridor::broker::audit {

// A SHA-256 digest.
using Hash = std::array<uint8_t, 32>;

// SHA-256(0x00 || leaf_data): the hash of one leaf (RFC 9162 §2.1.1). Thread-safe.
Hash LeafHash(std::string_view leaf_data);
// SHA-256(0x01 || left || right): the hash of an interior node. Thread-safe.
Hash NodeHash(const Hash& left, const Hash& right);
// SHA-256(""): the root of the empty tree. Thread-safe.
Hash EmptyRoot();

// A perfect subtree: node (level, index) covers leaves [index << level, (index + 1) << level).
// Level 0 nodes are the leaf hashes themselves.
struct NodeId {
  uint32_t level = 0;
  uint64_t index = 0;
  friend bool operator==(const NodeId&, const NodeId&) = default;
};

// Source of perfect-node hashes for proofs (RocksDB in the broker, MemoryNodeStore in
// tests). Implementations used from several threads must be thread-safe.
class NodeReader {
 public:
  virtual ~NodeReader() = default;
  // Returns the hash of perfect node `id`. The functions below only ask for nodes that lie
  // fully inside the tree size they were given. An error (NOT_FOUND, an I/O error) is
  // passed through to the caller, prefixed with the node that was asked for.
  virtual absl::StatusOr<Hash> GetNode(NodeId id) const = 0;
};

// The append-only state of the tree: its size and the hashes of the perfect subtrees on
// its right edge (one per set bit of the size, O(log n)). Append is O(1) amortised
// hashes. A value type; not thread-safe: the owner serialises Append (the broker's commit
// pipeline is the single writer) and must not read it concurrently with Append.
class MerkleFrontier {
 public:
  // Called once per perfect node an Append completes.
  using NodeCallback = std::function<void(NodeId, const Hash&)>;

  // The empty tree.
  MerkleFrontier() = default;

  // Appends one leaf hash (normally LeafHash(entry)). Calls on_complete, in order, for
  // every perfect node this append completes: first (0, size()) for the leaf itself, then
  // each parent that became complete, bottom-up. Storing exactly these nodes is what
  // RootAt / InclusionProof / ConsistencyProof need. on_complete may be empty. Aborts if
  // the tree already holds 2^64 - 1 leaves.
  void Append(const Hash& leaf_hash, const NodeCallback& on_complete);

  // Number of leaves appended so far.
  uint64_t size() const { return size_; }
  // MTH of the leaves so far (EmptyRoot() when empty). O(log n) hashes.
  Hash Root() const;

  // Compact encoding to persist next to the tree: 0x01 (version) || size (8 bytes, big
  // endian) || one 32-byte hash per set bit of size, largest subtree first.
  std::string Serialize() const;
  // Inverse of Serialize. INVALID_ARGUMENT if the bytes are not a frontier of this
  // version (wrong version byte, length not matching the size).
  static absl::StatusOr<MerkleFrontier> Parse(std::string_view bytes);
  // Rebuilds the frontier of a tree of `size` leaves from stored perfect nodes
  // (popcount(size) reads), e.g. to recover or cross-check a persisted frontier.
  // Errors from `nodes` are passed through.
  static absl::StatusOr<MerkleFrontier> FromNodes(uint64_t size, const NodeReader& nodes);

 private:
  uint64_t size_ = 0;
  // Hashes of the perfect subtrees that make up the tree, one per set bit of size_,
  // largest (leftmost) first.
  std::vector<Hash> subtrees_;
};

// An in-memory NodeReader that stores nodes by (level, index), for tests and tools.
// Not thread-safe for Put; concurrent const reads are safe.
class MemoryNodeStore : public NodeReader {
 public:
  // Stores (or overwrites) one node.
  void Put(NodeId id, const Hash& hash);
  // An on_complete callback for MerkleFrontier::Append that Puts into this store. The
  // store must outlive the returned function.
  MerkleFrontier::NodeCallback Recorder();
  // NOT_FOUND if `id` was never Put.
  absl::StatusOr<Hash> GetNode(NodeId id) const override;
  // Number of distinct nodes stored.
  uint64_t node_count() const { return node_count_; }

 private:
  std::vector<std::vector<Hash>> levels_;
  std::vector<std::vector<bool>> present_;
  uint64_t node_count_ = 0;
};

// Root hash (MTH) of the first `size` leaves, from popcount(size) stored perfect nodes.
// EmptyRoot() for size 0. Errors from `nodes` are passed through. Thread-safe if `nodes` is.
absl::StatusOr<Hash> RootAt(uint64_t size, const NodeReader& nodes);

// RFC 9162 §2.1.3.1 PATH(index, D[size]): the audit path of leaf `index`, ordered from
// the leaf's sibling up to the root's child. At most 2·⌈log2(size)⌉ node reads.
// INVALID_ARGUMENT (naming `index`) if index >= size. Thread-safe if `nodes` is.
absl::StatusOr<std::vector<Hash>> InclusionProof(uint64_t index, uint64_t size,
                                                 const NodeReader& nodes);

// RFC 9162 §2.1.4.1 PROOF(old_size, D[new_size]) (via SUBPROOF). Empty when the sizes are
// equal. At most 2·⌈log2(new_size)⌉ node reads. INVALID_ARGUMENT (naming `old_size`)
// if old_size == 0 or old_size > new_size. Thread-safe if `nodes` is.
absl::StatusOr<std::vector<Hash>> ConsistencyProof(uint64_t old_size, uint64_t new_size,
                                                   const NodeReader& nodes);

// RFC 9162 §2.1.3.2: checks that `leaf_hash` is leaf `index` of the tree of `size` leaves
// whose root is `root`. OK, or INVALID_ARGUMENT saying which step failed (index out of
// range, wrong number of hashes, computed root differs). Thread-safe.
absl::Status VerifyInclusion(uint64_t index, uint64_t size, const Hash& leaf_hash,
                             const std::vector<Hash>& proof, const Hash& root);

// RFC 9162 §2.1.4.2: checks that the tree of `new_size` leaves with root `new_root`
// extends the tree of `old_size` leaves with root `old_root`. Equal sizes need an empty
// proof and equal roots. OK, or INVALID_ARGUMENT saying which step failed (sizes, wrong
// number of hashes, computed old root differs, computed new root differs). Thread-safe.
absl::Status VerifyConsistency(uint64_t old_size, uint64_t new_size, const Hash& old_root,
                               const Hash& new_root, const std::vector<Hash>& proof);

// Lower-case hex (64 characters).
std::string HexOf(const Hash& hash);
// Parses 64 hex digits (either case). INVALID_ARGUMENT otherwise.
absl::StatusOr<Hash> HashFromHex(std::string_view hex);

}  // namespace corridor::broker::audit
