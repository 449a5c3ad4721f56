#include "broker/trust_store.h"

#include <fstream>
#include <sstream>

#include "certs/pki.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/pki_craft.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"

namespace corridor::broker {
namespace {

namespace fs = std::filesystem;
using ::corridor::testing::StatusIs;
using ::testing::Contains;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

std::string Slurp(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

MATCHER_P(AnyHasSubstr, s, "") {
  for (const std::string& x : arg) {
    if (x.find(s) != std::string::npos) return true;
  }
  return false;
}

class TrustStoreTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(certs::MakeDevSet(dev(), "zhongshan.corridor").ok()); }

  fs::path dev() const { return dir_.path() / "dev"; }
  fs::path ca_dir() const { return dev() / "ca"; }
  fs::path crl_dir() const { return dev() / "crl"; }
  std::string Pem(const std::string& stem) const { return Slurp(dev() / (stem + ".crt")); }
  std::string Serial(const std::string& stem) const {
    return certs::Describe(dev() / (stem + ".crt"))->serial_hex;
  }

  TrustStore::Options Opts(bool crl_required = true) const {
    TrustStore::Options o;
    o.domains.push_back({.trust_domain = "zhongshan.corridor",
                         .ca_file = (dev() / "ca.crt").string(),
                         .crl_dir = crl_required ? crl_dir().string() : "",
                         .crl_required = crl_required});
    return o;
  }
  std::unique_ptr<TrustStore> Load() {
    auto s = TrustStore::Load(Opts());
    EXPECT_TRUE(s.ok()) << s.status();
    return s.ok() ? *std::move(s) : nullptr;
  }
  void RevokeAndWriteCrl(const std::string& stem) {
    ASSERT_TRUE(certs::Revoke(ca_dir(), (dev() / (stem + ".crt")).string()).ok());
    ASSERT_TRUE(certs::WriteCrl(ca_dir(), crl_dir()).ok());
  }
  void ClearCrlDir() {
    for (const auto& e : fs::directory_iterator(crl_dir())) fs::remove(e.path());
  }

  corridor::testing::TempDir dir_;
};

TEST_F(TrustStoreTest, AcceptsALeafOfTheExchangeCa) {
  auto store = Load();
  PeerCertCheck c = store->Verify(Pem("zs-police"), "");
  EXPECT_TRUE(c.ok()) << c.detail;
  EXPECT_EQ(c.spiffe_id, "spiffe://zhongshan.corridor/agency/zs-police/node1");
  EXPECT_EQ(c.serial_hex, Serial("zs-police"));
  EXPECT_THAT(store->Problems(), IsEmpty());
}

TEST_F(TrustStoreTest, EmptyCrlDirRefusesToLoad) {
  ClearCrlDir();
  EXPECT_THAT(TrustStore::Load(Opts()),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       ::testing::AllOf(HasSubstr("no usable CRL"), HasSubstr(crl_dir().string()),
                                        HasSubstr("crl: none"))));
  // A CRL dir that does not exist, or holds a file that is no CRL, likewise.
  fs::remove_all(crl_dir());
  EXPECT_THAT(TrustStore::Load(Opts()), StatusIs(absl::StatusCode::kFailedPrecondition));
  fs::create_directories(crl_dir());
  std::ofstream(crl_dir() / "junk.r0") << "not a CRL";
  EXPECT_THAT(TrustStore::Load(Opts()),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("junk.r0")));
}

TEST_F(TrustStoreTest, CrlSignedByAnotherCaDoesNotCount) {
  ClearCrlDir();
  auto other = dir_.path() / "other";
  ASSERT_TRUE(certs::InitCa(other, "zhongshan.corridor").ok());
  ASSERT_TRUE(certs::WriteCrl(other, crl_dir()).ok());
  EXPECT_THAT(TrustStore::Load(Opts()),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("not signed by a CA")));
}

TEST_F(TrustStoreTest, CrlNoneLoadsWithoutCrlsAndSaysSo) {
  ClearCrlDir();
  auto store = TrustStore::Load(Opts(/*crl_required=*/false));
  ASSERT_TRUE(store.ok()) << store.status();
  EXPECT_TRUE((*store)->Verify(Pem("zs-police"), "").ok());
  EXPECT_THAT((*store)->Problems(), AnyHasSubstr("revocation checks are off"));
  TrustStore::Options o = Opts();
  o.domains[0].crl_dir.clear();
  EXPECT_THAT(TrustStore::Load(o),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("broker.tls.crl_dir")));
}

