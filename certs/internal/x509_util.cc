#include "certs/internal/x509_util.h"

#include <arpa/inet.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>

#include <cstdio>
#include <ctime>
#include <string>

#include "certs/internal/file_util.h"

namespace corridor::certs::internal {
namespace {

constexpr size_t kMaxSerialOctets = 20;  // RFC 5280 4.1.2.2

bool IsHexDigit(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

absl::StatusOr<BioPtr> MemBio(const std::string& data) {
  BioPtr bio(BIO_new_mem_buf(data.data(), static_cast<int>(data.size())));
  if (!bio) return absl::InternalError("BIO_new_mem_buf: " + DrainOpensslErrors());
  return bio;
}

// Reads all of a memory BIO into a string.
std::string BioContents(BIO* bio) {
  char* data = nullptr;
  const long len = BIO_get_mem_data(bio, &data);
  return len > 0 ? std::string(data, static_cast<size_t>(len)) : std::string();
}

absl::Status NotA(const std::filesystem::path& path, std::string_view what) {
  return absl::InvalidArgumentError(path.string() + " is not " + std::string(what) + " (" +
                                    DrainOpensslErrors() + ")");
}

}  // namespace

absl::StatusOr<X509Ptr> ReadCertFile(const std::filesystem::path& path) {
  absl::StatusOr<std::string> data = ReadFile(path);
  if (!data.ok()) return data.status();
  ERR_clear_error();
  absl::StatusOr<BioPtr> bio = MemBio(*data);
  if (!bio.ok()) return bio.status();
  X509Ptr cert(PEM_read_bio_X509(bio->get(), nullptr, nullptr, nullptr));
  if (cert) return cert;
  const std::string pem_error = DrainOpensslErrors();
  const unsigned char* p = reinterpret_cast<const unsigned char*>(data->data());
  cert.reset(d2i_X509(nullptr, &p, static_cast<long>(data->size())));
  if (cert) return cert;
  ERR_clear_error();
  return absl::InvalidArgumentError(path.string() + " is not a PEM or DER certificate (" +
                                    pem_error + ")");
}

absl::StatusOr<EvpPkeyPtr> ReadKeyFile(const std::filesystem::path& path) {
  absl::StatusOr<std::string> data = ReadFile(path);
  if (!data.ok()) return data.status();
  ERR_clear_error();
  EvpPkeyPtr key;
  {
    // The BIO reads `data` in place; wipe it once the key is parsed.
    absl::StatusOr<BioPtr> bio = MemBio(*data);
    if (bio.ok()) key.reset(PEM_read_bio_PrivateKey(bio->get(), nullptr, nullptr, nullptr));
    OPENSSL_cleanse(data->data(), data->size());
    if (!bio.ok()) return bio.status();
  }
  if (!key) return NotA(path, "a PEM private key");
  return key;
}

absl::StatusOr<X509CrlPtr> ReadCrlFile(const std::filesystem::path& path) {
  absl::StatusOr<std::string> data = ReadFile(path);
  if (!data.ok()) return data.status();
  ERR_clear_error();
  absl::StatusOr<BioPtr> bio = MemBio(*data);
  if (!bio.ok()) return bio.status();
  X509CrlPtr crl(PEM_read_bio_X509_CRL(bio->get(), nullptr, nullptr, nullptr));
  if (!crl) return NotA(path, "a PEM CRL");
  return crl;
}

absl::StatusOr<std::string> CertToPem(X509* cert) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_X509(bio.get(), cert) != 1) {
    return absl::InternalError("PEM_write_bio_X509: " + DrainOpensslErrors());
  }
  return BioContents(bio.get());
}

absl::StatusOr<std::string> KeyToPem(EVP_PKEY* key) {
  BioPtr bio(BIO_new(BIO_s_secmem()));
  if (!bio) bio.reset(BIO_new(BIO_s_mem()));
  if (!bio ||
      PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr) != 1) {
    return absl::InternalError("PEM_write_bio_PrivateKey: " + DrainOpensslErrors());
  }
  return BioContents(bio.get());
}

