#include "certs/pki.h"

#include <arpa/inet.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "certs/internal/file_util.h"
#include "certs/internal/openssl_util.h"
#include "certs/internal/x509_util.h"
#include "common/status_macros.h"

namespace corridor::certs {
namespace {

namespace fs = std::filesystem;
using internal::Asn1IntegerPtr;
using internal::Asn1TimePtr;
using internal::DrainOpensslErrors;
using internal::EvpPkeyPtr;
using internal::GeneralNamePtr;
using internal::GeneralNamesPtr;
using internal::X509CrlPtr;
using internal::X509ExtensionPtr;
using internal::X509NamePtr;
using internal::X509Ptr;
using internal::X509RevokedPtr;

constexpr char kCaKey[] = "ca.key";
constexpr char kCaCert[] = "ca.crt";
constexpr char kIssued[] = "issued.tsv";
constexpr char kRevoked[] = "revoked.tsv";
constexpr char kCrlNumber[] = "crlnumber";
constexpr char kCrlPem[] = "crl.pem";
constexpr char kIssuedHeader[] = "# serial_hex\tspiffe_id\tnot_after\tpath\n";
constexpr char kRevokedHeader[] = "# serial_hex\trevoked_at\n";

constexpr char kCaCnPrefix[] = "Corridor exchange CA ";
constexpr size_t kMaxCnLength = 64;  // RFC 5280 ub-common-name
constexpr int kMaxDays = 36500;
constexpr long kBackdateSeconds = 5 * 60;
constexpr long kSecondsPerDay = 24 * 60 * 60;
constexpr mode_t kSecretMode = 0600;
constexpr mode_t kPublicMode = 0644;
constexpr mode_t kCaDirMode = 0700;
constexpr mode_t kPublicDirMode = 0755;

absl::Status CheckDays(int days, std::string_view what) {
  if (days < 1 || days > kMaxDays) {
    return absl::InvalidArgumentError(std::string(what) + " = " + std::to_string(days) +
                                      " is outside 1..36500");
  }
  return absl::OkStatus();
}

absl::Status Internal(std::string_view what) {
  return absl::InternalError(std::string(what) + ": " + DrainOpensslErrors());
}

// Overwrites the contents of a string that held key material, then clears it.
void Cleanse(std::string& s) {
  if (!s.empty()) OPENSSL_cleanse(s.data(), s.size());
  s.clear();
}

// ---- the CA --------------------------------------------------------------

struct Ca {
  X509Ptr cert;
  EvpPkeyPtr key;
  std::string trust_domain;
};

absl::StatusOr<std::string> TrustDomainOf(X509* ca_cert, const fs::path& path) {
  for (const std::string& uri : internal::ReadSubjectAltNames(ca_cert).uris) {
    absl::StatusOr<std::string> td = ParseTrustDomainId(uri);
    if (td.ok()) return td;
  }
  return absl::InvalidArgumentError("CA certificate " + path.string() +
                                    " has no spiffe://<trust-domain> URI SAN");
}

absl::StatusOr<Ca> LoadCa(const fs::path& ca_dir) {
  const fs::path key_path = ca_dir / kCaKey;
  const fs::path cert_path = ca_dir / kCaCert;
  if (!internal::PathExists(key_path)) {
    return absl::NotFoundError("no CA in " + ca_dir.string() + ": " + key_path.string() +
                               " is missing (run `corridor-certs init` first)");
  }
  Ca ca;
  CORRIDOR_ASSIGN_OR_RETURN(ca.cert, internal::ReadCertFile(cert_path));
  CORRIDOR_ASSIGN_OR_RETURN(ca.key, internal::ReadKeyFile(key_path));
  if (X509_check_private_key(ca.cert.get(), ca.key.get()) != 1) {
    return absl::FailedPreconditionError("CA key " + key_path.string() +
                                         " does not match CA certificate " + cert_path.string() +
                                         " (" + DrainOpensslErrors() + ")");
  }
  CORRIDOR_ASSIGN_OR_RETURN(ca.trust_domain, TrustDomainOf(ca.cert.get(), cert_path));
  return ca;
}

// ---- ledgers (issued.tsv, revoked.tsv) --------------------------------------

using Row = std::vector<std::string>;

// Reads a TSV ledger; a missing file is an empty ledger. Lines that are empty
// or start with '#' are skipped. DATA_LOSS if a row has the wrong field count.
absl::StatusOr<std::vector<Row>> ReadLedger(const fs::path& path, size_t fields) {
  std::vector<Row> rows;
  if (!internal::PathExists(path)) return rows;
  CORRIDOR_ASSIGN_OR_RETURN(std::string text, internal::ReadFile(path));
  size_t line_no = 0, start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    const std::string_view line(text.data() + start, end - start);
    start = end + 1;
    ++line_no;
    if (line.empty() || line.front() == '#') continue;
    Row row;
    size_t field_start = 0;
    while (true) {
      const size_t tab = line.find('\t', field_start);
      row.emplace_back(line.substr(field_start, tab - field_start));
      if (tab == std::string_view::npos) break;
      field_start = tab + 1;
    }
    if (row.size() != fields || row[0].empty()) {
      return absl::DataLossError("ledger " + path.string() + " line " + std::to_string(line_no) +
                                 ": expected " + std::to_string(fields) + " tab-separated fields");
    }
    rows.push_back(std::move(row));
  }
  return rows;
}

// Appends one row (fields must hold no tab or newline), rewriting the file atomically.
absl::Status AppendLedger(const fs::path& path, std::string_view header, const Row& row) {
  std::string text;
  if (internal::PathExists(path)) {
    CORRIDOR_ASSIGN_OR_RETURN(text, internal::ReadFile(path));
    if (!text.empty() && text.back() != '\n') text += '\n';
  } else {
    text = std::string(header);
  }
  for (size_t i = 0; i < row.size(); ++i) {
    if (i > 0) text += '\t';
    text += row[i];
  }
  text += '\n';
  return internal::WriteFileAtomic(path, text, kPublicMode);
}

bool HasTabOrNewline(std::string_view s) {
  return s.find_first_of("\t\n\r") != std::string_view::npos;
}

// ---- issuing -------------------------------------------------------------

absl::Status ValidateFileStem(std::string_view name) {
  if (name.empty()) return absl::InvalidArgumentError("file name (IssueOptions.name) is empty");
  if (name.size() > 200 || name.front() == '.' ||
      !std::all_of(name.begin(), name.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
               c == '-' || c == '_' || c == '.';
      })) {
    return absl::InvalidArgumentError("file name \"" + std::string(name.substr(0, 80)) +
                                      "\" must be 1..200 of [A-Za-z0-9._-], not starting with '.'");
  }
  return absl::OkStatus();
}

