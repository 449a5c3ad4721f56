#include "broker/trust_store.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "certs/internal/openssl_util.h"
#include "certs/internal/x509_util.h"
#include "certs/spiffe_id.h"

namespace corridor::broker {

namespace {

using certs::internal::BioPtr;
using certs::internal::X509Ptr;

struct StoreDeleter {
  void operator()(X509_STORE* s) const { X509_STORE_free(s); }
};
struct StoreCtxDeleter {
  void operator()(X509_STORE_CTX* c) const { X509_STORE_CTX_free(c); }
};
struct CertStackDeleter {
  void operator()(STACK_OF(X509) * s) const { sk_X509_pop_free(s, X509_free); }
};
struct CrlStackDeleter {
  void operator()(STACK_OF(X509_CRL) * s) const { sk_X509_CRL_pop_free(s, X509_CRL_free); }
};
using StoreCtxPtr = std::unique_ptr<X509_STORE_CTX, StoreCtxDeleter>;
using CertStackPtr = std::unique_ptr<STACK_OF(X509), CertStackDeleter>;
using CrlStackPtr = std::unique_ptr<STACK_OF(X509_CRL), CrlStackDeleter>;
using SharedCrl = std::shared_ptr<X509_CRL>;
using SharedCert = std::shared_ptr<X509>;

SharedCrl ShareCrl(X509_CRL* crl) { return SharedCrl(crl, X509_CRL_free); }
SharedCert ShareCert(X509* cert) { return SharedCert(cert, X509_free); }

// Every certificate in a PEM text, in order.
std::vector<SharedCert> ParseCertsPem(std::string_view pem) {
  std::vector<SharedCert> out;
  if (pem.empty()) return out;
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  if (!bio) return out;
  while (X509* cert = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr)) {
    out.push_back(ShareCert(cert));
  }
  ERR_clear_error();
  return out;
}

// Every CRL in a file's bytes: PEM (one or more), else one DER CRL.
std::vector<SharedCrl> ParseCrls(const std::string& bytes) {
  std::vector<SharedCrl> out;
  BioPtr bio(BIO_new_mem_buf(bytes.data(), static_cast<int>(bytes.size())));
  if (!bio) return out;
  while (X509_CRL* crl = PEM_read_bio_X509_CRL(bio.get(), nullptr, nullptr, nullptr)) {
    out.push_back(ShareCrl(crl));
  }
  if (out.empty()) {
    const unsigned char* p = reinterpret_cast<const unsigned char*>(bytes.data());
    if (X509_CRL* crl = d2i_X509_CRL(nullptr, &p, static_cast<long>(bytes.size()))) {
      out.push_back(ShareCrl(crl));
    }
  }
  ERR_clear_error();
  return out;
}

std::optional<std::string> ReadWholeFile(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  std::stringstream ss;
  ss << in.rdbuf();
  if (in.bad()) return std::nullopt;
  return ss.str();
}

std::string Der(const X509_NAME* name) {
  unsigned char* buf = nullptr;
  int n = i2d_X509_NAME(name, &buf);
  if (n <= 0) return "";
  std::string out(reinterpret_cast<char*>(buf), static_cast<size_t>(n));
  OPENSSL_free(buf);
  return out;
}

std::string Der(const ASN1_INTEGER* serial) {
  unsigned char* buf = nullptr;
  int n = i2d_ASN1_INTEGER(serial, &buf);
  if (n <= 0) return "";
  std::string out(reinterpret_cast<char*>(buf), static_cast<size_t>(n));
  OPENSSL_free(buf);
  return out;
}

std::string RevocationKey(const X509_NAME* issuer, const ASN1_INTEGER* serial) {
  std::string key = Der(issuer);
  key.push_back('\0');
  key += Der(serial);
  return key;
}

int64_t CrlNumber(X509_CRL* crl) {
  auto* n = static_cast<ASN1_INTEGER*>(X509_CRL_get_ext_d2i(crl, NID_crl_number, nullptr, nullptr));
  if (n == nullptr) return -1;
  int64_t v = -1;
  if (ASN1_INTEGER_get_int64(&v, n) != 1) v = -1;
  ASN1_INTEGER_free(n);
  return v;
}

// Unix seconds of an ASN1_TIME, or nullopt (e.g. a CRL without nextUpdate).
std::optional<int64_t> UnixTime(const ASN1_TIME* t) {
  if (t == nullptr) return std::nullopt;
  auto v = certs::internal::Asn1TimeToUnix(t);
  if (!v.ok()) return std::nullopt;
  return static_cast<int64_t>(*v);
}

std::string Utc(int64_t unix_seconds) {
  return certs::internal::FormatUtc(static_cast<std::time_t>(unix_seconds));
}

bool IsCrlFileName(const std::string& name) {
  if (absl::EndsWith(name, ".pem") || absl::EndsWith(name, ".crl")) return true;
  // OpenSSL's hash-dir names: <hash>.r<N>
  size_t dot = name.rfind('.');
  if (dot == std::string::npos || dot + 2 > name.size() || name[dot + 1] != 'r') return false;
  return std::all_of(name.begin() + static_cast<long>(dot) + 2, name.end(),
                     [](char c) { return c >= '0' && c <= '9'; }) &&
         dot + 2 < name.size();
}

// Certificate text for logs and the audit log: printable ASCII, bounded.
std::string Printable(std::string_view s) {
  std::string out;
  for (char c : s.substr(0, 200)) out.push_back(c >= 0x20 && c < 0x7f ? c : '?');
  if (s.size() > 200) out += "...";
  return out;
}

std::string SpiffeOf(X509* cert) {
  for (const std::string& uri : certs::internal::ReadSubjectAltNames(cert).uris) {
    if (absl::StartsWith(uri, "spiffe://")) return uri;
  }
  return "";
}

// The CRL in force for one CA.
struct CrlInForce {
  SharedCrl crl;
  std::string file;
  int64_t number = -1;
  int64_t this_update = 0;
  std::optional<int64_t> next_update;
  size_t revoked = 0;
};

bool Newer(const CrlInForce& a, const CrlInForce& b) {
  if (a.number != b.number) return a.number > b.number;
  return a.this_update > b.this_update;
}

int VerifyCallback(int ok, X509_STORE_CTX* ctx) {
  // A CRL past its nextUpdate stays in force (TrustStore keeps the newest one it
  // has and reports it): revoked certificates stay refused, the rest are not
  // locked out by a late CRL.
  if (!ok && X509_STORE_CTX_get_error(ctx) == X509_V_ERR_CRL_HAS_EXPIRED) return 1;
  return ok;
}

CertRefusal RefusalOf(int error) {
  switch (error) {
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
    case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
    case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
    case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
    case X509_V_ERR_CERT_UNTRUSTED:
      return CertRefusal::kUnknownIssuer;
    case X509_V_ERR_CERT_SIGNATURE_FAILURE:
    case X509_V_ERR_UNABLE_TO_DECRYPT_CERT_SIGNATURE:
      return CertRefusal::kBadSignature;
    case X509_V_ERR_CERT_HAS_EXPIRED:
      return CertRefusal::kExpired;
    case X509_V_ERR_CERT_NOT_YET_VALID:
      return CertRefusal::kNotYetValid;
    case X509_V_ERR_CERT_REVOKED:
      return CertRefusal::kRevoked;
    case X509_V_ERR_UNABLE_TO_GET_CRL:
      return CertRefusal::kNoCrl;
    case X509_V_ERR_INVALID_PURPOSE:
      return CertRefusal::kWrongPurpose;
    default:
      return CertRefusal::kOther;
  }
}

}  // namespace

