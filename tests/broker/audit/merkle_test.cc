#include "broker/audit/merkle.h"

#include <openssl/evp.h>

#include <algorithm>
#include <bit>
#include <cstdint>
#include <set>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace corridor::broker::audit {
namespace {

using ::corridor::testing::IsOk;
using ::corridor::testing::StatusIs;
using ::testing::HasSubstr;

// ---- Reference implementation --------------------------------------------------------
// Written directly from the recursive definitions of RFC 9162 §2.1.1 (MTH), §2.1.3.1
// (PATH) and §2.1.4.1 (PROOF / SUBPROOF), with its own SHA-256 call, and deliberately
// naive: it rehashes whole subtrees from the leaf data every time.

std::string RefSha256(const std::string& bytes) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EXPECT_EQ(EVP_Digest(bytes.data(), bytes.size(), out, &len, EVP_sha256(), nullptr), 1);
  return std::string(reinterpret_cast<char*>(out), len);
}

// The largest power of two smaller than n (n > 1).
size_t RefSplit(size_t n) {
  size_t k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

// MTH(D[begin:end]).
std::string RefMth(const std::vector<std::string>& d, size_t begin, size_t end) {
  const size_t n = end - begin;
  if (n == 0) return RefSha256("");
  if (n == 1) return RefSha256(std::string(1, '\x00') + d[begin]);
  const size_t k = RefSplit(n);
  return RefSha256(std::string(1, '\x01') + RefMth(d, begin, begin + k) +
                   RefMth(d, begin + k, end));
}

// PATH(m, D[begin:end]).
std::vector<std::string> RefPath(size_t m, const std::vector<std::string>& d, size_t begin,
                                 size_t end) {
  const size_t n = end - begin;
  if (n == 1) return {};
  const size_t k = RefSplit(n);
  std::vector<std::string> path;
  if (m < k) {
    path = RefPath(m, d, begin, begin + k);
    path.push_back(RefMth(d, begin + k, end));
  } else {
    path = RefPath(m - k, d, begin + k, end);
    path.push_back(RefMth(d, begin, begin + k));
  }
  return path;
}

// SUBPROOF(m, D[begin:end], b).
std::vector<std::string> RefSubproof(size_t m, const std::vector<std::string>& d, size_t begin,
                                     size_t end, bool b) {
  const size_t n = end - begin;
  if (m == n) {
    if (b) return {};
    return {RefMth(d, begin, end)};
  }
  const size_t k = RefSplit(n);
  std::vector<std::string> proof;
  if (m <= k) {
    proof = RefSubproof(m, d, begin, begin + k, b);
    proof.push_back(RefMth(d, begin + k, end));
  } else {
    proof = RefSubproof(m - k, d, begin + k, end, false);
    proof.push_back(RefMth(d, begin, begin + k));
  }
  return proof;
}

// PROOF(m, D[n]).
std::vector<std::string> RefProof(size_t m, const std::vector<std::string>& d, size_t n) {
  return RefSubproof(m, d, 0, n, true);
}

// ---- Helpers ---------------------------------------------------------------------------

std::string Bytes(const Hash& hash) {
  return std::string(reinterpret_cast<const char*>(hash.data()), hash.size());
}

std::vector<std::string> Bytes(const std::vector<Hash>& hashes) {
  std::vector<std::string> out;
  for (const Hash& hash : hashes) out.push_back(Bytes(hash));
  return out;
}

std::string Hex(const std::string& bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  for (unsigned char c : bytes) {
    out.push_back(kDigits[c >> 4]);
    out.push_back(kDigits[c & 15]);
  }
  return out;
}

std::string FromHex(const std::string& hex) {
  std::string out;
  for (size_t i = 0; i + 1 < hex.size(); i += 2) {
    out.push_back(static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16)));
  }
  return out;
}

// The leaves of the classic RFC 6962 test tree.
std::vector<std::string> Rfc6962Leaves() {
  return {FromHex(""),
          FromHex("00"),
          FromHex("10"),
          FromHex("2021"),
          FromHex("3031"),
          FromHex("40414243"),
          FromHex("5051525354555657"),
          FromHex("606162636465666768696a6b6c6d6e6f")};
}

