// The exchange PKI: one CA per trust domain, leaf certificates whose URI SAN is
// a Corridor SPIFFE id (certs/spiffe_id.h), revocation and CRLs in the hashed
// layout gRPC reads, and the demo's full certificate set.
//
//   CORRIDOR_RETURN_IF_ERROR(InitCa("/etc/corridor/ca", "zhongshan.corridor"));
//   IssueOptions o;
//   o.spiffe_id = AgencyNodeId("zhongshan.corridor", "zs-police", "node1");
//   o.out_dir = "/etc/corridor/certs";
//   o.name = "zs-police";
//   CORRIDOR_ASSIGN_OR_RETURN(IssuedCert c, Issue("/etc/corridor/ca", o));
//   CORRIDOR_RETURN_IF_ERROR(Revoke("/etc/corridor/ca", c.serial_hex));
//   CORRIDOR_RETURN_IF_ERROR(WriteCrl("/etc/corridor/ca", "/etc/corridor/crl"));
//
// Keys are ECDSA P-256 (PKCS#8 PEM, mode 0600), signatures ECDSA-SHA256.
// Serials are written as canonical hex: lower case, no leading zeros.
// Times in files and summaries are UTC, "YYYY-MM-DDTHH:MM:SSZ".
//
// Threading: the functions are thread-compatible. Calls on different CA dirs
// may run concurrently; calls on the same ca_dir (or the same out_dir/name)
// must not overlap, as the ledgers are read-modify-written without locking.
// Errors are absl::Status with the most specific code; nothing throws.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "certs/spiffe_id.h"

