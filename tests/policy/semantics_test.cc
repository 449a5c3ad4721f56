// Decision semantics: default deny, forbid wins, redact union, fail-closed
// conditions, scopes and operators.
#include <random>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/policy/policy_test_util.h"
#include "tests/testing/status_matchers.h"

namespace corridor::policy {
namespace {

using ::corridor::policy::testing::A;
using ::corridor::policy::testing::DemoRegistry;
using ::corridor::policy::testing::LoadText;
using ::corridor::policy::testing::Msg;
using ::corridor::policy::testing::Now;
using ::testing::ElementsAre;
using ::testing::IsEmpty;

std::shared_ptr<const Bundle> MustLoad(const std::string& text) {
  auto b = LoadText(text);
  EXPECT_TRUE(b.ok()) << b.status();
  return b.ok() ? *b : nullptr;
}

Decision D(const Bundle& b, const corridor::v1::Envelope& m, const std::string& from,
           const std::string& to, absl::Time now = Now()) {
  return b.Decide(m, A(from), A(to), now);
}

TEST(PolicySemanticsTest, DefaultDeny) {
  auto b = MustLoad("permit p (on case_record) because \"cases\";");
  const Decision d = D(*b, Msg().TipOff().Topic("smuggling.x"), "zs-police", "zs-customs");
  EXPECT_FALSE(d.permit);
  EXPECT_THAT(d.permit_rules, IsEmpty());
  EXPECT_THAT(d.forbid_rules, IsEmpty());
  EXPECT_THAT(d.reasons, ElementsAre(kDefaultDenyReason));
  EXPECT_EQ(d.policy_version, b->version());
}

TEST(PolicySemanticsTest, AMatchingPermitShares) {
  auto b = MustLoad("permit p (on tip_off) because \"tips\";");
  const Decision d = D(*b, Msg().TipOff(), "zs-police", "zs-customs");
  EXPECT_TRUE(d.permit);
  EXPECT_THAT(d.permit_rules, ElementsAre("p"));
  EXPECT_THAT(d.reasons, ElementsAre("tips"));
}

TEST(PolicySemanticsTest, AnyMatchingForbidWinsOverEveryPermit) {
  auto b = MustLoad(R"(
permit p1 because "one";
permit p2 (on tip_off) because "two";
forbid f1 when { message.handling_code == H3 } because "originator only";
forbid f2 (to kind:maritime) because "not maritime";
)");
  Decision d = D(*b, Msg().TipOff().Code("H3"), "zs-police", "zs-customs");
  EXPECT_FALSE(d.permit);
  EXPECT_THAT(d.permit_rules, ElementsAre("p1", "p2"));  // matched, overridden
  EXPECT_THAT(d.forbid_rules, ElementsAre("f1"));
  EXPECT_THAT(d.reasons, ElementsAre("originator only"));
  EXPECT_THAT(d.redact, IsEmpty());

  d = D(*b, Msg().TipOff().Code("H3"), "zs-police", "zs-msa");
  EXPECT_THAT(d.forbid_rules, ElementsAre("f1", "f2"));
  EXPECT_THAT(d.reasons, ElementsAre("originator only", "not maritime"));

  d = D(*b, Msg().TipOff().Code("H1"), "zs-police", "zs-customs");
  EXPECT_TRUE(d.permit);
}

TEST(PolicySemanticsTest, RedactionsAreTheUnionOfMatchingPermits) {
  auto b = MustLoad(R"(
permit a (on tip_off) redact [tip_off.informant, tip_off.narrative] because "a";
permit b (on tip_off) redact [tip_off.vessel.mmsi, tip_off.informant] because "b";
permit c (on tip_off, to kind:maritime) redact [tip_off.cargo] because "c";
permit d (on tip_off) because "d";
)");
  Decision d = D(*b, Msg().TipOff(), "zs-police", "zs-customs");
  EXPECT_TRUE(d.permit);
  EXPECT_THAT(d.permit_rules, ElementsAre("a", "b", "d"));
  EXPECT_THAT(d.redact,
              ElementsAre("tip_off.informant", "tip_off.narrative", "tip_off.vessel.mmsi"));
  d = D(*b, Msg().TipOff(), "zs-police", "zs-msa");
  EXPECT_THAT(d.redact, ElementsAre("tip_off.cargo", "tip_off.informant", "tip_off.narrative",
                                    "tip_off.vessel.mmsi"));
}

TEST(PolicySemanticsTest, PermitThatCannotBeEvaluatedDoesNotMatch) {
  auto b = MustLoad("permit fresh when { message.age < 24h } because \"fresh\";");
  // No observed_time: message.age cannot be evaluated.
  Decision d = D(*b, Msg().TipOff(), "zs-police", "zs-customs");
  EXPECT_FALSE(d.permit);
  EXPECT_THAT(d.permit_rules, IsEmpty());
  d = D(*b, Msg().TipOff().Observed(absl::Hours(2)), "zs-police", "zs-customs");
  EXPECT_TRUE(d.permit);
  d = D(*b, Msg().TipOff().Observed(absl::Hours(30)), "zs-police", "zs-customs");
  EXPECT_FALSE(d.permit);
}

TEST(PolicySemanticsTest, ForbidThatCannotBeEvaluatedMatches) {
  auto b = MustLoad(R"(
permit all because "all";
forbid stale when { message.age > 7d } because "stale";
forbid secret when { message.classification >= secret } because "secret";
)");
  Decision d = D(*b, Msg().TipOff(), "zs-police", "zs-customs");  // no observed_time
  EXPECT_FALSE(d.permit);
  EXPECT_THAT(d.forbid_rules, ElementsAre("stale"));
  d = D(*b, Msg().TipOff().Observed(absl::Hours(1)), "zs-police", "zs-customs");
  EXPECT_TRUE(d.permit);
  d = D(*b, Msg().TipOff().Observed(absl::Hours(1)).Class(corridor::v1::CLASSIFICATION_UNSPECIFIED),
        "zs-police", "zs-customs");
  EXPECT_FALSE(d.permit);
  EXPECT_THAT(d.forbid_rules, ElementsAre("secret"));
}

TEST(PolicySemanticsTest, UnlessThatCannotBeEvaluatedFailsClosed) {
  auto b = MustLoad(R"(
permit p unless { message.defence_zone == zs-south } because "p";
forbid f (on patrol_report) unless { recipient.zones contains message.defence_zone } because "f";
)");
  // Permit: the unless-part errors, so the permit does not match.
  EXPECT_FALSE(D(*b, Msg().TipOff(), "zs-police", "zs-customs").permit);
  EXPECT_TRUE(D(*b, Msg().TipOff().Zone("zs-north"), "zs-police", "zs-customs").permit);
  // Forbid: the unless-part errors, so the forbid matches.
  Decision d = D(*b, Msg().Patrol(), "zs-police", "zs-customs");
  EXPECT_THAT(d.forbid_rules, ElementsAre("f"));
  EXPECT_TRUE(D(*b, Msg().Patrol().Zone("zs-north"), "zs-police", "zs-customs").permit);
}

TEST(PolicySemanticsTest, KleeneLogicDoesNotDependOnOrder) {
  auto b = MustLoad(R"(
permit or1 when { message.age < 1h || message.topic == "x" } because "or1";
permit or2 when { message.topic == "x" || message.age < 1h } because "or2";
forbid and1 when { message.age > 1h && message.topic == "y" } because "and1";
forbid and2 when { message.topic == "y" && message.age > 1h } because "and2";
)");
  // true || error = true.
  Decision d = D(*b, Msg().TipOff().Topic("x"), "zs-police", "zs-customs");
  EXPECT_THAT(d.permit_rules, ElementsAre("or1", "or2"));
  // false && error = false: the forbids do not match.
  EXPECT_THAT(d.forbid_rules, IsEmpty());
  EXPECT_TRUE(d.permit);
  // true && error = error: the forbids match (fail closed).
  d = D(*b, Msg().TipOff().Topic("y"), "zs-police", "zs-customs");
  EXPECT_THAT(d.forbid_rules, ElementsAre("and1", "and2"));
  // !error = error.
  auto neg = MustLoad("permit n when { !(message.age > 1h) } because \"n\";");
  EXPECT_FALSE(D(*neg, Msg().TipOff(), "zs-police", "zs-customs").permit);
  EXPECT_TRUE(D(*neg, Msg().TipOff().Observed(absl::Minutes(5)), "zs-police", "zs-customs").permit);
}

TEST(PolicySemanticsTest, HasGuardsAnOptionalAttribute) {
  auto b = MustLoad(
      "forbid f when { has message.case_ref && message.case_ref like \"秘*\" } because \"f\";\n"
      "permit p because \"p\";");
  EXPECT_TRUE(D(*b, Msg().TipOff(), "zs-police", "zs-customs").permit);
  EXPECT_TRUE(D(*b, Msg().TipOff().CaseRef("公开-1"), "zs-police", "zs-customs").permit);
  EXPECT_FALSE(D(*b, Msg().TipOff().CaseRef("秘-1"), "zs-police", "zs-customs").permit);
}

TEST(PolicySemanticsTest, ScopeByAgencyId) {
  auto b = MustLoad(
      "permit p (from agency:zs-police, to [agency:zs-msa, agency:zs-customs]) "
      "because \"p\";");
  EXPECT_TRUE(D(*b, Msg().TipOff(), "zs-police", "zs-msa").permit);
  EXPECT_TRUE(D(*b, Msg().TipOff(), "zs-police", "zs-customs").permit);
  EXPECT_FALSE(D(*b, Msg().TipOff(), "zs-police", "zs-coastguard").permit);
  EXPECT_FALSE(D(*b, Msg().TipOff(), "zs-customs", "zs-msa").permit);
}

TEST(PolicySemanticsTest, ScopeByKind) {
  auto b = MustLoad("permit p (from kind:police, to kind:coast_guard) because \"p\";");
  EXPECT_TRUE(D(*b, Msg().TipOff(), "zs-police", "zs-coastguard").permit);
  EXPECT_TRUE(D(*b, Msg().TipOff(), "zh-police", "zs-coastguard").permit);
  EXPECT_FALSE(D(*b, Msg().TipOff(), "zs-customs", "zs-coastguard").permit);
  EXPECT_FALSE(D(*b, Msg().TipOff(), "zs-police", "zs-customs").permit);
}

TEST(PolicySemanticsTest, ScopeByGroup) {
  auto b = MustLoad("permit p (to group:maritime-safety) because \"p\";");
  EXPECT_TRUE(D(*b, Msg().TipOff(), "zs-police", "zs-msa").permit);
  EXPECT_FALSE(D(*b, Msg().TipOff(), "zs-police", "zs-customs").permit);
}

TEST(PolicySemanticsTest, ScopeByCity) {
  auto b = MustLoad("permit p (from city:zhongshan, to city:zhuhai) because \"p\";");
  EXPECT_TRUE(D(*b, Msg().TipOff(), "zs-customs", "zh-police").permit);
  EXPECT_FALSE(D(*b, Msg().TipOff(), "zh-police", "zs-customs").permit);
  EXPECT_FALSE(D(*b, Msg().TipOff(), "zs-customs", "zs-police").permit);
}

TEST(PolicySemanticsTest, ScopeByMessageKindFallsBackToThePayload) {
  auto b = MustLoad("permit p (on [case_record, patrol_report]) because \"p\";");
  EXPECT_FALSE(D(*b, Msg().TipOff(), "zs-police", "zs-customs").permit);
  EXPECT_TRUE(D(*b, Msg().CaseRecord(), "zs-police", "zs-customs").permit);
  corridor::v1::Envelope m = Msg().Patrol();
  m.set_kind(corridor::v1::MESSAGE_KIND_UNSPECIFIED);  // kind taken from the payload
  EXPECT_TRUE(D(*b, m, "zs-police", "zs-customs").permit);
  m.clear_patrol_report();  // no kind at all: scoped rules do not match
  EXPECT_FALSE(D(*b, m, "zs-police", "zs-customs").permit);
}

TEST(PolicySemanticsTest, AnySelectorAndMixedSelectors) {
  auto b = MustLoad("permit p (from [agency:zs-msa, group:anti-smuggling], to any) because \"p\";");
  EXPECT_TRUE(D(*b, Msg().TipOff(), "zs-msa", "zh-police").permit);
  EXPECT_TRUE(D(*b, Msg().TipOff(), "zs-customs", "zs-msa").permit);
}

TEST(PolicySemanticsTest, OrderedComparisons) {
  auto b = MustLoad(R"(
permit cleared when { message.classification <= recipient.clearance } because "cleared";
permit graded when { message.grading.reliability <= B && message.grading.credibility <= 2 }
  because "graded";
)");
  using corridor::v1::CLASSIFICATION_SECRET;
  using corridor::v1::SOURCE_RELIABILITY_A;
  using corridor::v1::SOURCE_RELIABILITY_C;
  Decision d = D(*b, Msg().TipOff().Class(CLASSIFICATION_SECRET), "zs-police", "zs-msa");
  EXPECT_FALSE(d.permit);  // msa is cleared to confidential
  d = D(*b, Msg().TipOff().Class(CLASSIFICATION_SECRET), "zs-police", "zs-customs");
  EXPECT_THAT(d.permit_rules, ElementsAre("cleared"));
  d = D(*b, Msg().TipOff().Grading(SOURCE_RELIABILITY_A, 2), "zs-police", "zs-customs");
  EXPECT_THAT(d.permit_rules, ElementsAre("cleared", "graded"));
  d = D(*b, Msg().TipOff().Grading(SOURCE_RELIABILITY_C, 1), "zs-police", "zs-customs");
  EXPECT_THAT(d.permit_rules, ElementsAre("cleared"));
}

TEST(PolicySemanticsTest, TimeHourAndTimezone) {
  auto b = MustLoad(R"(
timezone "+08:00";
permit office-hours when { context.hour >= 8 && context.hour < 18 } because "office";
permit until when { context.now < "2025-03-01T12:00:00+08:00" } because "until noon";
)");
  // Now() is 10:00 in +08:00 (02:00 UTC).
  Decision d = D(*b, Msg().TipOff(), "zs-police", "zs-customs");
  EXPECT_THAT(d.permit_rules, ElementsAre("office-hours", "until"));
  d = D(*b, Msg().TipOff(), "zs-police", "zs-customs", Now() + absl::Hours(3));
  EXPECT_THAT(d.permit_rules, ElementsAre("office-hours"));
  d = D(*b, Msg().TipOff(), "zs-police", "zs-customs", Now() + absl::Hours(12));
  EXPECT_FALSE(d.permit);
}

TEST(PolicySemanticsTest, SetOperators) {
  auto b = MustLoad(R"(
permit zone when { message.defence_zone in recipient.zones } because "zone";
permit neighbours when { sender.zones intersects recipient.zones } because "neighbours";
permit addressed when { recipient.id in message.addressees } because "addressed";
permit listed when { message.topic in ["a.b", "c"] && recipient.kind in [maritime] } because "l";
)");
  Decision d = D(*b, Msg().TipOff().Zone("zs-south"), "zs-customs", "zs-msa");
  EXPECT_THAT(d.permit_rules, ElementsAre("zone"));
  d = D(*b, Msg().TipOff().Zone("zs-north"), "zs-customs", "zs-coastguard");
  EXPECT_THAT(d.permit_rules, ElementsAre("zone", "neighbours"));
  d = D(*b, Msg().TipOff().To("zs-msa").Topic("c"), "zh-police", "zs-msa");
  EXPECT_THAT(d.permit_rules, ElementsAre("addressed", "listed"));
  d = D(*b, Msg().TipOff().Zone("somewhere-else"), "zs-police", "zs-msa");
  EXPECT_THAT(d.permit_rules, ElementsAre("neighbours"));
}

TEST(PolicySemanticsTest, LikePatterns) {
  auto b = MustLoad(R"(
permit dotted when { message.topic like "smuggling.*" } because "dotted";
permit infix when { message.topic like "*.frozen*" } because "infix";
permit exact when { message.topic like "patrol" } because "exact";
)");
  EXPECT_THAT(
      D(*b, Msg().TipOff().Topic("smuggling.frozen_goods"), "zs-police", "zs-customs").permit_rules,
      ElementsAre("dotted", "infix"));
  EXPECT_THAT(D(*b, Msg().TipOff().Topic("smuggling"), "zs-police", "zs-customs").permit_rules,
              IsEmpty());
  EXPECT_THAT(D(*b, Msg().TipOff().Topic("smuggling.a.b"), "zs-police", "zs-customs").permit_rules,
              ElementsAre("dotted"));
  EXPECT_THAT(D(*b, Msg().TipOff().Topic("patrol"), "zs-police", "zs-customs").permit_rules,
              ElementsAre("exact"));
}

TEST(PolicySemanticsTest, UndeclaredHandlingCodeCountsAsUnset) {
  auto b = MustLoad(R"(
permit all because "all";
forbid h3 when { message.handling_code == H3 } because "h3";
)");
  EXPECT_TRUE(D(*b, Msg().TipOff().Code("H1"), "zs-police", "zs-customs").permit);
  // "H9" is not declared: the forbid cannot be evaluated and fails closed.
  EXPECT_FALSE(D(*b, Msg().TipOff().Code("H9"), "zs-police", "zs-customs").permit);
  EXPECT_FALSE(D(*b, Msg().TipOff(), "zs-police", "zs-customs").permit);
}

TEST(PolicySemanticsTest, AgenciesAreTakenFromTheBundleRegistry) {
  auto b = MustLoad("permit p (to group:maritime-safety) because \"p\";");
  Agency fake = A("zs-customs");
  fake.groups = {"maritime-safety"};  // a caller cannot widen a registered agency
  EXPECT_FALSE(b->Decide(Msg().TipOff(), A("zs-police"), fake, Now()).permit);
  Agency stranger;
  stranger.id = "hk-marine";
  stranger.kind = "police";
  stranger.groups = {"maritime-safety"};
  EXPECT_TRUE(b->Decide(Msg().TipOff(), A("zs-police"), stranger, Now()).permit);
  stranger.groups = {"unknown-group"};
  EXPECT_FALSE(b->Decide(Msg().TipOff(), A("zs-police"), stranger, Now()).permit);
}

TEST(PolicySemanticsTest, UnregisteredAgenciesWithEqualUnknownValues) {
  auto b = MustLoad(R"(
permit same-city when { sender.city == recipient.city } because "same";
permit same-agency when { sender.id == recipient.id } because "self";
)");
  Agency x, y;
  x.id = "x-agency";
  x.kind = "police";
  x.city = "macau";
  y.id = "y-agency";
  y.kind = "police";
  y.city = "macau";
  EXPECT_THAT(b->Decide(Msg().TipOff(), x, y, Now()).permit_rules, ElementsAre("same-city"));
  y.city = "hong-kong";
  EXPECT_FALSE(b->Decide(Msg().TipOff(), x, y, Now()).permit);
  EXPECT_THAT(b->Decide(Msg().TipOff(), x, x, Now()).permit_rules,
              ElementsAre("same-city", "same-agency"));
}

TEST(PolicySemanticsTest, DecideIntoReusesTheDecision) {
  auto b = MustLoad("permit p (on tip_off) redact [tip_off.informant] because \"p\";");
  Decision d;
  b->DecideInto(Msg().TipOff(), A("zs-police"), A("zs-msa"), Now(), &d);
  EXPECT_TRUE(d.permit);
  EXPECT_THAT(d.redact, ElementsAre("tip_off.informant"));
  b->DecideInto(Msg().CaseRecord(), A("zs-police"), A("zs-msa"), Now(), &d);
  EXPECT_FALSE(d.permit);
  EXPECT_THAT(d.redact, IsEmpty());
  EXPECT_THAT(d.permit_rules, IsEmpty());
  EXPECT_THAT(d.reasons, ElementsAre(kDefaultDenyReason));
}

TEST(PolicySemanticsTest, PermitAllBundlePermitsRegisteredAgenciesOnly) {
  auto b = PermitAllBundle(DemoRegistry());
  EXPECT_EQ(b->version(), "permit-all");
  Decision d = D(*b, Msg().CaseRecord().Code("H3"), "zs-police", "zh-police");
  EXPECT_TRUE(d.permit);
  EXPECT_THAT(d.permit_rules, ElementsAre("permit-all"));
  EXPECT_EQ(d.policy_version, "permit-all");
  Agency stranger;
  stranger.id = "nobody";
  EXPECT_FALSE(b->Decide(Msg().TipOff(), A("zs-police"), stranger, Now()).permit);
}

// The topic index must not change any decision: compare Decide (indexed)
// with Explain (every rule, one by one) over random messages.
TEST(PolicySemanticsTest, IndexedDecisionsEqualFullEvaluation) {
  std::string text;
  const std::vector<std::string> topics = {"smuggling.fuel", "smuggling.frozen",       "patrol.pos",
                                           "fisheries.gear", "smuggling.cross_border", "a.b.c"};
  std::mt19937 rng(7);
  for (int i = 0; i < 120; ++i) {
    const std::string& t = topics[rng() % topics.size()];
    const char* effect = rng() % 4 == 0 ? "forbid" : "permit";
    std::string cond;
    switch (rng() % 6) {
      case 0:
        cond = "message.topic == \"" + t + "\"";
        break;
      case 1:
        cond = "message.topic like \"" + t.substr(0, t.find('.') + 1) + "*\"";
        break;
      case 2:
        cond = "message.topic in [\"" + t + "\", \"a.b.c\"] && message.age < 2h";
        break;
      case 3:
        cond = "message.handling_code in [H0, H1]";
        break;
      case 4:
        cond = "message.topic like \"*" + t.substr(t.find('.')) + "\"";
        break;
      default:
        cond = "recipient.zones contains message.defence_zone";
    }
    const char* scope[] = {"", "(on tip_off)", "(to kind:customs)", "(from group:anti-smuggling)",
                           "(on [tip_off, patrol_report], to any)"};
    text += std::string(effect) + " r" + std::to_string(i) + " " + scope[rng() % 5] + " when { " +
            cond + " } because \"r" + std::to_string(i) + "\";\n";
  }
  auto b = MustLoad(text);
  ASSERT_NE(b, nullptr);
  const std::vector<std::string> agencies = {"zs-police", "zs-customs", "zs-msa", "zs-coastguard",
                                             "zh-police"};
  for (int i = 0; i < 400; ++i) {
    Msg m;
    switch (rng() % 3) {
      case 0:
        m.TipOff();
        break;
      case 1:
        m.CaseRecord();
        break;
      default:
        m.Patrol();
    }
    if (rng() % 5) m.Topic(topics[rng() % topics.size()]);
    if (rng() % 2) m.Observed(absl::Minutes(rng() % 240));
    if (rng() % 2) m.Code("H" + std::to_string(rng() % 4));
    if (rng() % 2) m.Zone(rng() % 2 ? "zs-north" : "zs-south");
    const std::string& from = agencies[rng() % agencies.size()];
    const std::string& to = agencies[rng() % agencies.size()];
    const Explanation e = b->Explain(m, A(from), A(to), Now());
    std::vector<std::string> permits, forbids;
    for (const auto& t : e.permits) permits.push_back(t.id);
    for (const auto& t : e.forbids) forbids.push_back(t.id);
    EXPECT_EQ(e.decision.permit_rules, permits) << "message " << i;
    EXPECT_EQ(e.decision.forbid_rules, forbids) << "message " << i;
  }
}

}  // namespace
}  // namespace corridor::policy