// Distinct leaves of varying lengths (including an empty one).
std::vector<std::string> TestLeaves(size_t n, const std::string& salt = "corridor") {
  std::vector<std::string> leaves;
  for (size_t i = 0; i < n; ++i) {
    leaves.push_back(i == 0 ? "" : salt + "-leaf-" + std::to_string(i) + std::string(i % 7, '*'));
  }
  return leaves;
}

// A tree built the way the broker builds it: frontier appends recorded into a store.
struct BuiltTree {
  MerkleFrontier frontier;
  MemoryNodeStore store;
  std::vector<Hash> roots;  // roots[n] = frontier root after n leaves
};

std::unique_ptr<BuiltTree> Build(const std::vector<std::string>& leaves) {
  auto tree = std::make_unique<BuiltTree>();
  tree->roots.push_back(tree->frontier.Root());
  for (const std::string& leaf : leaves) {
    tree->frontier.Append(LeafHash(leaf), tree->store.Recorder());
    tree->roots.push_back(tree->frontier.Root());
  }
  return tree;
}

// A NodeReader that checks every request is a perfect node inside the tree of `limit`
// leaves, and counts requests.
class CheckingReader : public NodeReader {
 public:
  CheckingReader(const NodeReader& inner, uint64_t limit) : inner_(inner), limit_(limit) {}
  absl::StatusOr<Hash> GetNode(NodeId id) const override {
    ++reads_;
    EXPECT_LT(id.level, 64u);
    // (index + 1) << level <= limit, written to avoid overflow.
    EXPECT_LE(id.index, (limit_ >> id.level) - 1)
        << "node (" << id.level << ", " << id.index << ") is outside a tree of " << limit_;
    return inner_.GetNode(id);
  }
  int reads() const { return reads_; }
  void set_limit(uint64_t limit) {
    limit_ = limit;
    reads_ = 0;
  }

 private:
  const NodeReader& inner_;
  uint64_t limit_;
  mutable int reads_ = 0;
};

// A NodeReader for huge trees: every node's hash is derived from its id (the hashes are
// not consistent with each other, so only the access pattern is meaningful).
class SyntheticReader : public NodeReader {
 public:
  absl::StatusOr<Hash> GetNode(NodeId id) const override {
    return LeafHash(std::to_string(id.level) + "/" + std::to_string(id.index));
  }
};

// ⌈log2(n)⌉ for n >= 1.
int CeilLog2(uint64_t n) { return n == 1 ? 0 : static_cast<int>(std::bit_width(n - 1)); }

// ---- Hash primitives ---------------------------------------------------------------