absl::StatusOr<std::string> CrlToPem(X509_CRL* crl) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_X509_CRL(bio.get(), crl) != 1) {
    return absl::InternalError("PEM_write_bio_X509_CRL: " + DrainOpensslErrors());
  }
  return BioContents(bio.get());
}

absl::StatusOr<EvpPkeyPtr> NewP256Key() {
  EvpPkeyPtr key(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
  if (!key) return absl::InternalError("EC P-256 key generation: " + DrainOpensslErrors());
  return key;
}

absl::StatusOr<Asn1IntegerPtr> RandomSerial(int bits) {
  unsigned char buf[kMaxSerialOctets];
  const int n = bits / 8;
  if (n <= 0 || static_cast<size_t>(n) > sizeof buf) {
    return absl::InvalidArgumentError("serial size must be 8..160 bits");
  }
  BignumPtr bn(BN_new());
  if (!bn) return absl::InternalError("BN_new: " + DrainOpensslErrors());
  do {
    if (RAND_bytes(buf, n) != 1) return absl::InternalError("RAND_bytes: " + DrainOpensslErrors());
    if (!BN_bin2bn(buf, n, bn.get()))
      return absl::InternalError("BN_bin2bn: " + DrainOpensslErrors());
  } while (BN_is_zero(bn.get()));
  Asn1IntegerPtr serial(BN_to_ASN1_INTEGER(bn.get(), nullptr));
  if (!serial) return absl::InternalError("BN_to_ASN1_INTEGER: " + DrainOpensslErrors());
  return serial;
}

std::string SerialHex(const ASN1_INTEGER* serial) {
  BignumPtr bn(ASN1_INTEGER_to_BN(serial, nullptr));
  if (!bn) return "";
  char* hex = BN_bn2hex(bn.get());
  if (hex == nullptr) return "";
  std::string out(hex);
  OPENSSL_free(hex);
  // BN_bn2hex pads to whole bytes and writes a '-' for negatives.
  std::string canonical;
  bool negative = false;
  for (char c : out) {
    if (c == '-') {
      negative = true;
      continue;
    }
    if (canonical.empty() && c == '0') continue;
    canonical += static_cast<char>(c >= 'A' && c <= 'F' ? c - 'A' + 'a' : c);
  }
  if (canonical.empty()) canonical = "0";
  return negative ? "-" + canonical : canonical;
}

bool LooksLikeSerial(std::string_view s) {
  if (s.size() >= 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) s.remove_prefix(2);
  bool digit = false;
  for (char c : s) {
    if (IsHexDigit(c)) {
      digit = true;
    } else if (c != ':') {
      return false;
    }
  }
  return digit;
}

absl::StatusOr<std::string> NormalizeSerialHex(std::string_view s) {
  if (!LooksLikeSerial(s)) {
    return absl::InvalidArgumentError("serial \"" + std::string(s.substr(0, 80)) +
                                      "\" is not hex digits");
  }
  if (s.size() >= 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) s.remove_prefix(2);
  std::string out;
  for (char c : s) {
    if (c == ':') continue;
    if (out.empty() && c == '0') continue;
    out += static_cast<char>(c >= 'A' && c <= 'F' ? c - 'A' + 'a' : c);
  }
  if (out.empty()) out = "0";
  if (out.size() > 2 * kMaxSerialOctets) {
    return absl::InvalidArgumentError("serial \"" + std::string(s.substr(0, 80)) +
                                      "\" is longer than 20 octets");
  }
  return out;
}

absl::StatusOr<Asn1IntegerPtr> SerialFromHex(std::string_view hex) {
  absl::StatusOr<std::string> canonical = NormalizeSerialHex(hex);
  if (!canonical.ok()) return canonical.status();
  BIGNUM* raw = nullptr;
  if (BN_hex2bn(&raw, canonical->c_str()) == 0) {
    return absl::InvalidArgumentError("serial " + *canonical + ": " + DrainOpensslErrors());
  }
  BignumPtr bn(raw);
  Asn1IntegerPtr serial(BN_to_ASN1_INTEGER(bn.get(), nullptr));
  if (!serial) return absl::InternalError("BN_to_ASN1_INTEGER: " + DrainOpensslErrors());
  return serial;
}

std::string FormatUtc(std::time_t t) {
  struct tm tm;
  if (gmtime_r(&t, &tm) == nullptr) return "";
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string FormatAsn1Time(const ASN1_TIME* t) {
  absl::StatusOr<std::time_t> unix_time = Asn1TimeToUnix(t);
  return unix_time.ok() ? FormatUtc(*unix_time) : "";
}

absl::StatusOr<std::time_t> Asn1TimeToUnix(const ASN1_TIME* t) {
  struct tm tm = {};
  if (t == nullptr || ASN1_TIME_to_tm(t, &tm) != 1) {
    return absl::InvalidArgumentError("unreadable ASN.1 time: " + DrainOpensslErrors());
  }
  return timegm(&tm);
}

absl::StatusOr<std::time_t> ParseUtc(std::string_view s) {
  const std::string str(s);
  struct tm tm = {};
  int consumed = 0;
  if (str.size() != 20 ||
      std::sscanf(str.c_str(), "%4d-%2d-%2dT%2d:%2d:%2dZ%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
                  &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &consumed) != 6 ||
      consumed != 20 || tm.tm_mon < 1 || tm.tm_mon > 12 || tm.tm_mday < 1 || tm.tm_mday > 31 ||
      tm.tm_hour > 23 || tm.tm_min > 59 || tm.tm_sec > 60) {
    return absl::InvalidArgumentError("time \"" + str.substr(0, 40) +
                                      "\" is not YYYY-MM-DDTHH:MM:SSZ");
  }
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  return timegm(&tm);
}

std::string NameToString(const X509_NAME* name) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || X509_NAME_print_ex(bio.get(), name, 0, XN_FLAG_RFC2253) < 0) return "";
  return BioContents(bio.get());
}