TEST_F(TrustStoreTest, RevocationTakesEffectOnReload) {
  auto store = Load();
  const std::string msa = Pem("zs-msa");
  ASSERT_TRUE(store->Verify(msa, "").ok());
  EXPECT_FALSE(store->IsRevoked(msa));
  RevokeAndWriteCrl("zs-msa");
  EXPECT_TRUE(store->Verify(msa, "").ok()) << "not before a reload";
  TrustStore::ReloadReport r = store->Reload();
  EXPECT_TRUE(r.revocations_changed);
  EXPECT_THAT(r.changes, AnyHasSubstr("now in force (1 revoked"));
  PeerCertCheck c = store->Verify(msa, "");
  EXPECT_EQ(c.refusal, CertRefusal::kRevoked) << c.detail;
  EXPECT_EQ(c.serial_hex, Serial("zs-msa"));
  EXPECT_TRUE(store->IsRevoked(msa));
  EXPECT_EQ(store->CheckOnCall(msa), CertRefusal::kRevoked);
  EXPECT_TRUE(store->Verify(Pem("zs-police"), "").ok());
  EXPECT_EQ(store->CheckOnCall(Pem("zs-police")), CertRefusal::kNone);
  // Nothing new: no change.
  EXPECT_FALSE(store->Reload().revocations_changed);
}

TEST_F(TrustStoreTest, ExpiredCrlStaysInForceWithoutLockingOut) {
  ClearCrlDir();
  const absl::Time now = absl::Now();
  ASSERT_TRUE(corridor::testing::WriteCrlAt(ca_dir(), crl_dir() / "expired.pem", {Serial("zs-msa")},
                                            now - absl::Hours(72), now - absl::Hours(24), 7)
                  .ok());
  auto store = Load();
  ASSERT_NE(store, nullptr);
  EXPECT_TRUE(store->Verify(Pem("zs-police"), "").ok())
      << store->Verify(Pem("zs-police"), "").detail;
  EXPECT_EQ(store->Verify(Pem("zs-msa"), "").refusal, CertRefusal::kRevoked);
  EXPECT_THAT(store->Problems(), AnyHasSubstr("CRL #7 of"));
  EXPECT_THAT(store->Problems(), AnyHasSubstr("expired at"));
  // A fresh CRL arrives: it replaces the expired one and the problem goes away.
  ASSERT_TRUE(corridor::testing::WriteCrlAt(ca_dir(), crl_dir() / "fresh.pem", {Serial("zs-msa")},
                                            now - absl::Minutes(1), now + absl::Hours(24 * 30), 8)
                  .ok());
  store->Reload();
  EXPECT_THAT(store->Problems(), IsEmpty());
  EXPECT_EQ(store->Verify(Pem("zs-msa"), "").refusal, CertRefusal::kRevoked);
}

TEST_F(TrustStoreTest, UnusableOrOlderCrlKeepsTheOneInForce) {
  RevokeAndWriteCrl("zs-msa");
  auto store = Load();
  ASSERT_NE(store, nullptr);
  // The CRL file is replaced by garbage: the last good CRL stays.
  for (const auto& e : fs::directory_iterator(crl_dir())) std::ofstream(e.path()) << "garbage";
  store->Reload();
  EXPECT_EQ(store->Verify(Pem("zs-msa"), "").refusal, CertRefusal::kRevoked);
  EXPECT_THAT(store->Problems(), AnyHasSubstr("is not a readable CRL"));
  EXPECT_THAT(store->Problems(), AnyHasSubstr("keeping #"));
  // An older CRL (lower number, nobody revoked) does not undo the revocation.
  ClearCrlDir();
  const absl::Time now = absl::Now();
  ASSERT_TRUE(corridor::testing::WriteCrlAt(ca_dir(), crl_dir() / "old.pem", {},
                                            now - absl::Hours(1), now + absl::Hours(48), 0)
                  .ok());
  store->Reload();
  EXPECT_EQ(store->Verify(Pem("zs-msa"), "").refusal, CertRefusal::kRevoked);
  EXPECT_THAT(store->Problems(), AnyHasSubstr("older than"));
}

