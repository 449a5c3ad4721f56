#include "certs/pki.h"

#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "certs/internal/openssl_util.h"
#include "certs/internal/x509_util.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/certs/test_util.h"
#include "tests/testing/status_matchers.h"

namespace corridor::certs {
namespace {

namespace fs = std::filesystem;
using ::corridor::certs::internal::X509CrlPtr;
using ::corridor::certs::internal::X509Ptr;
using ::corridor::certs::testing::ModeOf;
using ::corridor::certs::testing::ScratchDir;
using ::corridor::certs::testing::Slurp;
using ::corridor::certs::testing::Spit;
using ::corridor::testing::IsOk;
using ::corridor::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

constexpr char kTd[] = "zhongshan.corridor";

using StorePtr = std::unique_ptr<X509_STORE, internal::OpensslDeleter<X509_STORE_free>>;
using StoreCtxPtr = std::unique_ptr<X509_STORE_CTX, internal::OpensslDeleter<X509_STORE_CTX_free>>;

X509Ptr LoadCert(const fs::path& path) {
  absl::StatusOr<X509Ptr> cert = internal::ReadCertFile(path);
  EXPECT_THAT(cert, IsOk());
  return cert.ok() ? std::move(*cert) : nullptr;
}

X509CrlPtr LoadCrl(const fs::path& path) {
  absl::StatusOr<X509CrlPtr> crl = internal::ReadCrlFile(path);
  EXPECT_THAT(crl, IsOk());
  return crl.ok() ? std::move(*crl) : nullptr;
}

// Verifies `leaf` against a store built by `setup`, with `purpose`; returns the
// X509_V_* result (X509_V_OK on success).
template <typename Setup>
int VerifyWith(X509* leaf, Setup setup, int purpose = X509_PURPOSE_SSL_CLIENT) {
  StorePtr store(X509_STORE_new());
  setup(store.get());
  StoreCtxPtr ctx(X509_STORE_CTX_new());
  if (!store || !ctx || !leaf || X509_STORE_CTX_init(ctx.get(), store.get(), leaf, nullptr) != 1) {
    return -1;
  }
  X509_STORE_CTX_set_purpose(ctx.get(), purpose);
  const int ok = X509_verify_cert(ctx.get());
  const int err = X509_STORE_CTX_get_error(ctx.get());
  return ok == 1 ? X509_V_OK : (err == X509_V_OK ? -2 : err);
}

int Verify(X509* ca, X509* leaf, X509_CRL* crl = nullptr, int purpose = X509_PURPOSE_SSL_CLIENT) {
  return VerifyWith(
      leaf,
      [&](X509_STORE* store) {
        X509_STORE_add_cert(store, ca);
        if (crl != nullptr) {
          X509_STORE_add_crl(store, crl);
          X509_STORE_set_flags(store, X509_V_FLAG_CRL_CHECK);
        }
      },
      purpose);
}

// As gRPC's set_crl_directory() does it: CRLs come from a hash-dir lookup.
int VerifyWithCrlDir(X509* ca, X509* leaf, const fs::path& crl_dir) {
  return VerifyWith(leaf, [&](X509_STORE* store) {
    X509_STORE_add_cert(store, ca);
    X509_LOOKUP* lookup = X509_STORE_add_lookup(store, X509_LOOKUP_hash_dir());
    X509_LOOKUP_add_dir(lookup, crl_dir.c_str(), X509_FILETYPE_PEM);
    X509_STORE_set_flags(store, X509_V_FLAG_CRL_CHECK);
  });
}

std::string HashName(X509* ca) {
  int ok = 0;
  const unsigned long h = X509_NAME_hash_ex(X509_get_subject_name(ca), nullptr, nullptr, &ok);
  EXPECT_EQ(ok, 1);
  char buf[16];
  std::snprintf(buf, sizeof buf, "%08lx", h);
  return std::string(buf) + ".r0";
}

// Entries in a CRL (an empty CRL has no revokedCertificates field at all).
int RevokedCount(X509_CRL* crl) {
  STACK_OF(X509_REVOKED)* revoked = X509_CRL_get_REVOKED(crl);
  return revoked == nullptr ? 0 : sk_X509_REVOKED_num(revoked);
}

bool ExtensionIsCritical(X509* cert, int nid) {
  const int idx = X509_get_ext_by_NID(cert, nid, -1);
  return idx >= 0 && X509_EXTENSION_get_critical(X509_get_ext(cert, idx)) == 1;
}

std::vector<std::string> ListDir(const fs::path& dir) {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) out.push_back(e.path().filename());
  std::sort(out.begin(), out.end());
  return out;
}

class PkiTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_THAT(InitCa(ca_dir(), kTd), IsOk()); }

  fs::path ca_dir() const { return scratch_.path() / "ca"; }
  fs::path out_dir() const { return scratch_.path() / "out"; }
  fs::path crl_dir() const { return scratch_.path() / "crl"; }

  IssuedCert MustIssue(const std::string& spiffe_id, const std::string& name) {
    IssueOptions opts;
    opts.spiffe_id = spiffe_id;
    opts.out_dir = out_dir();
    opts.name = name;
    absl::StatusOr<IssuedCert> issued = Issue(ca_dir(), opts);
    EXPECT_THAT(issued, IsOk());
    return issued.ok() ? *issued : IssuedCert{};
  }

  absl::Status IssueId(const std::string& spiffe_id) {
    IssueOptions opts;
    opts.spiffe_id = spiffe_id;
    opts.out_dir = out_dir();
    opts.name = "x";
    return Issue(ca_dir(), opts).status();
  }

  ScratchDir scratch_;
};