SubjectAltNames ReadSubjectAltNames(X509* cert) {
  SubjectAltNames out;
  GeneralNamesPtr names(
      static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr)));
  if (!names) return out;
  for (int i = 0; i < sk_GENERAL_NAME_num(names.get()); ++i) {
    const GENERAL_NAME* gn = sk_GENERAL_NAME_value(names.get(), i);
    int type = 0;
    const void* value = GENERAL_NAME_get0_value(gn, &type);
    if (value == nullptr || (type != GEN_URI && type != GEN_DNS && type != GEN_IPADD)) continue;
    // For these three types the value is an ASN1_STRING (IA5STRING / OCTET STRING).
    const ASN1_STRING* s = static_cast<const ASN1_STRING*>(value);
    const char* data = reinterpret_cast<const char*>(ASN1_STRING_get0_data(s));
    const size_t len = static_cast<size_t>(ASN1_STRING_length(s));
    if (type == GEN_URI) {
      out.uris.emplace_back(data, len);
    } else if (type == GEN_DNS) {
      out.dns_names.emplace_back(data, len);
    } else if (type == GEN_IPADD) {
      char buf[INET6_ADDRSTRLEN] = {};
      if (len == 4 && inet_ntop(AF_INET, data, buf, sizeof buf) != nullptr) {
        out.ip_addresses.emplace_back(buf);
      } else if (len == 16 && inet_ntop(AF_INET6, data, buf, sizeof buf) != nullptr) {
        out.ip_addresses.emplace_back(buf);
      }
    }
  }
  return out;
}

absl::Status AddExtension(X509* cert, X509* issuer, int nid, const char* value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509ExtensionPtr ext(X509V3_EXT_conf_nid(nullptr, &ctx, nid, value));
  if (!ext || X509_add_ext(cert, ext.get(), -1) != 1) {
    return absl::InternalError(std::string("cannot add extension ") + OBJ_nid2sn(nid) + " = " +
                               value + ": " + DrainOpensslErrors());
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> NameHashHex(const X509_NAME* name) {
  int ok = 0;
  const unsigned long hash = X509_NAME_hash_ex(name, nullptr, nullptr, &ok);
  if (!ok) return absl::InternalError("X509_NAME_hash_ex: " + DrainOpensslErrors());
  char buf[16];
  std::snprintf(buf, sizeof buf, "%08lx", hash & 0xffffffffUL);
  return std::string(buf);
}

}  // namespace corridor::certs::internal
