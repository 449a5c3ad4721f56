// Syntax errors: position (file:line:col), the offending line, and a caret.
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "policy/bundle.h"
#include "tests/policy/policy_test_util.h"
#include "tests/testing/status_matchers.h"

namespace corridor::policy {
namespace {

using ::corridor::policy::testing::DemoRegistry;
using ::corridor::policy::testing::LoadText;
using ::corridor::testing::StatusIs;
using ::testing::HasSubstr;
using ::testing::Not;

std::string Error(const std::string& text) {
  auto b = LoadText(text);
  EXPECT_FALSE(b.ok());
  EXPECT_THAT(b, StatusIs(absl::StatusCode::kInvalidArgument));
  return b.ok() ? "" : std::string(b.status().message());
}

TEST(PolicyParserTest, ReportsFileLineColumnLineAndCaret) {
  const std::string msg = Error(
      "permit p (on tip_off)\n"
      "  when { message.topic = \"x\" }\n"
      "  because \"y\";\n");
  EXPECT_THAT(msg, HasSubstr("test.policy:2:24: error: unexpected '='; did you mean '=='?"));
  EXPECT_THAT(msg, HasSubstr("   2 |   when { message.topic = \"x\" }\n"));
  // The caret sits under column 24.
  EXPECT_THAT(msg, HasSubstr("     | " + std::string(23, ' ') + "^\n"));
  EXPECT_THAT(msg, HasSubstr("1 error"));
}

TEST(PolicyParserTest, CaretSpansTheOffendingToken) {
  const std::string msg = Error("permit p when { message.topic == } because \"x\";");
  EXPECT_THAT(msg, HasSubstr("test.policy:1:34: error: expected an attribute, a value, '(' or "
                             "'[', found '}'"));
  EXPECT_THAT(msg, HasSubstr("     | " + std::string(33, ' ') + "^\n"));
}

TEST(PolicyParserTest, CaretLinesUpUnderChineseText) {
  // Each CJK character is two columns wide in a terminal; the column number
  // counts code points.
  const std::string msg = Error("permit p because \"中文理由\" oops;");
  EXPECT_THAT(msg, HasSubstr("test.policy:1:25: error: expected 'when', 'unless', 'redact', "
                             "'because' or ';', found 'oops'"));
  // 17 ASCII columns before the string, then "中文理由" (4 wide chars = 8 columns) and 2 quotes
  // and a space: the caret is preceded by 17 + 1 + 8 + 1 + 1 = 28 spaces.
  EXPECT_THAT(msg, HasSubstr("     | " + std::string(28, ' ') + "^~~~\n"));
}

TEST(PolicyParserTest, MissingSemicolon) {
  const std::string msg = Error("permit p because \"x\"\npermit q because \"y\";");
  EXPECT_THAT(msg, HasSubstr("test.policy:2:1: error: expected 'when', 'unless', 'redact', "
                             "'because' or ';', found 'permit'"));
}

TEST(PolicyParserTest, EndOfFileInsideARule) {
  const std::string msg = Error("forbid f when { message.topic == \"x\" }");
  EXPECT_THAT(msg, HasSubstr("expected ';' to end the rule, found end of file"));
}

TEST(PolicyParserTest, UnterminatedString) {
  const std::string msg = Error("permit p because \"never closed;\n");
  EXPECT_THAT(msg, HasSubstr("test.policy:1:18: error: unterminated string"));
}

TEST(PolicyParserTest, UnknownTopLevelWord) {
  const std::string msg = Error("allow p because \"x\";");
  EXPECT_THAT(msg, HasSubstr("test.policy:1:1: error: expected 'permit', 'forbid', 'assert "
                             "never' or 'timezone', found 'allow'"));
}

TEST(PolicyParserTest, ComparisonsDoNotChain) {
  const std::string msg = Error("permit p when { message.topic == \"a\" == \"b\" } because \"x\";");
  EXPECT_THAT(msg, HasSubstr("comparisons do not chain"));
}

TEST(PolicyParserTest, ScopeItemsAreOnFromTo) {
  EXPECT_THAT(Error("permit p (by kind:police) because \"x\";"),
              HasSubstr("expected 'on', 'from' or 'to' in the scope, found 'by'"));
  EXPECT_THAT(Error("permit p (to kind:police, to kind:customs) because \"x\";"),
              HasSubstr("duplicate 'to' in the scope"));
  EXPECT_THAT(
      Error("permit p (to police) because \"x\";"),
      HasSubstr("expected 'any', agency:ID, kind:KIND, group:GROUP, city:CITY or domain:DOMAIN"));
}

TEST(PolicyParserTest, AssertNeverCannotRedact) {
  EXPECT_THAT(Error("assert never a redact [tip_off.informant] because \"x\";"),
              HasSubstr("an 'assert never' cannot redact"));
}

TEST(PolicyParserTest, NamesTheFileOfTheError) {
  auto b = LoadBundleFromSources(
      {{"a.policy", "permit p because \"x\";"}, {"b.policy", "permit q because \"x\""}},
      DemoRegistry());
  ASSERT_FALSE(b.ok());
  EXPECT_THAT(b.status().message(), HasSubstr("b.policy:1:21: error: expected ';'"));
  EXPECT_THAT(b.status().message(), Not(HasSubstr("a.policy:")));
}

TEST(PolicyParserTest, DeepNestingIsAnErrorNotACrash) {
  std::string deep(200, '(');
  const std::string msg = Error("permit p when { " + deep + " } because \"x\";");
  EXPECT_THAT(msg, HasSubstr("nested too deeply"));
  std::string nots(200, '!');
  EXPECT_THAT(Error("permit p when { " + nots + "true } because \"x\";"),
              HasSubstr("nested too deeply"));
}

TEST(PolicyParserTest, CommentsWhitespaceAndTrailingCommasAreAccepted) {
  auto b = LoadText(
      "# hash comment\n"
      "// slash comment\n"
      "permit p (\n"
      "  on [tip_off, case_record,],  // trailing comma\n"
      "  from [kind:police, group:\"anti-smuggling\"],\n"
      "  to any,\n"
      ")\n"
      "  when { message.topic in [\"a\", \"b\",] }\n"
      "  redact [tip_off.informant,]\n"
      "  because \"escapes: \\\" \\\\ \\n\";\n");
  EXPECT_TRUE(b.ok()) << b.status();
}

TEST(PolicyParserTest, DurationsNumbersAndWords) {
  auto b = LoadText(
      "permit p when { message.age <= 1h30m && message.age > 90s && message.age < 7d\n"
      "  && message.grading.credibility <= 3 && message.defence_zone == zs-north }\n"
      "  because \"x\";");
  EXPECT_TRUE(b.ok()) << b.status();
}

// Found by policy_parser_fuzz under UBSan: reading a duration with more digits
// than an int64 holds overflowed (undefined behaviour) before the word was
// judged not a duration. It is still not a duration, and is refused as the
// identifier it is; the seed corpus holds the same input
// (duration_overflow_error.policy), so the fuzz build checks it with UBSan.
TEST(PolicyParserTest, OverlongDurationIsAWordNotAnOverflow) {
  const std::string msg =
      Error("permit p (on tip_off) when { message.age < 22222222222222222222222h } because \"x\";");
  EXPECT_THAT(msg, HasSubstr("test.policy:1:"));
  EXPECT_THAT(msg, HasSubstr("22222222222222222222222h"));
}

// The fuzzer's seed corpus: files named *error* are refused, the others load.
TEST(PolicyParserTest, FuzzSeedCorpusLoadsOrFailsAsNamed) {
  const auto dir = corridor::policy::testing::SourceDir() / "policy/fuzz/corpus";
  int files = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    std::ifstream in(entry.path(), std::ios::binary);
    std::stringstream text;
    text << in.rdbuf();
    auto b =
        LoadBundleFromSources({{entry.path().filename().string(), text.str()}}, DemoRegistry());
    const bool should_fail = entry.path().filename().string().find("error") != std::string::npos;
    EXPECT_EQ(b.ok(), !should_fail) << entry.path() << ": " << b.status();
    ++files;
  }
  EXPECT_GE(files, 8);
}

}  // namespace
}  // namespace corridor::policy
