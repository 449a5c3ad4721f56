#include "broker/audit/internal/crypto_util.h"

#include <openssl/evp.h>

#include <cstdio>
#include <cstdlib>
#include <memory>


namespace corridor::broker::audit::internal {
namespace {

// The SHA-256 implementation, fetched once from the default provider (an explicit
// fetch avoids OpenSSL 3's per-call implicit fetch on the hot append path).
const EVP_MD* Sha256Md() {
  static const EVP_MD* const md = [] {
    EVP_MD* fetched = EVP_MD_fetch(nullptr, "SHA256", nullptr);
    CheckOrDie(fetched != nullptr, "EVP_MD_fetch(SHA256) failed");
    return fetched;  // intentionally never freed: lives for the process
  }();
  return md;
}

struct MdCtxDeleter {
  void operator()(EVP_MD_CTX* ctx) const { EVP_MD_CTX_free(ctx); }
};

EVP_MD_CTX* ThreadDigestContext() {
  thread_local std::unique_ptr<EVP_MD_CTX, MdCtxDeleter> ctx(EVP_MD_CTX_new());
  CheckOrDie(ctx != nullptr, "EVP_MD_CTX_new failed");
  return ctx.get();
}

// Decodes one UTF-8 sequence at `text[*pos]`; advances *pos. Returns -1 if malformed.
int32_t DecodeUtf8(std::string_view text, size_t* pos) {
  const auto byte = [&](size_t i) { return static_cast<uint8_t>(text[i]); };
  const uint8_t b0 = byte(*pos);
  int32_t cp;
  size_t len;
  if (b0 < 0x80) {
    cp = b0;
    len = 1;
  } else if ((b0 & 0xE0) == 0xC0) {
    cp = b0 & 0x1F;
    len = 2;
  } else if ((b0 & 0xF0) == 0xE0) {
    cp = b0 & 0x0F;
    len = 3;
  } else if ((b0 & 0xF8) == 0xF0) {
    cp = b0 & 0x07;
    len = 4;
  } else {
    return -1;
  }
  if (*pos + len > text.size()) return -1;
  for (size_t i = 1; i < len; ++i) {
    const uint8_t b = byte(*pos + i);
    if ((b & 0xC0) != 0x80) return -1;
    cp = (cp << 6) | (b & 0x3F);
  }
  static constexpr int32_t kMinForLength[] = {0, 0, 0x80, 0x800, 0x10000};
  if (cp < kMinForLength[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return -1;
  *pos += len;
  return cp;
}

// Unicode White_Space code points (what Go's unicode.IsSpace accepts).
bool IsUnicodeSpace(int32_t cp) {
  switch (cp) {
    case '\t':
    case '\n':
    case '\v':
    case '\f':
    case '\r':
    case ' ':
    case 0x85:
    case 0xA0:
    case 0x1680:
    case 0x2028:
    case 0x2029:
    case 0x202F:
    case 0x205F:
    case 0x3000:
      return true;
    default:
      return cp >= 0x2000 && cp <= 0x200A;
  }
}

}  // namespace

void CheckOrDie(bool condition, const char* message) {
  if (condition) return;
  std::fprintf(stderr, "corridor audit crypto: invariant failed: %s\n", message);
  std::abort();
}

std::array<uint8_t, 32> Sha256(std::initializer_list<std::string_view> parts) {
  EVP_MD_CTX* ctx = ThreadDigestContext();
  bool ok = EVP_DigestInit_ex2(ctx, Sha256Md(), nullptr) == 1;
  for (std::string_view part : parts) {
    ok = ok && EVP_DigestUpdate(ctx, part.data(), part.size()) == 1;
  }
  std::array<uint8_t, 32> out;
  unsigned int out_len = 0;
  ok = ok && EVP_DigestFinal_ex(ctx, out.data(), &out_len) == 1 && out_len == out.size();
  CheckOrDie(ok, "SHA-256 digest failed");
  return out;
}

std::string Base64Encode(std::string_view bytes) {
  std::string out(4 * ((bytes.size() + 2) / 3) + 1, '\0');  // + NUL written by OpenSSL
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(bytes.data()),
                                static_cast<int>(bytes.size()));
  CheckOrDie(n >= 0, "EVP_EncodeBlock failed");
  out.resize(static_cast<size_t>(n));
  return out;
}

std::optional<std::string> Base64Decode(std::string_view text) {
  if (text.size() % 4 != 0 || text.size() > (1u << 30)) return std::nullopt;
  size_t padding = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    const bool alphabet = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
                          (c >= '0' && c <= '9') || c == '+' || c == '/';
    if (c == '=') {
      ++padding;
    } else if (!alphabet || padding > 0) {
      return std::nullopt;  // foreign character, or data after padding
    }
  }
  if (padding > 2) return std::nullopt;
  std::string out(text.size() / 4 * 3, '\0');
  const int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(text.data()),
                                static_cast<int>(text.size()));
  if (n < 0 || static_cast<size_t>(n) != out.size()) return std::nullopt;
  out.resize(out.size() - padding);  // EVP_DecodeBlock counts padding as zero bytes
  if (Base64Encode(out) != text) return std::nullopt;  // non-canonical trailing bits
  return out;
}

std::string HexEncode(std::string_view bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (char c : bytes) {
    const auto b = static_cast<uint8_t>(c);
    out.push_back(kDigits[b >> 4]);
    out.push_back(kDigits[b & 0xF]);
  }
  return out;
}

bool IsValidKeyName(std::string_view name) {
  if (name.empty()) return false;
  size_t pos = 0;
  while (pos < name.size()) {
    const int32_t cp = DecodeUtf8(name, &pos);
    if (cp < 0x20 || cp == 0x7F || cp == '+' || IsUnicodeSpace(cp)) return false;
  }
  return true;
}

}  // namespace corridor::broker::audit::internal
