// mTLS for the broker's listener: TLS 1.3 only, client certificate required and
// verified against the exchange CA, optional CRL directory, certificate files
// re-read while running (so rotation needs no restart).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "broker/config.h"
#include "grpcpp/security/server_credentials.h"

namespace corridor::broker::grpc_transport {

// Restricts every TLS context this process creates afterwards to TLS 1.3 (gRPC
// 1.51 exposes no minimum-version setting for TLS credentials; OpenSSL's
// system_default config does it). Call once, before the first TLS context.
// INTERNAL if OpenSSL refuses the configuration.
absl::Status RestrictProcessToTls13();

// Server credentials from the config's TLS files. FAILED_PRECONDITION naming the
// file when one is missing or unreadable (checked up front, as gRPC's file
// watcher would only log). `refresh_seconds`: how often the files are re-read.
absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> MakeServerCredentials(
    const TlsFiles& files, int refresh_seconds = 60);

// Fails with FAILED_PRECONDITION naming the first path that is not a readable file.
absl::Status CheckReadable(const std::vector<std::string>& paths);

}  // namespace corridor::broker::grpc_transport