// ---- InitCa ---------------------------------------------------------------

TEST_F(PkiTest, InitCaWritesSelfSignedCaWithSecretKeyInPrivateDir) {
  EXPECT_EQ(ModeOf(ca_dir()), 0700);
  EXPECT_EQ(ModeOf(ca_dir() / "ca.key"), 0600);
  EXPECT_EQ(ModeOf(ca_dir() / "ca.crt"), 0644);
  EXPECT_TRUE(fs::exists(ca_dir() / "issued.tsv"));
  EXPECT_TRUE(fs::exists(ca_dir() / "revoked.tsv"));

  X509Ptr ca = LoadCert(ca_dir() / "ca.crt");
  ASSERT_NE(ca, nullptr);
  EXPECT_EQ(X509_check_ca(ca.get()), 1);
  EXPECT_TRUE(ExtensionIsCritical(ca.get(), NID_basic_constraints));
  EXPECT_TRUE(ExtensionIsCritical(ca.get(), NID_key_usage));
  EXPECT_EQ(X509_get_key_usage(ca.get()), static_cast<uint32_t>(KU_KEY_CERT_SIGN | KU_CRL_SIGN));
  EXPECT_NE(X509_get0_subject_key_id(ca.get()), nullptr);
  EXPECT_EQ(internal::NameToString(X509_get_subject_name(ca.get())),
            "CN=Corridor exchange CA zhongshan.corridor");
  EXPECT_EQ(Verify(ca.get(), ca.get(), nullptr, X509_PURPOSE_ANY), X509_V_OK);
  EXPECT_EQ(ReadUriSan(ca_dir() / "ca.crt").value_or(""), "spiffe://zhongshan.corridor");
  EXPECT_EQ(CaTrustDomain(ca_dir()).value_or(""), kTd);

  absl::StatusOr<internal::EvpPkeyPtr> key = internal::ReadKeyFile(ca_dir() / "ca.key");
  ASSERT_THAT(key, IsOk());
  EXPECT_EQ(EVP_PKEY_get_base_id(key->get()), EVP_PKEY_EC);
  EXPECT_EQ(EVP_PKEY_get_bits(key->get()), 256);
  EXPECT_EQ(X509_check_private_key(ca.get(), key->get()), 1);
}

TEST_F(PkiTest, TrustBundleIsTheCaCertificateWithItsFingerprint) {
  const fs::path out = scratch_.path() / "zhongshan.corridor.crt";
  absl::StatusOr<TrustBundle> b = ExportTrustBundle(ca_dir(), out);
  ASSERT_THAT(b, IsOk());
  EXPECT_EQ(b->trust_domain, kTd);
  EXPECT_EQ(Slurp(out), Slurp(ca_dir() / "ca.crt"));
  EXPECT_EQ(Slurp(out).find("PRIVATE KEY"), std::string::npos);
  EXPECT_EQ(ModeOf(out), 0644);
  // The fingerprint is the SHA-256 of the DER, as `openssl x509 -fingerprint -sha256` prints it.
  X509Ptr ca = LoadCert(ca_dir() / "ca.crt");
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  ASSERT_EQ(X509_digest(ca.get(), EVP_sha256(), md, &len), 1);
  std::string want;
  for (unsigned int i = 0; i < len; ++i) {
    char buf[4];
    std::snprintf(buf, sizeof(buf), i == 0 ? "%02X" : ":%02X", md[i]);
    want += buf;
  }
  EXPECT_EQ(b->sha256_fingerprint, want);
  EXPECT_EQ(b->sha256_fingerprint.size(), 95u);
  EXPECT_FALSE(b->not_after.empty());
  EXPECT_THAT(ExportTrustBundle(ca_dir(), ca_dir() / "bundle.crt"),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ExportTrustBundle(scratch_.path() / "no-ca", out),
              StatusIs(absl::StatusCode::kNotFound));
}

TEST_F(PkiTest, InitCaRefusesToOverwriteAnExistingCa) {
  const std::string key_before = Slurp(ca_dir() / "ca.key");
  EXPECT_THAT(InitCa(ca_dir(), kTd),
              StatusIs(absl::StatusCode::kAlreadyExists, HasSubstr(ca_dir().string())));
  EXPECT_EQ(Slurp(ca_dir() / "ca.key"), key_before);
}

