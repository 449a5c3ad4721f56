#include "certs/spiffe_id.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace corridor::certs {
namespace {

using ::corridor::testing::IsOk;
using ::corridor::testing::StatusIs;
using ::testing::HasSubstr;

constexpr char kTd[] = "zhongshan.corridor";

TEST(SpiffeIdTest, BuildersMakeTheFourShapes) {
  EXPECT_EQ(AgencyNodeId(kTd, "zs-police", "node1"),
            "spiffe://zhongshan.corridor/agency/zs-police/node1");
  EXPECT_EQ(AuditorId(kTd, "auditor1"), "spiffe://zhongshan.corridor/auditor/auditor1");
  EXPECT_EQ(AdminId(kTd, "ops1"), "spiffe://zhongshan.corridor/admin/ops1");
  EXPECT_EQ(BrokerId(kTd, "zs-broker"), "spiffe://zhongshan.corridor/broker/zs-broker");
  EXPECT_EQ(TrustDomainId(kTd), "spiffe://zhongshan.corridor");
}

TEST(SpiffeIdTest, ParsesAgencyNode) {
  absl::StatusOr<SpiffeId> id = ParseSpiffeId("spiffe://zhongshan.corridor/agency/zs-msa/node_2");
  ASSERT_THAT(id, IsOk());
  EXPECT_EQ(id->trust_domain, "zhongshan.corridor");
  EXPECT_EQ(id->kind, SpiffeKind::kAgency);
  EXPECT_EQ(id->agency, "zs-msa");
  EXPECT_EQ(id->name, "node_2");
}

TEST(SpiffeIdTest, ParsesAuditorAdminBroker) {
  struct Case {
    const char* id;
    SpiffeKind kind;
    const char* name;
  };
  for (const Case& c : {Case{"spiffe://td/auditor/a1", SpiffeKind::kAuditor, "a1"},
                        Case{"spiffe://td/admin/ops.1", SpiffeKind::kAdmin, "ops.1"},
                        Case{"spiffe://td/broker/zs-broker", SpiffeKind::kBroker, "zs-broker"}}) {
    absl::StatusOr<SpiffeId> id = ParseSpiffeId(c.id);
    ASSERT_THAT(id, IsOk()) << c.id;
    EXPECT_EQ(id->trust_domain, "td") << c.id;
    EXPECT_EQ(id->kind, c.kind) << c.id;
    EXPECT_EQ(id->name, c.name) << c.id;
    EXPECT_EQ(id->agency, "") << c.id;
  }
}

TEST(SpiffeIdTest, KindNames) {
  EXPECT_EQ(SpiffeKindName(SpiffeKind::kAgency), "agency");
  EXPECT_EQ(SpiffeKindName(SpiffeKind::kAuditor), "auditor");
  EXPECT_EQ(SpiffeKindName(SpiffeKind::kAdmin), "admin");
  EXPECT_EQ(SpiffeKindName(SpiffeKind::kBroker), "broker");
}

TEST(SpiffeIdTest, ValidateAcceptsIdInItsTrustDomain) {
  EXPECT_THAT(ValidateSpiffeId(AgencyNodeId(kTd, "zh-police", "node1"), kTd), IsOk());
  EXPECT_THAT(ValidateSpiffeId(AdminId(kTd, "ops1"), kTd), IsOk());
}

TEST(SpiffeIdTest, ValidateRejectsOtherTrustDomain) {
  EXPECT_THAT(ValidateSpiffeId("spiffe://zhuhai.corridor/agency/zh-police/node1", kTd),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("spiffe://zhuhai.corridor/agency/zh-police/node1")));
  // A trust domain that merely starts like ours is still another one.
  EXPECT_THAT(ValidateSpiffeId("spiffe://zhongshan.corridor.evil/admin/ops1", kTd),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("expected")));
}