const char* RefusalName(CertRefusal refusal) {
  switch (refusal) {
    case CertRefusal::kNone:
      return "accepted";
    case CertRefusal::kUnparseable:
      return "unparseable certificate";
    case CertRefusal::kUnknownIssuer:
      return "unknown issuer";
    case CertRefusal::kBadSignature:
      return "bad signature";
    case CertRefusal::kExpired:
      return "expired";
    case CertRefusal::kNotYetValid:
      return "not yet valid";
    case CertRefusal::kRevoked:
      return "revoked";
    case CertRefusal::kNoCrl:
      return "no CRL for its issuer";
    case CertRefusal::kWrongPurpose:
      return "not for client authentication";
    case CertRefusal::kCaLeaf:
      return "CA certificate as leaf";
    case CertRefusal::kOther:
      return "invalid chain";
  }
  return "invalid chain";
}

// One trust domain as loaded: its CAs (in an X509_STORE for verification) and
// the CRLs in force, one per CA at most (parallel to `cas`).
struct DomainState {
  TrustDomainFiles files;
  std::vector<SharedCert> cas;
  std::shared_ptr<X509_STORE> store;
  std::vector<std::optional<CrlInForce>> crls;  // per CA
  std::shared_ptr<STACK_OF(X509_CRL)> crl_stack;
  std::vector<std::string> problems;  // from the last load: files that could not be used
};