TEST_F(PkiTest, InitCaRejectsBadTrustDomainAndDays) {
  EXPECT_THAT(InitCa(scratch_.path() / "ca2", "Not Valid"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("Not Valid")));
  EXPECT_THAT(InitCa(scratch_.path() / "ca3", kTd, 0),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("days")));
  // The CN "Corridor exchange CA <td>" must fit in 64 characters.
  EXPECT_THAT(InitCa(scratch_.path() / "ca4", std::string(44, 'a')),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("too long")));
  EXPECT_THAT(InitCa(scratch_.path() / "ca5", std::string(43, 'a')), IsOk());
  EXPECT_FALSE(fs::exists(scratch_.path() / "ca2" / "ca.key"));
  EXPECT_FALSE(fs::exists(scratch_.path() / "ca3" / "ca.key"));
}

TEST_F(PkiTest, InitCaTightensModeOfExistingDirectory) {
  const fs::path dir = scratch_.path() / "loose";
  fs::create_directory(dir);
  ::chmod(dir.c_str(), 0755);
  ASSERT_THAT(InitCa(dir, kTd), IsOk());
  EXPECT_EQ(ModeOf(dir), 0700);
}

// ---- Issue ----------------------------------------------------------------

TEST_F(PkiTest, IssuedLeafVerifiesAndHasTheContractedExtensions) {
  const std::time_t before = std::time(nullptr);
  IssuedCert issued = MustIssue(AgencyNodeId(kTd, "zs-police", "node1"), "zs-police");
  EXPECT_EQ(issued.cert_path, out_dir() / "zs-police.crt");
  EXPECT_EQ(issued.key_path, out_dir() / "zs-police.key");

  X509Ptr ca = LoadCert(ca_dir() / "ca.crt");
  X509Ptr leaf = LoadCert(issued.cert_path);
  ASSERT_NE(ca, nullptr);
  ASSERT_NE(leaf, nullptr);
  EXPECT_EQ(Verify(ca.get(), leaf.get(), nullptr, X509_PURPOSE_SSL_CLIENT), X509_V_OK);
  EXPECT_EQ(Verify(ca.get(), leaf.get(), nullptr, X509_PURPOSE_SSL_SERVER), X509_V_OK);

  EXPECT_EQ(ReadUriSan(issued.cert_path).value_or(""),
            "spiffe://zhongshan.corridor/agency/zs-police/node1");
  EXPECT_EQ(internal::NameToString(X509_get_subject_name(leaf.get())), "CN=node1");
  EXPECT_EQ(X509_check_ca(leaf.get()), 0);
  EXPECT_TRUE(ExtensionIsCritical(leaf.get(), NID_basic_constraints));
  EXPECT_TRUE(ExtensionIsCritical(leaf.get(), NID_key_usage));
  EXPECT_EQ(X509_get_key_usage(leaf.get()), static_cast<uint32_t>(KU_DIGITAL_SIGNATURE));
  EXPECT_EQ(X509_get_extended_key_usage(leaf.get()),
            static_cast<uint32_t>(XKU_SSL_SERVER | XKU_SSL_CLIENT));
  ASSERT_NE(X509_get0_subject_key_id(leaf.get()), nullptr);
  const ASN1_OCTET_STRING* akid = X509_get0_authority_key_id(leaf.get());
  ASSERT_NE(akid, nullptr);
  EXPECT_EQ(ASN1_OCTET_STRING_cmp(akid, X509_get0_subject_key_id(ca.get())), 0);

  EXPECT_EQ(internal::SerialHex(X509_get0_serialNumber(leaf.get())), issued.serial_hex);
  const std::time_t not_before =
      internal::Asn1TimeToUnix(X509_get0_notBefore(leaf.get())).value_or(0);
  EXPECT_GE(not_before, before - 5 * 60 - 2);
  EXPECT_LE(not_before, std::time(nullptr) - 5 * 60 + 2);
  const std::time_t not_after =
      internal::Asn1TimeToUnix(X509_get0_notAfter(leaf.get())).value_or(0);
  EXPECT_NEAR(static_cast<double>(not_after - before), 397.0 * 86400, 5);

  absl::StatusOr<internal::EvpPkeyPtr> key = internal::ReadKeyFile(issued.key_path);
  ASSERT_THAT(key, IsOk());
  EXPECT_EQ(EVP_PKEY_get_base_id(key->get()), EVP_PKEY_EC);
  EXPECT_EQ(X509_check_private_key(leaf.get(), key->get()), 1);
  EXPECT_THAT(Slurp(issued.key_path), HasSubstr("-----BEGIN PRIVATE KEY-----"));
}

TEST_F(PkiTest, KeyFilesAreOwnerOnlyEvenWithPermissiveUmask) {
  const mode_t old = ::umask(0);
  IssuedCert issued = MustIssue(AdminId(kTd, "ops1"), "admin");
  ::umask(old);
  EXPECT_EQ(ModeOf(issued.key_path), 0600);
  EXPECT_EQ(ModeOf(issued.cert_path), 0644);
  EXPECT_EQ(ModeOf(ca_dir()), 0700);
  EXPECT_EQ(ModeOf(ca_dir() / "ca.key"), 0600);
  // No temp files are left behind.
  EXPECT_THAT(ListDir(out_dir()), ElementsAre("admin.crt", "admin.key"));
}

