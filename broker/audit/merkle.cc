#include "broker/audit/merkle.h"

#include <algorithm>
#include <bit>
#include <utility>

#include "absl/strings/str_cat.h"
#include "broker/audit/internal/crypto_util.h"
#include "common/status_macros.h"

namespace corridor::broker::audit {
namespace {

using internal::AsView;
using internal::CheckOrDie;

constexpr char kLeafPrefix = 0x00;
constexpr char kNodePrefix = 0x01;
constexpr uint8_t kFrontierVersion = 0x01;
constexpr size_t kFrontierHeader = 1 + 8;

// The split point of RFC 9162: the largest power of two strictly smaller than n (n >= 2).
uint64_t SplitPoint(uint64_t n) { return std::bit_floor(n - 1); }

// log2 of a power of two.
uint32_t Log2(uint64_t power_of_two) {
  return static_cast<uint32_t>(std::countr_zero(power_of_two));
}

absl::StatusOr<Hash> ReadNode(const NodeReader& nodes, NodeId id) {
  absl::StatusOr<Hash> hash = nodes.GetNode(id);
  if (!hash.ok()) {
    return absl::Status(hash.status().code(),
                        absl::StrCat("reading merkle node (level ", id.level, ", index ", id.index,
                                     "): ", hash.status().message()));
  }
  return hash;
}

// MTH(D[begin:end]) for a range that occurs in the RFC 9162 recursion, i.e. whose begin is
// a multiple of bit_ceil(end - begin). Such a range is the concatenation of the perfect
// subtrees given by the binary digits of its length, each aligned to its own size; its
// hash folds them right to left. popcount(end - begin) reads.
absl::StatusOr<Hash> RangeHash(uint64_t begin, uint64_t end, const NodeReader& nodes) {
  CheckOrDie(begin < end, "RangeHash on an empty range");
  const uint64_t length = end - begin;
  std::array<Hash, 64> parts;
  int count = 0;
  uint64_t offset = begin;
  for (int level = 63; level >= 0; --level) {
    const uint64_t width = uint64_t{1} << level;
    if ((length & width) == 0) continue;
    CheckOrDie(offset % width == 0, "RangeHash on a misaligned range");
    CORRIDOR_ASSIGN_OR_RETURN(parts[count],
                              ReadNode(nodes, {static_cast<uint32_t>(level), offset >> level}));
    ++count;
    offset += width;
  }
  Hash hash = parts[count - 1];
  for (int i = count - 2; i >= 0; --i) hash = NodeHash(parts[i], hash);
  return hash;
}

// Number of hashes in PATH(index, D[size]); walks the same descent as InclusionProof.
size_t InclusionProofLength(uint64_t index, uint64_t size) {
  size_t length = 0;
  uint64_t begin = 0;
  uint64_t end = size;
  while (end - begin > 1) {
    const uint64_t k = SplitPoint(end - begin);
    if (index < begin + k) {
      end = begin + k;
    } else {
      begin += k;
    }
    ++length;
  }
  return length;
}

// Number of hashes in PROOF(old_size, D[new_size]), 0 < old_size < new_size; walks the same
// descent as ConsistencyProof.
size_t ConsistencyProofLength(uint64_t old_size, uint64_t new_size) {
  size_t length = 0;
  uint64_t begin = 0;
  uint64_t end = new_size;
  bool whole = true;  // SUBPROOF's flag b: still on the left edge of the tree
  while (old_size != end) {
    const uint64_t k = SplitPoint(end - begin);
    if (old_size <= begin + k) {
      end = begin + k;
    } else {
      begin += k;
      whole = false;
    }
    ++length;
  }
  return whole ? length : length + 1;
}

// Short form for messages: the first 16 hex digits.
std::string Short(const Hash& hash) { return HexOf(hash).substr(0, 16) + "…"; }

}  // namespace

Hash LeafHash(std::string_view leaf_data) {
  return internal::Sha256({std::string_view(&kLeafPrefix, 1), leaf_data});
}

Hash NodeHash(const Hash& left, const Hash& right) {
  return internal::Sha256({std::string_view(&kNodePrefix, 1), AsView(left), AsView(right)});
}

Hash EmptyRoot() {
  static const Hash empty = internal::Sha256({});
  return empty;
}

// ---- MerkleFrontier --------------------------------------------------------------------

void MerkleFrontier::Append(const Hash& leaf_hash, const NodeCallback& on_complete) {
  CheckOrDie(size_ != UINT64_MAX, "MerkleFrontier is full");
  Hash hash = leaf_hash;
  uint64_t index = size_;
  uint32_t level = 0;
  if (on_complete) on_complete(NodeId{0, index}, hash);
  // Each trailing one bit of the old size is a perfect subtree of the same height as the
  // new node on its left: merge them.
  while ((index & 1) == 1) {
    hash = NodeHash(subtrees_.back(), hash);
    subtrees_.pop_back();
    index >>= 1;
    ++level;
    if (on_complete) on_complete(NodeId{level, index}, hash);
  }
  subtrees_.push_back(hash);
  ++size_;
}

Hash MerkleFrontier::Root() const {
  if (subtrees_.empty()) return EmptyRoot();
  Hash root = subtrees_.back();
  for (size_t i = subtrees_.size() - 1; i-- > 0;) root = NodeHash(subtrees_[i], root);
  return root;
}

std::string MerkleFrontier::Serialize() const {
  std::string out;
  out.reserve(kFrontierHeader + subtrees_.size() * sizeof(Hash));
  out.push_back(static_cast<char>(kFrontierVersion));
  for (int shift = 56; shift >= 0; shift -= 8) {
    out.push_back(static_cast<char>((size_ >> shift) & 0xFF));
  }
  for (const Hash& hash : subtrees_) out.append(AsView(hash));
  return out;
}

absl::StatusOr<MerkleFrontier> MerkleFrontier::Parse(std::string_view bytes) {
  if (bytes.size() < kFrontierHeader) {
    return absl::InvalidArgumentError(
        absl::StrCat("merkle frontier: ", bytes.size(), " bytes, shorter than its header"));
  }
  if (static_cast<uint8_t>(bytes[0]) != kFrontierVersion) {
    return absl::InvalidArgumentError(absl::StrCat(
        "merkle frontier: unknown version ", static_cast<int>(static_cast<uint8_t>(bytes[0]))));
  }
  uint64_t size = 0;
  for (size_t i = 1; i < kFrontierHeader; ++i) size = (size << 8) | static_cast<uint8_t>(bytes[i]);
  const size_t count = static_cast<size_t>(std::popcount(size));
  const size_t expected = kFrontierHeader + count * sizeof(Hash);
  if (bytes.size() != expected) {
    return absl::InvalidArgumentError(absl::StrCat(
        "merkle frontier: ", bytes.size(), " bytes, expected ", expected, " for a tree of ", size));
  }
  MerkleFrontier frontier;
  frontier.size_ = size;
  frontier.subtrees_.resize(count);
  for (size_t i = 0; i < count; ++i) {
    std::copy_n(bytes.data() + kFrontierHeader + i * sizeof(Hash), sizeof(Hash),
                reinterpret_cast<char*>(frontier.subtrees_[i].data()));
  }
  return frontier;
}

absl::StatusOr<MerkleFrontier> MerkleFrontier::FromNodes(uint64_t size, const NodeReader& nodes) {
  MerkleFrontier frontier;
  frontier.size_ = size;
  uint64_t offset = 0;
  for (int level = 63; level >= 0; --level) {
    const uint64_t width = uint64_t{1} << level;
    if ((size & width) == 0) continue;
    CORRIDOR_ASSIGN_OR_RETURN(Hash hash,
                              ReadNode(nodes, {static_cast<uint32_t>(level), offset >> level}));
    frontier.subtrees_.push_back(hash);
    offset += width;
  }
  return frontier;
}

// ---- MemoryNodeStore -------------------------------------------------------------------

void MemoryNodeStore::Put(NodeId id, const Hash& hash) {
  if (id.level >= levels_.size()) {
    levels_.resize(id.level + 1);
    present_.resize(id.level + 1);
  }
  std::vector<Hash>& level = levels_[id.level];
  std::vector<bool>& present = present_[id.level];
  if (id.index >= level.size()) {
    const size_t new_size = std::max<size_t>(id.index + 1, level.size() * 2);
    level.resize(new_size);
    present.resize(new_size, false);
  }
  level[id.index] = hash;
  if (!present[id.index]) {
    present[id.index] = true;
    ++node_count_;
  }
}

MerkleFrontier::NodeCallback MemoryNodeStore::Recorder() {
  return [this](NodeId id, const Hash& hash) { Put(id, hash); };
}

absl::StatusOr<Hash> MemoryNodeStore::GetNode(NodeId id) const {
  if (id.level >= levels_.size() || id.index >= levels_[id.level].size() ||
      !present_[id.level][id.index]) {
    return absl::NotFoundError(absl::StrCat("no node at level ", id.level, ", index ", id.index));
  }
  return levels_[id.level][id.index];
}

// ---- Roots and proofs ------------------------------------------------------------------

absl::StatusOr<Hash> RootAt(uint64_t size, const NodeReader& nodes) {
  if (size == 0) return EmptyRoot();
  return RangeHash(0, size, nodes);
}

absl::StatusOr<std::vector<Hash>> InclusionProof(uint64_t index, uint64_t size,
                                                 const NodeReader& nodes) {
  if (index >= size) {
    return absl::InvalidArgumentError(
        absl::StrCat("index ", index, " is not below the tree size ", size));
  }
  // Walk down from the root towards the leaf. At each split, the subtree not holding the
  // leaf is a sibling on the path: on the left it is always perfect (one read); on the
  // right it is perfect except at most once (when the walk first turns left, after which
  // every range is perfect), so the whole walk costs O(log n) reads.
  std::vector<Hash> path;
  path.reserve(64);
  uint64_t begin = 0;
  uint64_t end = size;
  while (end - begin > 1) {
    const uint64_t k = SplitPoint(end - begin);
    if (index < begin + k) {
      CORRIDOR_ASSIGN_OR_RETURN(Hash sibling, RangeHash(begin + k, end, nodes));
      path.push_back(sibling);
      end = begin + k;
    } else {
      CORRIDOR_ASSIGN_OR_RETURN(Hash sibling, ReadNode(nodes, {Log2(k), begin >> Log2(k)}));
      path.push_back(sibling);
      begin += k;
    }
  }
  std::reverse(path.begin(), path.end());  // PATH lists the deepest sibling first
  return path;
}

absl::StatusOr<std::vector<Hash>> ConsistencyProof(uint64_t old_size, uint64_t new_size,
                                                   const NodeReader& nodes) {
  if (old_size == 0) {
    return absl::InvalidArgumentError("old_size must be at least 1");
  }
  if (old_size > new_size) {
    return absl::InvalidArgumentError(
        absl::StrCat("old_size ", old_size, " exceeds new_size ", new_size));
  }
  std::vector<Hash> proof;
  if (old_size == new_size) return proof;
  // SUBPROOF(m, D[begin:end], whole) unrolled: descend towards the subtree that ends at
  // old_size, collecting the sibling of each step; SUBPROOF appends them after the deeper
  // part, so they are emitted in reverse after the terminal hash.
  std::vector<Hash> siblings;
  siblings.reserve(64);
  uint64_t begin = 0;
  uint64_t end = new_size;
  bool whole = true;
  while (old_size != end) {
    const uint64_t k = SplitPoint(end - begin);
    if (old_size <= begin + k) {
      CORRIDOR_ASSIGN_OR_RETURN(Hash sibling, RangeHash(begin + k, end, nodes));
      siblings.push_back(sibling);
      end = begin + k;
    } else {
      CORRIDOR_ASSIGN_OR_RETURN(Hash sibling, ReadNode(nodes, {Log2(k), begin >> Log2(k)}));
      siblings.push_back(sibling);
      begin += k;
      whole = false;
    }
  }
  proof.reserve(siblings.size() + 1);
  if (!whole) {
    // SUBPROOF(m, D[m], false) = {MTH(D[m])}: the old tree's right-most subtree.
    CORRIDOR_ASSIGN_OR_RETURN(Hash terminal, RangeHash(begin, end, nodes));
    proof.push_back(terminal);
  }
  proof.insert(proof.end(), siblings.rbegin(), siblings.rend());
  return proof;
}

absl::Status VerifyInclusion(uint64_t index, uint64_t size, const Hash& leaf_hash,
                             const std::vector<Hash>& proof, const Hash& root) {
  if (index >= size) {
    return absl::InvalidArgumentError(
        absl::StrCat("inclusion proof: index ", index, " is not below the tree size ", size));
  }
  const size_t expected = InclusionProofLength(index, size);
  if (proof.size() != expected) {
    return absl::InvalidArgumentError(absl::StrCat("inclusion proof: ", proof.size(),
                                                   " hashes, expected ", expected, " for index ",
                                                   index, " in a tree of ", size));
  }
  // RFC 9162 §2.1.3.2, steps 2 to 5.
  uint64_t fn = index;
  uint64_t sn = size - 1;
  Hash r = leaf_hash;
  for (const Hash& p : proof) {
    if (sn == 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "inclusion proof: more hashes than the path of index ", index, " in a tree of ", size));
    }
    if ((fn & 1) == 1 || fn == sn) {
      r = NodeHash(p, r);
      while ((fn & 1) == 0 && fn != 0) {
        fn >>= 1;
        sn >>= 1;
      }
    } else {
      r = NodeHash(r, p);
    }
    fn >>= 1;
    sn >>= 1;
  }
  if (sn != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("inclusion proof: too few hashes for index ", index, " in a tree of ", size));
  }
  if (r != root) {
    return absl::InvalidArgumentError(absl::StrCat("inclusion proof: computed root ", Short(r),
                                                   " does not match root ", Short(root), " (index ",
                                                   index, ", tree of ", size, ")"));
  }
  return absl::OkStatus();
}

