// Resource limits over real mTLS: streams per certificate and per connection
// (RESOURCE_EXHAUSTED, counted, audited once per window), a stream that never
// speaks is closed, the registry cuts the streams a predicate names, a TCP
// connection that never completes its TLS handshake is closed, and a
// subscriber that never acks is redelivered with backoff and audited in
// summaries. The limits are scaled down so that each test takes seconds.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fstream>
#include <map>
#include <mutex>
#include <sstream>

#include "agency_adapters/cli/common.h"
#include "broker/grpc/stream_registry.h"
#include "corridor/v1/audit.grpc.pb.h"
#include "gmock/gmock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "tests/integration/broker_fixture.h"
#include "tests/testing/envelopes.h"

namespace corridor::testing {
namespace {

using broker::grpc_transport::StreamInfo;
using broker::grpc_transport::StreamRegistry;
using ::testing::HasSubstr;

using SubscribeStream = grpc::ClientReaderWriter<v1::SubscribeRequest, v1::SubscribeResponse>;

class LimitsE2eTest : public BrokerFixture {
 protected:
  void Customize(broker::BrokerConfig& config) override {
    config.limits.streams_per_connection = 3;
    config.limits.streams_per_certificate = 4;
    config.limits.stream_first_message_timeout = absl::Milliseconds(700);
    config.limits.handshake_timeout = absl::Seconds(1);
    config.limits.redelivery_audit_window = absl::Seconds(1);
    config.limits.audit_window = absl::Minutes(10);  // the summary comes after the test
  }

  // A channel of its own (its own connection) for `stem`.
  std::shared_ptr<grpc::Channel> Channel(const std::string& stem, bool dedicated = true) {
    ClientOptions o = OptionsFor(stem);
    o.dedicated_connection = dedicated;
    auto channel = MakeChannel(o);
    EXPECT_TRUE(channel.ok()) << channel.status();
    return *channel;
  }

  // A Subscribe stream that opened subscription `name` (or failed: see Finish).
  struct Stream {
    std::unique_ptr<grpc::ClientContext> ctx = std::make_unique<grpc::ClientContext>();
    std::unique_ptr<v1::Exchange::Stub> stub;
    std::unique_ptr<SubscribeStream> rw;
    bool opened = false;
    grpc::Status Finish() {
      rw->WritesDone();
      v1::SubscribeResponse r;
      while (rw->Read(&r)) {
      }
      return rw->Finish();
    }
  };
  Stream Open(std::shared_ptr<grpc::Channel> channel, const std::string& name) {
    Stream s;
    s.ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
    s.stub = v1::Exchange::NewStub(channel);
    s.rw = s.stub->Subscribe(s.ctx.get());
    v1::SubscribeRequest open;
    open.mutable_open()->set_name(name);
    v1::SubscribeResponse r;
    s.opened = s.rw->Write(open) && s.rw->Read(&r) && r.has_opened();
    return s;
  }

  std::vector<v1::AuditEntry> Audit(const v1::AuditQuery& q) {
    auto stub = v1::Audit::NewStub(Channel("auditor"));
    grpc::ClientContext ctx;
    auto reader = stub->Query(&ctx, q);
    std::vector<v1::AuditEntry> out;
    v1::AuditQueryResponse page;
    while (reader->Read(&page)) {
      for (const auto& r : page.records()) out.push_back(r.entry());
    }
    grpc::Status s = reader->Finish();
    EXPECT_TRUE(s.ok()) << s.error_message();
    return out;
  }
  // The security entries whose detail mentions `what`, waiting up to 5 s for `n`.
  std::vector<v1::AuditEntry> SecurityEntries(const std::string& what, size_t n) {
    std::vector<v1::AuditEntry> out;
    for (int i = 0; i < 50; ++i) {
      out.clear();
      v1::AuditQuery q;
      q.set_event(v1::AUDIT_EVENT_SECURITY);
      for (auto& e : Audit(q)) {
        if (e.detail().find(what) != std::string::npos) out.push_back(std::move(e));
      }
      if (out.size() >= n) break;
      absl::SleepFor(absl::Milliseconds(100));
    }
    return out;
  }