namespace corridor::certs {

// Creates a new CA for `trust_domain` in `ca_dir` (created with mode 0700;
// parents created as needed; an existing ca_dir is chmod-ed to 0700):
//   ca.key       ECDSA P-256 private key, mode 0600
//   ca.crt       self-signed, CN "Corridor exchange CA <td>", URI SAN spiffe://<td>,
//                basicConstraints CA:TRUE,pathlen:0 (critical), keyUsage
//                keyCertSign+cRLSign (critical), SKID; valid from now-5min for `days`
//   issued.tsv   ledger of issued leaves: serial_hex, spiffe_id, not_after, cert path
//   revoked.tsv  ledger of revocations: serial_hex, revoked_at
// ALREADY_EXISTS if ca_dir/ca.key exists (nothing is changed then);
// INVALID_ARGUMENT for an invalid trust domain (or one over 43 characters, as
// the CN is limited to 64) or days outside 1..36500;
// otherwise the filesystem's error (PERMISSION_DENIED, ...) naming the path.
absl::Status InitCa(const std::filesystem::path& ca_dir, std::string_view trust_domain,
                    int days = 3650);

// The trust domain of the CA in ca_dir (from ca.crt's spiffe://<td> URI SAN).
// NOT_FOUND if there is no ca.crt; INVALID_ARGUMENT if it has no such SAN.
absl::StatusOr<std::string> CaTrustDomain(const std::filesystem::path& ca_dir);

struct IssueOptions {
  std::string spiffe_id;                  // one of the four shapes, in the CA's trust domain
  std::vector<std::string> dns_names;     // extra DNS SANs, e.g. "localhost"
  std::vector<std::string> ip_addresses;  // extra IP SANs, IPv4 or IPv6 text
  int days = 397;                         // 1..36500; cut to the CA's own notAfter
  std::filesystem::path out_dir;          // created if missing
  std::string name;                       // file stem: out_dir/<name>.crt and out_dir/<name>.key
};

struct IssuedCert {
  std::filesystem::path cert_path, key_path;
  std::string serial_hex;  // canonical hex
};

// Issues a leaf certificate from the CA in ca_dir: a fresh ECDSA P-256 key;
// subject CN = the id's last path component; SAN URI = the SPIFFE id, then the
// DNS and IP SANs; basicConstraints CA:FALSE (critical); keyUsage
// digitalSignature (critical); extendedKeyUsage serverAuth+clientAuth; SKID and
// AKID; a random positive 128-bit serial; notBefore = now - 5 min; notAfter =
// now + days (no later than the CA's notAfter).
// Writes the key (mode 0600, created O_EXCL under a temp name, fsync-ed, then
// renamed) and the certificate (mode 0644, same way), replacing existing files
// of that name atomically, so a running server can reload them. The issue is
// recorded in issued.tsv before either file is written.
// INVALID_ARGUMENT if the SPIFFE id is malformed, not of the CA's trust domain
// or not one of the four shapes, or for a bad name, DNS name, IP address or
// days, or if out_dir is the CA dir; NOT_FOUND if ca_dir holds no CA; FAILED_PRECONDITION if the CA
// has expired or its key does not match its certificate; DATA_LOSS if a ledger is corrupt.
absl::StatusOr<IssuedCert> Issue(const std::filesystem::path& ca_dir, const IssueOptions& opts);

// Records the revocation of a certificate this CA issued in revoked.tsv
// (serial, time of the first revocation). The argument is a serial if it is
// hex digits (optionally "0x"-prefixed or ':'-separated), otherwise the path
// of a certificate file (write "./abc" for a file whose name is all hex).
// Idempotent: revoking a revoked serial returns OK and changes nothing.
// NOT_FOUND if the serial is not in issued.tsv, the certificate file does not
// exist, or it was not signed by this CA; INVALID_ARGUMENT if the file is not
// a certificate; DATA_LOSS if a ledger is corrupt. Does not write a CRL: call
// WriteCrl() next.
absl::Status Revoke(const std::filesystem::path& ca_dir, std::string_view serial_hex_or_cert_path);

// Signs a v2 CRL (CRL number from ca_dir/crlnumber, incremented on each call;
// AKID; thisUpdate now, nextUpdate now + days) listing every serial in
// revoked.tsv, and writes it in PEM, each atomically (temp + rename):
//   crl_dir/<8-hex X509_NAME_hash of the CA subject>.r0 -- the hashed form that
//       gRPC's TlsServerCredentialsOptions::set_crl_directory() and OpenSSL's
//       hash-dir lookup read (crl_dir is created if missing)
//   ca_dir/crl.pem
// INVALID_ARGUMENT for days outside 1..36500; NOT_FOUND if ca_dir holds no CA;
// DATA_LOSS if a ledger is corrupt.
absl::Status WriteCrl(const std::filesystem::path& ca_dir, const std::filesystem::path& crl_dir,
                      int days = 30);

// "<8 lower-case hex digits>.r0": the file name WriteCrl gives the CRL of the CA
// whose certificate is at ca_cert_path. NOT_FOUND / INVALID_ARGUMENT if the file
// is missing / not a certificate.
absl::StatusOr<std::string> CrlFileName(const std::filesystem::path& ca_cert_path);

// Makes the demo's full set in out_dir (td = trust_domain):
//   ca/                           the CA dir (InitCa)
//   ca.crt                        a copy of ca/ca.crt
//   crl/<hash>.r0                 the CA's CRL (empty for a new CA)
//   broker.{crt,key}              spiffe://td/broker/zs-broker, DNS localhost,
//                                 IPs 127.0.0.1 and ::1
//   zs-police.{crt,key}           spiffe://td/agency/zs-police/node1, and likewise
//   zs-customs, zs-msa, zs-coastguard, zh-police
//   auditor.{crt,key}             spiffe://td/auditor/auditor1
//   admin.{crt,key}               spiffe://td/admin/ops1
// Idempotent: when every file is present it changes nothing and returns OK.
// When some are missing: an existing CA is kept and only the missing pairs are
// issued (and ca.crt / the CRL rewritten if missing); without a CA, a new one is
// made and every pair (re)issued. FAILED_PRECONDITION if out_dir/ca holds a CA of
// another trust domain; INVALID_ARGUMENT for an invalid trust domain.
absl::Status MakeDevSet(const std::filesystem::path& out_dir,
                        std::string_view trust_domain = "zhongshan.corridor");

// A domain's trust bundle, for the operators of peer exchanges: the CA
// certificate, and what to read to each other to confirm it out of band.
struct TrustBundle {
  std::string trust_domain;        // e.g. "zhongshan.corridor"
  std::string sha256_fingerprint;  // of the CA certificate's DER, "AB:CD:…" (as openssl prints it)
  std::string not_after;           // UTC "YYYY-MM-DDTHH:MM:SSZ"
};

// Writes the CA certificate of `ca_dir` (PEM, never its key) to `out_file`
// (mode 0644, atomically) for a peer exchange's `federation.peers[].ca`, and
// returns its domain and fingerprint. NOT_FOUND without a CA;
// INVALID_ARGUMENT if out_file is inside ca_dir.
absl::StatusOr<TrustBundle> ExportTrustBundle(const std::filesystem::path& ca_dir,
                                              const std::filesystem::path& out_file);

// The first URI SAN of the certificate (PEM or DER) at cert_path.
// NOT_FOUND if the file is missing or the certificate has no URI SAN;
// INVALID_ARGUMENT if the file is not a certificate.
absl::StatusOr<std::string> ReadUriSan(const std::filesystem::path& cert_path);

// A human-readable summary of a certificate. Never holds key material.
struct CertSummary {
  std::string subject;                // RFC 2253, e.g. "CN=node1"
  std::string uri_san;                // first URI SAN, empty if none
  std::string serial_hex;             // canonical hex
  std::string not_before, not_after;  // UTC "YYYY-MM-DDTHH:MM:SSZ"
  std::string issuer;                 // RFC 2253
  std::vector<std::string> dns_names, ip_addresses;
};

// Summarises the certificate (PEM or DER) at cert_path. NOT_FOUND if the file
// is missing; INVALID_ARGUMENT if it is not a certificate.
absl::StatusOr<CertSummary> Describe(const std::filesystem::path& cert_path);

}  // namespace corridor::certs
