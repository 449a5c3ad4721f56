// Who may talk to the broker: real TLS handshakes against the in-process broker.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

#include "certs/spiffe_id.h"
#include "gmock/gmock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "tests/integration/broker_fixture.h"
#include "tests/testing/envelopes.h"
#include "tests/testing/status_matchers.h"

namespace corridor::testing {
namespace {

using ::testing::HasSubstr;

std::string ReadFile(const std::filesystem::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

class MtlsTest : public BrokerFixture {
 protected:
  // One Submit over a channel built from `creds`; returns the call's status.
  grpc::Status SubmitWith(std::shared_ptr<grpc::ChannelCredentials> creds) {
    auto channel = grpc::CreateChannel(Target(), creds);
    auto stub = v1::Exchange::NewStub(channel);
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    v1::SubmitRequest req;
    *req.mutable_envelope() = SampleTipOff("sec-1");
    v1::SubmitResponse resp;
    return stub->Submit(&ctx, req, &resp);
  }

  uint64_t StoredExchanges() {
    auto admin = Client("admin");
    auto st = admin->Status();
    EXPECT_TRUE(st.ok()) << st.status();
    return st.ok() ? st->exchanges_stored() : 0;
  }

  // A raw TLS handshake with OpenSSL, presenting zs-police's certificate and
  // offering only `version`. Returns the negotiated version's name, or
  // "failed: <OpenSSL's reason>".
  std::string RawHandshake(int version) {
    SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
    SSL_CTX_set_min_proto_version(ctx, version);
    SSL_CTX_set_max_proto_version(ctx, version);
    // The broker in this process restricted the process-wide defaults to 1.3;
    // this client must be free to offer 1.2.
    SSL_CTX_clear_options(ctx, SSL_OP_NO_TLSv1_2 | SSL_OP_NO_TLSv1_3);
    SSL_CTX_use_certificate_file(ctx, (certs_dir_ / "zs-police.crt").c_str(), SSL_FILETYPE_PEM);
    SSL_CTX_use_PrivateKey_file(ctx, (certs_dir_ / "zs-police.key").c_str(), SSL_FILETYPE_PEM);
    SSL_CTX_load_verify_locations(ctx, (certs_dir_ / "ca.crt").c_str(), nullptr);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
    static const unsigned char kAlpn[] = {2, 'h', '2'};
    SSL_CTX_set_alpn_protos(ctx, kAlpn, sizeof(kAlpn));
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(server_->port()));
    inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
    std::string result = "failed: connect";
    if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0) {
      SSL* ssl = SSL_new(ctx);
      SSL_set_fd(ssl, fd);
      SSL_set_tlsext_host_name(ssl, "localhost");
      if (SSL_connect(ssl) == 1) {
        result = SSL_get_version(ssl);
      } else {
        char buf[256];
        ERR_error_string_n(ERR_peek_last_error(), buf, sizeof(buf));
        result = std::string("failed: ") + buf;
        // A server that speaks 1.2 gets as far as sending its certificate.
        if (SSL_get0_peer_certificate(ssl) != nullptr) result += " [server certificate seen]";
      }
      SSL_free(ssl);
    }
    close(fd);
    SSL_CTX_free(ctx);
    ERR_clear_error();
    return result;
  }
};

TEST_F(MtlsTest, PlaintextIsRefused) {
  grpc::Status s = SubmitWith(grpc::InsecureChannelCredentials());
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAVAILABLE) << s.error_message();
  EXPECT_EQ(StoredExchanges(), 0u);
}

TEST_F(MtlsTest, NoClientCertificateIsRefused) {
  grpc::SslCredentialsOptions o;
  o.pem_root_certs = ReadFile(certs_dir_ / "ca.crt");
  grpc::Status s = SubmitWith(grpc::SslCredentials(o));
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAVAILABLE) << s.error_message();
  EXPECT_EQ(StoredExchanges(), 0u);
}

TEST_F(MtlsTest, CertificateFromAnotherCaIsRefused) {
  auto other = dir_.path() / "other-ca";
  ASSERT_TRUE(certs::InitCa(other, "zhongshan.corridor").ok());
  certs::IssueOptions io;
  io.spiffe_id = certs::AgencyNodeId("zhongshan.corridor", "zs-police", "node1");
  io.out_dir = dir_.path() / "other-certs";
  io.name = "impostor";
  ASSERT_TRUE(certs::Issue(other, io).ok());
  grpc::SslCredentialsOptions o;
  o.pem_root_certs = ReadFile(certs_dir_ / "ca.crt");
  o.pem_cert_chain = ReadFile(dir_.path() / "other-certs" / "impostor.crt");
  o.pem_private_key = ReadFile(dir_.path() / "other-certs" / "impostor.key");
  ASSERT_FALSE(o.pem_cert_chain.empty());
  grpc::Status s = SubmitWith(grpc::SslCredentials(o));
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAVAILABLE) << s.error_message();
  EXPECT_EQ(StoredExchanges(), 0u);
}

