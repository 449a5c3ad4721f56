// mTLS for the broker's listener: TLS 1.3 only, a client certificate required
// and checked by the broker's own TrustStore (chain, purpose, times, the CRL in
// force, no CA leaf) at the handshake, then again on every call (revocation,
// expiry, a registered identity of this exchange), so a certificate revoked
// while its connection is open gets no further call. The broker's own
// certificate files are re-read while running (rotation needs no restart).
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "broker/config.h"
#include "broker/trust_store.h"
#include "grpcpp/security/server_credentials.h"
#include "policy/registry.h"

namespace corridor::broker::grpc_transport {

// Restricts every TLS context this process creates afterwards to TLS 1.3 (gRPC
// 1.51 exposes no minimum-version setting for TLS credentials; OpenSSL's
// system_default config does it). Call once, before the first TLS context.
// INTERNAL if OpenSSL refuses the configuration.
absl::Status RestrictProcessToTls13();

// What the credentials check peers with, and where refusals are reported. The
// callbacks run on gRPC threads, must not block, and may still be called
// after the server stopped (gRPC owns the credentials): make them safe then.
struct PeerChecks {
  std::shared_ptr<const TrustStore> trust;
  std::shared_ptr<const policy::Registry> registry;
  std::shared_ptr<const FederationSettings> federation;  // the listed peers
  // A handshake the TrustStore refused.
  std::function<void(const PeerCertCheck&)> on_handshake_refused;
  // A call on an established connection refused: the certificate was revoked
  // (or expired) since the handshake, or its SPIFFE id is not a registered
  // identity of this exchange (`why` says which).
  std::function<void(const PeerCertCheck&, std::string_view why)> on_call_refused;
};

// Server credentials from the config's TLS files, verifying clients with
// `checks`. FAILED_PRECONDITION naming the file when one is missing or
// unreadable (checked up front, as gRPC's file watcher would only log).
// `refresh_seconds`: how often the broker's certificate and key are re-read.
absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> MakeServerCredentials(
    const TlsFiles& files, PeerChecks checks, int refresh_seconds = 60);

// Fails with FAILED_PRECONDITION naming the first path that is not a readable file.
absl::Status CheckReadable(const std::vector<std::string>& paths);

// Fails with FAILED_PRECONDITION naming the file and the fix when the private
// key at `path` may be read or written by group or others (mode & 077). `what`
// names the setting, e.g. "broker.tls.key". A missing file is OK here.
absl::Status CheckPrivateKeyMode(const std::string& path, std::string_view what);

}  // namespace corridor::broker::grpc_transport
