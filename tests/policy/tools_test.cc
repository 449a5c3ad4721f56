// The corridorctl policy tools: check, explain, test.
#include "policy/tools.h"

#include <fstream>
#include <sstream>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/policy/policy_test_util.h"

namespace corridor::policy {
namespace {

using ::corridor::policy::testing::A;
using ::corridor::policy::testing::DemoRegistry;
using ::corridor::policy::testing::Msg;
using ::corridor::policy::testing::Now;
using ::corridor::policy::testing::SourceDir;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;

class PolicyToolsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    tmp_ = std::filesystem::path(::testing::TempDir()) /
           ("policy_tools_test_" +
            std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()));
    std::filesystem::remove_all(tmp_);
    std::filesystem::create_directories(tmp_);
  }
  void TearDown() override { std::filesystem::remove_all(tmp_); }
  std::filesystem::path Write(const std::string& name, const std::string& text) {
    std::ofstream(tmp_ / name, std::ios::binary) << text;
    return tmp_ / name;
  }
  std::filesystem::path PolicyDir() const { return SourceDir() / "deploy/policy"; }

  std::filesystem::path tmp_;
  std::ostringstream out_, err_;
};

TEST_F(PolicyToolsTest, DemoPolicyPassesItsTests) {
  const int rc = PolicyTest(PolicyDir(), PolicyDir() / "tests.yaml", DemoRegistry(), out_, err_);
  EXPECT_EQ(rc, kExitOk) << out_.str() << err_.str();
  EXPECT_THAT(out_.str(), HasSubstr("PASS: "));
  EXPECT_THAT(out_.str(), Not(HasSubstr("FAIL")));
  // Every demo rule is exercised by some case.
  EXPECT_THAT(out_.str(), Not(HasSubstr("rules no case exercised")));
  EXPECT_THAT(err_.str(), IsEmpty());
}

TEST_F(PolicyToolsTest, AMismatchingCaseExitsNonZero) {
  const auto cases = Write("cases.yaml", R"(
now: "2025-03-01T10:00:00+08:00"
cases:
  - name: wrongly expects the informant to reach customs
    from: zs-police
    to: [zs-customs, zs-coastguard]
    message:
      kind: MESSAGE_KIND_TIP_OFF
      topic: smuggling.frozen_goods
      handling_code: H1
      classification: CLASSIFICATION_RESTRICTED
      tip_off: {informant: {name: "张三"}}
    expect: {decision: permit, redact: []}
  - name: right
    from: zs-police
    to: zs-msa
    message: {kind: MESSAGE_KIND_CASE_RECORD, handling_code: H3}
    expect: deny
)");
  const int rc = PolicyTest(PolicyDir(), cases, DemoRegistry(), out_, err_);
  EXPECT_EQ(rc, kExitFailed);
  EXPECT_THAT(out_.str(), HasSubstr("FAIL wrongly expects the informant to reach customs "
                                    "(zs-police -> zs-customs): expected redact []; got permit"));
  EXPECT_THAT(out_.str(), HasSubstr("FAIL: 1/3 decisions as expected"));
}

TEST_F(PolicyToolsTest, AWrongDecisionExitsNonZero) {
  const auto cases = Write("cases.yaml", R"(
cases:
  - name: H3 case record to customs
    from: zs-police
    to: zs-customs
    message: {kind: MESSAGE_KIND_CASE_RECORD, handling_code: H3, case_ref: "x",
              classification: CLASSIFICATION_RESTRICTED}
    expect: permit
)");
  EXPECT_EQ(PolicyTest(PolicyDir(), cases, DemoRegistry(), out_, err_), kExitFailed);
  EXPECT_THAT(out_.str(), HasSubstr("expected permit; got deny forbids=[h3-originator-only]"));
}