TEST(MerkleHashTest, EmptyRootIsSha256OfNothing) {
  EXPECT_EQ(HexOf(EmptyRoot()), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

TEST(MerkleHashTest, LeafAndNodeHashesArePrefixed) {
  EXPECT_EQ(Bytes(LeafHash("abc")), RefSha256(std::string("\x00", 1) + "abc"));
  const Hash left = LeafHash("l");
  const Hash right = LeafHash("r");
  EXPECT_EQ(Bytes(NodeHash(left, right)), RefSha256("\x01" + Bytes(left) + Bytes(right)));
  EXPECT_NE(NodeHash(left, right), NodeHash(right, left));
  // The leaf hash of the empty string, as pinned by RFC 6962 test vectors.
  EXPECT_EQ(HexOf(LeafHash("")),
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d");
}

TEST(MerkleHashTest, HexRoundTripAndRejects) {
  const Hash hash = LeafHash("x");
  EXPECT_THAT(HashFromHex(HexOf(hash)), IsOk());
  EXPECT_EQ(*HashFromHex(HexOf(hash)), hash);
  std::string upper = HexOf(hash);
  std::transform(upper.begin(), upper.end(), upper.begin(), ::toupper);
  EXPECT_EQ(*HashFromHex(upper), hash);
  EXPECT_THAT(HashFromHex(HexOf(hash).substr(1)),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("63 characters")));
  std::string bad = HexOf(hash);
  bad[10] = 'g';
  EXPECT_THAT(HashFromHex(bad),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("position 10")));
}

// ---- Known answers: the RFC 6962 test tree -------------------------------------------

// Roots of the first n leaves of the RFC 6962 test tree, n = 1..8. Computed once with the
// reference above, then pinned, so a change to both implementations is still caught.
const char* const kRfc6962Roots[] = {
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
};

TEST(MerkleKnownAnswerTest, Rfc6962TestTreeRoots) {
  const std::vector<std::string> leaves = Rfc6962Leaves();
  const auto tree = Build(leaves);
  for (size_t n = 1; n <= 8; ++n) {
    SCOPED_TRACE(n);
    EXPECT_EQ(Hex(RefMth(leaves, 0, n)), kRfc6962Roots[n - 1]);
    EXPECT_EQ(HexOf(tree->roots[n]), kRfc6962Roots[n - 1]);
    absl::StatusOr<Hash> root = RootAt(n, tree->store);
    ASSERT_THAT(root, IsOk());
    EXPECT_EQ(HexOf(*root), kRfc6962Roots[n - 1]);
  }
}

TEST(MerkleKnownAnswerTest, Rfc6962TestTreeProofs) {
  const std::vector<std::string> leaves = Rfc6962Leaves();
  const auto tree = Build(leaves);
  // Pinned from the reference: PATH(0, D[8]), PATH(5, D[8]), PROOF(1, D[8]), PROOF(6, D[8]).
  const std::vector<std::pair<std::tuple<uint64_t, uint64_t>, std::vector<std::string>>> inclusion =
      {
          {{0, 8},
           {"96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"}},
          {{5, 8},
           {"bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"}},
      };
  for (const auto& [args, expected] : inclusion) {
    const auto [index, size] = args;
    SCOPED_TRACE(index);
    std::vector<std::string> ref;
    for (const std::string& h : RefPath(index, leaves, 0, size)) ref.push_back(Hex(h));
    EXPECT_EQ(ref, expected);
    absl::StatusOr<std::vector<Hash>> proof = InclusionProof(index, size, tree->store);
    ASSERT_THAT(proof, IsOk());
    std::vector<std::string> got;
    for (const Hash& h : *proof) got.push_back(HexOf(h));
    EXPECT_EQ(got, expected);
  }
  const std::vector<std::pair<std::tuple<uint64_t, uint64_t>, std::vector<std::string>>>
      consistency = {
          {{1, 8},
           {"96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"}},
          {{6, 8},
           {"0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"}},
      };
  for (const auto& [args, expected] : consistency) {
    const auto [old_size, new_size] = args;
    SCOPED_TRACE(old_size);
    std::vector<std::string> ref;
    for (const std::string& h : RefProof(old_size, leaves, new_size)) ref.push_back(Hex(h));
    EXPECT_EQ(ref, expected);
    absl::StatusOr<std::vector<Hash>> proof = ConsistencyProof(old_size, new_size, tree->store);
    ASSERT_THAT(proof, IsOk());
    std::vector<std::string> got;
    for (const Hash& h : *proof) got.push_back(HexOf(h));
    EXPECT_EQ(got, expected);
  }
}

// ---- Against the reference, every size 1..70 ----------------------------------------

constexpr size_t kMaxSize = 70;

class MerkleReferenceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    leaves_ = TestLeaves(kMaxSize);
    tree_ = Build(leaves_);
  }
  std::vector<std::string> leaves_;
  std::unique_ptr<BuiltTree> tree_;
};

TEST_F(MerkleReferenceTest, RootsMatchForEverySize) {
  EXPECT_EQ(tree_->roots[0], EmptyRoot());
  EXPECT_THAT(RootAt(0, tree_->store), IsOk());
  for (size_t n = 1; n <= kMaxSize; ++n) {
    SCOPED_TRACE(n);
    const std::string expected = RefMth(leaves_, 0, n);
    EXPECT_EQ(Bytes(tree_->roots[n]), expected);
    CheckingReader reader(tree_->store, n);
    absl::StatusOr<Hash> root = RootAt(n, reader);
    ASSERT_THAT(root, IsOk());
    EXPECT_EQ(Bytes(*root), expected);
    EXPECT_EQ(reader.reads(), std::popcount(n));
  }
}

