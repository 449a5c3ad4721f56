// Revocation, CRLs and refusals over real mTLS: the in-process broker, real
// certificates made by certs/ (and, for what certs/ would never issue, signed
// with OpenSSL by the same CA key), real gRPC channels.
#include <sys/stat.h>

#include <fstream>
#include <future>
#include <sstream>

#include "certs/spiffe_id.h"
#include "corridor/v1/audit.grpc.pb.h"
#include "gmock/gmock.h"
#include "grpcpp/generic/generic_stub.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "tests/integration/broker_fixture.h"
#include "tests/testing/envelopes.h"
#include "tests/testing/pki_craft.h"
#include "tests/testing/status_matchers.h"

namespace corridor::testing {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

std::string ReadFile(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

class TrustE2eTest : public BrokerFixture {
 protected:
  std::shared_ptr<grpc::Channel> ChannelAs(const fs::path& crt, const fs::path& key) {
    grpc::SslCredentialsOptions o;
    o.pem_root_certs = ReadFile(certs_dir_ / "ca.crt");
    o.pem_cert_chain = ReadFile(crt);
    o.pem_private_key = ReadFile(key);
    // Its own connection: channels with equal arguments may share one.
    grpc::ChannelArguments args;
    args.SetInt("corridor.test.channel", ++channels_);
    return grpc::CreateCustomChannel(Target(), grpc::SslCredentials(o), args);
  }
  std::shared_ptr<grpc::Channel> ChannelAs(const std::string& stem) {
    return ChannelAs(certs_dir_ / (stem + ".crt"), certs_dir_ / (stem + ".key"));
  }

  // One unary call of `method` with `request` bytes; the status and reply bytes.
  static grpc::Status RawUnary(const std::shared_ptr<grpc::Channel>& channel,
                               const std::string& method, const std::string& request,
                               std::string* reply) {
    grpc::GenericStub stub(channel);
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    grpc::Slice slice(request);
    grpc::ByteBuffer req(&slice, 1), resp;
    std::promise<grpc::Status> done;
    stub.UnaryCall(&ctx, method, grpc::StubOptions(), &req, &resp,
                   [&done](grpc::Status s) { done.set_value(std::move(s)); });
    grpc::Status s = done.get_future().get();
    if (s.ok() && reply != nullptr) {
      std::vector<grpc::Slice> slices;
      (void)resp.Dump(&slices);
      reply->clear();
      for (const auto& sl : slices)
        reply->append(reinterpret_cast<const char*>(sl.begin()), sl.size());
    }
    return s;
  }
  static grpc::Status HealthCheck(const std::shared_ptr<grpc::Channel>& channel,
                                  std::string* reply) {
    return RawUnary(channel, "/grpc.health.v1.Health/Check", "", reply);
  }
  // ServerReflectionRequest{list_services: ""}: one request, one response.
  static grpc::Status ListServices(const std::shared_ptr<grpc::Channel>& channel,
                                   std::string* reply) {
    return RawUnary(channel, "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
                    std::string("\x3a\x00", 2), reply);
  }
  static grpc::Status StatusCall(const std::shared_ptr<grpc::Channel>& channel,
                                 v1::StatusResponse* out = nullptr) {
    auto stub = v1::Admin::NewStub(channel);
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    v1::StatusResponse r;
    grpc::Status s = stub->Status(&ctx, v1::StatusRequest(), &r);
    if (out) *out = r;
    return s;
  }

  std::vector<v1::AuditEntry> SecurityEntries() {
    auto stub = v1::Audit::NewStub(ChannelAs("auditor"));
    grpc::ClientContext ctx;
    v1::AuditQuery q;
    q.set_event(v1::AUDIT_EVENT_SECURITY);
    auto reader = stub->Query(&ctx, q);
    v1::AuditQueryResponse page;
    std::vector<v1::AuditEntry> out;
    while (reader->Read(&page)) {
      for (const auto& r : page.records()) out.push_back(r.entry());
    }
    grpc::Status s = reader->Finish();
    EXPECT_TRUE(s.ok()) << s.error_message();
    return out;
  }
  // Waits (up to 5 s) for a security entry whose detail holds `needle`.
  std::optional<v1::AuditEntry> AwaitSecurityEntry(const std::string& needle) {
    for (int i = 0; i < 50; ++i) {
      for (const auto& e : SecurityEntries()) {
        if (e.detail().find(needle) != std::string::npos) return e;
      }
      absl::SleepFor(absl::Milliseconds(100));
    }
    return std::nullopt;
  }

  void Revoke(const std::string& stem) {
    ASSERT_TRUE(certs::Revoke(certs_dir_ / "ca", (certs_dir_ / (stem + ".crt")).string()).ok());
    ASSERT_TRUE(certs::WriteCrl(certs_dir_ / "ca", certs_dir_ / "crl").ok());
  }
  std::string Serial(const std::string& stem) {
    return certs::Describe(certs_dir_ / (stem + ".crt"))->serial_hex;
  }
  void ClearCrlDir() {
    for (const auto& e : fs::directory_iterator(certs_dir_ / "crl")) fs::remove(e.path());
  }
  int channels_ = 0;

  absl::StatusOr<std::unique_ptr<broker::grpc_transport::BrokerServer>> TryStart() {
    auto dp = broker::LoadDecisionPoint(config_);
    if (!dp.ok()) return dp.status();
    return broker::grpc_transport::BrokerServer::Start(config_, *dp);
  }
};

// Items 2 and 12: after a CRL reload (what SIGHUP and the timer do), a revoked
// certificate gets no new call on the connection it already has, and no new
// connection; others go on; both refusals are security entries.
TEST_F(TrustE2eTest, RevocationTakesEffectWithoutRestartOnOpenAndNewConnections) {
  auto msa = ChannelAs("zs-msa");
  ASSERT_TRUE(StatusCall(msa).ok());  // the connection is up
  auto police = ChannelAs("zs-police");
  ASSERT_TRUE(StatusCall(police).ok());
  Revoke("zs-msa");
  server_->ReloadTrust("test");
  // A new call on the open connection.
  grpc::Status on_open = StatusCall(msa);
  EXPECT_EQ(on_open.error_code(), grpc::StatusCode::UNAUTHENTICATED) << on_open.error_message();
  EXPECT_THAT(on_open.error_message(), HasSubstr("revoked"));
  EXPECT_EQ(msa->GetState(false), GRPC_CHANNEL_READY) << "the same connection, not a new one";
  // A new connection.
  grpc::Status fresh = StatusCall(ChannelAs("zs-msa"));
  EXPECT_EQ(fresh.error_code(), grpc::StatusCode::UNAVAILABLE) << fresh.error_message();
  // Others are not affected, on their open connection or a new one.
  EXPECT_TRUE(StatusCall(police).ok());
  EXPECT_TRUE(StatusCall(ChannelAs("zs-police")).ok());
  // Audited: the CRL change, the refused call, the refused handshake.
  EXPECT_TRUE(AwaitSecurityEntry("now in force (1 revoked").has_value());
  auto call = AwaitSecurityEntry("call refused (revoked)");
  ASSERT_TRUE(call.has_value());
  EXPECT_EQ(call->actor_spiffe_id(), "spiffe://zhongshan.corridor/agency/zs-msa/node1");
  EXPECT_THAT(call->detail(), HasSubstr(Serial("zs-msa")));
  auto handshake = AwaitSecurityEntry("TLS handshake refused (revoked)");
  ASSERT_TRUE(handshake.has_value());
  EXPECT_THAT(handshake->detail(), HasSubstr("serial " + Serial("zs-msa")));
}

// Item 2, open streams: a reload that revokes a certificate ends the streams
// it already has open (Subscribe and SubmitStream), with UNAUTHENTICATED,
// within seconds; other certificates' streams go on; the cut is audited.
TEST_F(TrustE2eTest, RevocationCutsTheOpenStreamsOfTheRevokedCertificate) {
  struct Sub {
    grpc::ClientContext ctx;
    std::unique_ptr<v1::Exchange::Stub> stub;
    std::unique_ptr<grpc::ClientReaderWriter<v1::SubscribeRequest, v1::SubscribeResponse>> rw;
  };
  auto open = [&](const std::string& stem, Sub* s) {
    s->ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    s->stub = v1::Exchange::NewStub(ChannelAs(stem));
    s->rw = s->stub->Subscribe(&s->ctx);
    v1::SubscribeRequest req;
    req.mutable_open()->set_name("duty");
    v1::SubscribeResponse r;
    return s->rw->Write(req) && s->rw->Read(&r) && r.has_opened();
  };
  Sub msa, police;
  ASSERT_TRUE(open("zs-msa", &msa));
  ASSERT_TRUE(open("zs-police", &police));
  // msa's SubmitStream, with one envelope answered.
  grpc::ClientContext submit_ctx;
  submit_ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  auto submit_stub = v1::Exchange::NewStub(ChannelAs("zs-msa"));
  auto submit = submit_stub->SubmitStream(&submit_ctx);
  v1::SubmitRequest req;
  *req.mutable_envelope() = SampleTipOff("before-revocation");
  req.mutable_envelope()->clear_sender();
  v1::SubmitStreamResponse reply;
  ASSERT_TRUE(submit->Write(req));
  ASSERT_TRUE(submit->Read(&reply));

  Revoke("zs-msa");
  const absl::Time reloaded = absl::Now();
  server_->ReloadTrust("test");

  v1::SubscribeResponse r;
  while (msa.rw->Read(&r)) {
  }
  grpc::Status sub_status = msa.rw->Finish();
  EXPECT_EQ(sub_status.error_code(), grpc::StatusCode::UNAUTHENTICATED)
      << sub_status.error_message();
  EXPECT_EQ(sub_status.error_message(), "certificate revoked");
  while (submit->Read(&reply)) {
  }
  grpc::Status submit_status = submit->Finish();
  EXPECT_EQ(submit_status.error_code(), grpc::StatusCode::UNAUTHENTICATED)
      << submit_status.error_message();
  EXPECT_LT(absl::Now() - reloaded, absl::Seconds(5));  // cut, not left to a deadline

  // police's stream is still open: a tip-off addressed to it arrives.
  v1::Envelope e = SampleTipOff("after-revocation");
  e.add_addressees("zs-police");
  auto customs = Client("zs-customs");
  ASSERT_NE(customs, nullptr);
  ASSERT_TRUE(customs->Submit(e).ok());
  ASSERT_TRUE(police.rw->Read(&r));
  EXPECT_TRUE(r.has_delivery() || r.has_batch()) << r.DebugString();

  auto cut = AwaitSecurityEntry("open streams cut: certificate revoked");
  ASSERT_TRUE(cut.has_value());
  EXPECT_EQ(cut->actor_agency_id(), "zs-msa");
  EXPECT_THAT(cut->detail(), HasSubstr("2 open streams cut"));
  police.ctx.TryCancel();
}

// Item 2, the timer: no SIGHUP, no call; the broker picks the CRL up by itself.
class TrustTimerE2eTest : public TrustE2eTest {
 protected:
  void Customize(broker::BrokerConfig& config) override {
    config.tls.crl_refresh = absl::Seconds(1);
  }
};

TEST_F(TrustTimerE2eTest, RevocationIsPickedUpByTheTimer) {
  auto msa = ChannelAs("zs-msa");
  ASSERT_TRUE(StatusCall(msa).ok());
  Revoke("zs-msa");
  grpc::Status s;
  for (int i = 0; i < 50; ++i) {
    s = StatusCall(msa);
    if (!s.ok()) break;
    absl::SleepFor(absl::Milliseconds(100));
  }
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAUTHENTICATED) << s.error_message();
  EXPECT_TRUE(StatusCall(ChannelAs("zs-police")).ok());
}

// Item 3: a CRL past its nextUpdate locks nobody out, and what it revoked stays
// refused; the admin's status says so.
class ExpiredCrlE2eTest : public TrustE2eTest {
 protected:
  void Customize(broker::BrokerConfig& config) override {
    ClearCrlDir();
    const absl::Time now = absl::Now();
    // Under the hashed name, where OpenSSL's hash-dir lookup finds it too.
    auto name = certs::CrlFileName(certs_dir_ / "ca.crt");
    ASSERT_TRUE(name.ok()) << name.status();
    ASSERT_TRUE(WriteCrlAt(certs_dir_ / "ca", certs_dir_ / "crl" / *name, {Serial("zs-msa")},
                           now - absl::Hours(24 * 31), now - absl::Hours(24), 5)
                    .ok());
  }
};

TEST_F(ExpiredCrlE2eTest, ExpiredCrlKeepsRevokedRefusedAndLetsOthersIn) {
  EXPECT_TRUE(StatusCall(ChannelAs("zs-police")).ok());
  EXPECT_EQ(StatusCall(ChannelAs("zs-msa")).error_code(), grpc::StatusCode::UNAVAILABLE);
  v1::StatusResponse st;
  ASSERT_TRUE(StatusCall(ChannelAs("admin"), &st).ok());
  ASSERT_GE(st.tls_warnings_size(), 1);
  EXPECT_THAT(st.tls_warnings(0), HasSubstr("expired at"));
  // An agency is not shown the broker's trust problems.
  ASSERT_TRUE(StatusCall(ChannelAs("zs-police"), &st).ok());
  EXPECT_EQ(st.tls_warnings_size(), 0);
  // A fresh CRL on disk (a higher CRL number) replaces it on the next reload.
  const absl::Time now = absl::Now();
  ASSERT_TRUE(WriteCrlAt(certs_dir_ / "ca", certs_dir_ / "crl" / "fresh.r0", {Serial("zs-msa")},
                         now - absl::Minutes(1), now + absl::Hours(24 * 30), 6)
                  .ok());
  server_->ReloadTrust("test");
  EXPECT_EQ(StatusCall(ChannelAs("zs-msa")).error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_TRUE(StatusCall(ChannelAs("zs-police")).ok());
  ASSERT_TRUE(StatusCall(ChannelAs("admin"), &st).ok());
  EXPECT_EQ(st.tls_warnings_size(), 0) << st.tls_warnings(0);
}

// Item 4: no usable CRL -> no start, unless `crl: none` says so.
TEST_F(TrustE2eTest, EmptyCrlDirRefusesToStart) {
  StopBroker();
  ClearCrlDir();
  EXPECT_THAT(TryStart(), StatusIs(absl::StatusCode::kFailedPrecondition,
                                   ::testing::AllOf(HasSubstr("no usable CRL"),
                                                    HasSubstr((certs_dir_ / "crl").string()))));
  config_.tls.crl_dir.clear();
  EXPECT_THAT(TryStart(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("broker.tls.crl_dir")));
}

TEST_F(TrustE2eTest, CrlNoneStartsAndSaysRevocationIsOff) {
  StopBroker();
  ClearCrlDir();
  config_.tls.crl_dir.clear();
  config_.tls.crl_none = true;
  StartBroker();
  EXPECT_TRUE(StatusCall(ChannelAs("zs-police")).ok());
  v1::StatusResponse st;
  ASSERT_TRUE(StatusCall(ChannelAs("admin"), &st).ok());
  ASSERT_EQ(st.tls_warnings_size(), 1);
  EXPECT_THAT(st.tls_warnings(0), HasSubstr("revocation checks are off"));
}

// Item 8: private keys readable by others stop the start, naming the file.
TEST_F(TrustE2eTest, WorldReadableKeysRefuseToStart) {
  StopBroker();
  const fs::path tls_key = certs_dir_ / "broker.key";
  ASSERT_EQ(::chmod(tls_key.c_str(), 0644), 0);
  EXPECT_THAT(TryStart(),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       ::testing::AllOf(HasSubstr(tls_key.string()), HasSubstr("chmod 600"))));
  ASSERT_EQ(::chmod(tls_key.c_str(), 0600), 0);
  // The audit signing key the first start wrote (0600) made readable by the group.
  const fs::path audit_key = fs::path(config_.data_dir) / "audit-signing.key";
  ASSERT_TRUE(fs::exists(audit_key));
  ASSERT_EQ(::chmod(audit_key.c_str(), 0640), 0);
  EXPECT_THAT(TryStart(), StatusIs(absl::StatusCode::kFailedPrecondition,
                                   ::testing::AllOf(HasSubstr(audit_key.string()),
                                                    HasSubstr("broker.audit.key_file"))));
  ASSERT_EQ(::chmod(audit_key.c_str(), 0600), 0);
  StartBroker();
  EXPECT_TRUE(StatusCall(ChannelAs("zs-police")).ok());
}

// Item 9: health checking and reflection answer registered peers only.
TEST_F(TrustE2eTest, UnregisteredAgencyGetsNoHealthOrReflection) {
  certs::IssueOptions io;
  io.spiffe_id = certs::AgencyNodeId("zhongshan.corridor", "zs-fishery", "node1");
  io.out_dir = certs_dir_;
  io.name = "zs-fishery";
  ASSERT_TRUE(certs::Issue(certs_dir_ / "ca", io).ok());
  std::string reply;
  auto police = ChannelAs("zs-police");
  ASSERT_TRUE(HealthCheck(police, &reply).ok());
  EXPECT_EQ(reply, std::string("\x08\x01", 2));  // SERVING
  ASSERT_TRUE(ListServices(police, &reply).ok());
  EXPECT_THAT(reply, HasSubstr("corridor.v1.Exchange"));

  auto fishery = ChannelAs("zs-fishery");
  grpc::Status health = HealthCheck(fishery, &reply);
  EXPECT_EQ(health.error_code(), grpc::StatusCode::UNAUTHENTICATED) << health.error_message();
  EXPECT_THAT(health.error_message(), HasSubstr("zs-fishery"));
  grpc::Status reflection = ListServices(fishery, &reply);
  EXPECT_EQ(reflection.error_code(), grpc::StatusCode::UNAUTHENTICATED)
      << reflection.error_message();
  auto entry = AwaitSecurityEntry("peer refused: agency 'zs-fishery' is not registered");
  ASSERT_TRUE(entry.has_value());
  EXPECT_EQ(entry->actor_spiffe_id(), "spiffe://zhongshan.corridor/agency/zs-fishery/node1");
}

// Item 12: refusals by role are security entries.
TEST_F(TrustE2eTest, RefusalsByRoleAreSecurityEntries) {
  auto police = ChannelAs("zs-police");
  {
    auto stub = v1::Audit::NewStub(police);
    grpc::ClientContext ctx;
    auto reader = stub->Query(&ctx, v1::AuditQuery());
    v1::AuditQueryResponse page;
    while (reader->Read(&page)) {
    }
    EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::PERMISSION_DENIED);
  }
  {
    auto stub = v1::Audit::NewStub(police);
    grpc::ClientContext ctx;
    v1::SignedCheckpoint cp;
    EXPECT_EQ(stub->GetCheckpoint(&ctx, v1::CheckpointRequest(), &cp).error_code(),
              grpc::StatusCode::PERMISSION_DENIED);
  }
  auto auditor = Client("auditor");
  EXPECT_THAT(auditor->Submit(SampleTipOff("a-1")).status(),
              StatusIs(absl::StatusCode::kPermissionDenied));
  auto query = AwaitSecurityEntry("refused by role: agency called Audit.Query");
  ASSERT_TRUE(query.has_value());
  EXPECT_EQ(query->actor_agency_id(), "zs-police");
  EXPECT_TRUE(AwaitSecurityEntry("refused by role: agency called Audit").has_value());
  auto submit = AwaitSecurityEntry("refused by role: auditor called Exchange.Submit");
  ASSERT_TRUE(submit.has_value());
  EXPECT_EQ(submit->actor_spiffe_id(), "spiffe://zhongshan.corridor/auditor/auditor1");
}