TEST_F(PkiTest, IssueRecordsTheCertificateInTheLedger) {
  IssuedCert issued = MustIssue(AuditorId(kTd, "auditor1"), "auditor");
  const std::string ledger = Slurp(ca_dir() / "issued.tsv");
  EXPECT_THAT(ledger,
              HasSubstr(issued.serial_hex + "\tspiffe://zhongshan.corridor/auditor/auditor1\t"));
  EXPECT_THAT(ledger, HasSubstr(fs::absolute(issued.cert_path).lexically_normal().string()));
}

TEST_F(PkiTest, IssueAddsDnsAndIpSans) {
  IssueOptions opts;
  opts.spiffe_id = BrokerId(kTd, "zs-broker");
  opts.dns_names = {"localhost", "broker.zhongshan.corridor"};
  opts.ip_addresses = {"127.0.0.1", "::1", "10.0.0.7"};
  opts.out_dir = out_dir();
  opts.name = "broker";
  absl::StatusOr<IssuedCert> issued = Issue(ca_dir(), opts);
  ASSERT_THAT(issued, IsOk());
  absl::StatusOr<CertSummary> s = Describe(issued->cert_path);
  ASSERT_THAT(s, IsOk());
  EXPECT_EQ(s->uri_san, "spiffe://zhongshan.corridor/broker/zs-broker");
  EXPECT_THAT(s->dns_names, ElementsAre("localhost", "broker.zhongshan.corridor"));
  EXPECT_THAT(s->ip_addresses, ElementsAre("127.0.0.1", "::1", "10.0.0.7"));
  EXPECT_EQ(s->subject, "CN=zs-broker");
  EXPECT_EQ(s->issuer, "CN=Corridor exchange CA zhongshan.corridor");
  EXPECT_EQ(s->serial_hex, issued->serial_hex);
  X509Ptr leaf = LoadCert(issued->cert_path);
  ASSERT_NE(leaf, nullptr);
  EXPECT_EQ(X509_check_host(leaf.get(), "localhost", 0, 0, nullptr), 1);
  EXPECT_EQ(X509_check_ip_asc(leaf.get(), "::1", 0), 1);
  EXPECT_EQ(X509_check_ip_asc(leaf.get(), "127.0.0.2", 0), 0);
}

TEST_F(PkiTest, SerialsAreDistinct) {
  std::set<std::string> serials;
  for (int i = 0; i < 6; ++i) {
    serials.insert(
        MustIssue(AgencyNodeId(kTd, "zs-msa", "node" + std::to_string(i)), "n" + std::to_string(i))
            .serial_hex);
  }
  EXPECT_EQ(serials.size(), 6u);
}

TEST_F(PkiTest, IssueRejectsIdOfAnotherTrustDomain) {
  EXPECT_THAT(IssueId("spiffe://zhuhai.corridor/agency/zh-police/node1"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("zhuhai.corridor")));
  EXPECT_FALSE(fs::exists(out_dir() / "x.key"));
}

TEST_F(PkiTest, IssueRejectsMalformedIds) {
  for (const std::string id : {"", "zs-police", "https://zhongshan.corridor/agency/zs-police/node1",
                               "spiffe://zhongshan.corridor/agency/zs-police/node1?x=1",
                               "spiffe://zhongshan.corridor/agency/ZS/node1",
                               "spiffe://zhongshan.corridor/admin/a/../b"}) {
    EXPECT_THAT(IssueId(id), StatusIs(absl::StatusCode::kInvalidArgument)) << id;
  }
  EXPECT_FALSE(fs::exists(out_dir() / "x.key"));
}

TEST_F(PkiTest, IssueRejectsWrongShapes) {
  for (const std::string id :
       {"spiffe://zhongshan.corridor", "spiffe://zhongshan.corridor/agency/zs-police",
        "spiffe://zhongshan.corridor/agency/zs-police/node1/x",
        "spiffe://zhongshan.corridor/officer/o1", "spiffe://zhongshan.corridor/auditor/a/b"}) {
    EXPECT_THAT(IssueId(id), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(id))) << id;
  }
  EXPECT_FALSE(fs::exists(out_dir() / "x.crt"));
}

TEST_F(PkiTest, IssueRejectsBadOptions) {
  IssueOptions opts;
  opts.spiffe_id = AdminId(kTd, "ops1");
  opts.out_dir = out_dir();
  opts.name = "../escape";
  EXPECT_THAT(Issue(ca_dir(), opts).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("../escape")));
  opts.name = "ok";
  opts.days = 0;
  EXPECT_THAT(Issue(ca_dir(), opts).status(), StatusIs(absl::StatusCode::kInvalidArgument));
  opts.days = 30;
  opts.ip_addresses = {"300.1.1.1"};
  EXPECT_THAT(Issue(ca_dir(), opts).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("300.1.1.1")));
  opts.ip_addresses = {};
  opts.dns_names = {"bad_host!"};
  EXPECT_THAT(Issue(ca_dir(), opts).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("bad_host!")));
  EXPECT_FALSE(fs::exists(out_dir() / "ok.key"));
}

