// corridor::IsValidUtf8 and its use as protobuf's UTF-8 validator
// (common/protobuf_utf8.cc, linked into every test binary as into corridord):
// it must accept exactly what protobuf 3.21's own validator accepts, which
// this test loads from libprotobuf itself and compares on every string of up
// to 3 bytes, every continuation of every partial sequence, and random text.
#include "common/utf8.h"

#include <dlfcn.h>

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "common/protobuf_utf8.h"
#include "google/protobuf/stubs/common.h"
#include "google/protobuf/wrappers.pb.h"
#include "gtest/gtest.h"

namespace corridor {
namespace {

using Validator = bool (*)(const char*, int);
constexpr char kSymbol[] = "_ZN6google8protobuf8internal23IsStructurallyValidUTF8EPKci";

// libprotobuf's own definition of the function this project replaces.
Validator ProtobufsOwn() {
  Dl_info info{};
  // A libprotobuf function nobody replaces, to find the library's file.
  if (dladdr(reinterpret_cast<void*>(&google::protobuf::internal::UTF8SpnStructurallyValid),
             &info) == 0 ||
      info.dli_fname == nullptr) {
    return nullptr;
  }
  void* lib = dlopen(info.dli_fname, RTLD_LAZY | RTLD_NOLOAD);
  if (lib == nullptr) return nullptr;
  return reinterpret_cast<Validator>(dlsym(lib, kSymbol));
}

bool Ours(const std::string& s) { return IsValidUtf8(s); }

class Utf8 : public testing::Test {
 protected:
  void SetUp() override {
    original_ = ProtobufsOwn();
    ASSERT_NE(original_, nullptr) << "libprotobuf's IsStructurallyValidUTF8 not found";
  }
  bool Theirs(const std::string& s) const {
    return original_(s.data(), static_cast<int>(s.size()));
  }
  Validator original_ = nullptr;
};

TEST_F(Utf8, ProtobufsCallsReachThisValidator) {
  // The dynamic linker binds libprotobuf's PLT calls (its serialize checks)
  // and the generated code's parse checks to the executable's definition.
  void* bound = dlsym(RTLD_DEFAULT, kSymbol);
  ASSERT_NE(bound, nullptr);
  EXPECT_EQ(bound, reinterpret_cast<void*>(static_cast<Validator>(
                       &google::protobuf::internal::IsStructurallyValidUTF8)));
  EXPECT_NE(bound, reinterpret_cast<void*>(original_)) << "protobuf's own scanner is still in use";
  // And libprotobuf's own code calls it (not bound inside the library, as a
  // -Bsymbolic build would be): StringValue's code is compiled into
  // libprotobuf, its parse and serialize checks are libprotobuf's.
  google::protobuf::StringValue v;
  v.set_value("\xe8\x88\xb9\xe5\x8f\xaa");
  uint64_t before = ProtobufUtf8ChecksOnThisThread();
  const std::string bytes = v.SerializeAsString();
  EXPECT_GT(ProtobufUtf8ChecksOnThisThread(), before) << "serialize did not call it";
  before = ProtobufUtf8ChecksOnThisThread();
  ASSERT_TRUE(v.ParseFromString(bytes));
  EXPECT_GT(ProtobufUtf8ChecksOnThisThread(), before) << "parse did not call it";
}

TEST_F(Utf8, NamedCases) {
  struct Case {
    const char* what;
    std::string text;
    bool valid;
  };
  const std::vector<Case> cases = {
      {"empty", "", true},
      {"ASCII", "Vessel 0417 seen at pier 3", true},
      {"NUL", std::string("a\0b", 3), true},
      {"Chinese", "\xe8\x88\xb9\xe5\x8f\xaa", true},  // 船只
      {"4-byte", "\xf0\x9f\x9a\xa2", true},           // U+1F6A2
      {"U+10FFFF", "\xf4\x8f\xbf\xbf", true},
      {"above U+10FFFF", "\xf4\x90\x80\x80", false},
      {"lead F5", "\xf5\x80\x80\x80", false},
      {"overlong 2-byte", "\xc0\xaf", false},
      {"overlong C1", "\xc1\xbf", false},
      {"overlong 3-byte", "\xe0\x9f\xbf", false},
      {"overlong 4-byte", "\xf0\x8f\xbf\xbf", false},
      {"surrogate D800", "\xed\xa0\x80", false},
      {"surrogate DFFF", "\xed\xbf\xbf", false},
      {"last before surrogates", "\xed\x9f\xbf", true},
      {"stray continuation", "abc\x80", false},
      {"truncated at end", "abcdefg\xe8\x88", false},
      {"truncated before ASCII",
       "\xe8\x88"
       "abcdefgh",
       false},
      {"bad byte after 8 ASCII", "abcdefgh\xff", false},
      {"open sequence, 8 ASCII, continuation",
       "abcdef\xe8\x88"
       "abcdefgh"
       "\x80",
       false},
      {"FF", "\xff", false},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(Ours(c.text), c.valid) << c.what;
    EXPECT_EQ(Theirs(c.text), c.valid) << c.what << " (protobuf's own)";
  }
  EXPECT_FALSE(google::protobuf::internal::IsStructurallyValidUTF8("a", -1));
}

TEST_F(Utf8, AgreesWithProtobufOnEveryStringOfUpTo3Bytes) {
  std::string s;
  int disagreements = 0;
  for (int len = 0; len <= 3; ++len) {
    const uint32_t count = 1u << (8 * len);
    s.assign(static_cast<size_t>(len), '\0');
    for (uint32_t v = 0; v < count; ++v) {
      for (int i = 0; i < len; ++i) s[static_cast<size_t>(i)] = static_cast<char>(v >> (8 * i));
      if (Ours(s) != Theirs(s) && ++disagreements <= 5) {
        ADD_FAILURE() << "disagree on " << len << " bytes 0x" << std::hex << v;
      }
    }
  }
  EXPECT_EQ(disagreements, 0);
}

TEST_F(Utf8, AgreesWithProtobufOnEveryTwoBytesAfterEveryPartialSequence) {
  // Every way a sequence can be left open (and some ways it cannot), followed
  // by every two bytes, behind 0..9 ASCII bytes so the 8-byte ASCII skip ends
  // at every position.
  const std::vector<std::string> prefixes = {
      "",         "\xc2",     "\xdf",         "\xc1",         "\xe0",         "\xe1",
      "\xec",     "\xed",     "\xee",         "\xef",         "\xf0",         "\xf1",
      "\xf3",     "\xf4",     "\xf5",         "\x80",         "\xe0\xa0",     "\xe0\x9f",
      "\xed\x9f", "\xed\xa0", "\xe1\x80",     "\xf0\x90",     "\xf0\x8f",     "\xf4\x8f",
      "\xf4\x90", "\xf1\x80", "\xf1\x80\x80", "\xf0\x90\x80", "\xf4\x8f\xbf", "\xe8\x88\xb9"};
  int disagreements = 0;
  for (size_t pad = 0; pad <= 9; ++pad) {
    for (const std::string& prefix : prefixes) {
      std::string s = std::string(pad, 'a') + prefix + "xx";
      const size_t at = pad + prefix.size();
      for (int v = 0; v < 65536; ++v) {
        s[at] = static_cast<char>(v);
        s[at + 1] = static_cast<char>(v >> 8);
        if (Ours(s) != Theirs(s) && ++disagreements <= 5) {
          ADD_FAILURE() << "disagree: pad " << pad << ", prefix of " << prefix.size()
                        << " bytes, then 0x" << std::hex << v;
        }
      }
    }
  }
  EXPECT_EQ(disagreements, 0);
}

TEST_F(Utf8, AgreesWithProtobufWhenASCIIInterruptsASequence) {
  // A sequence left open, then a run of ASCII long enough to fill whole 8-byte
  // words at any alignment, then the bytes that would have closed it.
  const std::vector<std::string> prefixes = {"\xc2", "\xe1",     "\xe1\x80",     "\xe0", "\xed",
                                             "\xf0", "\xf0\x90", "\xf1\x80\x80", "\xf4"};
  int disagreements = 0;
  for (size_t pad = 0; pad < 16; ++pad) {
    for (const std::string& prefix : prefixes) {
      for (size_t run = 0; run <= 17; ++run) {
        for (int last = 0x80; last <= 0xbf; ++last) {
          const std::string s = std::string(pad, 'a') + prefix + std::string(run, 'b') +
                                std::string(3, static_cast<char>(last));
          if (Ours(s) != Theirs(s) && ++disagreements <= 5) {
            ADD_FAILURE() << "disagree: pad " << pad << ", prefix of " << prefix.size()
                          << " bytes, " << run << " ASCII, then 0x" << std::hex << last;
          }
        }
      }
    }
  }
  EXPECT_EQ(disagreements, 0);
}

TEST_F(Utf8, AgreesWithProtobufOnLongTextDamagedAtEveryPosition) {
  // Text of 64 bytes or more is checked in quarters cut at character
  // boundaries: damage at every position of texts of every length from 60 to
  // 140 bytes lands before, on and after every cut.
  const std::string chars[] = {"\xe8\x88\xb9", "a", "\xc3\xa9", "\xf0\x9f\x9a\xa2", "\xe5\x8f\xaa"};
  const char damage[] = {'\x80', '\xbf', '\xc3', '\xe8', '\xf0', 'a'};
  int disagreements = 0;
  for (int variant = 0; variant < 5; ++variant) {
    std::string base;
    for (int i = 0; base.size() < 140; ++i) base += chars[(i * (variant + 1) + variant) % 5];
    for (size_t len = 60; len <= 140; ++len) {
      std::string text = base.substr(0, len);
      for (size_t at = 0; at < text.size(); ++at) {
        for (char d : damage) {
          std::string replaced = text;
          replaced[at] = d;
          std::string inserted = text;
          inserted.insert(at, 1, d);
          std::string erased = text;
          erased.erase(at, 1);
          for (const std::string* t : {&replaced, &inserted, &erased}) {
            if (Ours(*t) != Theirs(*t) && ++disagreements <= 5) {
              ADD_FAILURE() << "disagree: variant " << variant << ", " << len
                            << " bytes, damage at " << at;
            }
          }
        }
      }
    }
  }
  EXPECT_EQ(disagreements, 0);
}

TEST_F(Utf8, AgreesWithProtobufOnRandomMixedText) {
  std::mt19937 rng(20261129);
  const std::vector<std::string> pieces = {"a",
                                           "Pier 3, 02:10 ",
                                           "\xe8\x88\xb9",
                                           "\xe5\x8f\xaa",
                                           "\xc3\xa9",
                                           "\xf0\x9f\x9a\xa2",
                                           "\xf4\x8f\xbf\xbf",
                                           "\xed\x9f\xbf",
                                           "\xee\x80\x80",
                                           std::string(1, '\0')};
  int disagreements = 0;
  int valid = 0;
  for (int n = 0; n < 200000; ++n) {
    std::string s;
    const int parts = static_cast<int>(rng() % 40);
    for (int i = 0; i < parts; ++i) s += pieces[rng() % pieces.size()];
    // Damage some: a random byte overwritten, inserted or the end cut.
    switch (rng() % 4) {
      case 0:
        if (!s.empty()) s[rng() % s.size()] = static_cast<char>(rng());
        break;
      case 1:
        s.insert(s.begin() + static_cast<std::ptrdiff_t>(s.empty() ? 0 : rng() % s.size()),
                 static_cast<char>(0x80 + rng() % 0x80));
        break;
      case 2:
        if (!s.empty()) s.resize(rng() % s.size());
        break;
      default:
        break;
    }
    const bool theirs = Theirs(s);
    valid += theirs;
    if (Ours(s) != theirs && ++disagreements <= 5) {
      ADD_FAILURE() << "disagree on random text #" << n << " of " << s.size() << " bytes";
    }
  }
  EXPECT_EQ(disagreements, 0);
  // Both kinds were exercised.
  EXPECT_GT(valid, 50000);
  EXPECT_LT(valid, 190000);
}

}  // namespace
}  // namespace corridor