TEST_F(MerkleReferenceTest, InclusionProofsMatchAndVerifyForEveryIndex) {
  for (size_t n = 1; n <= kMaxSize; ++n) {
    for (size_t m = 0; m < n; ++m) {
      SCOPED_TRACE(::testing::Message() << "index " << m << " size " << n);
      CheckingReader reader(tree_->store, n);
      absl::StatusOr<std::vector<Hash>> proof = InclusionProof(m, n, reader);
      ASSERT_THAT(proof, IsOk());
      EXPECT_EQ(Bytes(*proof), RefPath(m, leaves_, 0, n));
      EXPECT_LE(reader.reads(), 2 * CeilLog2(n));
      EXPECT_THAT(VerifyInclusion(m, n, LeafHash(leaves_[m]), *proof, tree_->roots[n]), IsOk());
    }
  }
}

TEST_F(MerkleReferenceTest, ConsistencyProofsMatchAndVerifyForEveryOldSize) {
  for (size_t n = 1; n <= kMaxSize; ++n) {
    for (size_t m = 1; m <= n; ++m) {
      SCOPED_TRACE(::testing::Message() << "old " << m << " new " << n);
      CheckingReader reader(tree_->store, n);
      absl::StatusOr<std::vector<Hash>> proof = ConsistencyProof(m, n, reader);
      ASSERT_THAT(proof, IsOk());
      EXPECT_EQ(Bytes(*proof), RefProof(m, leaves_, n));
      EXPECT_LE(reader.reads(), 2 * CeilLog2(n));
      EXPECT_THAT(VerifyConsistency(m, n, tree_->roots[m], tree_->roots[n], *proof), IsOk());
    }
  }
}

// ---- Falsified proofs ----------------------------------------------------------------

Hash Flip(Hash hash, size_t byte = 0) {
  hash[byte] ^= 0x01;
  return hash;
}

TEST_F(MerkleReferenceTest, InclusionRejectsWrongSibling) {
  for (size_t n = 2; n <= kMaxSize; ++n) {
    for (size_t m = 0; m < n; ++m) {
      const std::vector<Hash> proof = *InclusionProof(m, n, tree_->store);
      for (size_t i = 0; i < proof.size(); ++i) {
        SCOPED_TRACE(::testing::Message() << "index " << m << " size " << n << " hash " << i);
        std::vector<Hash> forged = proof;
        forged[i] = Flip(forged[i], i % 32);
        EXPECT_THAT(VerifyInclusion(m, n, LeafHash(leaves_[m]), forged, tree_->roots[n]),
                    StatusIs(absl::StatusCode::kInvalidArgument,
                             HasSubstr("inclusion proof: computed root")));
      }
    }
  }
}

TEST_F(MerkleReferenceTest, InclusionRejectsWrongLeafAndWrongRoot) {
  const std::vector<Hash> proof = *InclusionProof(5, 12, tree_->store);
  EXPECT_THAT(VerifyInclusion(5, 12, LeafHash(leaves_[6]), proof, tree_->roots[12]),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("computed root")));
  EXPECT_THAT(VerifyInclusion(5, 12, LeafHash(leaves_[5]), proof, Flip(tree_->roots[12], 31)),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("does not match root")));
}

TEST_F(MerkleReferenceTest, InclusionRejectsWrongSize) {
  // A proof for one tree size presented with the (size, root) of another checkpoint.
  for (size_t n = 1; n <= 40; ++n) {
    for (size_t m = 0; m < n; ++m) {
      const std::vector<Hash> proof = *InclusionProof(m, n, tree_->store);
      for (size_t other = m + 1; other <= kMaxSize; ++other) {
        if (other == n) continue;
        SCOPED_TRACE(::testing::Message() << "index " << m << " size " << n << " as " << other);
        EXPECT_THAT(VerifyInclusion(m, other, LeafHash(leaves_[m]), proof, tree_->roots[other]),
                    StatusIs(absl::StatusCode::kInvalidArgument));
      }
    }
  }
}

