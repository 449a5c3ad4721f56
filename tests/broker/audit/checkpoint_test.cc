#include "broker/audit/checkpoint.h"

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <sys/stat.h>

#include <atomic>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "broker/audit/merkle.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace corridor::broker::audit {
namespace {

using ::corridor::testing::IsOk;
using ::corridor::testing::StatusIs;
using ::testing::HasSubstr;

constexpr char kEmDash[] = "\xE2\x80\x94";

std::string DecodeBase64(const std::string& text) {
  std::string out(text.size() / 4 * 3, '\0');
  const int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(text.data()),
                                static_cast<int>(text.size()));
  EXPECT_GE(n, 0);
  size_t padding = 0;
  while (padding < text.size() && text[text.size() - 1 - padding] == '=') ++padding;
  out.resize(out.size() - padding);
  return out;
}

std::string EncodeBase64(const std::string& bytes) {
  std::string out(4 * ((bytes.size() + 2) / 3) + 1, '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(bytes.data()),
                                static_cast<int>(bytes.size()));
  out.resize(static_cast<size_t>(n));
  return out;
}

Hash CountingHash() {
  Hash hash;
  for (size_t i = 0; i < hash.size(); ++i) hash[i] = static_cast<uint8_t>(i);
  return hash;
}

Checkpoint SampleCheckpoint() {
  return Checkpoint{"corridor.example/audit", 12, CountingHash(), {}};
}

class TempDir {
 public:
  TempDir() {
    std::string pattern =
        (std::filesystem::temp_directory_path() / "corridor-audit-test-XXXXXX").string();
    path_ = mkdtemp(pattern.data());
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

// ---- Checkpoint body -----------------------------------------------------------------

TEST(CheckpointBodyTest, FormatsTheC2spBody) {
  EXPECT_EQ(CheckpointBody(SampleCheckpoint()),
            "corridor.example/audit\n12\nAAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n");
  Checkpoint with_extensions = SampleCheckpoint();
  with_extensions.extensions = {"ext one", "ext-two"};
  EXPECT_EQ(CheckpointBody(with_extensions),
            "corridor.example/audit\n12\nAAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n"
            "ext one\next-two\n");
}

TEST(CheckpointBodyTest, RoundTrips) {
  Checkpoint checkpoint = SampleCheckpoint();
  checkpoint.extensions = {"x", "y y"};
  absl::StatusOr<Checkpoint> parsed = ParseCheckpointBody(CheckpointBody(checkpoint));
  ASSERT_THAT(parsed, IsOk());
  EXPECT_EQ(*parsed, checkpoint);
  Checkpoint empty{"o", 0, EmptyRoot(), {}};
  EXPECT_EQ(*ParseCheckpointBody(CheckpointBody(empty)), empty);
  Checkpoint largest{"o", UINT64_MAX, EmptyRoot(), {}};
  EXPECT_EQ(*ParseCheckpointBody(CheckpointBody(largest)), largest);
}

TEST(CheckpointBodyTest, ParsesTheSpecExample) {
  absl::StatusOr<Checkpoint> parsed = ParseCheckpointBody(
      "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n");
  ASSERT_THAT(parsed, IsOk());
  EXPECT_EQ(parsed->origin, "example.com/behind-the-sofa");
  EXPECT_EQ(parsed->size, 20852163u);
  EXPECT_EQ(HexOf(parsed->root).substr(0, 8), "0ac5186a");
}

TEST(CheckpointBodyTest, RejectsMalformedBodies) {
  const std::string root = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
  const struct {
    std::string body;
    std::string message;
  } cases[] = {
      {"o\n12\n" + root, "newline"},
      {"o\n12\n", "2 lines"},
      {"\n12\n" + root + "\n", "line 1 is empty"},
      {"o\n\n" + root + "\n", "line 2 is empty"},
      {"o\n012\n" + root + "\n", "line 2"},
      {"o\n+12\n" + root + "\n", "line 2"},
      {"o\n-1\n" + root + "\n", "line 2"},
      {"o\n 12\n" + root + "\n", "line 2"},
      {"o\n18446744073709551616\n" + root + "\n", "overflows"},
      {"o\n12\nAAEC\n", "line 3"},
      {"o\n12\n" + root.substr(0, 43) + "\n", "line 3"},
      {"o\n12\n" + root + "\n\n", "line 4 is empty"},
      {"o\tx\n12\n" + root + "\n", "line 1: control character"},
      {"o\xff\n12\n" + root + "\n", "line 1: not valid UTF-8"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.body);
    EXPECT_THAT(ParseCheckpointBody(c.body),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(c.message)));
  }
}

TEST(CheckpointBodyTest, ValidateNamesTheField) {
  EXPECT_THAT(ValidateCheckpoint(SampleCheckpoint()), IsOk());
  Checkpoint bad = SampleCheckpoint();
  bad.origin = "";
  EXPECT_THAT(ValidateCheckpoint(bad),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("origin")));
  bad.origin = "two\nlines";
  EXPECT_THAT(ValidateCheckpoint(bad),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("origin")));
  bad = SampleCheckpoint();
  bad.extensions = {"ok", ""};
  EXPECT_THAT(ValidateCheckpoint(bad),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("extension 1")));
}