struct TrustStore::Snapshot {
  std::vector<DomainState> domains;
  absl::flat_hash_set<std::string> revoked;  // RevocationKey of every revoked serial
  absl::Duration warn_before;

  const DomainState& DomainFor(std::string_view spiffe_id) const {
    if (auto id = certs::ParseSpiffeId(spiffe_id); id.ok()) {
      for (const DomainState& d : domains) {
        if (d.files.trust_domain == id->trust_domain) return d;
      }
    }
    return domains.front();
  }
};

namespace {

std::string CaName(const SharedCert& ca) {
  return certs::internal::NameToString(X509_get_subject_name(ca.get()));
}

// Loads one domain; `previous` is what was in force (nullptr at start). At
// start a missing piece is an error; on reload it keeps the previous piece and
// becomes a problem.
absl::StatusOr<DomainState> LoadDomain(const TrustDomainFiles& files, const DomainState* previous,
                                       absl::Time now, std::vector<std::string>* changes) {
  DomainState d;
  d.files = files;
  const std::string where = absl::StrCat("trust domain ", files.trust_domain);
  // The CA bundle.
  std::optional<std::string> bundle = ReadWholeFile(files.ca_file);
  std::vector<SharedCert> cas = bundle ? ParseCertsPem(*bundle) : std::vector<SharedCert>{};
  if (cas.empty()) {
    std::string problem = absl::StrCat("CA bundle ", files.ca_file,
                                       bundle ? " holds no PEM certificate" : " cannot be read");
    if (previous == nullptr) return absl::FailedPreconditionError(problem);
    d.problems.push_back(absl::StrCat(problem, "; keeping the CAs loaded before"));
    cas = previous->cas;
  }
  d.cas = cas;
  d.store = std::shared_ptr<X509_STORE>(X509_STORE_new(), X509_STORE_free);
  for (const SharedCert& ca : cas) X509_STORE_add_cert(d.store.get(), ca.get());
  ERR_clear_error();
  d.crls.resize(cas.size());
  d.crl_stack = std::shared_ptr<STACK_OF(X509_CRL)>(sk_X509_CRL_new_null(), CrlStackDeleter());
  if (!files.crl_required) return d;

  // Candidates from the CRL dir, the newest per CA.
  std::vector<std::optional<CrlInForce>> found(cas.size());
  std::error_code ec;
  std::vector<std::filesystem::path> paths;
  for (const auto& entry : std::filesystem::directory_iterator(files.crl_dir, ec)) {
    if (entry.is_regular_file() && IsCrlFileName(entry.path().filename().string())) {
      paths.push_back(entry.path());
    }
  }
  if (ec) d.problems.push_back(absl::StrCat("CRL dir ", files.crl_dir, ": ", ec.message()));
  std::sort(paths.begin(), paths.end());
  const int64_t now_unix = absl::ToUnixSeconds(now);
  for (const auto& path : paths) {
    std::optional<std::string> bytes = ReadWholeFile(path);
    std::vector<SharedCrl> crls = bytes ? ParseCrls(*bytes) : std::vector<SharedCrl>{};
    if (crls.empty()) {
      d.problems.push_back(absl::StrCat("CRL file ", path.string(), " is not a readable CRL"));
      continue;
    }
    for (const SharedCrl& crl : crls) {
      const X509_NAME* issuer = X509_CRL_get_issuer(crl.get());
      int signer = -1;
      for (size_t i = 0; i < cas.size(); ++i) {
        if (X509_NAME_cmp(issuer, X509_get_subject_name(cas[i].get())) == 0 &&
            X509_CRL_verify(crl.get(), X509_get0_pubkey(cas[i].get())) == 1) {
          signer = static_cast<int>(i);
          break;
        }
      }
      ERR_clear_error();
      if (signer < 0) {
        d.problems.push_back(absl::StrCat("CRL file ", path.string(), " (issuer ",
                                          certs::internal::NameToString(issuer),
                                          ") is not signed by a CA of ", files.ca_file));
        continue;
      }
      CrlInForce c;
      c.crl = crl;
      c.file = path.string();
      c.number = CrlNumber(crl.get());
      c.this_update = UnixTime(X509_CRL_get0_lastUpdate(crl.get())).value_or(0);
      c.next_update = UnixTime(X509_CRL_get0_nextUpdate(crl.get()));
      STACK_OF(X509_REVOKED)* revoked = X509_CRL_get_REVOKED(crl.get());
      c.revoked = revoked == nullptr ? 0 : static_cast<size_t>(sk_X509_REVOKED_num(revoked));
      if (c.this_update > now_unix + 300) {
        d.problems.push_back(absl::StrCat("CRL file ", path.string(), " is not valid before ",
                                          Utc(c.this_update), " (clock skew?); not used"));
        continue;
      }
      auto& best = found[static_cast<size_t>(signer)];
      if (!best || Newer(c, *best)) best = std::move(c);
    }
  }

  // Per CA: the candidate, unless what is in force is newer.
  for (size_t i = 0; i < cas.size(); ++i) {
    const CrlInForce* before = nullptr;
    if (previous != nullptr) {
      for (size_t j = 0; j < previous->cas.size(); ++j) {
        if (X509_cmp(previous->cas[j].get(), cas[i].get()) == 0 && previous->crls[j]) {
          before = &*previous->crls[j];
        }
      }
    }
    const std::string ca = CaName(cas[i]);
    if (found[i] && (before == nullptr || !Newer(*before, *found[i]))) {
      d.crls[i] = found[i];
      if (before == nullptr || Newer(*found[i], *before)) {
        changes->push_back(
            absl::StrCat("CRL #", found[i]->number, " of ", ca, " from ", found[i]->file,
                         " now in force (", found[i]->revoked, " revoked, next update ",
                         found[i]->next_update ? Utc(*found[i]->next_update) : "none", ")"));
      }
    } else if (before != nullptr) {
      d.crls[i] = *before;
      d.problems.push_back(
          found[i] ? absl::StrCat("the newest CRL of ", ca, " in ", files.crl_dir, " is #",
                                  found[i]->number, ", older than #", before->number,
                                  " in force; keeping #", before->number)
                   : absl::StrCat("no usable CRL of ", ca, " in ", files.crl_dir, "; keeping #",
                                  before->number, " from ", before->file));
    } else if (previous == nullptr) {
      std::string detail = d.problems.empty() ? "" : absl::StrCat(" (", d.problems.back(), ")");
      return absl::FailedPreconditionError(absl::StrCat(
          where, ": no usable CRL of ", ca, " in broker.tls.crl_dir ", files.crl_dir, detail,
          ": write one with `corridor-certs crl --ca-dir <ca> --crl-dir ", files.crl_dir,
          "`, or set broker.tls.crl: none to run without revocation checks"));
    } else {
      d.problems.push_back(absl::StrCat("no CRL of ", ca, " in ", files.crl_dir,
                                        ": its certificates are refused until there is one"));
    }
    if (d.crls[i]) {
      X509_CRL_up_ref(d.crls[i]->crl.get());
      sk_X509_CRL_push(d.crl_stack.get(), d.crls[i]->crl.get());
    }
  }
  return d;
}

void IndexRevoked(const DomainState& d, absl::flat_hash_set<std::string>& out) {
  for (const auto& c : d.crls) {
    if (!c) continue;
    STACK_OF(X509_REVOKED)* revoked = X509_CRL_get_REVOKED(c->crl.get());
    const X509_NAME* issuer = X509_CRL_get_issuer(c->crl.get());
    for (int k = 0; revoked != nullptr && k < sk_X509_REVOKED_num(revoked); ++k) {
      out.insert(
          RevocationKey(issuer, X509_REVOKED_get0_serialNumber(sk_X509_REVOKED_value(revoked, k))));
    }
  }
}

}  // namespace

