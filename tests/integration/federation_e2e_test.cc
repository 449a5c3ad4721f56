// Peer domains' agencies in a real broker over real mTLS: they are known to
// policy but are never principals of this exchange, whatever this domain's CA
// signs. (Exchanges that cross to them: federation_link_e2e_test.cc.)
#include <memory>
#include <string>

#include "certs/spiffe_id.h"
#include "corridor/v1/audit.grpc.pb.h"
#include "gmock/gmock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "tests/integration/broker_fixture.h"
#include "tests/testing/envelopes.h"
#include "tests/testing/status_matchers.h"

namespace corridor::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::SizeIs;

class FederationE2eTest : public BrokerFixture {
 protected:
  void Customize(broker::BrokerConfig& config) override {
    policy::Registry reg = *config.registry;
    policy::Agency zh;
    zh.id = "zh-water-police";
    zh.domain = "zhuhai.corridor";
    zh.kind = "police";
    zh.city = "zhuhai";
    reg.agencies.push_back(zh);
    reg.peer_domains.push_back("zhuhai.corridor");
    reg.Reindex();
    config.registry = std::make_shared<const policy::Registry>(std::move(reg));
  }

  std::vector<v1::AuditEntry> SecurityEntries() {
    auto channel = MakeChannel(OptionsFor("auditor"));
    EXPECT_TRUE(channel.ok());
    auto stub = v1::Audit::NewStub(*channel);
    v1::AuditQuery q;
    q.set_event(v1::AUDIT_EVENT_SECURITY);
    grpc::ClientContext ctx;
    auto reader = stub->Query(&ctx, q);
    std::vector<v1::AuditEntry> out;
    v1::AuditQueryResponse page;
    while (reader->Read(&page)) {
      for (const auto& r : page.records()) out.push_back(r.entry());
    }
    EXPECT_TRUE(reader->Finish().ok());
    return out;
  }
};

TEST_F(FederationE2eTest, ALocalCertificateNamingAPeersAgencyIsRefusedAndAudited) {
  // This domain's own CA signs a certificate that names Zhuhai's water police.
  certs::IssueOptions io;
  io.spiffe_id = certs::AgencyNodeId("zhongshan.corridor", "zh-water-police", "node1");
  io.out_dir = certs_dir_;
  io.name = "zh-water-police";
  ASSERT_TRUE(certs::Issue(certs_dir_ / "ca", io).ok());
  auto impostor = Client("zh-water-police");
  ASSERT_NE(impostor, nullptr);
  EXPECT_THAT(impostor->Submit(SampleTipOff("x")).status(),
              StatusIs(absl::StatusCode::kUnauthenticated,
                       HasSubstr("'zh-water-police' is an agency of peer domain zhuhai.corridor")));
  SubscriptionOptions so;
  so.open.set_name("x");
  auto sub = impostor->Subscribe(so, [](const v1::Delivery&) { return true; });
  EXPECT_THAT(sub->WaitOpened(absl::Seconds(5)).status(),
              StatusIs(absl::StatusCode::kUnauthenticated));
  absl::SleepFor(absl::Milliseconds(300));
  auto entries = SecurityEntries();
  ASSERT_THAT(entries, ::testing::Not(::testing::IsEmpty()));
  EXPECT_THAT(entries[0].detail(), HasSubstr("zh-water-police"));
  EXPECT_THAT(entries[0].detail(), HasSubstr("peer domain zhuhai.corridor"));
}

// A registry that knows a peer domain's agencies but a config without that
// peer (no link to carry them): refused rather than queued for nobody.
TEST_F(FederationE2eTest, AnExchangeForAPeerWithoutALinkIsRefused) {
  v1::Envelope e = SampleTipOff("to-zhuhai");
  e.add_addressees("zs-customs");
  e.add_addressees("zh-water-police");
  EXPECT_THAT(Client("zs-police")->Submit(e).status(),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       HasSubstr("'zh-water-police' is an agency of zhuhai.corridor, which is not "
                                 "in federation.peers")));
  auto admin = Client("admin");
  auto st = admin->Status();
  ASSERT_TRUE(st.ok()) << st.status();
  EXPECT_EQ(st->exchanges_stored(), 0u);
}

}  // namespace
}  // namespace corridor::testing