absl::Status ValidateDnsName(std::string_view dns) {
  auto bad = [&](std::string_view why) {
    return absl::InvalidArgumentError("DNS name \"" + std::string(dns.substr(0, 80)) + "\" " +
                                      std::string(why));
  };
  if (dns.empty() || dns.size() > 253) return bad("must be 1..253 characters");
  std::string_view rest = dns;
  if (rest.substr(0, 2) == "*.") rest.remove_prefix(2);
  size_t start = 0;
  while (start <= rest.size()) {
    size_t dot = rest.find('.', start);
    if (dot == std::string_view::npos) dot = rest.size();
    const std::string_view label = rest.substr(start, dot - start);
    if (label.empty() || label.size() > 63) return bad("has an empty or over-long label");
    if (label.front() == '-' || label.back() == '-')
      return bad("has a label starting or ending with '-'");
    for (char c : label) {
      if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
            c == '-')) {
        return bad("may contain only letters, digits, '-' and '.' (and a leading \"*.\")");
      }
    }
    start = dot + 1;
  }
  return absl::OkStatus();
}

// Adds an IA5STRING-valued general name (URI or DNS).
absl::Status PushStringName(GENERAL_NAMES* names, int type, std::string_view value) {
  GeneralNamePtr gn(GENERAL_NAME_new());
  ASN1_IA5STRING* s = ASN1_IA5STRING_new();
  if (!gn || !s || ASN1_STRING_set(s, value.data(), static_cast<int>(value.size())) != 1) {
    ASN1_IA5STRING_free(s);
    return Internal("cannot build a subjectAltName entry");
  }
  GENERAL_NAME_set0_value(gn.get(), type, s);
  if (sk_GENERAL_NAME_push(names, gn.get()) == 0) return Internal("sk_GENERAL_NAME_push");
  gn.release();
  return absl::OkStatus();
}