TEST_F(MtlsTest, UnregisteredAgencyIsUnauthenticated) {
  certs::IssueOptions io;
  io.spiffe_id = certs::AgencyNodeId("zhongshan.corridor", "zs-fishery", "node1");
  io.out_dir = certs_dir_;
  io.name = "zs-fishery";
  ASSERT_TRUE(certs::Issue(certs_dir_ / "ca", io).ok());
  auto client = AgencyClient::Connect(OptionsFor("zs-fishery"));
  ASSERT_TRUE(client.ok()) << client.status();  // the TLS handshake itself is fine
  EXPECT_THAT((*client)->Submit(SampleTipOff("x")).status(),
              StatusIs(absl::StatusCode::kUnauthenticated, HasSubstr("zs-fishery")));
  EXPECT_THAT((*client)->Status().status(), StatusIs(absl::StatusCode::kUnauthenticated));
  SubscriptionOptions so;
  so.open.set_name("x");
  auto sub = (*client)->Subscribe(so, [](const v1::Delivery&) { return true; });
  EXPECT_THAT(sub->WaitOpened(absl::Seconds(5)).status(),
              StatusIs(absl::StatusCode::kUnauthenticated));
  EXPECT_EQ(StoredExchanges(), 0u);
}

TEST_F(MtlsTest, OtherTrustDomainIsUnauthenticatedEvenWhenItsCaIsTrusted) {
  // A misconfigured trust bundle that also holds a neighbouring city's CA must
  // still not let that city's nodes act as local agencies.
  auto zhuhai = dir_.path() / "zhuhai-ca";
  ASSERT_TRUE(certs::InitCa(zhuhai, "zhuhai.corridor").ok());
  certs::IssueOptions io;
  io.spiffe_id = certs::AgencyNodeId("zhuhai.corridor", "zs-police", "node1");
  io.out_dir = certs_dir_;
  io.name = "zhuhai-node";
  ASSERT_TRUE(certs::Issue(zhuhai, io).ok());
  // Every CA of the bundle needs its CRL, or the broker does not start.
  ASSERT_TRUE(certs::WriteCrl(zhuhai, certs_dir_ / "crl").ok());
  auto bundle = dir_.path() / "bundle.crt";
  std::ofstream(bundle) << ReadFile(certs_dir_ / "ca.crt") << ReadFile(zhuhai / "ca.crt");
  StopBroker();
  config_.tls.ca = bundle.string();
  StartBroker();
  ClientOptions o = OptionsFor("zhuhai-node");
  o.ca_file = bundle.string();
  auto client = AgencyClient::Connect(o);
  ASSERT_TRUE(client.ok()) << client.status();
  EXPECT_THAT((*client)->Submit(SampleTipOff("x")).status(),
              StatusIs(absl::StatusCode::kUnauthenticated, HasSubstr("trust domain")));
}

TEST_F(MtlsTest, OnlyTls13IsSpoken) {
  EXPECT_EQ(RawHandshake(TLS1_3_VERSION), "TLSv1.3");  // control: the same client on 1.3
  // The broker refuses a TLS 1.2-only hello outright: no ServerHello, no certificate.
  std::string tls12 = RawHandshake(TLS1_2_VERSION);
  EXPECT_THAT(tls12, ::testing::StartsWith("failed: "));
  EXPECT_THAT(tls12, ::testing::Not(HasSubstr("server certificate seen")));
}

TEST_F(MtlsTest, RevokedCertificateIsRefusedAfterRestart) {
  auto msa = Client("zs-msa");
  ASSERT_TRUE(msa->Status().ok());
  ASSERT_TRUE(certs::Revoke(certs_dir_ / "ca", (certs_dir_ / "zs-msa.crt").string()).ok());
  ASSERT_TRUE(certs::WriteCrl(certs_dir_ / "ca", certs_dir_ / "crl").ok());
  StopBroker();
  StartBroker();
  auto again = AgencyClient::Connect(OptionsFor("zs-msa"));
  if (again.ok()) {
    EXPECT_EQ((*again)->Status().status().code(), absl::StatusCode::kUnavailable);
  } else {
    EXPECT_EQ(again.status().code(), absl::StatusCode::kUnavailable);
  }
  // Others still get in.
  auto police = Client("zs-police");
  ASSERT_NE(police, nullptr);
  EXPECT_TRUE(police->Status().ok());
}

TEST_F(MtlsTest, RolesAreEnforced) {
  auto auditor = Client("auditor");
  EXPECT_THAT(auditor->Submit(SampleTipOff("a-1")).status(),
              StatusIs(absl::StatusCode::kPermissionDenied));
  EXPECT_THAT(auditor->Status().status(), StatusIs(absl::StatusCode::kPermissionDenied));
  auto police = Client("zs-police");
  grpc::ClientContext ctx;
  v1::ReloadPolicyResponse r;
  grpc::Status s = police->admin_stub()->ReloadPolicy(&ctx, v1::ReloadPolicyRequest(), &r);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED);
}

}  // namespace
}  // namespace corridor::testing
