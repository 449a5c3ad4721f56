// Two cities' brokers peered over real mTLS: an exchange addressed to an agency
// of the peer crosses the link, is stored there under that side's policy and
// delivered, and the peer's signed receipt is verified and recorded at the
// origin.
#include <fstream>
#include <memory>
#include <set>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/integration/federation_fixture.h"
#include "tests/testing/envelopes.h"
#include "tests/testing/inbox.h"
#include "tests/testing/status_matchers.h"

namespace corridor::testing {
namespace {

using ::testing::Contains;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

SubscriptionOptions Sub(const std::string& name) {
  SubscriptionOptions o;
  o.open.set_name(name);
  o.initial_backoff = absl::Milliseconds(50);
  return o;
}

class FederationLinkE2eTest : public TwoCitiesTest {};

TEST_F(FederationLinkE2eTest, AnExchangeToAPeersAgencyIsDeliveredThereWithItsOriginAndReceipted) {
  StartBoth();
  auto police = Client(zs_, "zs-police");
  ASSERT_NE(police, nullptr);
  v1::Envelope e = SampleTipOff("fed-1");
  e.add_addressees("zs-customs");
  e.add_addressees("zh-police");
  auto reply = police->Submit(e);
  ASSERT_TRUE(reply.ok()) << reply.status();
  EXPECT_THAT(reply->recipients(), ElementsAre("zs-customs", "zh-police"));

  auto zh_police = Client(zh_, "zh-police");
  ASSERT_NE(zh_police, nullptr);
  Inbox inbox;
  auto sub = zh_police->Subscribe(Sub("duty"), inbox.Handler());
  auto got = inbox.WaitFor(1);
  ASSERT_EQ(got.size(), 1u);
  const v1::Envelope& d = got[0].envelope();
  EXPECT_EQ(d.sender().agency_id(), "zs-police");
  EXPECT_EQ(d.origin().domain(), "zhongshan.corridor");
  EXPECT_EQ(d.origin().exchange_id(), reply->exchange_id());
  EXPECT_EQ(d.origin().agency_id(), "zs-police");
  EXPECT_THAT(d.origin().hops(), ElementsAre("zhongshan.corridor", "zhuhai.corridor"));
  EXPECT_NE(d.exchange_id(), reply->exchange_id());  // Zhuhai's own id
  // Only the recipient's own domain's addressees travel.
  EXPECT_THAT(d.addressees(), ElementsAre("zh-police"));
  EXPECT_EQ(d.tip_off().vessel().name(), e.tip_off().vessel().name());

  // Zhuhai recorded the collection from its peer, with the origin.
  v1::AuditQuery q;
  q.set_event(v1::AUDIT_EVENT_COLLECTION);
  auto collections = Entries(zh_, q);
  ASSERT_EQ(collections.size(), 1u);
  EXPECT_EQ(collections[0].origin().exchange_id(), reply->exchange_id());
  EXPECT_EQ(collections[0].peer_domain(), "zhongshan.corridor");
  EXPECT_EQ(collections[0].actor_spiffe_id(), "spiffe://zhongshan.corridor/broker/zs-broker");

  // Zhongshan recorded the transfer as a disclosure naming the peer, then the receipt.
  v1::AuditQuery dq;
  dq.set_event(v1::AUDIT_EVENT_DISCLOSURE);
  dq.set_exchange_id(reply->exchange_id());
  auto disclosures = Entries(zs_, dq);
  ASSERT_EQ(disclosures.size(), 2u);
  EXPECT_EQ(disclosures[1].recipient_agency_id(), "zh-police");
  EXPECT_EQ(disclosures[1].peer_domain(), "zhuhai.corridor");
  EXPECT_EQ(disclosures[0].peer_domain(), "");
  std::vector<v1::AuditEntry> receipts;
  ASSERT_TRUE(Eventually([&] {
    receipts = Entries(zs_, v1::AUDIT_EVENT_RECEIPT);
    return !receipts.empty();
  }));
  ASSERT_EQ(receipts.size(), 1u);
  EXPECT_EQ(receipts[0].exchange_id(), reply->exchange_id());
  EXPECT_EQ(receipts[0].recipient_agency_id(), "zh-police");
  EXPECT_EQ(receipts[0].peer_domain(), "zhuhai.corridor");
  EXPECT_FALSE(receipts[0].receipt().checkpoint().empty());

  // The link's figures, as an admin sees them.
  auto admin = Client(zs_, "admin");
  ASSERT_NE(admin, nullptr);
  ASSERT_TRUE(Eventually([&] {
    auto st = admin->Status();
    return st.ok() && st->peers_size() == 1 && st->peers(0).receipts() == 1 &&
           st->peers(0).backlog() == 0;
  }));
  auto st = admin->Status();
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(st->peers(0).domain(), "zhuhai.corridor");
  EXPECT_EQ(st->peers(0).state(), "connected");
  EXPECT_EQ(st->peers(0).transferred(), 1u);
  EXPECT_EQ(st->peers(0).refused(), 0u);
}

TEST_F(FederationLinkE2eTest, WhileThePeerIsDownTransfersQueueThenEachArrivesOnce) {
  StartBoth();
  Stop(zh_);
  auto police = Client(zs_, "zs-police");
  ASSERT_NE(police, nullptr);
  constexpr int kCount = 20;
  std::set<std::string> sent;
  for (int i = 0; i < kCount; ++i) {
    v1::Envelope e = SampleTipOff("cut-" + std::to_string(i));
    e.add_addressees("zh-police");
    auto reply = police->Submit(e);  // acknowledged by Zhongshan while Zhuhai is down
    ASSERT_TRUE(reply.ok()) << reply.status();
    sent.insert(reply->exchange_id());
  }
  auto admin = Client(zs_, "admin");
  ASSERT_NE(admin, nullptr);
  auto down = admin->Status();
  ASSERT_TRUE(down.ok());
  ASSERT_EQ(down->peers_size(), 1);
  EXPECT_NE(down->peers(0).state(), "connected");
  EXPECT_EQ(down->peers(0).backlog(), static_cast<uint64_t>(kCount));
  EXPECT_TRUE(down->peers(0).has_oldest());

  Start(zh_, ConfigFor(zh_, zs_, ""));  // the same data dir and key
  auto zh_police = Client(zh_, "zh-police");
  ASSERT_NE(zh_police, nullptr);
  Inbox inbox;
  auto sub = zh_police->Subscribe(Sub("duty"), inbox.Handler());
  ASSERT_EQ(inbox.WaitFor(kCount, absl::Seconds(30)).size(), static_cast<size_t>(kCount));
  ASSERT_TRUE(Eventually([&] { return Entries(zs_, v1::AUDIT_EVENT_RECEIPT).size() >= kCount; }));
  absl::SleepFor(absl::Milliseconds(300));  // anything extra would have come by now
  std::set<std::string> got;
  for (const v1::Delivery& d : inbox.Now()) got.insert(d.envelope().origin().exchange_id());
  EXPECT_EQ(inbox.Now().size(), static_cast<size_t>(kCount));
  EXPECT_EQ(got, sent);
  EXPECT_EQ(Entries(zs_, v1::AUDIT_EVENT_RECEIPT).size(), static_cast<size_t>(kCount));
  ASSERT_TRUE(Eventually([&] {
    auto st = admin->Status();
    return st.ok() && st->peers(0).backlog() == 0 && !st->peers(0).has_oldest();
  }));
}

TEST_F(FederationLinkE2eTest, AFullOutboxRefusesSubmissionsForThatPeerOnly) {
  broker::BrokerConfig config = ConfigFor(zs_, zh_, "");
  config.federation.outbox_max = 3;
  Start(zs_, config);  // Zhuhai never comes up
  auto police = Client(zs_, "zs-police");
  ASSERT_NE(police, nullptr);
  for (int i = 0; i < 3; ++i) {
    v1::Envelope e = SampleTipOff("full-" + std::to_string(i));
    e.add_addressees("zh-police");
    ASSERT_TRUE(police->Submit(e).ok());
  }
  v1::Envelope over = SampleTipOff("full-3");
  over.add_addressees("zh-police");
  auto refused = police->Submit(over);
  EXPECT_THAT(refused.status(),
              StatusIs(absl::StatusCode::kResourceExhausted, HasSubstr("federation.outbox_max 3")));
  v1::Envelope local = SampleTipOff("full-local");
  local.add_addressees("zs-customs");
  EXPECT_TRUE(police->Submit(local).ok());
}

// Both sides' policies: Zhongshan lets cross-border tip-offs go to Zhuhai without
// the informant; Zhuhai's police get them without the narrative too, its coast
// guard as Zhongshan sent them, and nothing marked H2 from a peer.
class FederationViewsE2eTest : public TwoCitiesTest {
 protected:
  void SetUp() override {
    TwoCitiesTest::SetUp();
    WritePolicy(zs_, R"(
permit to-zhuhai (on tip_off, from city:zhongshan, to domain:"zhuhai.corridor")
  when { message.topic == "smuggling.cross_border" }
  redact [tip_off.informant]
  because "Zhuhai gets cross-border tip-offs without the informant.";
)");
    WritePolicy(zh_, R"(
forbid no-h2-from-peers
  when { message.handling_code == H2 && sender.domain != recipient.domain }
  because "Zhuhai takes nothing marked H2 from another city.";
permit zhongshan-to-police (on tip_off, from domain:"zhongshan.corridor", to kind:police)
  redact [tip_off.narrative]
  because "Zhuhai police get the vessel and the place, not the story.";
permit zhongshan-to-coastguard (on tip_off, from domain:"zhongshan.corridor", to kind:coast_guard)
  because "The coast guard gets what Zhongshan sent.";
)");
    StartBoth();
  }
  void WritePolicy(City& c, const std::string& text) {
    c.policy_dir = (c.dir / "policy").string();
    std::filesystem::create_directories(c.policy_dir);
    std::ofstream(c.dir / "policy" / "main.policy") << text;
  }
};

TEST_F(FederationViewsE2eTest, EachRemoteAgencyGetsWhatBothSidesAllowAndNoMore) {
  auto police = Client(zs_, "zs-police");
  ASSERT_NE(police, nullptr);
  v1::Envelope e = SampleTipOff("view-1", "smuggling.cross_border");
  e.add_addressees("zh-police");
  e.add_addressees("zh-coastguard");
  auto reply = police->Submit(e);
  ASSERT_TRUE(reply.ok()) << reply.status();
  EXPECT_THAT(reply->recipients(), ElementsAre("zh-police", "zh-coastguard"));
  v1::Envelope other = SampleTipOff("view-2", "smuggling.fuel");  // not cross-border
  other.add_addressees("zh-police");
  auto withheld = police->Submit(other);
  ASSERT_TRUE(withheld.ok());
  EXPECT_EQ(withheld->recipients_size(), 0);
  EXPECT_EQ(withheld->withheld(), 1u);
  v1::Envelope h2 = SampleTipOff("view-3", "smuggling.cross_border");
  h2.set_handling_code("H2");
  h2.add_addressees("zh-police");
  auto sent_h2 = police->Submit(h2);
  ASSERT_TRUE(sent_h2.ok());
  EXPECT_THAT(sent_h2->recipients(), ElementsAre("zh-police"));  // Zhongshan permits it

  Inbox police_inbox, coastguard_inbox;
  auto zh_police = Client(zh_, "zh-police");
  auto zh_coastguard = Client(zh_, "zh-coastguard");
  ASSERT_NE(zh_police, nullptr);
  ASSERT_NE(zh_coastguard, nullptr);
  auto s1 = zh_police->Subscribe(Sub("duty"), police_inbox.Handler());
  auto s2 = zh_coastguard->Subscribe(Sub("duty"), coastguard_inbox.Handler());
  ASSERT_EQ(police_inbox.WaitFor(1).size(), 1u);
  ASSERT_EQ(coastguard_inbox.WaitFor(1).size(), 1u);
  // Zhuhai's own denial of the H2 one is recorded there once it arrives.
  ASSERT_TRUE(Eventually([&] {
    v1::AuditQuery q;
    q.set_event(v1::AUDIT_EVENT_DENIAL);
    auto denials = Entries(zh_, q);
    return denials.size() == 1 && denials[0].origin().exchange_id() == sent_h2->exchange_id() &&
           denials[0].rule_ids(0) == "no-h2-from-peers";
  }));
  absl::SleepFor(absl::Milliseconds(300));
  ASSERT_EQ(police_inbox.Now().size(), 1u);  // neither view-2 nor the H2 one
  ASSERT_EQ(coastguard_inbox.Now().size(), 1u);

  const v1::Delivery p = police_inbox.Now()[0];
  EXPECT_EQ(p.envelope().origin().exchange_id(), reply->exchange_id());
  EXPECT_THAT(p.redacted_fields(), ElementsAre("tip_off.informant", "tip_off.narrative"));
  EXPECT_FALSE(p.envelope().tip_off().has_informant());
  EXPECT_TRUE(p.envelope().tip_off().narrative().empty());
  EXPECT_EQ(p.envelope().tip_off().vessel().name(), e.tip_off().vessel().name());
  const v1::Delivery c = coastguard_inbox.Now()[0];
  EXPECT_THAT(c.redacted_fields(), ElementsAre("tip_off.informant"));
  EXPECT_FALSE(c.envelope().tip_off().has_informant());
  EXPECT_EQ(c.envelope().tip_off().narrative(), e.tip_off().narrative());
}

}  // namespace
}  // namespace corridor::testing