// ---- Signing and verifying -----------------------------------------------------------

class SignedNoteTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<Ed25519Signer> signer = Ed25519Signer::Generate("corridor.example/audit");
    ASSERT_THAT(signer, IsOk());
    signer_.emplace(*std::move(signer));
    body_ = CheckpointBody(SampleCheckpoint());
    note_ = signer_->SignNote(body_);
  }
  std::optional<Ed25519Signer> signer_;
  std::string body_;
  std::string note_;
};

TEST_F(SignedNoteTest, NoteHasTheSignedNoteShape) {
  ASSERT_EQ(note_.substr(0, body_.size()), body_);
  const std::string rest = note_.substr(body_.size());
  // "\n— <name> <base64 of 68 bytes>\n"
  const std::string prefix = std::string("\n") + kEmDash + " corridor.example/audit ";
  ASSERT_EQ(rest.substr(0, prefix.size()), prefix);
  ASSERT_EQ(rest.back(), '\n');
  const std::string blob =
      DecodeBase64(rest.substr(prefix.size(), rest.size() - prefix.size() - 1));
  ASSERT_EQ(blob.size(), 68u);
  const uint32_t key_id = uint32_t{static_cast<uint8_t>(blob[0])} << 24 |
                          uint32_t{static_cast<uint8_t>(blob[1])} << 16 |
                          uint32_t{static_cast<uint8_t>(blob[2])} << 8 |
                          uint32_t{static_cast<uint8_t>(blob[3])};
  EXPECT_EQ(key_id, signer_->key_id());
  EXPECT_EQ(blob.substr(4), signer_->Sign(body_));  // Ed25519 is deterministic
}

TEST_F(SignedNoteTest, RoundTrips) {
  absl::StatusOr<Checkpoint> checkpoint = VerifyCheckpointNote(note_, signer_->VerifierKey());
  ASSERT_THAT(checkpoint, IsOk());
  EXPECT_EQ(*checkpoint, SampleCheckpoint());
  EXPECT_THAT(VerifyNote(note_, signer_->VerifierKey()), IsOk());
  EXPECT_EQ(*VerifyNote(note_, signer_->VerifierKey()), body_);
}

TEST_F(SignedNoteTest, VerifierKeyFormatAndKeyId) {
  const std::string vkey = signer_->VerifierKey();
  std::smatch match;
  ASSERT_TRUE(std::regex_match(
      vkey, match, std::regex(R"(corridor\.example/audit\+([0-9a-f]{8})\+([A-Za-z0-9+/]{44}))")))
      << vkey;
  const std::string typed_key = DecodeBase64(match[2]);
  ASSERT_EQ(typed_key.size(), 33u);
  EXPECT_EQ(typed_key[0], '\x01');
  EXPECT_EQ(typed_key.substr(1),
            std::string(reinterpret_cast<const char*>(signer_->public_key().data()), 32));
  // key id = SHA-256(name || "\n" || 0x01 || public key)[:4], computed independently.
  const std::string preimage = "corridor.example/audit\n" + typed_key;
  unsigned char digest[32];
  unsigned int length = 0;
  ASSERT_EQ(EVP_Digest(preimage.data(), preimage.size(), digest, &length, EVP_sha256(), nullptr),
            1);
  char hex[9];
  std::snprintf(hex, sizeof(hex), "%02x%02x%02x%02x", digest[0], digest[1], digest[2], digest[3]);
  EXPECT_EQ(match[1].str(), hex);
}