absl::Status PushIpName(GENERAL_NAMES* names, std::string_view ip) {
  const std::string text(ip);
  unsigned char bytes[16];
  int len = 0;
  if (inet_pton(AF_INET, text.c_str(), bytes) == 1) {
    len = 4;
  } else if (inet_pton(AF_INET6, text.c_str(), bytes) == 1) {
    len = 16;
  } else {
    return absl::InvalidArgumentError("IP address \"" + text.substr(0, 80) +
                                      "\" is not an IPv4 or IPv6 address");
  }
  GeneralNamePtr gn(GENERAL_NAME_new());
  ASN1_OCTET_STRING* s = ASN1_OCTET_STRING_new();
  if (!gn || !s || ASN1_OCTET_STRING_set(s, bytes, len) != 1) {
    ASN1_OCTET_STRING_free(s);
    return Internal("cannot build an IP subjectAltName entry");
  }
  GENERAL_NAME_set0_value(gn.get(), GEN_IPADD, s);
  if (sk_GENERAL_NAME_push(names, gn.get()) == 0) return Internal("sk_GENERAL_NAME_push");
  gn.release();
  return absl::OkStatus();
}

absl::StatusOr<GeneralNamesPtr> BuildSans(std::string_view uri,
                                          const std::vector<std::string>& dns_names,
                                          const std::vector<std::string>& ips) {
  GeneralNamesPtr names(sk_GENERAL_NAME_new_null());
  if (!names) return Internal("sk_GENERAL_NAME_new_null");
  CORRIDOR_RETURN_IF_ERROR(PushStringName(names.get(), GEN_URI, uri));
  for (const std::string& dns : dns_names) {
    CORRIDOR_RETURN_IF_ERROR(ValidateDnsName(dns));
    CORRIDOR_RETURN_IF_ERROR(PushStringName(names.get(), GEN_DNS, dns));
  }
  for (const std::string& ip : ips) CORRIDOR_RETURN_IF_ERROR(PushIpName(names.get(), ip));
  return names;
}

// Fills the fields every certificate shares: v3, a random serial, issuer,
// subject "CN=<cn>", validity, public key and SAN.
absl::Status FillCertificate(X509* cert, const X509_NAME* issuer, std::string_view cn,
                             std::time_t not_before, std::time_t not_after, EVP_PKEY* key,
                             GENERAL_NAMES* sans) {
  if (X509_set_version(cert, X509_VERSION_3) != 1) return Internal("X509_set_version");
  CORRIDOR_ASSIGN_OR_RETURN(Asn1IntegerPtr serial, internal::RandomSerial(128));
  if (X509_set_serialNumber(cert, serial.get()) != 1) return Internal("X509_set_serialNumber");
  X509NamePtr subject(X509_NAME_new());
  if (!subject ||
      X509_NAME_add_entry_by_txt(subject.get(), "CN", MBSTRING_UTF8,
                                 reinterpret_cast<const unsigned char*>(cn.data()),
                                 static_cast<int>(cn.size()), -1, 0) != 1 ||
      X509_set_subject_name(cert, subject.get()) != 1) {
    return Internal("cannot set subject CN=" + std::string(cn));
  }
  if (X509_set_issuer_name(cert, issuer == nullptr ? subject.get() : issuer) != 1) {
    return Internal("X509_set_issuer_name");
  }
  if (!ASN1_TIME_set(X509_getm_notBefore(cert), not_before) ||
      !ASN1_TIME_set(X509_getm_notAfter(cert), not_after)) {
    return Internal("cannot set validity");
  }
  if (X509_set_pubkey(cert, key) != 1) return Internal("X509_set_pubkey");
  if (X509_add1_ext_i2d(cert, NID_subject_alt_name, sans, 0, X509V3_ADD_DEFAULT) != 1) {
    return Internal("cannot add subjectAltName");
  }
  return absl::OkStatus();
}

absl::Status Sign(X509* cert, EVP_PKEY* key) {
  if (X509_sign(cert, key, EVP_sha256()) <= 0) return Internal("X509_sign");
  return absl::OkStatus();
}

// Writes a key then a certificate, each atomically.
absl::Status WriteKeyAndCert(const fs::path& key_path, EVP_PKEY* key, const fs::path& cert_path,
                             X509* cert) {
  CORRIDOR_ASSIGN_OR_RETURN(std::string key_pem, internal::KeyToPem(key));
  absl::Status s = internal::WriteFileAtomic(key_path, key_pem, kSecretMode);
  Cleanse(key_pem);
  CORRIDOR_RETURN_IF_ERROR(s);
  CORRIDOR_ASSIGN_OR_RETURN(std::string cert_pem, internal::CertToPem(cert));
  return internal::WriteFileAtomic(cert_path, cert_pem, kPublicMode);
}

// ---- revocation -----------------------------------------------------------