TEST_F(PkiTest, IssueRefusesToWriteIntoTheCaDir) {
  const std::string ca_key = Slurp(ca_dir() / "ca.key");
  IssueOptions opts;
  opts.spiffe_id = AdminId(kTd, "ca");
  opts.out_dir = ca_dir() / ".";
  opts.name = "ca";
  EXPECT_THAT(Issue(ca_dir(), opts).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("CA dir")));
  EXPECT_EQ(Slurp(ca_dir() / "ca.key"), ca_key);
}

TEST_F(PkiTest, IssueWithoutCaIsNotFound) {
  IssueOptions opts;
  opts.spiffe_id = AdminId(kTd, "ops1");
  opts.out_dir = out_dir();
  opts.name = "admin";
  EXPECT_THAT(Issue(scratch_.path() / "nope", opts).status(),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("nope")));
}

TEST_F(PkiTest, LeafDoesNotOutliveItsCa) {
  const fs::path short_ca = scratch_.path() / "short-ca";
  ASSERT_THAT(InitCa(short_ca, kTd, /*days=*/10), IsOk());
  IssueOptions opts;
  opts.spiffe_id = AdminId(kTd, "ops1");
  opts.out_dir = out_dir();
  opts.name = "admin";
  opts.days = 397;
  absl::StatusOr<IssuedCert> issued = Issue(short_ca, opts);
  ASSERT_THAT(issued, IsOk());
  X509Ptr ca = LoadCert(short_ca / "ca.crt");
  X509Ptr leaf = LoadCert(issued->cert_path);
  ASSERT_NE(leaf, nullptr);
  EXPECT_LE(internal::Asn1TimeToUnix(X509_get0_notAfter(leaf.get())).value_or(-1),
            internal::Asn1TimeToUnix(X509_get0_notAfter(ca.get())).value_or(0));
}

TEST_F(PkiTest, ReissueReplacesFilesAtomically) {
  IssuedCert first = MustIssue(AdminId(kTd, "ops1"), "admin");
  IssuedCert second = MustIssue(AdminId(kTd, "ops1"), "admin");
  EXPECT_NE(first.serial_hex, second.serial_hex);
  EXPECT_EQ(Describe(second.cert_path).value().serial_hex, second.serial_hex);
  EXPECT_THAT(ListDir(out_dir()), ElementsAre("admin.crt", "admin.key"));
}

TEST_F(PkiTest, CertificateOfAnotherCaDoesNotVerify) {
  IssuedCert ours = MustIssue(AdminId(kTd, "ops1"), "ours");
  // Another CA, both of another trust domain and of the same one (same subject name).
  for (const char* td : {"zhuhai.corridor", kTd}) {
    const fs::path other_ca = scratch_.path() / (std::string("other-") + td);
    ASSERT_THAT(InitCa(other_ca, td), IsOk());
    IssueOptions opts;
    opts.spiffe_id = AdminId(td, "ops1");
    opts.out_dir = out_dir();
    opts.name = std::string("theirs-") + td;
    absl::StatusOr<IssuedCert> theirs = Issue(other_ca, opts);
    ASSERT_THAT(theirs, IsOk());

    X509Ptr ca = LoadCert(ca_dir() / "ca.crt");
    X509Ptr foreign = LoadCert(theirs->cert_path);
    ASSERT_NE(foreign, nullptr);
    EXPECT_NE(Verify(ca.get(), foreign.get()), X509_V_OK) << td;
    X509Ptr own = LoadCert(ours.cert_path);
    EXPECT_EQ(Verify(ca.get(), own.get()), X509_V_OK);
    // ... and it cannot be revoked here.
    EXPECT_THAT(Revoke(ca_dir(), theirs->cert_path.string()),
                StatusIs(absl::StatusCode::kNotFound));
  }
}

// ---- Revoke and WriteCrl ----------------------------------------------------

