// Load-time type errors: each names its position, the offending text and a caret.
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/policy/policy_test_util.h"
#include "tests/testing/status_matchers.h"

namespace corridor::policy {
namespace {

using ::corridor::policy::testing::LoadText;
using ::corridor::testing::StatusIs;
using ::testing::HasSubstr;

std::string Error(const std::string& text) {
  auto b = LoadText(text);
  EXPECT_THAT(b, StatusIs(absl::StatusCode::kInvalidArgument));
  return b.ok() ? "" : std::string(b.status().message());
}

TEST(PolicyTypeCheckTest, UnknownAttributeWithSuggestion) {
  const std::string msg =
      Error("permit p when { message.topci like \"smuggling.*\" } because \"x\";");
  EXPECT_THAT(msg, HasSubstr("test.policy:1:17: error: unknown attribute 'message.topci'; did you "
                             "mean 'message.topic'?"));
  EXPECT_THAT(msg, HasSubstr("   1 | permit p when { message.topci like"));
  EXPECT_THAT(msg, HasSubstr("     |                 ^~~~~~~~~~~~~\n"));
}

TEST(PolicyTypeCheckTest, ComparingAZoneToANumber) {
  const std::string msg = Error("forbid f when { message.defence_zone == 3 } because \"x\";");
  EXPECT_THAT(msg, HasSubstr("test.policy:1:41: error: cannot compare message.defence_zone (zone) "
                             "with 3 (number)"));
}

TEST(PolicyTypeCheckTest, ComparingAttributesOfDifferentTypes) {
  EXPECT_THAT(Error("permit p when { message.defence_zone == sender.kind } because \"x\";"),
              HasSubstr("cannot compare message.defence_zone (zone) with sender.kind (agency "
                        "kind)"));
  EXPECT_THAT(Error("permit p when { message.topic in recipient.zones } because \"x\";"),
              HasSubstr("cannot look for message.topic (text) in recipient.zones (set of zones)"));
}

TEST(PolicyTypeCheckTest, UnknownPayloadFieldPathInRedact) {
  const std::string msg = Error("permit p (on tip_off) redact [tip_off.informer] because \"x\";");
  EXPECT_THAT(msg, HasSubstr("test.policy:1:31: error: unknown payload field path "
                             "'tip_off.informer': corridor.v1.TipOff has no field 'informer'"));
  EXPECT_THAT(msg, HasSubstr("^~~~~~~~~~~~~~~~"));
  EXPECT_THAT(Error("permit p redact [case_ref] because \"x\";"),
              HasSubstr("'case_ref' is not a payload"));
  EXPECT_THAT(Error("permit p redact [tip_off.cargo.x] because \"x\";"),
              HasSubstr("'cargo' is not a message, so it has no field 'x'"));
}

TEST(PolicyTypeCheckTest, RedactPathMustFitTheRuleKinds) {
  EXPECT_THAT(Error("permit p (on tip_off) redact [case_record.suspects] because \"x\";"),
              HasSubstr("redact path 'case_record.suspects' is a case_record field, but rule 'p' "
                        "is not on case_record"));
}

TEST(PolicyTypeCheckTest, UnknownAgencyGroupKindCity) {
  EXPECT_THAT(Error("permit p (from agency:zs-polcie) because \"x\";"),
              HasSubstr("test.policy:1:16: error: unknown agency 'zs-polcie' (not in the "
                        "registry); did you mean 'zs-police'?"));
  EXPECT_THAT(Error("permit p (to group:anti-smugling) because \"x\";"),
              HasSubstr("unknown group 'anti-smugling' (no agency in the registry has it); did "
                        "you mean 'anti-smuggling'?"));
  EXPECT_THAT(Error("permit p (to kind:coastguard) because \"x\";"),
              HasSubstr("unknown agency kind 'coastguard'"));
  EXPECT_THAT(Error("permit p (to city:macau) because \"x\";"), HasSubstr("unknown city 'macau'"));
  EXPECT_THAT(Error("permit p when { recipient.groups contains \"fisheries\" } because \"x\";"),
              HasSubstr("unknown group 'fisheries'"));
  EXPECT_THAT(Error("permit p when { sender.id == zs-polise } because \"x\";"),
              HasSubstr("unknown agency 'zs-polise'"));
  EXPECT_THAT(Error("permit p when { message.defence_zone == zs-east } because \"x\";"),
              HasSubstr("unknown zone 'zs-east' (no agency in the registry covers it)"));
}

TEST(PolicyTypeCheckTest, HandlingCodesComeFromTheRegistry) {
  EXPECT_THAT(Error("forbid f when { message.handling_code == H9 } because \"x\";"),
              HasSubstr("unknown handling code 'H9' (the deployment declares H0, H1, H2, H3)"));
  EXPECT_TRUE(LoadText("forbid f when { message.handling_code == \"H3\" } because \"x\";").ok());
}

TEST(PolicyTypeCheckTest, UnknownMessageKindAndEnumValues) {
  EXPECT_THAT(Error("permit p (on fax) because \"x\";"), HasSubstr("unknown message kind 'fax'"));
  EXPECT_THAT(Error("permit p when { message.classification <= topsecret } because \"x\";"),
              HasSubstr("unknown classification 'topsecret'"));
  EXPECT_THAT(Error("permit p when { message.grading.reliability <= G } because \"x\";"),
              HasSubstr("unknown source reliability 'G'"));
  EXPECT_THAT(Error("permit p when { message.grading.credibility <= 9 } because \"x\";"),
              HasSubstr("between 1 and 6; 9 is out of range"));
  EXPECT_THAT(Error("permit p when { context.hour < 24 } because \"x\";"),
              HasSubstr("between 0 and 23"));
  EXPECT_THAT(Error("permit p when { context.now < \"tomorrow\" } because \"x\";"),
              HasSubstr("is not an RFC 3339 time"));
}

TEST(PolicyTypeCheckTest, OrderingNeedsAnOrderedType) {
  EXPECT_THAT(Error("permit p when { message.topic < \"m\" } because \"x\";"),
              HasSubstr("'<' needs an ordered value, but message.topic is a text"));
  EXPECT_THAT(Error("permit p when { message.defence_zone >= zs-north } because \"x\";"),
              HasSubstr("'>=' needs an ordered value, but message.defence_zone is a zone"));
}

TEST(PolicyTypeCheckTest, DurationsNeedAUnit) {
  EXPECT_THAT(Error("permit p when { message.age < 24 } because \"x\";"),
              HasSubstr("cannot compare message.age (duration) with 24 (number); give a unit, "
                        "e.g. 24h"));
}

TEST(PolicyTypeCheckTest, SetsUseContainsInIntersects) {
  EXPECT_THAT(Error("permit p when { recipient.zones == sender.zones } because \"x\";"),
              HasSubstr("'recipient.zones' is a set of zones; use contains, in or intersects"));
  EXPECT_THAT(Error("permit p when { message.topic contains \"x\" } because \"x\";"),
              HasSubstr("the left of 'contains' must be a set attribute"));
  EXPECT_THAT(Error("permit p when { message.topic intersects [\"a\"] } because \"x\";"),
              HasSubstr("'intersects' needs a set attribute"));
}

TEST(PolicyTypeCheckTest, LikeMatchesText) {
  EXPECT_THAT(Error("permit p when { message.defence_zone like \"zs-*\" } because \"x\";"),
              HasSubstr("'like' matches text"));
  EXPECT_THAT(Error("permit p when { message.topic like smuggling } because \"x\";"),
              HasSubstr("'like' takes a quoted pattern"));
}

TEST(PolicyTypeCheckTest, ConditionsAreBoolean) {
  EXPECT_THAT(Error("permit p when { message.topic } because \"x\";"),
              HasSubstr("'message.topic' is a text, not a condition"));
  EXPECT_THAT(Error("permit p when { (message.topic == \"a\") == true } because \"x\";"),
              HasSubstr("are values, not conditions"));
  EXPECT_THAT(Error("permit p when { \"a\" == \"b\" } because \"x\";"),
              HasSubstr("compare an attribute with a value (both sides are values)"));
}

TEST(PolicyTypeCheckTest, EveryRuleHasAUniqueIdAndAReason) {
  EXPECT_THAT(Error("permit p;"), HasSubstr("rule 'p' has no reason"));
  const std::string msg = Error("permit p because \"a\";\nforbid p because \"b\";");
  EXPECT_THAT(msg, HasSubstr("test.policy:2:8: error: duplicate rule id 'p'"));
  EXPECT_THAT(msg, HasSubstr("test.policy:1:8: note: first defined here"));
}

TEST(PolicyTypeCheckTest, ReportsEveryErrorInOneRun) {
  const std::string msg = Error(
      "permit a when { message.topci == \"x\" } because \"x\";\n"
      "permit b when { message.defence_zone == 3 } because \"x\";\n"
      "permit c (to group:nope) because \"x\";\n");
  EXPECT_THAT(msg, HasSubstr("test.policy:1:"));
  EXPECT_THAT(msg, HasSubstr("test.policy:2:"));
  EXPECT_THAT(msg, HasSubstr("test.policy:3:"));
  EXPECT_THAT(msg, HasSubstr("3 errors"));
}

TEST(PolicyTypeCheckTest, TimezoneDirective) {
  EXPECT_TRUE(LoadText("timezone \"+08:00\"; permit p because \"x\";").ok());
  EXPECT_TRUE(LoadText("timezone \"UTC\"; permit p because \"x\";").ok());
  EXPECT_THAT(Error("timezone \"Mars/Olympus\"; permit p because \"x\";"),
              HasSubstr("unknown time zone 'Mars/Olympus'"));
}

TEST(PolicyTypeCheckTest, EveryAttributeTypeChecks) {
  auto b = LoadText(R"(
permit everything (on [tip_off, case_record, patrol_report], from any, to any)
  when {
    message.kind == tip_off && message.topic like "smuggling.*" && message.topic != "x"
    && message.handling_code in [H0, H1] && message.classification <= confidential
    && message.purpose == "interdiction" && message.case_ref like "中公*"
    && message.defence_zone in recipient.zones && message.grading.reliability <= C
    && message.grading.credibility <= 3 && message.age < 48h
    && recipient.id in message.addressees && message.addressees contains zs-police
    && message.addressees intersects [zs-customs, zs-msa]
    && context.now < "2030-01-01T00:00:00+08:00" && context.hour >= 8 && context.hour < 20
    && sender.id != recipient.id && sender.kind == police && sender.city == recipient.city
    && sender.zones intersects recipient.zones && sender.groups contains "anti-smuggling"
    && sender.clearance >= message.classification && recipient.kind in [customs, coast_guard]
    && recipient.city == zhongshan && recipient.zones contains zs-north
    && recipient.groups intersects ["anti-smuggling", "maritime-safety"]
    && recipient.clearance >= message.classification
    && has message.case_ref && !(has message.purpose) || false
  }
  unless { message.topic == "smuggling.test" }
  because "type-checks every attribute";
)");
  EXPECT_TRUE(b.ok()) << b.status();
}

}  // namespace
}  // namespace corridor::policy