// The serial named by `arg`, checked to be one this CA issued.
absl::StatusOr<std::string> ResolveSerial(const Ca& ca, std::string_view arg) {
  if (internal::LooksLikeSerial(arg)) return internal::NormalizeSerialHex(arg);
  const fs::path path{std::string(arg)};
  CORRIDOR_ASSIGN_OR_RETURN(X509Ptr cert, internal::ReadCertFile(path));
  EVP_PKEY* ca_pub = X509_get0_pubkey(ca.cert.get());
  if (X509_check_issued(ca.cert.get(), cert.get()) != X509_V_OK || ca_pub == nullptr ||
      X509_verify(cert.get(), ca_pub) != 1) {
    ERR_clear_error();
    return absl::NotFoundError("certificate " + path.string() + " was not issued by this CA (" +
                               internal::NameToString(X509_get_subject_name(ca.cert.get())) + ")");
  }
  return internal::SerialHex(X509_get0_serialNumber(cert.get()));
}

absl::StatusOr<long> NextCrlNumber(const fs::path& ca_dir) {
  const fs::path path = ca_dir / kCrlNumber;
  if (!internal::PathExists(path)) return 1;
  CORRIDOR_ASSIGN_OR_RETURN(std::string text, internal::ReadFile(path));
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  long n = 0;
  int consumed = 0;
  if (text.empty() || std::sscanf(text.c_str(), "%ld%n", &n, &consumed) != 1 ||
      consumed != static_cast<int>(text.size()) || n < 0) {
    return absl::DataLossError(path.string() + " does not hold a CRL number");
  }
  return n + 1;
}

absl::StatusOr<X509CrlPtr> BuildCrl(const Ca& ca, const std::vector<Row>& revoked, long number,
                                    int days) {
  X509CrlPtr crl(X509_CRL_new());
  if (!crl) return Internal("X509_CRL_new");
  if (X509_CRL_set_version(crl.get(), X509_CRL_VERSION_2) != 1) {
    return Internal("X509_CRL_set_version");
  }
  if (X509_CRL_set_issuer_name(crl.get(), X509_get_subject_name(ca.cert.get())) != 1) {
    return Internal("X509_CRL_set_issuer_name");
  }
  const std::time_t now = std::time(nullptr);
  Asn1TimePtr this_update(ASN1_TIME_set(nullptr, now));
  Asn1TimePtr next_update(ASN1_TIME_set(nullptr, now + days * kSecondsPerDay));
  if (!this_update || !next_update || X509_CRL_set1_lastUpdate(crl.get(), this_update.get()) != 1 ||
      X509_CRL_set1_nextUpdate(crl.get(), next_update.get()) != 1) {
    return Internal("cannot set the CRL's update times");
  }
  for (const Row& row : revoked) {
    CORRIDOR_ASSIGN_OR_RETURN(Asn1IntegerPtr serial, internal::SerialFromHex(row[0]));
    absl::StatusOr<std::time_t> when = internal::ParseUtc(row[1]);
    if (!when.ok()) {
      return absl::DataLossError("revoked.tsv: serial " + row[0] + ": " +
                                 std::string(when.status().message()));
    }
    X509RevokedPtr entry(X509_REVOKED_new());
    Asn1TimePtr date(ASN1_TIME_set(nullptr, *when));
    if (!entry || !date || X509_REVOKED_set_serialNumber(entry.get(), serial.get()) != 1 ||
        X509_REVOKED_set_revocationDate(entry.get(), date.get()) != 1 ||
        X509_CRL_add0_revoked(crl.get(), entry.get()) != 1) {
      return Internal("cannot add serial " + row[0] + " to the CRL");
    }
    entry.release();  // owned by the CRL now
  }
  if (X509_CRL_sort(crl.get()) != 1) return Internal("X509_CRL_sort");

  Asn1IntegerPtr crl_number(ASN1_INTEGER_new());
  if (!crl_number || ASN1_INTEGER_set(crl_number.get(), number) != 1 ||
      X509_CRL_add1_ext_i2d(crl.get(), NID_crl_number, crl_number.get(), 0, X509V3_ADD_DEFAULT) !=
          1) {
    return Internal("cannot add the CRL number");
  }
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, ca.cert.get(), nullptr, nullptr, crl.get(), 0);
  X509ExtensionPtr akid(
      X509V3_EXT_conf_nid(nullptr, &ctx, NID_authority_key_identifier, "keyid:always"));
  if (!akid || X509_CRL_add_ext(crl.get(), akid.get(), -1) != 1) {
    return Internal("cannot add the CRL's authorityKeyIdentifier");
  }
  if (X509_CRL_sign(crl.get(), ca.key.get(), EVP_sha256()) <= 0) return Internal("X509_CRL_sign");
  return crl;
}

}  // namespace