TEST_F(PkiTest, RevokedCertFailsCrlCheckWhileOtherStillVerifies) {
  IssuedCert bad = MustIssue(AgencyNodeId(kTd, "zs-customs", "node1"), "zs-customs");
  IssuedCert good = MustIssue(AgencyNodeId(kTd, "zs-msa", "node1"), "zs-msa");
  ASSERT_THAT(Revoke(ca_dir(), bad.serial_hex), IsOk());
  ASSERT_THAT(WriteCrl(ca_dir(), crl_dir()), IsOk());

  X509Ptr ca = LoadCert(ca_dir() / "ca.crt");
  ASSERT_NE(ca, nullptr);
  const std::string crl_name = HashName(ca.get());
  EXPECT_THAT(ListDir(crl_dir()), ElementsAre(crl_name));
  EXPECT_EQ(CrlFileName(ca_dir() / "ca.crt").value_or(""), crl_name);
  EXPECT_EQ(Slurp(crl_dir() / crl_name), Slurp(ca_dir() / "crl.pem"));

  X509CrlPtr crl = LoadCrl(crl_dir() / crl_name);
  ASSERT_NE(crl, nullptr);
  EXPECT_EQ(X509_CRL_get_version(crl.get()), X509_CRL_VERSION_2);
  EXPECT_EQ(X509_NAME_cmp(X509_CRL_get_issuer(crl.get()), X509_get_subject_name(ca.get())), 0);
  EXPECT_EQ(X509_CRL_verify(crl.get(), X509_get0_pubkey(ca.get())), 1);
  EXPECT_GE(X509_CRL_get_ext_by_NID(crl.get(), NID_crl_number, -1), 0);
  EXPECT_GE(X509_CRL_get_ext_by_NID(crl.get(), NID_authority_key_identifier, -1), 0);
  ASSERT_EQ(RevokedCount(crl.get()), 1);
  EXPECT_EQ(internal::SerialHex(X509_REVOKED_get0_serialNumber(
                sk_X509_REVOKED_value(X509_CRL_get_REVOKED(crl.get()), 0))),
            bad.serial_hex);

  X509Ptr bad_cert = LoadCert(bad.cert_path);
  X509Ptr good_cert = LoadCert(good.cert_path);
  EXPECT_EQ(Verify(ca.get(), bad_cert.get(), crl.get()), X509_V_ERR_CERT_REVOKED);
  EXPECT_EQ(Verify(ca.get(), good_cert.get(), crl.get()), X509_V_OK);
  // Without the CRL the revoked certificate would still pass: the CRL is what rejects it.
  EXPECT_EQ(Verify(ca.get(), bad_cert.get()), X509_V_OK);
  // The same through a hash-dir lookup of crl_dir, which is how gRPC reads it.
  EXPECT_EQ(VerifyWithCrlDir(ca.get(), bad_cert.get(), crl_dir()), X509_V_ERR_CERT_REVOKED);
  EXPECT_EQ(VerifyWithCrlDir(ca.get(), good_cert.get(), crl_dir()), X509_V_OK);
}

TEST_F(PkiTest, EmptyCrlLetsEveryCertThrough) {
  IssuedCert cert = MustIssue(AdminId(kTd, "ops1"), "admin");
  ASSERT_THAT(WriteCrl(ca_dir(), crl_dir()), IsOk());
  X509Ptr ca = LoadCert(ca_dir() / "ca.crt");
  X509CrlPtr crl = LoadCrl(crl_dir() / HashName(ca.get()));
  ASSERT_NE(crl, nullptr);
  EXPECT_EQ(RevokedCount(crl.get()), 0);
  X509Ptr leaf = LoadCert(cert.cert_path);
  EXPECT_EQ(Verify(ca.get(), leaf.get(), crl.get()), X509_V_OK);
}

long CrlNumber(X509_CRL* crl) {
  internal::Asn1IntegerPtr n(
      static_cast<ASN1_INTEGER*>(X509_CRL_get_ext_d2i(crl, NID_crl_number, nullptr, nullptr)));
  return n ? ASN1_INTEGER_get(n.get()) : -1;
}

TEST_F(PkiTest, CrlNumberIncreases) {
  ASSERT_THAT(WriteCrl(ca_dir(), crl_dir()), IsOk());
  X509CrlPtr first = LoadCrl(ca_dir() / "crl.pem");
  ASSERT_THAT(WriteCrl(ca_dir(), crl_dir()), IsOk());
  X509CrlPtr second = LoadCrl(ca_dir() / "crl.pem");
  ASSERT_NE(first, nullptr);
  ASSERT_NE(second, nullptr);
  EXPECT_EQ(CrlNumber(first.get()), 1);
  EXPECT_EQ(CrlNumber(second.get()), 2);
}

