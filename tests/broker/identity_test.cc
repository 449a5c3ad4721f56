#include "broker/identity.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace corridor::broker {
namespace {

using ::corridor::testing::StatusIs;
using ::testing::HasSubstr;

constexpr char kTd[] = "zhongshan.corridor";

TEST(ParseSpiffeIdTest, AgencyNode) {
  auto id = ParseSpiffeId("spiffe://zhongshan.corridor/agency/zs-police/node1", kTd);
  ASSERT_TRUE(id.ok()) << id.status();
  EXPECT_EQ(id->role, PeerRole::kAgency);
  EXPECT_EQ(id->agency_id, "zs-police");
  EXPECT_EQ(id->node, "node1");
  EXPECT_EQ(id->trust_domain, kTd);
}

TEST(ParseSpiffeIdTest, OtherRoles) {
  auto auditor = ParseSpiffeId("spiffe://zhongshan.corridor/auditor/a1", kTd);
  ASSERT_TRUE(auditor.ok());
  EXPECT_EQ(auditor->role, PeerRole::kAuditor);
  EXPECT_EQ(auditor->node, "a1");
  EXPECT_TRUE(auditor->agency_id.empty());
  EXPECT_EQ(ParseSpiffeId("spiffe://zhongshan.corridor/admin/ops1", kTd)->role, PeerRole::kAdmin);
  EXPECT_EQ(ParseSpiffeId("spiffe://zhongshan.corridor/broker/b", kTd)->role, PeerRole::kBroker);
}

TEST(ParseSpiffeIdTest, RejectsOtherTrustDomain) {
  EXPECT_THAT(ParseSpiffeId("spiffe://zhuhai.corridor/agency/zh-police/n1", kTd),
              StatusIs(absl::StatusCode::kUnauthenticated, HasSubstr("trust domain")));
}

TEST(ParseSpiffeIdTest, RejectsMalformed) {
  for (const char* bad :
       {"https://zhongshan.corridor/agency/a/n", "spiffe://zhongshan.corridor",
        "spiffe://zhongshan.corridor/agency/zs-police",
        "spiffe://zhongshan.corridor/agency/zs-police/node1/extra",
        "spiffe://zhongshan.corridor/agency/ZS/node1", "spiffe://zhongshan.corridor/agency//node1",
        "spiffe://zhongshan.corridor/officer/x"}) {
    EXPECT_THAT(ParseSpiffeId(bad, kTd), StatusIs(absl::StatusCode::kUnauthenticated)) << bad;
  }
}

TEST(SelectSpiffeIdTest, ExactlyOneSpiffeUri) {
  EXPECT_EQ(*SelectSpiffeId({"https://x", "spiffe://td/agency/a/n"}), "spiffe://td/agency/a/n");
  EXPECT_THAT(SelectSpiffeId({}), StatusIs(absl::StatusCode::kUnauthenticated));
  EXPECT_THAT(SelectSpiffeId({"spiffe://td/agency/a/n", "spiffe://td/agency/b/n"}),
              StatusIs(absl::StatusCode::kUnauthenticated, HasSubstr("more than one")));
}

}  // namespace
}  // namespace corridor::broker