// ---- public API -----------------------------------------------------------

absl::Status InitCa(const fs::path& ca_dir, std::string_view trust_domain, int days) {
  CORRIDOR_RETURN_IF_ERROR(ValidateTrustDomain(trust_domain));
  CORRIDOR_RETURN_IF_ERROR(CheckDays(days, "CA days"));
  if (ca_dir.empty()) return absl::InvalidArgumentError("CA dir path is empty");
  const std::string cn = kCaCnPrefix + std::string(trust_domain);
  if (cn.size() > kMaxCnLength) {
    return absl::InvalidArgumentError(
        "trust domain \"" + std::string(trust_domain) + "\" is too long for the CA's CN (\"" +
        kCaCnPrefix + "<td>\" has at most 64 characters, so at most " +
        std::to_string(kMaxCnLength - std::string_view(kCaCnPrefix).size()) + " for the td)");
  }
  const fs::path key_path = ca_dir / kCaKey;
  if (internal::PathExists(key_path)) {
    return absl::AlreadyExistsError("a CA already exists in " + ca_dir.string() + " (" +
                                    key_path.string() + ")");
  }
  CORRIDOR_RETURN_IF_ERROR(internal::MakeDir(ca_dir, kCaDirMode, /*enforce_mode=*/true));

  CORRIDOR_ASSIGN_OR_RETURN(EvpPkeyPtr key, internal::NewP256Key());
  X509Ptr cert(X509_new());
  if (!cert) return Internal("X509_new");
  GeneralNamesPtr sans(sk_GENERAL_NAME_new_null());
  if (!sans) return Internal("sk_GENERAL_NAME_new_null");
  CORRIDOR_RETURN_IF_ERROR(PushStringName(sans.get(), GEN_URI, TrustDomainId(trust_domain)));
  const std::time_t now = std::time(nullptr);
  CORRIDOR_RETURN_IF_ERROR(FillCertificate(cert.get(), /*issuer=*/nullptr, cn,
                                           now - kBackdateSeconds, now + days * kSecondsPerDay,
                                           key.get(), sans.get()));
  CORRIDOR_RETURN_IF_ERROR(internal::AddExtension(cert.get(), cert.get(), NID_basic_constraints,
                                                  "critical,CA:TRUE,pathlen:0"));
  CORRIDOR_RETURN_IF_ERROR(internal::AddExtension(cert.get(), cert.get(), NID_key_usage,
                                                  "critical,keyCertSign,cRLSign"));
  CORRIDOR_RETURN_IF_ERROR(
      internal::AddExtension(cert.get(), cert.get(), NID_subject_key_identifier, "hash"));
  CORRIDOR_RETURN_IF_ERROR(Sign(cert.get(), key.get()));

  // The ledgers and the certificate first, the key last: a failed init leaves
  // no ca.key behind and can simply be run again.
  CORRIDOR_RETURN_IF_ERROR(internal::WriteFileAtomic(ca_dir / kIssued, kIssuedHeader, kPublicMode));
  CORRIDOR_RETURN_IF_ERROR(
      internal::WriteFileAtomic(ca_dir / kRevoked, kRevokedHeader, kPublicMode));
  return WriteKeyAndCert(key_path, key.get(), ca_dir / kCaCert, cert.get());
}

absl::StatusOr<std::string> CaTrustDomain(const fs::path& ca_dir) {
  const fs::path path = ca_dir / kCaCert;
  CORRIDOR_ASSIGN_OR_RETURN(X509Ptr cert, internal::ReadCertFile(path));
  return TrustDomainOf(cert.get(), path);
}

