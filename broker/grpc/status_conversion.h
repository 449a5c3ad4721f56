// The one place absl::Status becomes grpc::Status (same canonical codes).
#pragma once

#include "absl/status/status.h"
#include "grpcpp/support/status.h"

namespace corridor::broker::grpc_transport {

grpc::Status ToGrpcStatus(const absl::Status& status);
absl::Status FromGrpcStatus(const grpc::Status& status);

}  // namespace corridor::broker::grpc_transport
