// The one place absl::Status becomes grpc::Status (same canonical codes).
#pragma once

#include <cstddef>

#include "absl/status/status.h"
#include "grpcpp/support/status.h"

namespace corridor::broker::grpc_transport {

// A status message travels percent-encoded in the grpc-message trailer (every
// byte outside printable ASCII, and '%', as three), and a client accepts
// 8 KiB of metadata in all by default: a longer message would reach it as
// RESOURCE_EXHAUSTED instead of the status. Messages are cut to this many
// encoded bytes, on a character boundary, saying so.
inline constexpr size_t kMaxEncodedStatusMessage = 4096;

// The same code and message; the message cut as above when too long.
grpc::Status ToGrpcStatus(const absl::Status& status);
absl::Status FromGrpcStatus(const grpc::Status& status);

}  // namespace corridor::broker::grpc_transport