absl::StatusOr<TrustBundle> ExportTrustBundle(const fs::path& ca_dir, const fs::path& out_file) {
  CORRIDOR_ASSIGN_OR_RETURN(Ca ca, LoadCa(ca_dir));
  std::error_code ec;
  if (fs::equivalent(out_file.parent_path().empty() ? fs::path(".") : out_file.parent_path(),
                     ca_dir, ec)) {
    return absl::InvalidArgumentError("out " + out_file.string() +
                                      " is in the CA dir; a bundle goes elsewhere");
  }
  CORRIDOR_ASSIGN_OR_RETURN(std::string pem, internal::ReadFile(ca_dir / kCaCert));
  CORRIDOR_RETURN_IF_ERROR(internal::WriteFileAtomic(out_file, pem, 0644));
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int md_len = 0;
  if (X509_digest(ca.cert.get(), EVP_sha256(), md, &md_len) != 1) {
    return absl::InternalError("cannot hash the CA certificate: " + DrainOpensslErrors());
  }
  TrustBundle out;
  out.trust_domain = ca.trust_domain;
  static constexpr char kHex[] = "0123456789ABCDEF";
  for (unsigned int i = 0; i < md_len; ++i) {
    if (i > 0) out.sha256_fingerprint += ':';
    out.sha256_fingerprint += kHex[md[i] >> 4];
    out.sha256_fingerprint += kHex[md[i] & 0xf];
  }
  out.not_after = internal::FormatAsn1Time(X509_get0_notAfter(ca.cert.get()));
  return out;
}

absl::StatusOr<IssuedCert> Issue(const fs::path& ca_dir, const IssueOptions& opts) {
  CORRIDOR_RETURN_IF_ERROR(ValidateFileStem(opts.name));
  CORRIDOR_RETURN_IF_ERROR(CheckDays(opts.days, "days"));
  if (opts.out_dir.empty()) return absl::InvalidArgumentError("out_dir is empty");
  if (HasTabOrNewline(opts.out_dir.string())) {
    return absl::InvalidArgumentError("out_dir \"" + opts.out_dir.string() +
                                      "\" contains a tab or newline");
  }
  CORRIDOR_ASSIGN_OR_RETURN(Ca ca, LoadCa(ca_dir));
  std::error_code ec;
  if (fs::equivalent(opts.out_dir, ca_dir, ec)) {
    return absl::InvalidArgumentError("out_dir " + opts.out_dir.string() +
                                      " is the CA dir; leaf files go elsewhere");
  }
  CORRIDOR_RETURN_IF_ERROR(ValidateSpiffeId(opts.spiffe_id, ca.trust_domain));
  CORRIDOR_ASSIGN_OR_RETURN(SpiffeId id, ParseSpiffeId(opts.spiffe_id));
  CORRIDOR_ASSIGN_OR_RETURN(GeneralNamesPtr sans,
                            BuildSans(opts.spiffe_id, opts.dns_names, opts.ip_addresses));

  const std::time_t now = std::time(nullptr);
  CORRIDOR_ASSIGN_OR_RETURN(std::time_t ca_not_after,
                            internal::Asn1TimeToUnix(X509_get0_notAfter(ca.cert.get())));
  if (ca_not_after <= now) {
    return absl::FailedPreconditionError("the CA certificate in " + ca_dir.string() +
                                         " expired at " + internal::FormatUtc(ca_not_after));
  }
  const std::time_t not_after =
      std::min<std::time_t>(now + opts.days * kSecondsPerDay, ca_not_after);

  CORRIDOR_ASSIGN_OR_RETURN(EvpPkeyPtr key, internal::NewP256Key());
  X509Ptr cert(X509_new());
  if (!cert) return Internal("X509_new");
  CORRIDOR_RETURN_IF_ERROR(FillCertificate(cert.get(), X509_get_subject_name(ca.cert.get()),
                                           id.name, now - kBackdateSeconds, not_after, key.get(),
                                           sans.get()));
  X509* issuer = ca.cert.get();
  CORRIDOR_RETURN_IF_ERROR(
      internal::AddExtension(cert.get(), issuer, NID_basic_constraints, "critical,CA:FALSE"));
  CORRIDOR_RETURN_IF_ERROR(
      internal::AddExtension(cert.get(), issuer, NID_key_usage, "critical,digitalSignature"));
  CORRIDOR_RETURN_IF_ERROR(
      internal::AddExtension(cert.get(), issuer, NID_ext_key_usage, "serverAuth,clientAuth"));
  CORRIDOR_RETURN_IF_ERROR(
      internal::AddExtension(cert.get(), issuer, NID_subject_key_identifier, "hash"));
  CORRIDOR_RETURN_IF_ERROR(
      internal::AddExtension(cert.get(), issuer, NID_authority_key_identifier, "keyid:always"));
  CORRIDOR_RETURN_IF_ERROR(Sign(cert.get(), ca.key.get()));

  CORRIDOR_RETURN_IF_ERROR(internal::MakeDir(opts.out_dir, kPublicDirMode, /*enforce_mode=*/false));
  IssuedCert out;
  out.cert_path = opts.out_dir / (opts.name + ".crt");
  out.key_path = opts.out_dir / (opts.name + ".key");
  out.serial_hex = internal::SerialHex(X509_get0_serialNumber(cert.get()));

  // Record first: a ledger row for a file that was never written is harmless,
  // a certificate missing from the ledger could not be revoked by serial.
  fs::path recorded = fs::absolute(out.cert_path, ec);
  if (ec) recorded = out.cert_path;
  CORRIDOR_RETURN_IF_ERROR(
      AppendLedger(ca_dir / kIssued, kIssuedHeader,
                   {out.serial_hex, opts.spiffe_id, internal::FormatUtc(not_after),
                    recorded.lexically_normal().string()}));
  CORRIDOR_RETURN_IF_ERROR(WriteKeyAndCert(out.key_path, key.get(), out.cert_path, cert.get()));
  return out;
}