TEST_F(MerkleReferenceTest, InclusionRejectsWrongIndex) {
  for (size_t n = 2; n <= kMaxSize; ++n) {
    for (size_t m = 0; m < n; ++m) {
      const std::vector<Hash> proof = *InclusionProof(m, n, tree_->store);
      for (size_t other = 0; other < n; ++other) {
        if (other == m) continue;
        SCOPED_TRACE(::testing::Message() << "index " << m << " as " << other << " size " << n);
        EXPECT_THAT(VerifyInclusion(other, n, LeafHash(leaves_[m]), proof, tree_->roots[n]),
                    StatusIs(absl::StatusCode::kInvalidArgument));
      }
    }
  }
}

TEST_F(MerkleReferenceTest, InclusionRejectsTruncatedAndExtendedPaths) {
  for (size_t n = 1; n <= kMaxSize; ++n) {
    for (size_t m = 0; m < n; ++m) {
      SCOPED_TRACE(::testing::Message() << "index " << m << " size " << n);
      const std::vector<Hash> proof = *InclusionProof(m, n, tree_->store);
      if (!proof.empty()) {
        std::vector<Hash> truncated(proof.begin(), proof.end() - 1);
        EXPECT_THAT(VerifyInclusion(m, n, LeafHash(leaves_[m]), truncated, tree_->roots[n]),
                    StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("hashes, expected")));
        std::vector<Hash> headless(proof.begin() + 1, proof.end());
        EXPECT_THAT(VerifyInclusion(m, n, LeafHash(leaves_[m]), headless, tree_->roots[n]),
                    StatusIs(absl::StatusCode::kInvalidArgument));
      }
      std::vector<Hash> extended = proof;
      extended.push_back(tree_->roots[n]);
      EXPECT_THAT(VerifyInclusion(m, n, LeafHash(leaves_[m]), extended, tree_->roots[n]),
                  StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("hashes, expected")));
    }
  }
}

TEST_F(MerkleReferenceTest, InclusionMessageNamesTheLengths) {
  std::vector<Hash> proof = *InclusionProof(5, 12, tree_->store);
  ASSERT_EQ(proof.size(), 4u);
  proof.pop_back();
  EXPECT_THAT(VerifyInclusion(5, 12, LeafHash(leaves_[5]), proof, tree_->roots[12]),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "inclusion proof: 3 hashes, expected 4 for index 5 in a tree of 12"));
  EXPECT_THAT(VerifyInclusion(12, 12, LeafHash(leaves_[5]), proof, tree_->roots[12]),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("index 12")));
}

TEST_F(MerkleReferenceTest, ConsistencyRejectsWrongHash) {
  for (size_t n = 2; n <= kMaxSize; ++n) {
    for (size_t m = 1; m < n; ++m) {
      const std::vector<Hash> proof = *ConsistencyProof(m, n, tree_->store);
      for (size_t i = 0; i < proof.size(); ++i) {
        SCOPED_TRACE(::testing::Message() << "old " << m << " new " << n << " hash " << i);
        std::vector<Hash> forged = proof;
        forged[i] = Flip(forged[i], (i * 7) % 32);
        EXPECT_THAT(VerifyConsistency(m, n, tree_->roots[m], tree_->roots[n], forged),
                    StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("computed")));
      }
    }
  }
}