// Item 13: a certificate with basicConstraints CA:TRUE, signed by the exchange
// CA and carrying a valid SPIFFE id, is no client.
TEST_F(TrustE2eTest, CaCertificateAsClientLeafIsRefused) {
  auto serial = IssueCaLeaf(certs_dir_ / "ca", "spiffe://zhongshan.corridor/agency/zs-police/node1",
                            dir_.path() / "crafted", "ca-leaf");
  ASSERT_TRUE(serial.ok()) << serial.status();
  auto ch =
      ChannelAs(dir_.path() / "crafted" / "ca-leaf.crt", dir_.path() / "crafted" / "ca-leaf.key");
  grpc::Status s = StatusCall(ch);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAVAILABLE) << s.error_message();
  auto entry = AwaitSecurityEntry("TLS handshake refused (CA certificate as leaf)");
  ASSERT_TRUE(entry.has_value());
  EXPECT_THAT(entry->detail(), HasSubstr("serial " + *serial));
}

// Item 12: handshakes from another CA are audited, and a flood of them is
// summarized rather than one entry each.
TEST_F(TrustE2eTest, OtherCaHandshakesAreAuditedInSummary) {
  auto other = dir_.path() / "other-ca";
  ASSERT_TRUE(certs::InitCa(other, "zhongshan.corridor").ok());
  certs::IssueOptions io;
  io.spiffe_id = certs::AgencyNodeId("zhongshan.corridor", "zs-police", "node1");
  io.out_dir = dir_.path() / "other-certs";
  io.name = "impostor";
  ASSERT_TRUE(certs::Issue(other, io).ok());
  for (int i = 0; i < 20; ++i) {
    auto ch = ChannelAs(dir_.path() / "other-certs" / "impostor.crt",
                        dir_.path() / "other-certs" / "impostor.key");
    EXPECT_EQ(StatusCall(ch).error_code(), grpc::StatusCode::UNAVAILABLE);
  }
  auto first = AwaitSecurityEntry("TLS handshake refused (unknown issuer)");
  ASSERT_TRUE(first.has_value());
  EXPECT_EQ(first->actor_spiffe_id(), "spiffe://zhongshan.corridor/agency/zs-police/node1");
  EXPECT_THAT(first->detail(), HasSubstr("subject CN=node1"));
  // Within the 10 s window: exactly one entry so far for this reason.
  int count = 0;
  for (const auto& e : SecurityEntries()) {
    if (e.detail().find("handshake refused (unknown issuer)") != std::string::npos) ++count;
  }
  EXPECT_EQ(count, 1);
  // The window's summary follows, with the count of the rest.
  std::optional<v1::AuditEntry> summary;
  for (int i = 0; i < 150 && !summary; ++i) {
    for (const auto& e : SecurityEntries()) {
      if (e.detail().find("handshake refused (unknown issuer):") != std::string::npos &&
          e.detail().find("more between") != std::string::npos) {
        summary = e;
      }
    }
    if (!summary) absl::SleepFor(absl::Milliseconds(100));
  }
  ASSERT_TRUE(summary.has_value());
  EXPECT_THAT(summary->detail(), ::testing::MatchesRegex(".* [0-9]+ more between .*"));
}

}  // namespace
}  // namespace corridor::testing