TEST_F(SignedNoteTest, FlippedBodyByteFails) {
  for (size_t i = 0; i < body_.size(); ++i) {
    std::string tampered = note_;
    tampered[i] ^= 0x01;
    SCOPED_TRACE(i);
    EXPECT_FALSE(VerifyCheckpointNote(tampered, signer_->VerifierKey()).ok());
  }
  // A change that keeps the note well-formed is caught by the signature itself.
  std::string tampered = note_;
  tampered[body_.find("12")] = '3';
  EXPECT_THAT(VerifyCheckpointNote(tampered, signer_->VerifierKey()),
              StatusIs(absl::StatusCode::kPermissionDenied, HasSubstr("bad signature")));
}

TEST_F(SignedNoteTest, FlippedSignatureByteFails) {
  const size_t sig_start = note_.rfind(' ') + 1;
  for (size_t i = sig_start; i + 1 < note_.size(); ++i) {
    std::string tampered = note_;
    tampered[i] ^= 0x01;
    SCOPED_TRACE(i);
    EXPECT_FALSE(VerifyCheckpointNote(tampered, signer_->VerifierKey()).ok());
  }
  // Flip one bit of the Ed25519 signature, keeping the base64 canonical.
  const std::string encoded = note_.substr(sig_start, note_.size() - sig_start - 1);
  std::string blob = DecodeBase64(encoded);
  blob[20] ^= 0x40;
  const std::string tampered = note_.substr(0, sig_start) + EncodeBase64(blob) + "\n";
  EXPECT_THAT(VerifyCheckpointNote(tampered, signer_->VerifierKey()),
              StatusIs(absl::StatusCode::kPermissionDenied,
                       HasSubstr("bad signature by key corridor.example/audit+")));
}

TEST_F(SignedNoteTest, NoteSignedByAnotherKeyFails) {
  // Same name, different key: the key id differs, so the signature is from an unknown key.
  absl::StatusOr<Ed25519Signer> impostor = Ed25519Signer::Generate("corridor.example/audit");
  ASSERT_THAT(impostor, IsOk());
  ASSERT_NE(impostor->key_id(), signer_->key_id());
  EXPECT_THAT(VerifyCheckpointNote(impostor->SignNote(body_), signer_->VerifierKey()),
              StatusIs(absl::StatusCode::kPermissionDenied,
                       HasSubstr("signed only by unknown keys: corridor.example/audit+")));
  absl::StatusOr<Ed25519Signer> other = Ed25519Signer::Generate("other.example/log");
  ASSERT_THAT(other, IsOk());
  EXPECT_THAT(
      VerifyCheckpointNote(other->SignNote(body_), signer_->VerifierKey()),
      StatusIs(absl::StatusCode::kPermissionDenied, HasSubstr("unknown keys: other.example/log+")));
  // An impostor line that claims our name and key id but carries its own signature.
  std::string forged = impostor->SignNote(body_);
  const std::string our_line = note_.substr(body_.size() + 1);
  const std::string their_line = forged.substr(body_.size() + 1);
  std::string their_blob = DecodeBase64(
      their_line.substr(their_line.rfind(' ') + 1, their_line.size() - their_line.rfind(' ') - 2));
  const std::string our_blob = DecodeBase64(
      our_line.substr(our_line.rfind(' ') + 1, our_line.size() - our_line.rfind(' ') - 2));
  their_blob.replace(0, 4, our_blob.substr(0, 4));
  forged = body_ + "\n" + kEmDash + " corridor.example/audit " + EncodeBase64(their_blob) + "\n";
  EXPECT_THAT(VerifyCheckpointNote(forged, signer_->VerifierKey()),
              StatusIs(absl::StatusCode::kPermissionDenied, HasSubstr("bad signature")));
}