absl::Status Revoke(const fs::path& ca_dir, std::string_view serial_hex_or_cert_path) {
  if (serial_hex_or_cert_path.empty()) {
    return absl::InvalidArgumentError("nothing to revoke: serial or certificate path is empty");
  }
  CORRIDOR_ASSIGN_OR_RETURN(Ca ca, LoadCa(ca_dir));
  CORRIDOR_ASSIGN_OR_RETURN(std::string serial, ResolveSerial(ca, serial_hex_or_cert_path));
  CORRIDOR_ASSIGN_OR_RETURN(std::vector<Row> issued, ReadLedger(ca_dir / kIssued, 4));
  if (std::none_of(issued.begin(), issued.end(), [&](const Row& r) { return r[0] == serial; })) {
    return absl::NotFoundError("serial " + serial + " was never issued by the CA in " +
                               ca_dir.string());
  }
  CORRIDOR_ASSIGN_OR_RETURN(std::vector<Row> revoked, ReadLedger(ca_dir / kRevoked, 2));
  if (std::any_of(revoked.begin(), revoked.end(), [&](const Row& r) { return r[0] == serial; })) {
    return absl::OkStatus();
  }
  return AppendLedger(ca_dir / kRevoked, kRevokedHeader,
                      {serial, internal::FormatUtc(std::time(nullptr))});
}

absl::StatusOr<std::string> CrlFileName(const fs::path& ca_cert_path) {
  CORRIDOR_ASSIGN_OR_RETURN(X509Ptr cert, internal::ReadCertFile(ca_cert_path));
  CORRIDOR_ASSIGN_OR_RETURN(std::string hash,
                            internal::NameHashHex(X509_get_subject_name(cert.get())));
  return hash + ".r0";
}

absl::Status WriteCrl(const fs::path& ca_dir, const fs::path& crl_dir, int days) {
  CORRIDOR_RETURN_IF_ERROR(CheckDays(days, "CRL days"));
  if (crl_dir.empty()) return absl::InvalidArgumentError("CRL dir path is empty");
  CORRIDOR_ASSIGN_OR_RETURN(Ca ca, LoadCa(ca_dir));
  CORRIDOR_ASSIGN_OR_RETURN(std::vector<Row> revoked, ReadLedger(ca_dir / kRevoked, 2));
  CORRIDOR_ASSIGN_OR_RETURN(long number, NextCrlNumber(ca_dir));
  CORRIDOR_ASSIGN_OR_RETURN(X509CrlPtr crl, BuildCrl(ca, revoked, number, days));
  CORRIDOR_ASSIGN_OR_RETURN(std::string pem, internal::CrlToPem(crl.get()));
  CORRIDOR_ASSIGN_OR_RETURN(std::string hash,
                            internal::NameHashHex(X509_get_subject_name(ca.cert.get())));

  // The number first, so that no two CRLs ever carry the same one.
  CORRIDOR_RETURN_IF_ERROR(
      internal::WriteFileAtomic(ca_dir / kCrlNumber, std::to_string(number) + "\n", kPublicMode));
  CORRIDOR_RETURN_IF_ERROR(internal::MakeDir(crl_dir, kPublicDirMode, /*enforce_mode=*/false));
  CORRIDOR_RETURN_IF_ERROR(internal::WriteFileAtomic(crl_dir / (hash + ".r0"), pem, kPublicMode));
  return internal::WriteFileAtomic(ca_dir / kCrlPem, pem, kPublicMode);
}