TEST_F(PkiTest, WriteCrlRejectsBadDaysAndMissingCa) {
  EXPECT_THAT(WriteCrl(ca_dir(), crl_dir(), 0), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(WriteCrl(scratch_.path() / "nope", crl_dir()), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_FALSE(fs::exists(crl_dir()));
}

TEST_F(PkiTest, RevokeByCertPathAndByAnySerialSpelling) {
  IssuedCert a = MustIssue(AdminId(kTd, "a"), "a");
  IssuedCert b = MustIssue(AdminId(kTd, "b"), "b");
  ASSERT_THAT(Revoke(ca_dir(), a.cert_path.string()), IsOk());
  // Upper case, 0x prefix, a leading zero and colons all name the same serial.
  std::string spelled = "0x0";
  for (size_t i = 0; i < b.serial_hex.size(); ++i) {
    if (i > 0 && i % 2 == 0) spelled += ':';
    spelled += static_cast<char>(std::toupper(static_cast<unsigned char>(b.serial_hex[i])));
  }
  ASSERT_THAT(Revoke(ca_dir(), spelled), IsOk());
  const std::string revoked = Slurp(ca_dir() / "revoked.tsv");
  EXPECT_THAT(revoked, HasSubstr(a.serial_hex + "\t"));
  EXPECT_THAT(revoked, HasSubstr(b.serial_hex + "\t"));
}

TEST_F(PkiTest, RevokeIsIdempotent) {
  IssuedCert a = MustIssue(AdminId(kTd, "a"), "a");
  ASSERT_THAT(Revoke(ca_dir(), a.serial_hex), IsOk());
  const std::string once = Slurp(ca_dir() / "revoked.tsv");
  ASSERT_THAT(Revoke(ca_dir(), a.serial_hex), IsOk());
  ASSERT_THAT(Revoke(ca_dir(), a.cert_path.string()), IsOk());
  EXPECT_EQ(Slurp(ca_dir() / "revoked.tsv"), once);
}

TEST_F(PkiTest, RevokeUnknownSerialOrFileIsNotFound) {
  EXPECT_THAT(Revoke(ca_dir(), "deadbeef"),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("deadbeef")));
  EXPECT_THAT(Revoke(ca_dir(), (scratch_.path() / "missing.crt").string()),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("missing.crt")));
  // The CA's own serial was not issued as a leaf.
  X509Ptr ca = LoadCert(ca_dir() / "ca.crt");
  EXPECT_THAT(Revoke(ca_dir(), internal::SerialHex(X509_get0_serialNumber(ca.get()))),
              StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(Revoke(ca_dir(), ""), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST_F(PkiTest, RevokeOfNonCertificateFileIsInvalidArgument) {
  Spit(scratch_.path() / "junk.crt", "not a certificate");
  EXPECT_THAT(Revoke(ca_dir(), (scratch_.path() / "junk.crt").string()),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("junk.crt")));
}

TEST_F(PkiTest, CorruptLedgerIsDataLoss) {
  IssuedCert a = MustIssue(AdminId(kTd, "a"), "a");
  Spit(ca_dir() / "issued.tsv", Slurp(ca_dir() / "issued.tsv") + "garbage-without-tabs\n");
  EXPECT_THAT(Revoke(ca_dir(), a.serial_hex),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("issued.tsv")));
}

// ---- ReadUriSan / Describe ----------------------------------------------------

TEST_F(PkiTest, ReadUriSanErrors) {
  EXPECT_THAT(ReadUriSan(scratch_.path() / "missing.crt"),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("missing.crt")));
  EXPECT_THAT(ReadUriSan(ca_dir() / "ca.key"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("ca.key")));
  EXPECT_THAT(Describe(ca_dir() / "issued.tsv"), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST_F(PkiTest, DescribeReadsDerToo) {
  IssuedCert a = MustIssue(AdminId(kTd, "ops1"), "admin");
  X509Ptr cert = LoadCert(a.cert_path);
  unsigned char* der = nullptr;
  const int len = i2d_X509(cert.get(), &der);
  ASSERT_GT(len, 0);
  Spit(scratch_.path() / "admin.der", std::string(reinterpret_cast<char*>(der), len));
  OPENSSL_free(der);
  absl::StatusOr<CertSummary> s = Describe(scratch_.path() / "admin.der");
  ASSERT_THAT(s, IsOk());
  EXPECT_EQ(s->uri_san, "spiffe://zhongshan.corridor/admin/ops1");
  EXPECT_EQ(s->serial_hex, a.serial_hex);
  EXPECT_THAT(s->dns_names, IsEmpty());
  EXPECT_EQ(internal::ParseUtc(s->not_before).value_or(0),
            internal::Asn1TimeToUnix(X509_get0_notBefore(cert.get())).value_or(-1));
}

// ---- MakeDevSet ---------------------------------------------------------------

const std::map<std::string, std::string>& DevLeaves() {
  static const auto* leaves = new std::map<std::string, std::string>{
      {"broker", "spiffe://zhongshan.corridor/broker/zs-broker"},
      {"zs-police", "spiffe://zhongshan.corridor/agency/zs-police/node1"},
      {"zs-customs", "spiffe://zhongshan.corridor/agency/zs-customs/node1"},
      {"zs-msa", "spiffe://zhongshan.corridor/agency/zs-msa/node1"},
      {"zs-coastguard", "spiffe://zhongshan.corridor/agency/zs-coastguard/node1"},
      {"zh-police", "spiffe://zhongshan.corridor/agency/zh-police/node1"},
      {"auditor", "spiffe://zhongshan.corridor/auditor/auditor1"},
      {"admin", "spiffe://zhongshan.corridor/admin/ops1"},
  };
  return *leaves;
}

struct FileState {
  std::string content;
  long long mtime_ns;
  bool operator==(const FileState&) const = default;
};

std::map<std::string, FileState> Snapshot(const fs::path& root) {
  std::map<std::string, FileState> out;
  for (const auto& e : fs::recursive_directory_iterator(root)) {
    struct stat st;
    if (::stat(e.path().c_str(), &st) != 0) continue;
    out[fs::relative(e.path(), root).string()] = {
        e.is_regular_file() ? Slurp(e.path()) : "",
        static_cast<long long>(st.st_mtim.tv_sec) * 1000000000LL + st.st_mtim.tv_nsec};
  }
  return out;
}

class DevSetTest : public ::testing::Test {
 protected:
  fs::path dev() const { return scratch_.path() / "dev"; }
  ScratchDir scratch_;
};

TEST_F(DevSetTest, MakesEveryFileAndEveryLeafVerifies) {
  ASSERT_THAT(MakeDevSet(dev()), IsOk());
  X509Ptr ca = LoadCert(dev() / "ca.crt");
  ASSERT_NE(ca, nullptr);
  EXPECT_EQ(Slurp(dev() / "ca.crt"), Slurp(dev() / "ca" / "ca.crt"));
  EXPECT_EQ(ModeOf(dev() / "ca"), 0700);
  EXPECT_EQ(ModeOf(dev() / "ca" / "ca.key"), 0600);

  const std::string crl_name = HashName(ca.get());
  EXPECT_THAT(ListDir(dev() / "crl"), ElementsAre(crl_name));
  X509CrlPtr crl = LoadCrl(dev() / "crl" / crl_name);
  ASSERT_NE(crl, nullptr);
  EXPECT_EQ(RevokedCount(crl.get()), 0);

  for (const auto& [file, id] : DevLeaves()) {
    SCOPED_TRACE(file);
    const fs::path crt = dev() / (file + ".crt");
    const fs::path key = dev() / (file + ".key");
    EXPECT_EQ(ModeOf(key), 0600);
    EXPECT_EQ(ModeOf(crt), 0644);
    EXPECT_EQ(ReadUriSan(crt).value_or(""), id);
    X509Ptr leaf = LoadCert(crt);
    EXPECT_EQ(Verify(ca.get(), leaf.get(), crl.get()), X509_V_OK);
  }
  absl::StatusOr<CertSummary> broker = Describe(dev() / "broker.crt");
  ASSERT_THAT(broker, IsOk());
  EXPECT_THAT(broker->dns_names, ElementsAre("localhost"));
  EXPECT_THAT(broker->ip_addresses, ElementsAre("127.0.0.1", "::1"));

  // Nothing else is in the set.
  std::vector<std::string> expected = {"ca", "ca.crt", "crl"};
  for (const auto& [file, id] : DevLeaves()) {
    expected.push_back(file + ".crt");
    expected.push_back(file + ".key");
  }
  std::sort(expected.begin(), expected.end());
  EXPECT_EQ(ListDir(dev()), expected);
}

TEST_F(DevSetTest, SecondCallChangesNothing) {
  ASSERT_THAT(MakeDevSet(dev()), IsOk());
  const auto before = Snapshot(dev());
  ASSERT_GT(before.size(), 20u);
  ASSERT_THAT(MakeDevSet(dev()), IsOk());
  EXPECT_EQ(Snapshot(dev()), before);
}

TEST_F(DevSetTest, MissingPairIsReissuedFromTheExistingCa) {
  ASSERT_THAT(MakeDevSet(dev()), IsOk());
  const std::string ca_key = Slurp(dev() / "ca" / "ca.key");
  const std::string police = Slurp(dev() / "zs-police.crt");
  const std::string old_msa = Slurp(dev() / "zs-msa.crt");
  fs::remove(dev() / "zs-msa.key");
  ASSERT_THAT(MakeDevSet(dev()), IsOk());
  EXPECT_EQ(Slurp(dev() / "ca" / "ca.key"), ca_key);
  EXPECT_EQ(Slurp(dev() / "zs-police.crt"), police);
  EXPECT_TRUE(fs::exists(dev() / "zs-msa.key"));
  EXPECT_NE(Slurp(dev() / "zs-msa.crt"), old_msa);
  X509Ptr ca = LoadCert(dev() / "ca.crt");
  X509Ptr msa = LoadCert(dev() / "zs-msa.crt");
  EXPECT_EQ(Verify(ca.get(), msa.get()), X509_V_OK);
}

TEST_F(DevSetTest, OtherTrustDomainAndInvalidTrustDomainAreRejected) {
  ASSERT_THAT(MakeDevSet(dev(), "zhuhai.corridor"), IsOk());
  EXPECT_EQ(ReadUriSan(dev() / "zh-police.crt").value_or(""),
            "spiffe://zhuhai.corridor/agency/zh-police/node1");
  EXPECT_THAT(MakeDevSet(dev(), "zhongshan.corridor"),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("zhuhai.corridor")));
  EXPECT_THAT(MakeDevSet(scratch_.path() / "x", "Bad TD"),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

}  // namespace
}  // namespace corridor::certs