TEST_F(SignedNoteTest, RightKeyIdUnderAnotherNameIsAnUnknownKey) {
  // The key is the (name, key id) pair: our valid signature relabelled with another name
  // is a signature by an unknown key, so the note is not verified.
  std::string relabelled = note_;
  const size_t name_at = relabelled.find("corridor.example/audit ", body_.size());
  ASSERT_NE(name_at, std::string::npos);
  relabelled.replace(name_at, std::string("corridor.example/audit").size(),
                     "corridor.example/other");
  EXPECT_THAT(VerifyCheckpointNote(relabelled, signer_->VerifierKey()),
              StatusIs(absl::StatusCode::kPermissionDenied,
                       HasSubstr("signed only by unknown keys: corridor.example/other+")));
}

TEST_F(SignedNoteTest, TextMayContainBlankLines) {
  // C2SP signed-note: the text ends at the last blank line of the note.
  const std::string text = "first\n\nthird\n\n\nsixth\n";
  absl::StatusOr<std::string> verified =
      VerifyNote(signer_->SignNote(text), signer_->VerifierKey());
  ASSERT_THAT(verified, IsOk());
  EXPECT_EQ(*verified, text);
}

TEST_F(SignedNoteTest, NonCanonicalBase64IsRejected) {
  // 68 bytes encode to 91 characters and one '='; the last character carries 4 data bits
  // and 2 zero bits. Setting a zero bit decodes to the same bytes but is not canonical.
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string tampered = note_;
  const size_t last = tampered.size() - 3;  // before "=\n"
  ASSERT_EQ(tampered[last + 1], '=');
  const size_t value = std::string(kAlphabet).find(tampered[last]);
  ASSERT_EQ(value & 3, 0u);
  tampered[last] = kAlphabet[value | 1];
  EXPECT_EQ(DecodeBase64(tampered.substr(tampered.rfind(' ') + 1, 92)),
            DecodeBase64(note_.substr(note_.rfind(' ') + 1, 92)));
  EXPECT_THAT(VerifyNote(tampered, signer_->VerifierKey()),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("not valid base64")));
}

TEST_F(SignedNoteTest, ExtraSignaturesFromOtherKeysAreIgnored) {
  absl::StatusOr<Ed25519Signer> witness = Ed25519Signer::Generate("witness.example/w1");
  ASSERT_THAT(witness, IsOk());
  const std::string witness_line = witness->SignNote(body_).substr(body_.size() + 1);
  const std::string cosigned = note_ + witness_line;
  EXPECT_THAT(VerifyCheckpointNote(cosigned, signer_->VerifierKey()), IsOk());
  EXPECT_THAT(VerifyCheckpointNote(cosigned, witness->VerifierKey()), IsOk());
}

TEST_F(SignedNoteTest, MalformedNotesNameTheProblem) {
  const std::string vkey = signer_->VerifierKey();
  EXPECT_THAT(VerifyNote(body_, vkey),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("no blank line")));
  EXPECT_THAT(VerifyNote(note_.substr(0, note_.size() - 1), vkey),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("newline")));
  EXPECT_THAT(VerifyNote(body_ + "\n", vkey), StatusIs(absl::StatusCode::kInvalidArgument));
  // Line 5 is the signature line (3 body lines, a blank line).
  std::string dashless = note_;
  dashless.replace(body_.size() + 1, 3, "--");
  EXPECT_THAT(VerifyNote(dashless, vkey),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("malformed line 5")));
  EXPECT_THAT(VerifyNote(note_ + "junk\n", vkey),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("malformed line 6")));
  std::string bad_base64 = note_;
  bad_base64[bad_base64.size() - 3] = '*';
  EXPECT_THAT(VerifyNote(bad_base64, vkey),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("malformed line 5: signature is not valid base64")));
  std::string control = note_;
  control[2] = '\r';
  EXPECT_THAT(VerifyNote(control, vkey),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("malformed line 1")));
  std::string many = note_;
  const std::string line = note_.substr(body_.size() + 1);
  for (int i = 0; i < 100; ++i) many += line;
  EXPECT_THAT(VerifyNote(many, vkey),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("over the limit")));
}