TEST_F(PolicyToolsTest, MalformedCasesAreUsageErrors) {
  EXPECT_EQ(PolicyTest(PolicyDir(), Write("a.yaml", "cases: [{from: zs-police}]"), DemoRegistry(),
                       out_, err_),
            kExitUsage);
  EXPECT_THAT(err_.str(), HasSubstr("needs from, to and expect"));
  EXPECT_EQ(PolicyTest(PolicyDir(),
                       Write("b.yaml", "cases: [{from: zs-police, to: nobody, expect: deny}]"),
                       DemoRegistry(), out_, err_),
            kExitUsage);
  EXPECT_THAT(err_.str(), HasSubstr("unknown agency 'nobody'"));
  EXPECT_EQ(PolicyTest(PolicyDir(),
                       Write("c.yaml",
                             "cases: [{from: zs-police, to: zs-msa, expect: deny, "
                             "message: {topic: [1, 2]}}]"),
                       DemoRegistry(), out_, err_),
            kExitUsage);
  EXPECT_EQ(
      PolicyTest(PolicyDir(), Write("d.yaml", "cases: [unclosed"), DemoRegistry(), out_, err_),
      kExitUsage);
}

TEST_F(PolicyToolsTest, CheckAcceptsTheDemoAndRefusesTheBadBundle) {
  EXPECT_EQ(PolicyCheck(PolicyDir(), DemoRegistry(), out_, err_), kExitOk) << err_.str();
  EXPECT_THAT(out_.str(), HasSubstr("OK: 2 files, 8 permits, 6 forbids, 3 assertions"));
  EXPECT_THAT(out_.str(), HasSubstr("version: "));
  std::ostringstream out2, err2;
  EXPECT_EQ(PolicyCheck(std::filesystem::path(CORRIDOR_POLICY_TESTDATA) / "bad_h3", DemoRegistry(),
                        out2, err2),
            kExitFailed);
  EXPECT_THAT(err2.str(), HasSubstr("is violated: rule 'share-every-case-record'"));
  std::ostringstream out3, err3;
  EXPECT_EQ(PolicyCheck(tmp_ / "absent", DemoRegistry(), out3, err3), kExitUsage);
}

TEST_F(PolicyToolsTest, ExplainADefaultDenyNamesTheNearestPermitAndTheFailedCondition) {
  const auto msg = Write("msg.json", R"({
    "kind": "MESSAGE_KIND_TIP_OFF", "topic": "fisheries.illegal_gear", "handlingCode": "H1",
    "classification": "CLASSIFICATION_RESTRICTED", "observedTime": "2025-03-01T08:00:00+08:00",
    "tipOff": {"vessel": {"name": "粤中山渔00001"}}})");
  const int rc = PolicyExplain(PolicyDir(), DemoRegistry(), "zs-police", "zs-customs", msg,
                               /*json=*/false, Now(), out_, err_);
  EXPECT_EQ(rc, kExitFailed) << err_.str();
  const std::string text = out_.str();
  EXPECT_THAT(text, HasSubstr("decision: DENY (zs-police -> zs-customs)"));
  EXPECT_THAT(text, HasSubstr("default deny: no permit rule matched"));
  EXPECT_THAT(text, HasSubstr("nearest permit:\n  permit smuggling-tipoffs-to-partners"));
  EXPECT_THAT(text, HasSubstr("failed: message.topic like \"smuggling.*\"  is false"));
  EXPECT_THAT(text, HasSubstr("message.topic = \"fisheries.illegal_gear\""));
  EXPECT_THAT(text, HasSubstr("because \"Police smuggling tip-offs go to customs"));
}