TEST(SpiffeIdTest, ValidateRejectsInvalidExpectedTrustDomain) {
  EXPECT_THAT(ValidateSpiffeId("spiffe://td/admin/ops1", ""),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ValidateSpiffeId("spiffe://TD/admin/ops1", "TD"),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(SpiffeIdTest, ComponentOf63CharactersIsAcceptedAnd64Rejected) {
  const std::string ok(63, 'a');
  const std::string too_long(64, 'a');
  EXPECT_THAT(ValidateSpiffeId(AuditorId("td", ok), "td"), IsOk());
  EXPECT_THAT(ValidateSpiffeId(AuditorId("td", too_long), "td"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("63")));
  EXPECT_THAT(ValidateSpiffeId(AgencyNodeId("td", too_long, "n"), "td"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("agency id")));
  EXPECT_THAT(ValidateSpiffeId(AgencyNodeId("td", "a", too_long), "td"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("node")));
}

class MalformedSpiffeIdTest : public ::testing::TestWithParam<std::string> {};

TEST_P(MalformedSpiffeIdTest, IsRejectedWithInvalidArgument) {
  EXPECT_THAT(ParseSpiffeId(GetParam()), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ValidateSpiffeId(GetParam(), "td"), StatusIs(absl::StatusCode::kInvalidArgument));
}

INSTANTIATE_TEST_SUITE_P(
    Malformed, MalformedSpiffeIdTest,
    ::testing::Values(
        // not a spiffe URI
        "", "td/agency/a/n", "http://td/agency/a/n", "SPIFFE://td/agency/a/n", "spiffe:/td/admin/a",
        "spiffe://", "spiffe:///agency/a/n",
        // bad trust domain / authority
        "spiffe://TD/agency/a/n", "spiffe://td:443/agency/a/n", "spiffe://u@td/agency/a/n",
        "spiffe://.td/admin/a", "spiffe://td./admin/a", "spiffe://t..d/admin/a",
        "spiffe://t d/admin/a",
        // query, fragment, percent-encoding
        "spiffe://td/agency/a/n?x=1", "spiffe://td/agency/a/n#f", "spiffe://td/agency/a/%6e",
        // empty and dot segments, trailing slash
        "spiffe://td", "spiffe://td/", "spiffe://td/agency//n", "spiffe://td/agency/a/n/",
        "spiffe://td//agency/a/n", "spiffe://td/agency/a/../n", "spiffe://td/admin/.",
        // wrong shape
        "spiffe://td/agency/a", "spiffe://td/agency/a/n/extra", "spiffe://td/auditor",
        "spiffe://td/auditor/a/b", "spiffe://td/admin/a/b", "spiffe://td/broker/a/b",
        "spiffe://td/officer/x", "spiffe://td/Agency/a/n", "spiffe://td/a/n",
        // bad components
        "spiffe://td/agency/-a/n", "spiffe://td/agency/a/_n", "spiffe://td/agency/A/n",
        "spiffe://td/admin/a b", "spiffe://td/broker/.x", "spiffe://td/auditor/a:b",
        "spiffe://td/admin/\xe4\xb8\xad"));

TEST(SpiffeIdTest, ErrorNamesTheIdAndTheReason) {
  EXPECT_THAT(
      ParseSpiffeId("spiffe://td/officer/x"),
      StatusIs(absl::StatusCode::kInvalidArgument,
               ::testing::AllOf(HasSubstr("spiffe://td/officer/x"), HasSubstr("/agency/"))));
  EXPECT_THAT(ParseSpiffeId("spiffe://td/agency/a/n?x"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("query")));
  // Control characters in untrusted input are escaped in the message.
  absl::StatusOr<SpiffeId> bad = ParseSpiffeId("spiffe://td/admin/a\nb");
  ASSERT_THAT(bad, StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(std::string(bad.status().message()), ::testing::Not(HasSubstr("\n")));
  EXPECT_THAT(std::string(bad.status().message()), HasSubstr("\\x0a"));
}

TEST(SpiffeIdTest, RejectsOverlongId) {
  std::string id = "spiffe://td/admin/" + std::string(2100, 'a');
  EXPECT_THAT(ParseSpiffeId(id), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("2048")));
}

TEST(TrustDomainTest, AcceptsValidNames) {
  EXPECT_THAT(ValidateTrustDomain("zhongshan.corridor"), IsOk());
  EXPECT_THAT(ValidateTrustDomain("a_b-c.d9"), IsOk());
  EXPECT_THAT(ValidateTrustDomain(std::string(255, 'a')), IsOk());
}

TEST(TrustDomainTest, RejectsInvalidNames) {
  for (const std::string td : {"", "Zhongshan", ".a", "a.", "a..b", "a/b", "a:1", "a b"}) {
    EXPECT_THAT(ValidateTrustDomain(td), StatusIs(absl::StatusCode::kInvalidArgument)) << td;
  }
  EXPECT_THAT(ValidateTrustDomain(std::string(256, 'a')),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("255")));
}

TEST(TrustDomainTest, ParsesBareTrustDomainIdOnly) {
  absl::StatusOr<std::string> td = ParseTrustDomainId("spiffe://zhongshan.corridor");
  ASSERT_THAT(td, IsOk());
  EXPECT_EQ(*td, "zhongshan.corridor");
  EXPECT_THAT(ParseTrustDomainId("spiffe://zhongshan.corridor/admin/ops1"),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ParseTrustDomainId("https://zhongshan.corridor"),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(ComponentTest, NamesTheComponentKind) {
  EXPECT_THAT(ValidateComponent("zs-police", "agency id"), IsOk());
  EXPECT_THAT(ValidateComponent("", "agency id"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("agency id")));
  EXPECT_THAT(ValidateComponent("Zs", "node"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("node")));
}

}  // namespace
}  // namespace corridor::certs