TEST_F(TrustStoreTest, CrlNearingNextUpdateIsAWarning) {
  ClearCrlDir();
  const absl::Time now = absl::Now();
  ASSERT_TRUE(corridor::testing::WriteCrlAt(ca_dir(), crl_dir() / "soon.pem", {},
                                            now - absl::Hours(1), now + absl::Hours(48), 3)
                  .ok());
  auto store = Load();
  ASSERT_NE(store, nullptr);
  EXPECT_THAT(store->Problems(), AnyHasSubstr("expires at"));
  EXPECT_THAT(store->Problems(now - absl::Hours(24 * 30)), IsEmpty());
}

TEST_F(TrustStoreTest, CaCertificateAsLeafIsRefused) {
  auto serial = corridor::testing::IssueCaLeaf(
      ca_dir(), "spiffe://zhongshan.corridor/agency/zs-police/node1", dev(), "ca-leaf");
  ASSERT_TRUE(serial.ok()) << serial.status();
  auto store = Load();
  PeerCertCheck c = store->Verify(Pem("ca-leaf"), "");
  EXPECT_EQ(c.refusal, CertRefusal::kCaLeaf) << c.detail;
  EXPECT_EQ(c.serial_hex, *serial);
  // The exchange CA's own certificate is no client either (its keyUsage already
  // rules out client authentication).
  EXPECT_FALSE(store->Verify(Slurp(dev() / "ca.crt"), "").ok());
}

TEST_F(TrustStoreTest, OtherCaAndExpiredAreRefused) {
  auto other = dir_.path() / "other";
  ASSERT_TRUE(certs::InitCa(other, "zhongshan.corridor").ok());
  certs::IssueOptions io;
  io.spiffe_id = certs::AgencyNodeId("zhongshan.corridor", "zs-police", "node1");
  io.out_dir = dir_.path() / "other-certs";
  io.name = "impostor";
  ASSERT_TRUE(certs::Issue(other, io).ok());
  auto store = Load();
  PeerCertCheck c = store->Verify(Slurp(dir_.path() / "other-certs" / "impostor.crt"), "");
  EXPECT_EQ(c.refusal, CertRefusal::kUnknownIssuer) << c.detail;
  EXPECT_THAT(c.issuer, HasSubstr("Corridor exchange CA"));
  EXPECT_EQ(store->Verify(Pem("zs-police"), "", absl::Now() + absl::Hours(24 * 800)).refusal,
            CertRefusal::kExpired);
  EXPECT_EQ(store->Verify("garbage", "").refusal, CertRefusal::kUnparseable);
}

TEST(RefusalSummarizerTest, FirstAtOnceThenOneSummaryPerWindow) {
  RefusalSummarizer s(absl::Seconds(10));
  const absl::Time t0 = absl::FromUnixSeconds(1'800'000'000);
  PeerCertCheck sample;
  sample.subject = "CN=node1";
  auto first = s.Note("revoked", sample, t0);
  ASSERT_TRUE(first.has_value());
  EXPECT_FALSE(first->summary);
  for (int i = 1; i <= 500; ++i) {
    EXPECT_FALSE(s.Note("revoked", sample, t0 + absl::Milliseconds(10 * i)).has_value());
  }
  EXPECT_TRUE(s.Note("expired", sample, t0 + absl::Seconds(1)).has_value());
  EXPECT_THAT(s.Flush(t0 + absl::Seconds(9)), IsEmpty());
  auto reports = s.Flush(t0 + absl::Seconds(11));
  ASSERT_EQ(reports.size(), 1u);  // "expired" was refused once: nothing to summarize
  EXPECT_EQ(reports[0].reason, "revoked");
  EXPECT_EQ(reports[0].count, 500u);
  EXPECT_TRUE(reports[0].summary);
  EXPECT_EQ(reports[0].first, t0 + absl::Milliseconds(10));
  EXPECT_EQ(reports[0].last, t0 + absl::Seconds(5));
  EXPECT_THAT(DescribeRefusal("TLS handshake refused", reports[0]), HasSubstr("500 more between"));
  // A new window starts with a report at once.
  EXPECT_TRUE(s.Note("revoked", sample, t0 + absl::Seconds(12)).has_value());
}

}  // namespace
}  // namespace corridor::broker