TrustStore::TrustStore(Options options, std::shared_ptr<const Snapshot> snapshot)
    : options_(std::move(options)), snapshot_(std::move(snapshot)) {}

TrustStore::~TrustStore() = default;

absl::StatusOr<std::unique_ptr<TrustStore>> TrustStore::Load(Options options, absl::Time now) {
  if (options.domains.empty()) return absl::InvalidArgumentError("trust store: no trust domain");
  auto snapshot = std::make_shared<Snapshot>();
  snapshot->warn_before = options.warn_before;
  std::vector<std::string> changes;
  for (const TrustDomainFiles& files : options.domains) {
    if (files.crl_required && files.crl_dir.empty()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "broker.tls.crl_dir: required (or broker.tls.crl: none to run without revocation "
          "checks) for trust domain ",
          files.trust_domain));
    }
    auto d = LoadDomain(files, nullptr, now, &changes);
    if (!d.ok()) return d.status();
    IndexRevoked(*d, snapshot->revoked);
    snapshot->domains.push_back(*std::move(d));
  }
  return std::unique_ptr<TrustStore>(new TrustStore(std::move(options), std::move(snapshot)));
}

std::shared_ptr<const TrustStore::Snapshot> TrustStore::snapshot() const {
  absl::MutexLock lock(&mu_);
  return snapshot_;
}