TEST_F(SignedNoteTest, MalformedVerifierKeysAreRejected) {
  const std::string vkey = signer_->VerifierKey();
  const size_t plus1 = vkey.find('+');
  const std::vector<std::string> bad_keys = {
      "",
      "nameonly",
      vkey.substr(0, plus1) + "+zzzzzzzz" + vkey.substr(plus1 + 9),  // hex
      vkey.substr(0, plus1) + "+0000000" + vkey.substr(plus1 + 9),   // 7 digits
      vkey.substr(0, vkey.size() - 6) + (vkey[vkey.size() - 6] == 'Q' ? "R" : "Q") +
          vkey.substr(vkey.size() - 5),            // another key under the same key id
      vkey.substr(0, vkey.size() - 4),             // short base64
      "other.example/audit" + vkey.substr(plus1),  // name not in key id
      vkey.substr(0, plus1 + 10) + "Ag" + vkey.substr(plus1 + 12),  // type 0x02
  };
  for (const std::string& bad : bad_keys) {
    SCOPED_TRACE(bad);
    EXPECT_THAT(VerifyNote(note_, bad),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("verifier key")));
  }
}

TEST_F(SignedNoteTest, ConcurrentSigningIsSafe) {
  std::atomic<int> good{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 50; ++i) {
        Checkpoint checkpoint = SampleCheckpoint();
        checkpoint.size = static_cast<uint64_t>(t * 1000 + i);
        const std::string note = signer_->SignNote(CheckpointBody(checkpoint));
        absl::StatusOr<Checkpoint> verified = VerifyCheckpointNote(note, signer_->VerifierKey());
        if (verified.ok() && verified->size == checkpoint.size) ++good;
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(good.load(), 200);
}

TEST(SignerDeathTest, SignNoteRejectsInvalidBodies) {
  absl::StatusOr<Ed25519Signer> signer = Ed25519Signer::Generate("k");
  ASSERT_THAT(signer, IsOk());
  EXPECT_DEATH(signer->SignNote("no newline"), "must end with a newline");
  EXPECT_DEATH(signer->SignNote("tab\there\n"), "control characters");
}

TEST(SignerTest, RejectsInvalidKeyNames) {
  for (const std::string name : {"", "has space", "has+plus", "tab\t", "nbsp\xC2\xA0",
                                 "em\xE2\x80\x83space", "bad\xFFutf8"}) {
    SCOPED_TRACE(name);
    EXPECT_THAT(Ed25519Signer::Generate(name),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("key_name")));
  }
  EXPECT_THAT(Ed25519Signer::Generate("ünïcode.example/log"), IsOk());
}

// Interoperability with Go's golang.org/x/mod/sumdb/note (the reference implementation of
// signed notes): its documented example key and note, as published test data.
TEST(SignerTest, MatchesTheGoSumdbNoteExample) {
  const std::string vkey = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
  const std::string text =
      "If you think cryptography is the answer to your problem,\n"
      "then you don't know what your problem is.\n";
  const std::string note =
      text + "\n" + kEmDash +
      " PeterNeumann "
      "x08go/ZJkuBS9UG/"
      "SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n";
  absl::StatusOr<std::string> verified = VerifyNote(note, vkey);
  ASSERT_THAT(verified, IsOk());
  EXPECT_EQ(*verified, text);
  // The private key "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALV...": 0x01 || seed.
  const std::string seed = DecodeBase64("AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz").substr(1);
  absl::StatusOr<Ed25519Signer> signer = Ed25519Signer::FromSeed(seed, "PeterNeumann");
  ASSERT_THAT(signer, IsOk());
  EXPECT_EQ(signer->VerifierKey(), vkey);
  EXPECT_EQ(signer->SignNote(text), note);
  EXPECT_THAT(Ed25519Signer::FromSeed("short", "PeterNeumann"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("seed")));
}

