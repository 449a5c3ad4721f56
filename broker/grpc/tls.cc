#include "broker/grpc/tls.h"

#include <openssl/conf.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include <fstream>
#include <mutex>

#include "absl/strings/str_cat.h"
#include "grpcpp/security/tls_certificate_provider.h"
#include "grpcpp/security/tls_credentials_options.h"

namespace corridor::broker::grpc_transport {

absl::Status RestrictProcessToTls13() {
  static absl::Status result = [] {
    // Load the system configuration first (once per process), then replace the
    // ssl_conf system_default section with ours.
    OPENSSL_init_ssl(OPENSSL_INIT_LOAD_CONFIG, nullptr);
    static const char kConf[] =
        "corridor_conf = corridor_init\n"
        "[corridor_init]\n"
        "ssl_conf = corridor_ssl\n"
        "[corridor_ssl]\n"
        "system_default = corridor_tls\n"
        "[corridor_tls]\n"
        // gRPC 1.51 sets its own minimum (TLS 1.2) on every context it makes,
        // which overrides MinProtocol; disabled protocols are options it never
        // clears, so they hold.
        "MinProtocol = TLSv1.3\n"
        "Protocol = -ALL, TLSv1.3\n"
        "CipherString = DEFAULT:@SECLEVEL=2\n";
    CONF* conf = NCONF_new(nullptr);
    BIO* bio = BIO_new_mem_buf(kConf, -1);
    long error_line = -1;
    absl::Status st;
    if (NCONF_load_bio(conf, bio, &error_line) <= 0 ||
        CONF_modules_load(conf, "corridor_conf", 0) <= 0) {
      char buf[256];
      ERR_error_string_n(ERR_get_error(), buf, sizeof(buf));
      st = absl::InternalError(absl::StrCat("OpenSSL TLS 1.3 configuration refused: ", buf));
    }
    BIO_free(bio);
    NCONF_free(conf);
    return st;
  }();
  return result;
}

absl::Status CheckReadable(const std::vector<std::string>& paths) {
  for (const std::string& p : paths) {
    std::ifstream in(p);
    if (!in.good()) {
      return absl::FailedPreconditionError(absl::StrCat("cannot read ", p));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> MakeServerCredentials(
    const TlsFiles& files, int refresh_seconds) {
  if (auto s = CheckReadable({files.cert, files.key, files.ca}); !s.ok()) {
    return absl::FailedPreconditionError(absl::StrCat("broker.tls: ", s.message()));
  }
  auto provider = std::make_shared<grpc::experimental::FileWatcherCertificateProvider>(
      files.key, files.cert, files.ca, refresh_seconds);
  grpc::experimental::TlsServerCredentialsOptions options(provider);
  options.watch_root_certs();
  options.watch_identity_key_cert_pairs();
  options.set_cert_request_type(GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
  if (!files.crl_dir.empty()) options.set_crl_directory(files.crl_dir);
  auto creds = grpc::experimental::TlsServerCredentials(options);
  if (creds == nullptr) return absl::InternalError("gRPC refused the TLS server options");
  return creds;
}

}  // namespace corridor::broker::grpc_transport
