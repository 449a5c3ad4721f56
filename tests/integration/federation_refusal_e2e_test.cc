// What a broker refuses on its federation link, each one audited as a security
// entry: certificates that are not a listed peer's broker, and transfers that
// would loop, be sent on to a third domain, or speak for another domain's agency.
#include <memory>
#include <string>

#include "corridor/v1/exchange.grpc.pb.h"
#include "corridor/v1/federation.grpc.pb.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/integration/federation_fixture.h"
#include "tests/testing/envelopes.h"
#include "tests/testing/status_matchers.h"

namespace corridor::testing {
namespace {

using ::testing::HasSubstr;

class FederationRefusalE2eTest : public TwoCitiesTest {
 protected:
  void SetUp() override {
    TwoCitiesTest::SetUp();
    StartBoth();
  }

  // A channel to Zhongshan presenting `cert_dir`/`stem`.crt.
  std::shared_ptr<grpc::Channel> ChannelToZhongshan(const std::filesystem::path& cert_dir,
                                                    const std::string& stem) {
    ClientOptions o = OptionsFor(zs_, "zs-police");
    o.cert_file = (cert_dir / (stem + ".crt")).string();
    o.key_file = (cert_dir / (stem + ".key")).string();
    auto channel = MakeChannel(o);
    EXPECT_TRUE(channel.ok()) << channel.status();
    return channel.ok() ? *channel : nullptr;
  }

  // Sends one transfer to Zhongshan as Zhuhai's broker and returns its result.
  v1::TransferResult SendAsZhuhai(const v1::Transfer& t) {
    auto channel = ChannelToZhongshan(zh_.certs, "broker");
    auto stub = v1::Federation::NewStub(channel);
    grpc::ClientContext ctx;
    auto stream = stub->Link(&ctx);
    v1::LinkRequest req;
    *req.add_transfers() = t;
    EXPECT_TRUE(stream->Write(req));
    v1::LinkResponse resp;
    v1::TransferResult result;
    while (stream->Read(&resp)) {
      if (resp.results_size() > 0) {
        result = resp.results(0);
        break;
      }
    }
    stream->WritesDone();
    ctx.TryCancel();
    stream->Finish();
    return result;
  }

  // A well-formed transfer from Zhuhai's zh-police to Zhongshan's zs-police.
  v1::Transfer ValidTransfer(const std::string& id) {
    v1::Transfer t;
    t.set_seq(1);
    t.set_recipient_agency_id("zs-police");
    *t.mutable_envelope() = SampleTipOff(id);
    t.mutable_envelope()->mutable_sender()->set_agency_id("zh-police");
    t.mutable_envelope()->mutable_sender()->set_node("node1");
    t.mutable_envelope()->set_exchange_id("zh-broker-" + id);
    *t.mutable_envelope()->mutable_broker_time() =
        google::protobuf::util::TimeUtil::GetCurrentTime();
    t.add_hops("zhuhai.corridor");
    return t;
  }