  v1::StatusResponse AdminStatus() {
    auto admin = Client("admin");
    auto st = admin->Status();
    EXPECT_TRUE(st.ok()) << st.status();
    return st.ok() ? *st : v1::StatusResponse();
  }
};

TEST_F(LimitsE2eTest, TheStreamPastTheCertificatesLimitIsRefusedCountedAndAuditedOnce) {
  std::vector<Stream> open;
  for (int i = 0; i < 4; ++i) {  // one connection each: only the certificate limit applies
    open.push_back(Open(Channel("zs-customs"), absl::StrCat("s", i)));
    ASSERT_TRUE(open.back().opened) << i;
  }
  for (int i = 0; i < 3; ++i) {
    Stream refused = Open(Channel("zs-customs"), "one-too-many");
    EXPECT_FALSE(refused.opened);
    grpc::Status s = refused.Finish();
    EXPECT_EQ(s.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << s.error_message();
    EXPECT_THAT(s.error_message(), HasSubstr("streams_per_certificate"));
  }
  // Another certificate is not affected.
  Stream msa = Open(Channel("zs-msa"), "duty");
  EXPECT_TRUE(msa.opened);
  // Counted, and audited once for the window (the further hits are summarized
  // when it ends).
  v1::StatusResponse st = AdminStatus();
  EXPECT_EQ(st.limits_hit().at("streams_per_certificate"), 3u);
  EXPECT_EQ(st.limits_hit().at("streams_per_connection"), 0u);
  EXPECT_THAT(cli::FormatStatus(st), HasSubstr("streams_per_certificate 3"));
  auto entries = SecurityEntries("streams_per_certificate", 1);
  ASSERT_EQ(entries.size(), 1u);
  EXPECT_EQ(entries[0].actor_agency_id(), "zs-customs");
  EXPECT_THAT(entries[0].detail(), HasSubstr("Subscribe refused on ipv"));
  // Once one closes, a new one is accepted.
  EXPECT_TRUE(open.back().Finish().ok());
  open.pop_back();
  absl::SleepFor(absl::Milliseconds(200));  // its OnDone deregisters it
  Stream again = Open(Channel("zs-customs"), "s3");
  EXPECT_TRUE(again.opened);
}

TEST_F(LimitsE2eTest, TheStreamPastTheConnectionsLimitIsRefused) {
  auto channel = Channel("zs-police");  // one connection for all
  std::vector<Stream> open;
  for (int i = 0; i < 3; ++i) {
    open.push_back(Open(channel, absl::StrCat("p", i)));
    ASSERT_TRUE(open.back().opened) << i;
  }
  // A SubmitStream counts too.
  auto stub = v1::Exchange::NewStub(channel);
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  auto submit = stub->SubmitStream(&ctx);
  submit->WritesDone();
  v1::SubmitStreamResponse r;
  EXPECT_FALSE(submit->Read(&r));
  grpc::Status s = submit->Finish();
  EXPECT_EQ(s.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << s.error_message();
  EXPECT_THAT(s.error_message(), HasSubstr("streams_per_connection"));
  // The same certificate on another connection may still open one.
  EXPECT_TRUE(Open(Channel("zs-police"), "elsewhere").opened);
  EXPECT_EQ(AdminStatus().limits_hit().at("streams_per_connection"), 1u);
  auto entries = SecurityEntries("streams_per_connection", 1);
  ASSERT_EQ(entries.size(), 1u);
  EXPECT_THAT(entries[0].detail(), HasSubstr("SubmitStream refused"));
}

TEST_F(LimitsE2eTest, AStreamThatSendsNothingIsClosedAfterTheFirstMessageTimeout) {
  auto channel = Channel("zs-customs");
  auto stub = v1::Exchange::NewStub(channel);
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(6));
  const absl::Time start = absl::Now();
  auto silent = stub->Subscribe(&ctx);  // never sends its SubscriptionOpen
  // One that speaks in time stays open.
  Stream speaking = Open(channel, "duty");
  ASSERT_TRUE(speaking.opened);
  v1::SubscribeResponse r;
  EXPECT_FALSE(silent->Read(&r));
  grpc::Status s = silent->Finish();
  const absl::Duration took = absl::Now() - start;
  EXPECT_EQ(s.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED) << s.error_message();
  EXPECT_THAT(s.error_message(), HasSubstr("stream_first_message_timeout"));
  EXPECT_LT(took, absl::Seconds(3));
  EXPECT_GE(took, absl::Milliseconds(600));
  absl::SleepFor(absl::Milliseconds(200));            // its OnDone deregisters it
  EXPECT_EQ(server_->streams()->open_streams(), 1u);  // the speaking one
  EXPECT_EQ(AdminStatus().limits_hit().at("stream_first_message_timeout"), 1u);
  EXPECT_EQ(SecurityEntries("stream_first_message_timeout", 1).size(), 1u);
}

TEST_F(LimitsE2eTest, CancelWhereCutsTheMatchingStreamsAndSaysWhy) {
  const std::string customs_pem = [&] {
    std::ifstream in(certs_dir_ / "zs-customs.crt");
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }();
  Stream a = Open(Channel("zs-customs"), "a");
  Stream b = Open(Channel("zs-customs"), "b");
  Stream msa = Open(Channel("zs-msa"), "duty");
  ASSERT_TRUE(a.opened && b.opened && msa.opened);
  // A SubmitStream of the same certificate that is in the middle of its work.
  auto stub = v1::Exchange::NewStub(Channel("zs-customs"));
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  auto submit = stub->SubmitStream(&ctx);
  v1::SubmitRequest req;
  *req.mutable_envelope() = SampleTipOff("before-the-cut");
  ASSERT_TRUE(submit->Write(req));
  v1::SubmitStreamResponse reply;
  ASSERT_TRUE(submit->Read(&reply));

  std::vector<std::string> pems;
  const size_t cut = server_->streams()->CancelWhere(
      [&](const StreamInfo& s) {
        pems.push_back(s.cert_pem);
        return customs_pem.find(s.cert_pem) != std::string::npos && !s.cert_pem.empty();
      },
      absl::UnauthenticatedError("certificate revoked"));
  EXPECT_EQ(cut, 3u);
  EXPECT_EQ(pems.size(), 4u);
  for (Stream* s : {&a, &b}) {
    grpc::Status st = s->Finish();
    EXPECT_EQ(st.error_code(), grpc::StatusCode::UNAUTHENTICATED) << st.error_message();
    EXPECT_EQ(st.error_message(), "certificate revoked");
  }
  EXPECT_FALSE(submit->Read(&reply));
  grpc::Status st = submit->Finish();
  EXPECT_EQ(st.error_code(), grpc::StatusCode::UNAUTHENTICATED) << st.error_message();
  // The others go on.
  absl::SleepFor(absl::Milliseconds(200));
  EXPECT_EQ(server_->streams()->open_streams(), 1u);
  auto entries = SecurityEntries("cut: certificate revoked", 1);
  ASSERT_EQ(entries.size(), 1u);
  EXPECT_EQ(entries[0].actor_agency_id(), "zs-customs");
  EXPECT_THAT(entries[0].detail(), HasSubstr("3 open streams cut"));
  EXPECT_TRUE(msa.Finish().ok());
}

TEST_F(LimitsE2eTest, AConnectionThatNeverCompletesItsHandshakeIsClosed) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(server_->port()));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  timeval wait{.tv_sec = 8, .tv_usec = 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &wait, sizeof(wait));
  const absl::Time start = absl::Now();
  char buf[64];
  const ssize_t n = recv(fd, buf, sizeof(buf), 0);  // nothing sent: no TLS handshake
  const absl::Duration took = absl::Now() - start;
  close(fd);
  EXPECT_LE(n, 0) << "the broker sent bytes before any ClientHello";
  EXPECT_LT(took, absl::Seconds(4)) << "the connection was held past the handshake timeout";
  EXPECT_GE(took, absl::Milliseconds(900));
}

TEST_F(LimitsE2eTest, ANeverAckingSubscriberIsRedeliveredWithBackoffAndAuditedInSummaries) {
  auto customs = Client("zs-customs");
  std::mutex mu;
  std::map<uint64_t, std::vector<std::pair<uint32_t, absl::Time>>> sends;  // seq -> attempts
  SubscriptionOptions o;
  o.open.set_name("never-acks");
  o.open.add_topic_filters("smuggling.*");
  o.open.set_ack_deadline_ms(1000);
  auto sub = customs->Subscribe(o, [&](const v1::Delivery& d) {
    std::lock_guard<std::mutex> lock(mu);
    sends[d.seq()].emplace_back(d.attempt(), absl::Now());
    return false;  // never acks
  });
  ASSERT_TRUE(sub->WaitOpened(absl::Seconds(5)).ok());
  auto police = Client("zs-police");
  std::vector<std::string> exchanges;
  for (int i = 0; i < 3; ++i) {
    auto r = police->Submit(SampleTipOff(absl::StrCat("never-acked-", i)));
    ASSERT_TRUE(r.ok()) << r.status();
    exchanges.push_back(r->exchange_id());
  }
  absl::SleepFor(absl::Milliseconds(4700));
  sub->Stop();
  uint64_t redelivered = 0;
  {
    std::lock_guard<std::mutex> lock(mu);
    ASSERT_EQ(sends.size(), 3u);
    for (const auto& [seq, attempts] : sends) {
      SCOPED_TRACE(seq);
      // Sent at about 0, 1 and 3 s (then 7): with a fixed deadline, 5 times by 4.7 s.
      ASSERT_EQ(attempts.size(), 3u);
      for (size_t i = 0; i < attempts.size(); ++i) EXPECT_EQ(attempts[i].first, i + 1);
      const absl::Duration first_gap = attempts[1].second - attempts[0].second;
      const absl::Duration second_gap = attempts[2].second - attempts[1].second;
      EXPECT_GE(first_gap, absl::Milliseconds(950));
      EXPECT_LT(first_gap, absl::Milliseconds(1500));
      EXPECT_GE(second_gap, absl::Milliseconds(1800));
      EXPECT_LT(second_gap, absl::Milliseconds(2500));
      redelivered += attempts.size() - 1;
    }
  }
  // Summaries: one per window (1 s) in which something was sent again, each
  // naming the exchanges; a query by exchange id finds them.
  absl::SleepFor(absl::Milliseconds(1500));  // the last window ends and is recorded
  v1::AuditQuery q;
  q.set_event(v1::AUDIT_EVENT_REDELIVERY);
  q.set_agency_id("zs-customs");
  const std::vector<v1::AuditEntry> summaries = Audit(q);
  EXPECT_GE(summaries.size(), 2u);
  EXPECT_LE(summaries.size(), 3u);  // one per redelivery would be 6
  uint64_t counted = 0;
  for (const auto& e : summaries) {
    EXPECT_EQ(e.redeliveries().subscription(), "never-acks");
    EXPECT_EQ(e.actor_agency_id(), "zs-customs");
    counted += e.redeliveries().count();
  }
  EXPECT_EQ(counted, redelivered);
  for (const std::string& x : exchanges) {
    v1::AuditQuery by_exchange;
    by_exchange.set_exchange_id(x);
    size_t found = 0;
    for (const auto& e : Audit(by_exchange)) {
      if (e.event() != v1::AUDIT_EVENT_REDELIVERY) continue;
      ++found;
      bool listed = false;
      for (const auto& r : e.redeliveries().exchanges()) listed |= r.exchange_id() == x;
      EXPECT_TRUE(listed) << x;
    }
    EXPECT_GE(found, 2u) << x;
  }
}

}  // namespace
}  // namespace corridor::testing