absl::Status MakeDevSet(const fs::path& out_dir, std::string_view trust_domain) {
  CORRIDOR_RETURN_IF_ERROR(ValidateTrustDomain(trust_domain));
  if (out_dir.empty()) return absl::InvalidArgumentError("dev set out dir path is empty");
  struct Leaf {
    std::string file;
    std::string id;
    std::vector<std::string> dns, ips;
  };
  const std::vector<Leaf> leaves = {
      {"broker", BrokerId(trust_domain, "zs-broker"), {"localhost"}, {"127.0.0.1", "::1"}},
      {"zs-police", AgencyNodeId(trust_domain, "zs-police", "node1"), {}, {}},
      {"zs-customs", AgencyNodeId(trust_domain, "zs-customs", "node1"), {}, {}},
      {"zs-msa", AgencyNodeId(trust_domain, "zs-msa", "node1"), {}, {}},
      {"zs-coastguard", AgencyNodeId(trust_domain, "zs-coastguard", "node1"), {}, {}},
      {"zh-police", AgencyNodeId(trust_domain, "zh-police", "node1"), {}, {}},
      {"auditor", AuditorId(trust_domain, "auditor1"), {}, {}},
      {"admin", AdminId(trust_domain, "ops1"), {}, {}},
  };

  CORRIDOR_RETURN_IF_ERROR(internal::MakeDir(out_dir, kPublicDirMode, /*enforce_mode=*/false));
  const fs::path ca_dir = out_dir / "ca";
  bool new_ca = false;
  if (!internal::PathExists(ca_dir / kCaKey)) {
    CORRIDOR_RETURN_IF_ERROR(InitCa(ca_dir, trust_domain));
    new_ca = true;
  } else {
    CORRIDOR_ASSIGN_OR_RETURN(std::string existing, CaTrustDomain(ca_dir));
    if (existing != trust_domain) {
      return absl::FailedPreconditionError("dev set " + out_dir.string() +
                                           " holds a CA for trust domain \"" + existing +
                                           "\", not \"" + std::string(trust_domain) + "\"");
    }
  }

  for (const Leaf& leaf : leaves) {
    if (!new_ca && internal::PathExists(out_dir / (leaf.file + ".crt")) &&
        internal::PathExists(out_dir / (leaf.file + ".key"))) {
      continue;
    }
    IssueOptions opts;
    opts.spiffe_id = leaf.id;
    opts.dns_names = leaf.dns;
    opts.ip_addresses = leaf.ips;
    opts.out_dir = out_dir;
    opts.name = leaf.file;
    CORRIDOR_RETURN_IF_ERROR(Issue(ca_dir, opts).status());
  }

  if (new_ca || !internal::PathExists(out_dir / kCaCert)) {
    CORRIDOR_ASSIGN_OR_RETURN(std::string pem, internal::ReadFile(ca_dir / kCaCert));
    CORRIDOR_RETURN_IF_ERROR(internal::WriteFileAtomic(out_dir / kCaCert, pem, kPublicMode));
  }
  const fs::path crl_dir = out_dir / "crl";
  CORRIDOR_ASSIGN_OR_RETURN(std::string crl_name, CrlFileName(ca_dir / kCaCert));
  if (new_ca || !internal::PathExists(crl_dir / crl_name)) {
    CORRIDOR_RETURN_IF_ERROR(WriteCrl(ca_dir, crl_dir));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> ReadUriSan(const fs::path& cert_path) {
  CORRIDOR_ASSIGN_OR_RETURN(X509Ptr cert, internal::ReadCertFile(cert_path));
  internal::SubjectAltNames sans = internal::ReadSubjectAltNames(cert.get());
  if (sans.uris.empty()) {
    return absl::NotFoundError("certificate " + cert_path.string() + " has no URI SAN");
  }
  return std::move(sans.uris.front());
}

absl::StatusOr<CertSummary> Describe(const fs::path& cert_path) {
  CORRIDOR_ASSIGN_OR_RETURN(X509Ptr cert, internal::ReadCertFile(cert_path));
  internal::SubjectAltNames sans = internal::ReadSubjectAltNames(cert.get());
  CertSummary out;
  out.subject = internal::NameToString(X509_get_subject_name(cert.get()));
  out.issuer = internal::NameToString(X509_get_issuer_name(cert.get()));
  out.serial_hex = internal::SerialHex(X509_get0_serialNumber(cert.get()));
  out.not_before = internal::FormatAsn1Time(X509_get0_notBefore(cert.get()));
  out.not_after = internal::FormatAsn1Time(X509_get0_notAfter(cert.get()));
  if (!sans.uris.empty()) out.uri_san = sans.uris.front();
  out.dns_names = std::move(sans.dns_names);
  out.ip_addresses = std::move(sans.ip_addresses);
  return out;
}

}  // namespace corridor::certs