absl::Status VerifyConsistency(uint64_t old_size, uint64_t new_size, const Hash& old_root,
                               const Hash& new_root, const std::vector<Hash>& proof) {
  if (old_size == 0) {
    return absl::InvalidArgumentError("consistency proof: old_size must be at least 1");
  }
  if (old_size > new_size) {
    return absl::InvalidArgumentError(
        absl::StrCat("consistency proof: old_size ", old_size, " exceeds new_size ", new_size));
  }
  if (old_size == new_size) {
    if (!proof.empty()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "consistency proof: ", proof.size(), " hashes, expected 0 for equal sizes ", old_size));
    }
    if (old_root != new_root) {
      return absl::InvalidArgumentError(absl::StrCat("consistency proof: roots ", Short(old_root),
                                                     " and ", Short(new_root),
                                                     " differ for the same size ", old_size));
    }
    return absl::OkStatus();
  }
  const size_t expected = ConsistencyProofLength(old_size, new_size);
  if (proof.size() != expected) {
    return absl::InvalidArgumentError(absl::StrCat("consistency proof: ", proof.size(),
                                                   " hashes, expected ", expected, " from size ",
                                                   old_size, " to ", new_size));
  }
  // RFC 9162 §2.1.4.2, steps 2 to 7. When old_size is a power of two the old root is itself
  // a node of the new tree and the proof omits it (step 2 puts it back).
  const bool old_is_power_of_two = std::has_single_bit(old_size);
  const size_t total = proof.size() + (old_is_power_of_two ? 1 : 0);
  const auto path = [&](size_t i) -> const Hash& {
    if (old_is_power_of_two) return i == 0 ? old_root : proof[i - 1];
    return proof[i];
  };
  uint64_t fn = old_size - 1;
  uint64_t sn = new_size - 1;
  while ((fn & 1) == 1) {
    fn >>= 1;
    sn >>= 1;
  }
  Hash fr = path(0);
  Hash sr = path(0);
  for (size_t i = 1; i < total; ++i) {
    const Hash& c = path(i);
    if (sn == 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "consistency proof: more hashes than needed from size ", old_size, " to ", new_size));
    }
    if ((fn & 1) == 1 || fn == sn) {
      fr = NodeHash(c, fr);
      sr = NodeHash(c, sr);
      while ((fn & 1) == 0 && fn != 0) {
        fn >>= 1;
        sn >>= 1;
      }
    } else {
      sr = NodeHash(sr, c);
    }
    fn >>= 1;
    sn >>= 1;
  }
  if (sn != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("consistency proof: too few hashes from size ", old_size, " to ", new_size));
  }
  if (fr != old_root) {
    return absl::InvalidArgumentError(absl::StrCat("consistency proof: computed old root ",
                                                   Short(fr), " does not match old root ",
                                                   Short(old_root), " (size ", old_size, ")"));
  }
  if (sr != new_root) {
    return absl::InvalidArgumentError(absl::StrCat("consistency proof: computed new root ",
                                                   Short(sr), " does not match new root ",
                                                   Short(new_root), " (size ", new_size, ")"));
  }
  return absl::OkStatus();
}

std::string HexOf(const Hash& hash) { return internal::HexEncode(AsView(hash)); }

absl::StatusOr<Hash> HashFromHex(std::string_view hex) {
  if (hex.size() != 2 * sizeof(Hash)) {
    return absl::InvalidArgumentError(
        absl::StrCat("hash hex: ", hex.size(), " characters, expected 64"));
  }
  const auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  Hash hash;
  for (size_t i = 0; i < hash.size(); ++i) {
    const int hi = nibble(hex[2 * i]);
    const int lo = nibble(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("hash hex: not a hex digit at position ", hi < 0 ? 2 * i : 2 * i + 1));
    }
    hash[i] = static_cast<uint8_t>(hi << 4 | lo);
  }
  return hash;
}

}  // namespace corridor::broker::audit