TrustStore::ReloadReport TrustStore::Reload(absl::Time now) {
  absl::MutexLock reload_lock(&reload_mu_);
  std::shared_ptr<const Snapshot> before = snapshot();
  auto next = std::make_shared<Snapshot>();
  next->warn_before = options_.warn_before;
  ReloadReport report;
  for (size_t i = 0; i < options_.domains.size(); ++i) {
    auto d = LoadDomain(options_.domains[i], &before->domains[i], now, &report.changes);
    // With a previous state LoadDomain keeps what it cannot replace; it fails
    // only on what cannot happen then.
    next->domains.push_back(d.ok() ? *std::move(d) : before->domains[i]);
    IndexRevoked(next->domains.back(), next->revoked);
  }
  report.revocations_changed = next->revoked != before->revoked;
  {
    absl::MutexLock lock(&mu_);
    snapshot_ = std::move(next);
  }
  return report;
}

namespace {

PeerCertCheck DescribeParsed(X509* leaf) {
  PeerCertCheck out;
  out.subject = Printable(certs::internal::NameToString(X509_get_subject_name(leaf)));
  out.issuer = Printable(certs::internal::NameToString(X509_get_issuer_name(leaf)));
  out.serial_hex = Printable(certs::internal::SerialHex(X509_get0_serialNumber(leaf)));
  out.spiffe_id = Printable(SpiffeOf(leaf));
  return out;
}

}  // namespace

PeerCertCheck TrustStore::Describe(std::string_view leaf_pem) {
  std::vector<SharedCert> certs = ParseCertsPem(leaf_pem);
  if (certs.empty()) {
    PeerCertCheck out;
    out.refusal = CertRefusal::kUnparseable;
    out.detail = "no PEM certificate";
    return out;
  }
  return DescribeParsed(certs.front().get());
}

