// Loading bundles from a directory and the policy version hash.
#include <fstream>
#include <string>

#include "common/utf8.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/policy/policy_test_util.h"
#include "tests/testing/status_matchers.h"

namespace corridor::policy {
namespace {

using ::corridor::policy::testing::DemoRegistry;
using ::corridor::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::MatchesRegex;

class PolicyBundleTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::path(::testing::TempDir()) /
           ("policy_bundle_test_" +
            std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()));
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  void Write(const std::string& name, const std::string& text) {
    std::ofstream(dir_ / name, std::ios::binary) << text;
  }
  std::filesystem::path dir_;
};

TEST_F(PolicyBundleTest, LoadsEveryPolicyFileSortedByName) {
  Write("b.policy", "permit b because \"b\";");
  Write("a.policy", "permit a because \"a\";");
  Write("notes.txt", "not a policy");
  Write("c.policy.bak", "garbage ((");
  auto b = LoadBundle(dir_, DemoRegistry());
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_THAT((*b)->RuleIds(), ElementsAre("a", "b"));
  EXPECT_EQ((*b)->stats().files, 2u);
  EXPECT_EQ((*b)->version(), BundleVersion({{"a.policy", "permit a because \"a\";"},
                                            {"b.policy", "permit b because \"b\";"}}));
}

TEST_F(PolicyBundleTest, DiagnosticsNameTheFilePath) {
  Write("bad.policy", "permit p when { nope } because \"x\";");
  auto b = LoadBundle(dir_, DemoRegistry());
  ASSERT_FALSE(b.ok());
  EXPECT_THAT(b.status().message(), HasSubstr((dir_ / "bad.policy").string() + ":1:17: error:"));
}

// Policy text is written into audit entries (a `because` is each decision's
// reason), which must be UTF-8: text that is not is refused at load, naming
// where, and for a `because` the rule.
TEST_F(PolicyBundleTest, TextThatIsNotUtf8IsRefusedNamingWhere) {
  Write("gbk.policy", "permit p (on tip_off)\n  because \"\xB2\xBB\xB9\xB2\xCF\xED\";");
  auto b = LoadBundle(dir_, DemoRegistry());
  EXPECT_THAT(b, StatusIs(absl::StatusCode::kInvalidArgument,
                          HasSubstr("gbk.policy:2:11: error: the 'because' text of rule 'p' is "
                                    "not valid UTF-8")));
  EXPECT_TRUE(IsValidUtf8(std::string(b.status().message())));  // the quoted line shows U+FFFD
  Write("gbk.policy", "permit p (on tip_off) when { message.topic == \"\xFF\" } because \"x\";");
  EXPECT_THAT(LoadBundle(dir_, DemoRegistry()),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("gbk.policy:1:47: error: this string is not valid UTF-8")));
  Write("gbk.policy", "permit p (on tip_off) because \"x\"; // \xC0\xAF\n");
  EXPECT_THAT(LoadBundle(dir_, DemoRegistry()),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("gbk.policy:1:39: error: not valid UTF-8")));
}

// An error on a very long line quotes a window of it, not the whole line.
TEST_F(PolicyBundleTest, ALongLineIsQuotedInPart) {
  std::string line = "permit p (on tip_off) when { message.topic == \"";
  for (int i = 0; i < 100000; ++i) line += "中";
  line += "\" && message.topci == \"x\" } because \"x\";";
  Write("long.policy", line);
  auto b = LoadBundle(dir_, DemoRegistry());
  ASSERT_THAT(b, StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("message.topci")));
  EXPECT_LT(b.status().message().size(), 1000u) << b.status().message().size();
  EXPECT_THAT(b.status().message(), HasSubstr(" | \xE2\x80\xA6中中"));  // "…" where cut
  EXPECT_THAT(b.status().message(), HasSubstr("中\" && message.topci == \"x\" } because"));
  EXPECT_TRUE(IsValidUtf8(std::string(b.status().message())));  // cut on character boundaries
}

TEST_F(PolicyBundleTest, MissingOrEmptyDirectory) {
  EXPECT_THAT(LoadBundle(dir_ / "absent", DemoRegistry()),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("does not exist")));
  EXPECT_THAT(LoadBundle(dir_, DemoRegistry()),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("holds no *.policy file")));
  Write("a.policy", "permit a because \"a\";");
  EXPECT_THAT(LoadBundle(dir_ / "a.policy", DemoRegistry()),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("is not a directory")));
}

TEST(PolicyVersionTest, IsTheHexSha256OfNamesAndContents) {
  auto b = LoadBundleFromSources({{"x.policy", "permit p because \"p\";"}}, DemoRegistry());
  ASSERT_TRUE(b.ok());
  EXPECT_THAT((*b)->version(), MatchesRegex("[0-9a-f]{64}"));
  // Known answer: SHA-256("8:x.policy22:permit p because \"p\";").
  EXPECT_EQ((*b)->version(), BundleVersion({{"x.policy", "permit p because \"p\";"}}));
  EXPECT_EQ(BundleVersion({}), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

TEST(PolicyVersionTest, ChangesWithContentAndNamesButNotOrderOfLoading) {
  auto v = [](std::vector<std::pair<std::string, std::string>> files) {
    auto b = LoadBundleFromSources(files, DemoRegistry());
    EXPECT_TRUE(b.ok()) << b.status();
    return b.ok() ? (*b)->version() : "";
  };
  const std::string base = v({{"a.policy", "permit a because \"a\";"}});
  EXPECT_EQ(base, v({{"a.policy", "permit a because \"a\";"}}));
  EXPECT_NE(base, v({{"a.policy", "permit a because \"A\";"}}));
  EXPECT_NE(base, v({{"a.policy", "permit a because \"a\"; "}}));  // whitespace counts
  EXPECT_NE(base, v({{"b.policy", "permit a because \"a\";"}}));
  EXPECT_EQ(v({{"a.policy", "permit a because \"a\";"}, {"b.policy", "permit b because \"b\";"}}),
            v({{"b.policy", "permit b because \"b\";"}, {"a.policy", "permit a because \"a\";"}}));
  // Moving text between files changes the version.
  EXPECT_NE(v({{"a.policy", "permit a because \"a\";"}, {"b.policy", "permit b because \"b\";"}}),
            v({{"a.policy", "permit a because \"a\";permit b because \"b\";"}, {"b.policy", ""}}));
}

TEST(PolicyVersionTest, DuplicateFileNamesAreRefused) {
  EXPECT_THAT(LoadBundleFromSources({{"a.policy", ""}, {"a.policy", ""}}, DemoRegistry()),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("two files are named")));
}

TEST(PolicyVersionTest, DecisionsCarryTheVersion) {
  auto b = LoadBundleFromSources({{"x.policy", "permit p because \"p\";"}}, DemoRegistry());
  ASSERT_TRUE(b.ok());
  corridor::v1::Envelope m;
  const Decision d = (*b)->Decide(m, testing::A("zs-police"), testing::A("zs-msa"), testing::Now());
  EXPECT_EQ(d.policy_version, (*b)->version());
}

}  // namespace
}  // namespace corridor::policy
