// X.509 helpers shared by pki.cc and its tests: reading and writing PEM,
// serials as canonical hex, times as ISO 8601 UTC, names and SANs as text,
// key generation and extensions. Private to certs/.
//
// Pure functions over their arguments plus file reads; thread-compatible.
#pragma once

#include <ctime>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "certs/internal/openssl_util.h"

namespace corridor::certs::internal {

// Reads a certificate (PEM, else DER). NOT_FOUND if missing; INVALID_ARGUMENT
// (with the OpenSSL error) if the file holds no certificate.
absl::StatusOr<X509Ptr> ReadCertFile(const std::filesystem::path& path);
// Reads a PEM private key. NOT_FOUND if missing; INVALID_ARGUMENT if unparsable.
absl::StatusOr<EvpPkeyPtr> ReadKeyFile(const std::filesystem::path& path);
// Reads a PEM CRL. NOT_FOUND if missing; INVALID_ARGUMENT if unparsable.
absl::StatusOr<X509CrlPtr> ReadCrlFile(const std::filesystem::path& path);

// PEM encodings. INTERNAL on an OpenSSL failure. The key's PEM is PKCS#8,
// unencrypted: the caller must cleanse it after use.
absl::StatusOr<std::string> CertToPem(X509* cert);
absl::StatusOr<std::string> KeyToPem(EVP_PKEY* key);
absl::StatusOr<std::string> CrlToPem(X509_CRL* crl);

// A fresh ECDSA P-256 key. INTERNAL on failure.
absl::StatusOr<EvpPkeyPtr> NewP256Key();
// A random positive serial of `bits` bits (a multiple of 8), never zero.
absl::StatusOr<Asn1IntegerPtr> RandomSerial(int bits = 128);

// Canonical hex of a serial: lower case, no leading zeros ("0" for zero).
std::string SerialHex(const ASN1_INTEGER* serial);
// True if `s` reads as a serial: hex digits, optionally "0x"-prefixed and/or
// ':'-separated, at least one digit.
bool LooksLikeSerial(std::string_view s);
// The canonical form of a serial written as LooksLikeSerial() accepts.
// INVALID_ARGUMENT if it is not one, or longer than 20 octets.
absl::StatusOr<std::string> NormalizeSerialHex(std::string_view s);
// Canonical hex back to an ASN1_INTEGER. INVALID_ARGUMENT if not canonical hex.
absl::StatusOr<Asn1IntegerPtr> SerialFromHex(std::string_view hex);

// "YYYY-MM-DDTHH:MM:SSZ" for a Unix time / an ASN1_TIME ("" if unreadable).
std::string FormatUtc(std::time_t t);
std::string FormatAsn1Time(const ASN1_TIME* t);
// Unix time of an ASN1_TIME. INVALID_ARGUMENT if unreadable.
absl::StatusOr<std::time_t> Asn1TimeToUnix(const ASN1_TIME* t);
// Parses "YYYY-MM-DDTHH:MM:SSZ". INVALID_ARGUMENT otherwise.
absl::StatusOr<std::time_t> ParseUtc(std::string_view s);

// RFC 2253 one-line form of a name, e.g. "CN=node1".
std::string NameToString(const X509_NAME* name);

// The subjectAltName entries of a certificate, in order, by type.
struct SubjectAltNames {
  std::vector<std::string> uris, dns_names, ip_addresses;
};
SubjectAltNames ReadSubjectAltNames(X509* cert);

// Adds an extension given in openssl.cnf syntax (e.g. "critical,CA:FALSE") to
// `cert`, with `issuer` as the issuer context. INTERNAL with the OpenSSL error.
absl::Status AddExtension(X509* cert, X509* issuer, int nid, const char* value);

// 8 lower-case hex digits of X509_NAME_hash_ex(name): the stem OpenSSL's
// hash-dir lookup (and gRPC's CRL directory) expects.
absl::StatusOr<std::string> NameHashHex(const X509_NAME* name);

}  // namespace corridor::certs::internal