PeerCertCheck TrustStore::Verify(std::string_view leaf_pem, std::string_view chain_pem,
                                 absl::Time now) const {
  std::vector<SharedCert> leaf_certs = ParseCertsPem(leaf_pem);
  if (leaf_certs.empty()) return Describe(leaf_pem);
  X509* leaf = leaf_certs.front().get();
  PeerCertCheck out = DescribeParsed(leaf);

  std::shared_ptr<const Snapshot> snap = snapshot();
  const DomainState& domain = snap->DomainFor(out.spiffe_id);
  CertStackPtr untrusted(sk_X509_new_null());
  for (const SharedCert& c : ParseCertsPem(chain_pem)) {
    if (X509_cmp(c.get(), leaf) == 0) continue;
    X509_up_ref(c.get());
    sk_X509_push(untrusted.get(), c.get());
  }
  StoreCtxPtr ctx(X509_STORE_CTX_new());
  if (!ctx || X509_STORE_CTX_init(ctx.get(), domain.store.get(), leaf, untrusted.get()) != 1) {
    ERR_clear_error();
    out.refusal = CertRefusal::kOther;
    out.detail = "could not set up verification";
    return out;
  }
  X509_STORE_CTX_set_purpose(ctx.get(), X509_PURPOSE_SSL_CLIENT);
  X509_VERIFY_PARAM_set_time(X509_STORE_CTX_get0_param(ctx.get()), absl::ToTimeT(now));
  if (domain.files.crl_required) {
    X509_STORE_CTX_set_flags(ctx.get(), X509_V_FLAG_CRL_CHECK | X509_V_FLAG_CRL_CHECK_ALL);
    X509_STORE_CTX_set0_crls(ctx.get(), domain.crl_stack.get());
  }
  X509_STORE_CTX_set_verify_cb(ctx.get(), VerifyCallback);
  if (X509_verify_cert(ctx.get()) != 1) {
    int error = X509_STORE_CTX_get_error(ctx.get());
    out.refusal = RefusalOf(error);
    out.detail = X509_verify_cert_error_string(error);
    ERR_clear_error();
    return out;
  }
  ERR_clear_error();
  // A SPIFFE X.509-SVID leaf must not be a CA: one the exchange CA signed with
  // CA:TRUE (or keyCertSign) could otherwise act as a client.
  if (X509_check_ca(leaf) != 0) {
    out.refusal = CertRefusal::kCaLeaf;
    out.detail = "the client certificate is a CA certificate (basicConstraints CA:TRUE)";
  }
  return out;
}

CertRefusal TrustStore::CheckOnCall(std::string_view leaf_pem, absl::Time now) const {
  std::string key(leaf_pem);
  CertFacts facts;
  bool cached = false;
  {
    absl::MutexLock lock(&cache_mu_);
    if (auto it = cache_.find(key); it != cache_.end()) {
      facts = it->second;
      cached = true;
    }
  }
  if (!cached) {
    std::vector<SharedCert> certs = ParseCertsPem(leaf_pem);
    if (certs.empty()) return CertRefusal::kUnparseable;
    X509* leaf = certs.front().get();
    facts.revocation_key = RevocationKey(X509_get_issuer_name(leaf), X509_get0_serialNumber(leaf));
    facts.not_after = UnixTime(X509_get0_notAfter(leaf)).value_or(0);
    absl::MutexLock lock(&cache_mu_);
    if (cache_.size() >= 4096) cache_.clear();
    cache_.emplace(std::move(key), facts);
  }
  std::shared_ptr<const Snapshot> snap = snapshot();
  if (snap->revoked.contains(facts.revocation_key)) return CertRefusal::kRevoked;
  if (now != absl::InfinitePast() && absl::ToUnixSeconds(now) > facts.not_after) {
    return CertRefusal::kExpired;
  }
  return CertRefusal::kNone;
}