TEST_F(PolicyToolsTest, ExplainAPermitListsRulesReasonsAndRedactions) {
  const auto msg = Write("msg.json", R"({
    "kind": "MESSAGE_KIND_TIP_OFF", "topic": "smuggling.fuel", "handlingCode": "H1",
    "classification": "CLASSIFICATION_RESTRICTED",
    "tipOff": {"informant": {"name": "张三"}}})");
  EXPECT_EQ(PolicyExplain(PolicyDir(), DemoRegistry(), "zs-police", "zs-coastguard", msg, false,
                          Now(), out_, err_),
            kExitOk);
  EXPECT_THAT(out_.str(), HasSubstr("permitted by:\n  permit smuggling-tipoffs-to-partners"));
  EXPECT_THAT(out_.str(), HasSubstr("redacted: tip_off.informant"));
}

TEST_F(PolicyToolsTest, ExplainAForbidAndJsonOutput) {
  const auto msg = Write("msg.json", R"({
    "kind": "MESSAGE_KIND_CASE_RECORD", "topic": "smuggling.fuel", "handlingCode": "H3",
    "classification": "CLASSIFICATION_RESTRICTED", "caseRef": "中公水缉〔2025〕18号"})");
  EXPECT_EQ(PolicyExplain(PolicyDir(), DemoRegistry(), "zs-police", "zs-customs", msg,
                          /*json=*/true, Now(), out_, err_),
            kExitFailed);
  const std::string json = out_.str();
  EXPECT_THAT(json, HasSubstr("\"decision\":\"deny\""));
  EXPECT_THAT(json, HasSubstr("\"forbid_rules\":[\"h3-originator-only\"]"));
  EXPECT_THAT(json, HasSubstr("\"permit_rules\":[]"));  // H3 is not in the permit's list
  EXPECT_THAT(json, HasSubstr("\"reasons\":[\"H3 (originator only)"));
  EXPECT_THAT(json, HasSubstr("\"message.case_ref\":\"\\\"中公水缉〔2025〕18号\\\"\""));
  EXPECT_THAT(json, HasSubstr("\"nearest_permit\":null"));
}

TEST_F(PolicyToolsTest, ExplainUsageErrors) {
  const auto msg = Write("msg.json", "{\"topic\": \"x\"}");
  EXPECT_EQ(PolicyExplain(PolicyDir(), DemoRegistry(), "nobody", "zs-msa", msg, false, out_, err_),
            kExitUsage);
  EXPECT_THAT(err_.str(), HasSubstr("--from: unknown agency 'nobody'"));
  const auto bad = Write("bad.json", "{\"topik\": \"x\"}");
  EXPECT_EQ(
      PolicyExplain(PolicyDir(), DemoRegistry(), "zs-police", "zs-msa", bad, false, out_, err_),
      kExitUsage);
  EXPECT_THAT(err_.str(), HasSubstr("not a corridor.v1.Envelope in JSON"));
}

TEST(PolicyExplainTest, NearestPermitShowsAnUnevaluableCondition) {
  auto b = LoadBundle(SourceDir() / "deploy/policy", DemoRegistry());
  ASSERT_TRUE(b.ok()) << b.status();
  // H0 smuggling tip-off to maritime safety without observed_time: the age
  // condition cannot be evaluated, so the permit fails closed.
  const Explanation e = (*b)->Explain(Msg().TipOff().Topic("smuggling.fuel").Code("H0"),
                                      A("zs-police"), A("zs-msa"), Now());
  EXPECT_FALSE(e.decision.permit);
  ASSERT_TRUE(e.nearest_permit.has_value());
  EXPECT_EQ(e.nearest_permit->id, "tipoff-vessel-data-to-maritime-safety");
  ASSERT_EQ(e.nearest_permit->failed.size(), 1u);
  EXPECT_EQ(e.nearest_permit->failed[0].text, "message.age <= 48h");
  EXPECT_EQ(e.nearest_permit->failed[0].outcome, "cannot be evaluated");
  EXPECT_THAT(e.nearest_permit->failed[0].values, ::testing::Contains("message.age = unset"));
  EXPECT_THAT(e.nearest_permit->failed[0].where, HasSubstr("demo.policy:"));
}

}  // namespace
}  // namespace corridor::policy