TEST_F(MerkleReferenceTest, ConsistencyRejectsWrongSizesAndRoots) {
  for (size_t n = 2; n <= 40; ++n) {
    for (size_t m = 1; m < n; ++m) {
      const std::vector<Hash> proof = *ConsistencyProof(m, n, tree_->store);
      SCOPED_TRACE(::testing::Message() << "old " << m << " new " << n);
      for (size_t other = 1; other <= n; ++other) {
        if (other == m) continue;
        EXPECT_THAT(VerifyConsistency(other, n, tree_->roots[other], tree_->roots[n], proof),
                    StatusIs(absl::StatusCode::kInvalidArgument))
            << "as old size " << other;
      }
      for (size_t other = m; other <= kMaxSize; ++other) {
        if (other == n) continue;
        EXPECT_THAT(VerifyConsistency(m, other, tree_->roots[m], tree_->roots[other], proof),
                    StatusIs(absl::StatusCode::kInvalidArgument))
            << "as new size " << other;
      }
      EXPECT_THAT(VerifyConsistency(m, n, tree_->roots[m], Flip(tree_->roots[n]), proof),
                  StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("computed new root")));
      EXPECT_THAT(VerifyConsistency(m, n, Flip(tree_->roots[m]), tree_->roots[n], proof),
                  StatusIs(absl::StatusCode::kInvalidArgument));
      EXPECT_THAT(VerifyConsistency(n, m, tree_->roots[n], tree_->roots[m], proof),
                  StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("exceeds")));
    }
  }
}

TEST_F(MerkleReferenceTest, ConsistencyRejectsTruncatedAndExtendedProofs) {
  for (size_t n = 2; n <= kMaxSize; ++n) {
    for (size_t m = 1; m < n; ++m) {
      SCOPED_TRACE(::testing::Message() << "old " << m << " new " << n);
      const std::vector<Hash> proof = *ConsistencyProof(m, n, tree_->store);
      ASSERT_FALSE(proof.empty());
      std::vector<Hash> truncated(proof.begin(), proof.end() - 1);
      EXPECT_THAT(VerifyConsistency(m, n, tree_->roots[m], tree_->roots[n], truncated),
                  StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("hashes, expected")));
      std::vector<Hash> extended = proof;
      extended.push_back(tree_->roots[n]);
      EXPECT_THAT(VerifyConsistency(m, n, tree_->roots[m], tree_->roots[n], extended),
                  StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("hashes, expected")));
    }
  }
  // Equal sizes: only the empty proof, only equal roots.
  EXPECT_THAT(VerifyConsistency(9, 9, tree_->roots[9], tree_->roots[9], {}), IsOk());
  EXPECT_THAT(VerifyConsistency(9, 9, tree_->roots[9], tree_->roots[9], {tree_->roots[9]}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("expected 0")));
  EXPECT_THAT(VerifyConsistency(9, 9, tree_->roots[9], tree_->roots[8], {}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("differ")));
}

// The attack consistency proofs exist for: a log that forks after the old checkpoint. The
// forked tree shares the first m leaves, so the part of its proof that rebuilds the old
// root is genuine; the rest comes from the fork and must not reach the honest new root.
TEST_F(MerkleReferenceTest, ConsistencyRejectsForgedSecondPart) {
  for (size_t n = 2; n <= kMaxSize; ++n) {
    for (size_t m = 1; m < n; ++m) {
      SCOPED_TRACE(::testing::Message() << "old " << m << " new " << n);
      // The fork: the honest first m leaves, then different ones.
      std::vector<std::string> mixed = TestLeaves(n, "forked");
      std::copy(leaves_.begin(), leaves_.begin() + m, mixed.begin());
      const auto forked = Build(mixed);
      ASSERT_EQ(forked->roots[m], tree_->roots[m]);
      ASSERT_NE(forked->roots[n], tree_->roots[n]);
      const std::vector<Hash> forged = *ConsistencyProof(m, n, forked->store);
      // The forged proof is a valid proof of the fork...
      EXPECT_THAT(VerifyConsistency(m, n, tree_->roots[m], forked->roots[n], forged), IsOk());
      // ...and its old-root half is right, so it is the new root that gives it away.
      EXPECT_THAT(VerifyConsistency(m, n, tree_->roots[m], tree_->roots[n], forged),
                  StatusIs(absl::StatusCode::kInvalidArgument,
                           HasSubstr("consistency proof: computed new root")));
    }
  }
}

// ---- Arguments and reads -------------------------------------------------------------

