#include "certs/internal/openssl_util.h"

#include <openssl/err.h>

#include <string>

namespace corridor::certs::internal {

std::string DrainOpensslErrors() {
  std::string out;
  unsigned long err;
  while ((err = ERR_get_error()) != 0) {
    char buf[256];
    ERR_error_string_n(err, buf, sizeof buf);
    if (!out.empty()) out += "; ";
    out += buf;
  }
  return out.empty() ? "no OpenSSL error detail" : out;
}

}  // namespace corridor::certs::internal
