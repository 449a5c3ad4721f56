// `assert never` invariants, checked at load by enumerating the registry.
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "policy/internal/compiler.h"
#include "policy/internal/parser.h"
#include "policy/internal/program.h"
#include "tests/policy/policy_test_util.h"
#include "tests/testing/status_matchers.h"

namespace corridor::policy {
namespace {

using ::corridor::policy::testing::DemoRegistry;
using ::corridor::policy::testing::LoadText;
using ::corridor::policy::testing::SourceDir;
using ::corridor::testing::StatusIs;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kH3Assertion[] = R"(
assert never h3-leaves-originator (on case_record)
  when { message.handling_code == H3 && recipient.id != sender.id }
  because "H3 case records never leave the originating agency.";
)";

TEST(PolicyAssertionsTest, DemoPolicyHoldsItsInvariants) {
  auto b = LoadBundle(SourceDir() / "deploy/policy", DemoRegistry());
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ((*b)->stats().assertions, 3u);
  EXPECT_GT((*b)->stats().assertion_cases, 1000u);
}

TEST(PolicyAssertionsTest, BadBundleFailsToLoadNamingTheRule) {
  auto b = LoadBundle(std::filesystem::path(CORRIDOR_POLICY_TESTDATA) / "bad_h3", DemoRegistry());
  ASSERT_THAT(b, StatusIs(absl::StatusCode::kInvalidArgument));
  const std::string msg(b.status().message());
  EXPECT_THAT(msg, HasSubstr("invariants.policy:1:1: error: assert never "
                             "'h3-case-record-leaves-originator' is violated: rule "
                             "'share-every-case-record' permits a case_record from "));
  EXPECT_THAT(msg, HasSubstr("message.handling_code = H3"));
  EXPECT_THAT(msg, HasSubstr("bad.policy:8:1: note: rule 'share-every-case-record' lets this case "
                             "through"));
  EXPECT_THAT(msg, HasSubstr("^~~~~~"));
}

TEST(PolicyAssertionsTest, AForbidRestoresTheInvariant) {
  const std::string permit =
      "permit share (on case_record, to group:law-enforcement) because \"share\";\n";
  auto bad = LoadText(permit + kH3Assertion);
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(bad.status().message(), HasSubstr("rule 'share' permits a case_record"));
  auto good = LoadText(permit + kH3Assertion +
                       "forbid h3 when { message.handling_code == H3 } "
                       "unless { recipient.id == sender.id } because \"h3\";");
  EXPECT_TRUE(good.ok()) << good.status();
}

TEST(PolicyAssertionsTest, AnUnsetHandlingCodeMayBeH3) {
  // An assertion that cannot be evaluated for a case counts as applying: an
  // unmarked case record must not leave either.
  auto bad = LoadText(std::string("permit share (on case_record) unless { message.handling_code "
                                  "== H3 } because \"x\";") +
                      kH3Assertion);
  EXPECT_TRUE(bad.ok()) << bad.status();  // the permit itself fails closed when unset
  auto worse = LoadText(std::string("permit share (on case_record) when { !has "
                                    "message.handling_code } because \"x\";") +
                        kH3Assertion);
  ASSERT_FALSE(worse.ok());
  EXPECT_THAT(worse.status().message(), HasSubstr("message.handling_code = unset"));
}

TEST(PolicyAssertionsTest, NamesEveryPermitThatLetsTheCaseThrough) {
  auto b = LoadText(std::string(R"(
permit a (on case_record, to agency:zs-customs) because "a";
permit b (on case_record, to kind:customs) because "b";
)") + kH3Assertion);
  ASSERT_FALSE(b.ok());
  EXPECT_THAT(b.status().message(), HasSubstr("rules 'a', 'b' permit a case_record"));
  EXPECT_THAT(b.status().message(), HasSubstr("to zs-customs"));
}

TEST(PolicyAssertionsTest, EnumeratesTopicsAndThresholdsTheRulesMention) {
  // Only a topic the permit names and only an old message break it.
  auto b = LoadText(R"(
permit p (on tip_off) when { message.topic like "smuggling.*" && message.age > 72h }
  because "p";
assert never no-stale-smuggling (on tip_off)
  when { message.topic like "smuggling.*" && message.age > 48h }
  because "stale smuggling tips stay home";
)");
  ASSERT_FALSE(b.ok());
  EXPECT_THAT(b.status().message(), HasSubstr("message.topic = \"smuggling."));
  EXPECT_THAT(b.status().message(), HasSubstr("message.age = 72h1s"));
  auto ok = LoadText(R"(
permit p (on tip_off) when { message.topic like "smuggling.*" && message.age <= 48h }
  because "p";
assert never no-stale-smuggling (on tip_off)
  when { message.topic like "smuggling.*" && message.age > 48h }
  because "stale smuggling tips stay home";
)");
  EXPECT_TRUE(ok.ok()) << ok.status();
}

TEST(PolicyAssertionsTest, AssertionScopeLimitsTheCases) {
  auto b = LoadText(R"(
permit p (to kind:maritime) because "p";
assert never nothing-to-customs (to kind:customs) because "x";
)");
  EXPECT_TRUE(b.ok()) << b.status();
}

TEST(PolicyAssertionsTest, RefusesWhenTheEnumerationIsTooLarge) {
  using namespace internal;
  Program p;
  p.sources.Add("big.policy", std::string(R"(
permit p when { message.topic == "a" && message.purpose == "b" && message.case_ref == "c"
  && message.age > 1h && context.hour > 3 && message.grading.credibility > 2 } because "p";
assert never x when { message.classification == secret } because "x";
)"));
  Diagnostics diag(&p.sources);
  std::vector<FileAst> asts;
  asts.push_back(ParseFile(p.sources, 0, &diag));
  Compile(asts, *DemoRegistry(), &p, &diag);
  ASSERT_FALSE(diag.has_errors()) << diag.Text();
  CheckAssertions(&p, &diag, /*budget=*/1000);
  EXPECT_THAT(diag.Text(), HasSubstr("needs more than 1000 cases to check"));
}

}  // namespace
}  // namespace corridor::policy
