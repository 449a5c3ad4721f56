#include "broker/grpc/tls.h"

#include <grpc/grpc_security_constants.h>
#include <openssl/conf.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <mutex>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "broker/grpc/auth.h"
#include "grpcpp/security/auth_metadata_processor.h"
#include "grpcpp/security/tls_certificate_provider.h"
#include "grpcpp/security/tls_certificate_verifier.h"
#include "grpcpp/security/tls_credentials_options.h"

namespace corridor::broker::grpc_transport {

namespace {

std::string_view View(grpc::string_ref s) { return std::string_view(s.data(), s.size()); }

// The handshake's client certificate check: the TrustStore's, synchronously
// (CPU only: a chain of two or three signatures and a CRL lookup). gRPC 1.51
// hands the verifier the peer's leaf and chain but not its address.
class BrokerCertificateVerifier final : public grpc::experimental::ExternalCertificateVerifier {
 public:
  explicit BrokerCertificateVerifier(PeerChecks checks) : checks_(std::move(checks)) {}

  bool Verify(grpc::experimental::TlsCustomVerificationCheckRequest* request,
              std::function<void(grpc::Status)> /*callback*/, grpc::Status* sync_status) override {
    PeerCertCheck c =
        checks_.trust->Verify(View(request->peer_cert()), View(request->peer_cert_full_chain()));
    if (c.ok()) {
      *sync_status = grpc::Status::OK;
    } else {
      if (checks_.on_handshake_refused) checks_.on_handshake_refused(c);
      *sync_status =
          grpc::Status(grpc::StatusCode::UNAUTHENTICATED,
                       absl::StrCat("client certificate refused: ", RefusalName(c.refusal)));
    }
    return true;
  }
  void Cancel(grpc::experimental::TlsCustomVerificationCheckRequest*) override {}

 private:
  const PeerChecks checks_;
};

// Runs before every call on an established connection (health checking and
// reflection included): a certificate revoked (or expired) since the
// handshake, or one whose SPIFFE id is not a registered identity of this
// exchange, gets UNAUTHENTICATED and the call never reaches a service.
// Not blocking: it runs inline on gRPC's thread.
class CallGate final : public grpc::AuthMetadataProcessor {
 public:
  explicit CallGate(PeerChecks checks) : checks_(std::move(checks)) {}
  bool IsBlocking() const override { return false; }

  grpc::Status Process(const InputMetadata& /*auth_metadata*/, grpc::AuthContext* context,
                       OutputMetadata* /*consumed*/, OutputMetadata* /*response*/) override {
    std::vector<grpc::string_ref> pems =
        context->FindPropertyValues(GRPC_X509_PEM_CERT_PROPERTY_NAME);
    if (pems.empty()) {
      return grpc::Status(grpc::StatusCode::UNAUTHENTICATED, "no client certificate");
    }
    const std::string_view pem = View(pems.front());
    if (CertRefusal r = checks_.trust->CheckOnCall(pem); r != CertRefusal::kNone) {
      PeerCertCheck c = TrustStore::Describe(pem);
      c.refusal = r;
      c.detail = absl::StrCat("call on a connection whose certificate is ", RefusalName(r));
      if (checks_.on_call_refused) checks_.on_call_refused(c, RefusalName(r));
      return grpc::Status(grpc::StatusCode::UNAUTHENTICATED,
                          absl::StrCat("client certificate ", RefusalName(r)));
    }
    std::vector<std::string> uris;
    for (const auto& v : context->FindPropertyValues(GRPC_PEER_URI_PROPERTY_NAME)) {
      uris.emplace_back(View(v));
    }
    auto peer = IdentityFromUris(uris, *checks_.registry, *checks_.federation);
    if (!peer.ok()) {
      PeerCertCheck c = TrustStore::Describe(pem);
      c.refusal = CertRefusal::kNone;  // the certificate is fine; the identity is not
      c.detail = std::string(peer.status().message());
      if (c.spiffe_id.empty()) c.spiffe_id = absl::StrJoin(uris, " ");
      if (checks_.on_call_refused) checks_.on_call_refused(c, c.detail);
      return grpc::Status(grpc::StatusCode::UNAUTHENTICATED, std::string(peer.status().message()));
    }
    return grpc::Status::OK;
  }

 private:
  const PeerChecks checks_;
};

}  // namespace

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

absl::Status CheckPrivateKeyMode(const std::string& path, std::string_view what) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return absl::OkStatus();
    return absl::FailedPreconditionError(
        absl::StrCat(std::string(what), ": cannot stat ", path, ": ", std::strerror(errno)));
  }
  if ((st.st_mode & 077) != 0) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "%s: private key %s has mode %04o, readable or writable by group or others: "
        "chmod 600 %s",
        std::string(what), path, st.st_mode & 07777, path));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> MakeServerCredentials(
    const TlsFiles& files, PeerChecks checks, int refresh_seconds) {
  if (auto s = CheckReadable({files.cert, files.key, files.ca}); !s.ok()) {
    return absl::FailedPreconditionError(absl::StrCat("broker.tls: ", s.message()));
  }
  if (checks.trust == nullptr || checks.registry == nullptr || checks.federation == nullptr) {
    return absl::InvalidArgumentError(
        "MakeServerCredentials: trust store, registry and federation settings required");
  }
  // gRPC asks for a client certificate (naming the CAs of `ca` in its request)
  // but leaves every check to BrokerCertificateVerifier: its built-in
  // verification read the CRL dir once, at start, and refused everyone once
  // that CRL passed its nextUpdate.
  auto provider = std::make_shared<grpc::experimental::FileWatcherCertificateProvider>(
      files.key, files.cert, files.ca, refresh_seconds);
  grpc::experimental::TlsServerCredentialsOptions options(provider);
  options.watch_root_certs();
  options.watch_identity_key_cert_pairs();
  options.set_cert_request_type(GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_BUT_DONT_VERIFY);
  options.set_certificate_verifier(
      grpc::experimental::ExternalCertificateVerifier::Create<BrokerCertificateVerifier>(checks));
  auto creds = grpc::experimental::TlsServerCredentials(options);
  if (creds == nullptr) return absl::InternalError("gRPC refused the TLS server options");
  creds->SetAuthMetadataProcessor(std::make_shared<CallGate>(std::move(checks)));
  return creds;
}

}  // namespace corridor::broker::grpc_transport
