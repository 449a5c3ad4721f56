// Certificates and CRLs the project's PKI tool would never make, signed with
// OpenSSL directly by a real CA dir's key (certs/ InitCa): a CRL with chosen
// times, a CA certificate used as a client leaf. For tests of what the broker
// refuses. Header-only; thread-compatible.
#pragma once

#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <ctime>
#include <filesystem>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "certs/internal/file_util.h"
#include "certs/internal/openssl_util.h"
#include "certs/internal/x509_util.h"
#include "common/status_macros.h"

namespace corridor::testing {

// Writes to `path` (PEM, 0644) a v2 CRL signed by ca_dir's key: CRL number
// `number`, thisUpdate/nextUpdate as given, listing `revoked_serials_hex`.
inline absl::Status WriteCrlAt(const std::filesystem::path& ca_dir,
                               const std::filesystem::path& path,
                               const std::vector<std::string>& revoked_serials_hex,
                               absl::Time this_update, absl::Time next_update, long number) {
  using namespace certs::internal;
  CORRIDOR_ASSIGN_OR_RETURN(X509Ptr ca, ReadCertFile(ca_dir / "ca.crt"));
  CORRIDOR_ASSIGN_OR_RETURN(EvpPkeyPtr key, ReadKeyFile(ca_dir / "ca.key"));
  X509CrlPtr crl(X509_CRL_new());
  X509_CRL_set_version(crl.get(), 1);
  X509_CRL_set_issuer_name(crl.get(), X509_get_subject_name(ca.get()));
  Asn1TimePtr last(ASN1_TIME_set(nullptr, absl::ToTimeT(this_update)));
  Asn1TimePtr next(ASN1_TIME_set(nullptr, absl::ToTimeT(next_update)));
  X509_CRL_set1_lastUpdate(crl.get(), last.get());
  X509_CRL_set1_nextUpdate(crl.get(), next.get());
  for (const std::string& hex : revoked_serials_hex) {
    CORRIDOR_ASSIGN_OR_RETURN(Asn1IntegerPtr serial, SerialFromHex(hex));
    X509RevokedPtr r(X509_REVOKED_new());
    X509_REVOKED_set_serialNumber(r.get(), serial.get());
    X509_REVOKED_set_revocationDate(r.get(), last.get());
    X509_CRL_add0_revoked(crl.get(), r.release());
  }
  Asn1IntegerPtr crl_number(ASN1_INTEGER_new());
  ASN1_INTEGER_set(crl_number.get(), number);
  X509_CRL_add1_ext_i2d(crl.get(), NID_crl_number, crl_number.get(), 0, 0);
  X509_CRL_sort(crl.get());
  if (X509_CRL_sign(crl.get(), key.get(), EVP_sha256()) <= 0) {
    return absl::InternalError("X509_CRL_sign: " + DrainOpensslErrors());
  }
  CORRIDOR_ASSIGN_OR_RETURN(std::string pem, CrlToPem(crl.get()));
  return WriteFileAtomic(path, pem, 0644);
}

// Issues out_dir/<name>.{crt,key}: a certificate signed by ca_dir's CA with
// URI SAN `spiffe_id`, EKU clientAuth, and basicConstraints CA:TRUE (and
// keyCertSign): a CA posing as a client leaf. Returns its serial (hex).
inline absl::StatusOr<std::string> IssueCaLeaf(const std::filesystem::path& ca_dir,
                                               const std::string& spiffe_id,
                                               const std::filesystem::path& out_dir,
                                               const std::string& name) {
  using namespace certs::internal;
  CORRIDOR_ASSIGN_OR_RETURN(X509Ptr ca, ReadCertFile(ca_dir / "ca.crt"));
  CORRIDOR_ASSIGN_OR_RETURN(EvpPkeyPtr ca_key, ReadKeyFile(ca_dir / "ca.key"));
  CORRIDOR_ASSIGN_OR_RETURN(EvpPkeyPtr key, NewP256Key());
  CORRIDOR_ASSIGN_OR_RETURN(Asn1IntegerPtr serial, RandomSerial());
  X509Ptr cert(X509_new());
  X509_set_version(cert.get(), 2);
  X509_set_serialNumber(cert.get(), serial.get());
  X509_NAME* subject = X509_get_subject_name(cert.get());
  X509_NAME_add_entry_by_txt(subject, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>(name.c_str()), -1, -1, 0);
  X509_set_issuer_name(cert.get(), X509_get_subject_name(ca.get()));
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), -300);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), 86400);
  X509_set_pubkey(cert.get(), key.get());
  CORRIDOR_RETURN_IF_ERROR(
      AddExtension(cert.get(), ca.get(), NID_basic_constraints, "critical,CA:TRUE"));
  CORRIDOR_RETURN_IF_ERROR(
      AddExtension(cert.get(), ca.get(), NID_key_usage, "critical,digitalSignature,keyCertSign"));
  CORRIDOR_RETURN_IF_ERROR(
      AddExtension(cert.get(), ca.get(), NID_ext_key_usage, "clientAuth,serverAuth"));
  CORRIDOR_RETURN_IF_ERROR(AddExtension(cert.get(), ca.get(), NID_subject_key_identifier, "hash"));
  CORRIDOR_RETURN_IF_ERROR(
      AddExtension(cert.get(), ca.get(), NID_authority_key_identifier, "keyid:always"));
  const std::string san = "URI:" + spiffe_id;
  CORRIDOR_RETURN_IF_ERROR(AddExtension(cert.get(), ca.get(), NID_subject_alt_name, san.c_str()));
  if (X509_sign(cert.get(), ca_key.get(), EVP_sha256()) <= 0) {
    return absl::InternalError("X509_sign: " + DrainOpensslErrors());
  }
  CORRIDOR_ASSIGN_OR_RETURN(std::string cert_pem, CertToPem(cert.get()));
  CORRIDOR_ASSIGN_OR_RETURN(std::string key_pem, KeyToPem(key.get()));
  CORRIDOR_RETURN_IF_ERROR(MakeDir(out_dir, 0755, /*enforce_mode=*/false));
  CORRIDOR_RETURN_IF_ERROR(WriteFileAtomic(out_dir / (name + ".key"), key_pem, 0600));
  CORRIDOR_RETURN_IF_ERROR(WriteFileAtomic(out_dir / (name + ".crt"), cert_pem, 0644));
  return SerialHex(serial.get());
}

}  // namespace corridor::testing