TEST_F(MerkleReferenceTest, ProofArgumentsAreChecked) {
  EXPECT_THAT(InclusionProof(10, 10, tree_->store),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("index")));
  EXPECT_THAT(InclusionProof(0, 0, tree_->store),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("index")));
  EXPECT_THAT(ConsistencyProof(0, 10, tree_->store),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("old_size")));
  EXPECT_THAT(ConsistencyProof(11, 10, tree_->store),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("old_size")));
  EXPECT_THAT(ConsistencyProof(10, 10, tree_->store), IsOk());
  EXPECT_TRUE(ConsistencyProof(10, 10, tree_->store)->empty());
  EXPECT_THAT(VerifyConsistency(0, 10, EmptyRoot(), tree_->roots[10], {}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("old_size")));
}

TEST(MerkleProofTest, ReaderErrorsArePassedThroughNamingTheNode) {
  MemoryNodeStore empty;
  EXPECT_THAT(InclusionProof(3, 5, empty),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("reading merkle node (level")));
  EXPECT_THAT(ConsistencyProof(3, 5, empty), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(RootAt(5, empty), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(MerkleFrontier::FromNodes(5, empty), StatusIs(absl::StatusCode::kNotFound));
}

TEST(MerkleProofTest, HugeTreesReadFewNodesAllInsideTheTree) {
  SyntheticReader synthetic;
  const uint64_t sizes[] = {(uint64_t{1} << 40) + 12345, (uint64_t{1} << 63) + 1, UINT64_MAX - 1,
                            UINT64_MAX};
  for (uint64_t size : sizes) {
    SCOPED_TRACE(size);
    CheckingReader reader(synthetic, size);
    ASSERT_THAT(RootAt(size, reader), IsOk());
    EXPECT_EQ(reader.reads(), std::popcount(size));
    for (uint64_t index : {uint64_t{0}, size / 3, size - 2, size - 1}) {
      reader.set_limit(size);
      absl::StatusOr<std::vector<Hash>> path = InclusionProof(index, size, reader);
      ASSERT_THAT(path, IsOk());
      EXPECT_LE(reader.reads(), 2 * CeilLog2(size));
      EXPECT_LE(path->size(), 64u);
      reader.set_limit(size);
      ASSERT_THAT(ConsistencyProof(index + 1, size, reader), IsOk());
      EXPECT_LE(reader.reads(), 2 * CeilLog2(size));
    }
  }
}

// ---- MerkleFrontier ------------------------------------------------------------------

TEST(MerkleFrontierTest, OnCompleteEmitsExactlyThePerfectNodes) {
  const std::vector<std::string> leaves = TestLeaves(kMaxSize);
  MerkleFrontier frontier;
  std::set<std::pair<uint32_t, uint64_t>> all;
  for (uint64_t i = 0; i < leaves.size(); ++i) {
    std::vector<std::pair<NodeId, Hash>> emitted;
    frontier.Append(LeafHash(leaves[i]),
                    [&](NodeId id, const Hash& hash) { emitted.emplace_back(id, hash); });
    // Leaf i completes (0, i) and every (l, ((i + 1) >> l) - 1) with 2^l dividing i + 1.
    std::vector<NodeId> expected;
    for (uint32_t level = 0; level < 64 && (i + 1) % (uint64_t{1} << level) == 0; ++level) {
      expected.push_back({level, ((i + 1) >> level) - 1});
    }
    ASSERT_EQ(emitted.size(), expected.size()) << "leaf " << i;
    for (size_t j = 0; j < expected.size(); ++j) {
      EXPECT_EQ(emitted[j].first, expected[j]) << "leaf " << i << " node " << j;
      const uint64_t begin = expected[j].index << expected[j].level;
      const uint64_t end = (expected[j].index + 1) << expected[j].level;
      EXPECT_EQ(Bytes(emitted[j].second), RefMth(leaves, begin, end));
      EXPECT_TRUE(all.insert({expected[j].level, expected[j].index}).second);
    }
  }
  // Over the whole run: every perfect node inside the tree, once.
  size_t perfect = 0;
  for (uint32_t level = 0; (uint64_t{1} << level) <= kMaxSize; ++level) {
    perfect += kMaxSize >> level;
  }
  EXPECT_EQ(all.size(), perfect);
}

TEST(MerkleFrontierTest, EmptyCallbackIsAllowed) {
  MerkleFrontier frontier;
  frontier.Append(LeafHash("a"), nullptr);
  frontier.Append(LeafHash("b"), {});
  EXPECT_EQ(frontier.size(), 2u);
  EXPECT_EQ(frontier.Root(), NodeHash(LeafHash("a"), LeafHash("b")));
}

TEST(MerkleFrontierTest, SerializeParseMidwayThenContinueGivesSameRoots) {
  const std::vector<std::string> leaves = TestLeaves(kMaxSize);
  const auto reference = Build(leaves);
  for (size_t stop = 0; stop <= kMaxSize; ++stop) {
    SCOPED_TRACE(stop);
    MerkleFrontier first;
    for (size_t i = 0; i < stop; ++i) first.Append(LeafHash(leaves[i]), nullptr);
    const std::string bytes = first.Serialize();
    EXPECT_EQ(bytes.size(), 9 + 32 * static_cast<size_t>(std::popcount(stop)));
    absl::StatusOr<MerkleFrontier> resumed = MerkleFrontier::Parse(bytes);
    ASSERT_THAT(resumed, IsOk());
    EXPECT_EQ(resumed->size(), stop);
    EXPECT_EQ(resumed->Root(), reference->roots[stop]);
    for (size_t i = stop; i < kMaxSize; ++i) {
      resumed->Append(LeafHash(leaves[i]), nullptr);
      ASSERT_EQ(resumed->Root(), reference->roots[i + 1]) << "after leaf " << i;
    }
    // Rebuilding from stored nodes gives the same frontier.
    absl::StatusOr<MerkleFrontier> rebuilt = MerkleFrontier::FromNodes(stop, reference->store);
    ASSERT_THAT(rebuilt, IsOk());
    EXPECT_EQ(rebuilt->Serialize(), bytes);
  }
}

TEST(MerkleFrontierTest, SerializedFormIsPinned) {
  MerkleFrontier frontier;
  for (const std::string& leaf : Rfc6962Leaves()) frontier.Append(LeafHash(leaf), nullptr);
  // Eight leaves: version, size 8 big endian, then the single perfect subtree (the root).
  EXPECT_EQ(Hex(frontier.Serialize()), std::string("01") + "0000000000000008" + kRfc6962Roots[7]);
}

TEST(MerkleFrontierTest, ParseRejectsMalformedBytes) {
  MerkleFrontier frontier;
  for (int i = 0; i < 5; ++i) frontier.Append(LeafHash(std::to_string(i)), nullptr);
  const std::string good = frontier.Serialize();  // size 5: two subtrees
  EXPECT_THAT(MerkleFrontier::Parse(""),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("header")));
  EXPECT_THAT(MerkleFrontier::Parse(good.substr(0, good.size() - 1)),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("expected 73")));
  EXPECT_THAT(MerkleFrontier::Parse(good + "x"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("expected 73")));
  std::string wrong_version = good;
  wrong_version[0] = 0x02;
  EXPECT_THAT(MerkleFrontier::Parse(wrong_version),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("version 2")));
  std::string wrong_size = good;
  wrong_size[8] = 0x07;  // three subtrees claimed, two present
  EXPECT_THAT(MerkleFrontier::Parse(wrong_size),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("tree of 7")));
}

TEST(MemoryNodeStoreTest, StoresWhatItIsGiven) {
  MemoryNodeStore store;
  EXPECT_THAT(store.GetNode({0, 0}), StatusIs(absl::StatusCode::kNotFound));
  store.Put({3, 7}, LeafHash("x"));
  EXPECT_EQ(*store.GetNode({3, 7}), LeafHash("x"));
  EXPECT_THAT(store.GetNode({3, 6}), StatusIs(absl::StatusCode::kNotFound));
  store.Put({3, 7}, LeafHash("y"));
  EXPECT_EQ(*store.GetNode({3, 7}), LeafHash("y"));
  EXPECT_EQ(store.node_count(), 1u);
}

}  // namespace
}  // namespace corridor::broker::audit
