// Peer domains in the registry and in the policy language: remote agencies
// carry their peer's trust domain, and rules can select and test it
// (`to domain:"zhuhai.corridor"`, `recipient.domain == "zhuhai.corridor"`).
#include <memory>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "policy/bundle.h"
#include "policy/registry.h"
#include "tests/policy/policy_test_util.h"
#include "yaml-cpp/yaml.h"

namespace corridor::policy {
namespace {

using ::corridor::policy::testing::Msg;
using ::corridor::policy::testing::Now;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

constexpr char kTwoCities[] = R"(
trust_domain: zhongshan.corridor
agencies:
  - {id: zs-police, kind: police, city: zhongshan, groups: [anti-smuggling]}
  - {id: zs-customs, kind: customs, city: zhongshan, groups: [anti-smuggling]}
federation:
  peers:
    - domain: zhuhai.corridor
      broker: zh-broker
      address: 127.0.0.1:7444
      ca: zhuhai-ca.crt
      agencies:
        - {id: zh-water-police, kind: police, city: zhuhai, groups: [anti-smuggling]}
        - {id: zh-coastguard, kind: coast_guard, city: zhuhai, groups: [anti-smuggling]}
    - domain: hongkong.corridor
      broker: hk-broker
      address: 127.0.0.1:7445
      ca: hongkong-ca.crt
      cross_border: true
      agencies:
        - {id: hk-marine-police, kind: police, city: hongkong}
)";

absl::StatusOr<Registry> Parse(const std::string& yaml) { return ParseRegistry(YAML::Load(yaml)); }

std::shared_ptr<const Registry> TwoCities() {
  auto reg = Parse(kTwoCities);
  EXPECT_TRUE(reg.ok()) << reg.status();
  return std::make_shared<const Registry>(*std::move(reg));
}

TEST(FederationRegistryTest, RemoteAgenciesCarryTheirPeersDomain) {
  auto reg = TwoCities();
  EXPECT_THAT(reg->peer_domains, ElementsAre("zhuhai.corridor", "hongkong.corridor"));
  ASSERT_NE(reg->Find("zs-police"), nullptr);
  EXPECT_EQ(reg->Find("zs-police")->domain, "zhongshan.corridor");
  EXPECT_TRUE(reg->IsLocal(*reg->Find("zs-police")));
  ASSERT_NE(reg->Find("zh-water-police"), nullptr);
  EXPECT_EQ(reg->Find("zh-water-police")->domain, "zhuhai.corridor");
  EXPECT_EQ(reg->Find("hk-marine-police")->domain, "hongkong.corridor");
  // Only this exchange's own agencies may connect to it.
  EXPECT_NE(reg->FindLocal("zs-customs"), nullptr);
  EXPECT_EQ(reg->FindLocal("zh-water-police"), nullptr);
  EXPECT_EQ(reg->FindLocal("nobody"), nullptr);
}

TEST(FederationRegistryTest, AnIdNamesOnePrincipalAcrossDomains) {
  std::string yaml = kTwoCities;
  yaml.replace(yaml.find("zh-coastguard"), 13, "zs-customs");
  auto reg = Parse(yaml);
  EXPECT_EQ(reg.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(reg.status().message(),
              HasSubstr("federation.peers[0].agencies[1].id: duplicate 'zs-customs'"));
}

TEST(FederationRegistryTest, AnEntryCannotClaimAnotherDomain) {
  std::string yaml = kTwoCities;
  yaml.replace(yaml.find("{id: hk-marine-police,"), 22,
               "{id: hk-marine-police, domain: zhuhai.corridor,");
  auto reg = Parse(yaml);
  EXPECT_EQ(reg.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(reg.status().message(),
              HasSubstr("federation.peers[1].agencies[0].domain: 'zhuhai.corridor' is not this "
                        "list's domain 'hongkong.corridor'"));
}

TEST(FederationRegistryTest, PeerDomainsAreValidUniqueAndNotOurOwn) {
  std::string own = kTwoCities;
  own.replace(own.find("domain: zhuhai.corridor"), 23, "domain: zhongshan.corridor");
  EXPECT_THAT(Parse(own).status().message(),
              HasSubstr("federation.peers[0].domain: 'zhongshan.corridor' is this exchange's own"));
  std::string dup = kTwoCities;
  dup.replace(dup.find("domain: hongkong.corridor"), 25, "domain: zhuhai.corridor");
  EXPECT_THAT(Parse(dup).status().message(),
              HasSubstr("federation.peers[1].domain: duplicate peer 'zhuhai.corridor'"));
  std::string bad = kTwoCities;
  bad.replace(bad.find("domain: zhuhai.corridor"), 23, "domain: Zhuhai/x");
  EXPECT_THAT(Parse(bad).status().message(),
              HasSubstr("federation.peers[0].domain: 'Zhuhai/x' is not a valid SPIFFE trust"));
}

class FederationPolicyTest : public ::testing::Test {
 protected:
  std::shared_ptr<const Bundle> Load(const std::string& text) {
    auto b = LoadBundleFromSources({{"fed.policy", text}}, reg_);
    EXPECT_TRUE(b.ok()) << b.status();
    return b.ok() ? *b : nullptr;
  }
  Decision D(const Bundle& b, const std::string& from, const std::string& to) {
    return b.Decide(Msg().TipOff().Topic("smuggling.frozen").Code("H0").Build(), *reg_->Find(from),
                    *reg_->Find(to), Now());
  }
  std::shared_ptr<const Registry> reg_ = TwoCities();
};

TEST_F(FederationPolicyTest, DomainSelectorAdmitsThatDomainsAgenciesOnly) {
  auto b = Load(R"(
permit to-zhuhai (on tip_off, to domain:"zhuhai.corridor")
  redact [tip_off.informant]
  because "Zhuhai's agencies get tip-offs without the informant.";
)");
  ASSERT_NE(b, nullptr);
  const Decision zh = D(*b, "zs-police", "zh-coastguard");
  EXPECT_TRUE(zh.permit);
  EXPECT_THAT(zh.redact, ElementsAre("tip_off.informant"));
  EXPECT_FALSE(D(*b, "zs-police", "hk-marine-police").permit);
  EXPECT_FALSE(D(*b, "zs-police", "zs-customs").permit);
}

TEST_F(FederationPolicyTest, DomainAttributesCompareAgainstEachOther) {
  // Within one domain everything goes; across domains only to police.
  auto b = Load(R"(
permit same-domain when { recipient.domain == sender.domain } because "local sharing";
permit cross-domain-police (to kind:police)
  when { recipient.domain != sender.domain && recipient.domain != "hongkong.corridor" }
  because "other mainland cities' police";
)");
  ASSERT_NE(b, nullptr);
  EXPECT_THAT(D(*b, "zs-police", "zs-customs").permit_rules, ElementsAre("same-domain"));
  EXPECT_THAT(D(*b, "zs-police", "zh-water-police").permit_rules,
              ElementsAre("cross-domain-police"));
  EXPECT_FALSE(D(*b, "zs-police", "zh-coastguard").permit);
  EXPECT_FALSE(D(*b, "zs-police", "hk-marine-police").permit);
}

TEST_F(FederationPolicyTest, UnknownDomainsAreTypeErrors) {
  auto b = LoadBundleFromSources({{"fed.policy", R"(
permit p when { recipient.domain == "macau.corridor" } because "x";
)"}},
                                 reg_);
  ASSERT_FALSE(b.ok());
  EXPECT_THAT(b.status().message(),
              HasSubstr("unknown trust domain 'macau.corridor' (neither this exchange's nor a "
                        "peer's in the registry)"));
  auto s = LoadBundleFromSources(
      {{"fed.policy", "permit p (to domain:\"macau.corridor\") because \"x\";"}}, reg_);
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(s.status().message(), HasSubstr("unknown trust domain 'macau.corridor'"));
}

TEST_F(FederationPolicyTest, InvariantsAreCheckedAgainstRemoteRecipients) {
  auto b = LoadBundleFromSources({{"fed.policy", R"(
permit everything because "too broad";
assert never nothing-to-hong-kong (to domain:"hongkong.corridor") because "not yet agreed";
)"}},
                                 reg_);
  ASSERT_FALSE(b.ok());
  EXPECT_THAT(b.status().message(),
              HasSubstr("assert never 'nothing-to-hong-kong' is violated: rule 'everything' "
                        "permits"));
  EXPECT_THAT(b.status().message(), HasSubstr("to hk-marine-police"));
}

TEST_F(FederationPolicyTest, ExplainShowsTheDomain) {
  auto b = Load("permit p (to domain:\"zhuhai.corridor\") because \"x\";");
  ASSERT_NE(b, nullptr);
  const Explanation e = b->Explain(Msg().TipOff().Build(), *reg_->Find("zs-police"),
                                   *reg_->Find("hk-marine-police"), Now());
  EXPECT_FALSE(e.decision.permit);
  EXPECT_THAT(e.Text(), HasSubstr("domain hongkong.corridor"));
}

}  // namespace
}  // namespace corridor::policy