// ---- Key files -----------------------------------------------------------------------

TEST(SignerKeyFileTest, CreatesA0600FileAndLoadsTheSameKeyAgain) {
  TempDir dir;
  const std::filesystem::path path = dir.path() / "audit-key.pem";
  absl::StatusOr<Ed25519Signer> created = Ed25519Signer::LoadOrCreate(path, "corridor/audit");
  ASSERT_THAT(created, IsOk());
  struct stat st;
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_TRUE(S_ISREG(st.st_mode));
  EXPECT_EQ(st.st_mode & 0777, 0600);
  std::ifstream in(path);
  std::string first_line;
  std::getline(in, first_line);
  EXPECT_EQ(first_line, "-----BEGIN PRIVATE KEY-----");
  // Only the key file is left behind (no temporary files).
  EXPECT_EQ(std::distance(std::filesystem::directory_iterator(dir.path()),
                          std::filesystem::directory_iterator()),
            1);

  absl::StatusOr<Ed25519Signer> loaded = Ed25519Signer::LoadOrCreate(path, "corridor/audit");
  ASSERT_THAT(loaded, IsOk());
  EXPECT_EQ(loaded->VerifierKey(), created->VerifierKey());
  const std::string body = CheckpointBody({"corridor/audit", 1, LeafHash("x"), {}});
  EXPECT_THAT(VerifyCheckpointNote(created->SignNote(body), loaded->VerifierKey()), IsOk());
  EXPECT_THAT(VerifyCheckpointNote(loaded->SignNote(body), created->VerifierKey()), IsOk());
}

TEST(SignerKeyFileTest, RejectsFilesThatAreNotEd25519Keys) {
  TempDir dir;
  const std::filesystem::path garbage = dir.path() / "garbage.pem";
  std::ofstream(garbage) << "not a key\n";
  EXPECT_THAT(Ed25519Signer::LoadOrCreate(garbage, "k"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("not an unencrypted PEM")));

  EVP_PKEY* ec = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256");
  ASSERT_NE(ec, nullptr);
  const std::filesystem::path ec_path = dir.path() / "ec.pem";
  FILE* file = std::fopen(ec_path.c_str(), "w");
  ASSERT_NE(file, nullptr);
  ASSERT_EQ(PEM_write_PrivateKey(file, ec, nullptr, nullptr, 0, nullptr, nullptr), 1);
  std::fclose(file);
  EVP_PKEY_free(ec);
  EXPECT_THAT(Ed25519Signer::LoadOrCreate(ec_path, "k"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("not an Ed25519 key")));
}

TEST(SignerKeyFileTest, ReportsAMissingDirectory) {
  TempDir dir;
  EXPECT_THAT(Ed25519Signer::LoadOrCreate(dir.path() / "missing" / "key.pem", "k"),
              StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(Ed25519Signer::LoadOrCreate(dir.path() / "key.pem", "bad name"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("key_name")));
  EXPECT_FALSE(std::filesystem::exists(dir.path() / "key.pem"));
}

TEST(SignerKeyFileTest, ConcurrentCreatorsAgreeOnOneKey) {
  TempDir dir;
  const std::filesystem::path path = dir.path() / "key.pem";
  std::vector<std::string> vkeys(4);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      absl::StatusOr<Ed25519Signer> signer = Ed25519Signer::LoadOrCreate(path, "k");
      if (signer.ok()) vkeys[t] = signer->VerifierKey();
    });
  }
  for (std::thread& thread : threads) thread.join();
  absl::StatusOr<Ed25519Signer> final_signer = Ed25519Signer::LoadOrCreate(path, "k");
  ASSERT_THAT(final_signer, IsOk());
  for (const std::string& vkey : vkeys) EXPECT_EQ(vkey, final_signer->VerifierKey());
}

}  // namespace
}  // namespace corridor::broker::audit