std::vector<std::string> TrustStore::Problems(absl::Time now) const {
  std::shared_ptr<const Snapshot> snap = snapshot();
  std::vector<std::string> out;
  const int64_t now_unix = absl::ToUnixSeconds(now);
  const int64_t warn = absl::ToInt64Seconds(snap->warn_before);
  for (const DomainState& d : snap->domains) {
    if (!d.files.crl_required) {
      out.push_back(absl::StrCat("trust domain ", d.files.trust_domain,
                                 ": revocation checks are off (broker.tls.crl: none)"));
    }
    out.insert(out.end(), d.problems.begin(), d.problems.end());
    for (size_t i = 0; i < d.cas.size(); ++i) {
      const auto& c = d.crls[i];
      if (!c || !c->next_update) continue;
      if (*c->next_update < now_unix) {
        out.push_back(absl::StrCat(
            "CRL #", c->number, " of ", CaName(d.cas[i]), " expired at ", Utc(*c->next_update),
            "; it stays in force until a newer one is in ", d.files.crl_dir));
      } else if (*c->next_update - now_unix < warn) {
        out.push_back(absl::StrCat("CRL #", c->number, " of ", CaName(d.cas[i]), " expires at ",
                                   Utc(*c->next_update), ": write a new one (corridor-certs crl)"));
      }
    }
  }
  return out;
}

std::optional<RefusalSummarizer::Report> RefusalSummarizer::Note(std::string_view reason,
                                                                 const PeerCertCheck& sample,
                                                                 absl::Time now) {
  absl::MutexLock lock(&mu_);
  auto [it, inserted] = windows_.try_emplace(std::string(reason));
  Window& w = it->second;
  if (!inserted && now - w.start < window_) {
    if (w.more == 0) {
      w.first_more = now;
      w.sample = sample;
    }
    ++w.more;
    w.last_more = now;
    return std::nullopt;
  }
  if (!inserted && w.more > 0) {
    pending_.push_back(Report{.reason = std::string(reason),
                              .count = w.more,
                              .first = w.first_more,
                              .last = w.last_more,
                              .sample = w.sample,
                              .summary = true});
  }
  w = Window();
  w.start = now;
  return Report{.reason = std::string(reason),
                .count = 1,
                .first = now,
                .last = now,
                .sample = sample,
                .summary = false};
}

std::vector<RefusalSummarizer::Report> RefusalSummarizer::Flush(absl::Time now) {
  absl::MutexLock lock(&mu_);
  std::vector<Report> out = std::move(pending_);
  pending_.clear();
  for (auto it = windows_.begin(); it != windows_.end();) {
    auto next = std::next(it);
    if (now - it->second.start >= window_) {
      if (it->second.more > 0) {
        out.push_back(Report{.reason = it->first,
                             .count = it->second.more,
                             .first = it->second.first_more,
                             .last = it->second.last_more,
                             .sample = it->second.sample,
                             .summary = true});
      }
      windows_.erase(it);
    }
    it = next;
  }
  return out;
}

std::string DescribeRefusal(std::string_view what, const RefusalSummarizer::Report& report) {
  auto utc = [](absl::Time t) {
    return absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", t, absl::UTCTimeZone());
  };
  std::string s = absl::StrCat(std::string(what), " (", report.reason, ")");
  if (report.summary) {
    absl::StrAppend(&s, ": ", report.count, " more between ", utc(report.first), " and ",
                    utc(report.last));
  }
  const PeerCertCheck& c = report.sample;
  absl::StrAppend(&s, report.summary ? "; first: " : ": ",
                  c.detail.empty() ? std::string(report.reason) : c.detail, "; subject ",
                  c.subject.empty() ? "?" : c.subject, ", spiffe id ",
                  c.spiffe_id.empty() ? "none" : c.spiffe_id, ", issuer ",
                  c.issuer.empty() ? "?" : c.issuer, ", serial ",
                  c.serial_hex.empty() ? "?" : c.serial_hex);
  return s;
}

}  // namespace corridor::broker