  // True when Zhongshan's log holds a security entry whose detail contains `words`.
  bool Audited(const std::string& words) {
    return Eventually([&] {
      for (const auto& e : Entries(zs_, v1::AUDIT_EVENT_SECURITY)) {
        if (e.detail().find(words) != std::string::npos) return true;
      }
      return false;
    });
  }
};

TEST_F(FederationRefusalE2eTest, AValidTransferIsStoredOnceThoughSentTwice) {
  v1::TransferResult first = SendAsZhuhai(ValidTransfer("ok-1"));
  EXPECT_EQ(first.code(), 0) << first.error_message();
  EXPECT_FALSE(first.duplicate());
  EXPECT_TRUE(first.delivered());
  v1::TransferResult again = SendAsZhuhai(ValidTransfer("ok-1"));
  EXPECT_EQ(again.code(), 0) << again.error_message();
  EXPECT_TRUE(again.duplicate());
  EXPECT_EQ(again.exchange_id(), first.exchange_id());
  v1::AuditQuery q;
  q.set_event(v1::AUDIT_EVENT_COLLECTION);
  EXPECT_EQ(Entries(zs_, q).size(), 1u);
}

TEST_F(FederationRefusalE2eTest, ALoopIsRefusedAndAudited) {
  v1::Transfer t = ValidTransfer("loop-1");
  t.clear_hops();
  t.add_hops("zhongshan.corridor");
  t.add_hops("zhuhai.corridor");
  v1::TransferResult r = SendAsZhuhai(t);
  EXPECT_EQ(r.code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_THAT(r.error_message(), HasSubstr("loop"));
  EXPECT_TRUE(Audited("transfer refused: transfer.hops[0]: loop"));
}

TEST_F(FederationRefusalE2eTest, AReForwardToAThirdDomainIsRefusedAndAudited) {
  // Zhuhai asks Zhongshan to deliver to an agency that is not Zhongshan's.
  v1::Transfer t = ValidTransfer("fwd-1");
  t.set_recipient_agency_id("zh-coastguard");
  v1::TransferResult r = SendAsZhuhai(t);
  EXPECT_EQ(r.code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_THAT(r.error_message(), HasSubstr("not sent on to a third domain"));
  EXPECT_TRUE(Audited("transfer.recipient_agency_id: 'zh-coastguard'"));
  // An exchange that came to Zhuhai from elsewhere is not passed on either.
  v1::Transfer via = ValidTransfer("fwd-2");
  via.clear_hops();
  via.add_hops("hongkong.corridor");
  via.add_hops("zhuhai.corridor");
  r = SendAsZhuhai(via);
  EXPECT_EQ(r.code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_THAT(r.error_message(), HasSubstr("not sent on to a third domain"));
}

TEST_F(FederationRefusalE2eTest, APeerSpeakingForAnotherDomainsAgencyIsRefusedAndAudited) {
  v1::Transfer t = ValidTransfer("spoof-1");
  t.mutable_envelope()->mutable_sender()->set_agency_id("zs-customs");  // Zhongshan's own
  v1::TransferResult r = SendAsZhuhai(t);
  EXPECT_EQ(r.code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_THAT(r.error_message(), HasSubstr("not of the sending peer zhuhai.corridor"));
  EXPECT_TRUE(Audited("'zs-customs' is an agency of this exchange"));
}

TEST_F(FederationRefusalE2eTest, APeerCertificateIsNeverAnAgency) {
  auto channel = ChannelToZhongshan(zh_.certs, "broker");
  auto stub = v1::Exchange::NewStub(channel);
  grpc::ClientContext ctx;
  v1::SubmitRequest req;
  *req.mutable_envelope() = SampleTipOff("as-agency");
  v1::SubmitResponse resp;
  grpc::Status s = stub->Submit(&ctx, req, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED) << s.error_message();
  EXPECT_TRUE(Audited("refused by role: broker called Exchange.Submit"));
  // A Zhuhai agency certificate, valid under Zhuhai's CA, is no principal of Zhongshan.
  auto agency_channel = ChannelToZhongshan(zh_.certs, "zh-police");
  auto agency_stub = v1::Exchange::NewStub(agency_channel);
  grpc::ClientContext ctx2;
  s = agency_stub->Submit(&ctx2, req, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAUTHENTICATED) << s.error_message();
  EXPECT_THAT(s.error_message(), HasSubstr("accepted only as its broker"));
  EXPECT_TRUE(Audited("accepted only as its broker"));
}

TEST_F(FederationRefusalE2eTest, AnAgencyOrLocalBrokerCertificateIsNeverAPeer) {
  for (const std::string stem : {"zs-police", "broker"}) {
    auto channel = ChannelToZhongshan(zs_.certs, stem);
    auto stub = v1::Federation::NewStub(channel);
    grpc::ClientContext ctx;
    auto stream = stub->Link(&ctx);
    v1::LinkResponse resp;
    EXPECT_FALSE(stream->Read(&resp));
    grpc::Status s = stream->Finish();
    EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED)
        << stem << ": " << s.error_message();
  }
  EXPECT_TRUE(Audited("refused by role: agency called Federation.Link"));
  EXPECT_TRUE(Audited("a broker certificate of this exchange opened Federation.Link"));
}

TEST_F(FederationRefusalE2eTest, CertificatesOfAnotherCaOrAnUnlistedDomainAreRefusedAndAudited) {
  // A CA that calls itself zhuhai.corridor but is not the CA Zhongshan was given.
  const std::filesystem::path rogue = dir_.path() / "rogue";
  ASSERT_TRUE(certs::MakeDevSet(rogue, "zhuhai.corridor").ok());
  certs::IssueOptions o;
  o.spiffe_id = certs::BrokerId("zhuhai.corridor", "zh-broker");
  o.out_dir = rogue;
  o.name = "zh-broker";
  ASSERT_TRUE(certs::Issue(rogue / "ca", o).ok());
  // And a domain Zhongshan does not peer with.
  const std::filesystem::path hk = dir_.path() / "hk";
  ASSERT_TRUE(certs::MakeDevSet(hk, "hongkong.corridor").ok());
  for (const auto& [dir, stem] :
       {std::pair{rogue, std::string("zh-broker")}, std::pair{hk, std::string("broker")}}) {
    auto channel = ChannelToZhongshan(dir, stem);
    auto stub = v1::Federation::NewStub(channel);
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    auto stream = stub->Link(&ctx);
    v1::LinkResponse resp;
    EXPECT_FALSE(stream->Read(&resp));
    grpc::Status s = stream->Finish();
    EXPECT_NE(s.error_code(), grpc::StatusCode::OK) << stem;
  }
  // The first refusal of a reason is recorded at once (naming the certificate);
  // repeats within 10 s are summarized when the window ends.
  EXPECT_TRUE(Audited("TLS handshake refused (unknown issuer)"));
  EXPECT_TRUE(Audited("spiffe id spiffe://zhuhai.corridor/broker/zh-broker"));
}

}  // namespace
}  // namespace corridor::testing
