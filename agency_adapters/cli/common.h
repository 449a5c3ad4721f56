// What corridorctl and corridor-bridge share: connection flags, JSON mapping,
// human-readable rendering of deliveries and replies.
//
// Thread-compatible helpers; no global state.
#pragma once

#include <string>

#include "CLI/CLI.hpp"
#include "absl/status/statusor.h"
#include "agency_adapters/client/agency_client.h"
#include "corridor/v1/exchange.pb.h"
#include "google/protobuf/message.h"

namespace corridor::cli {

struct ConnectionFlags {
  std::string broker = "localhost:7443";
  std::string certs_dir = "./corridor-certs";  // dev layout: <as>.crt, <as>.key, ca.crt
  std::string as;             // certificate stem inside certs_dir, e.g. "zs-police"
  std::string cert, key, ca;  // explicit files (override certs_dir/as)
  std::string server_name;
  double timeout_seconds = 10;
};

// Adds --broker, --certs-dir, --as, --cert, --key, --ca, --server-name, --timeout.
// Environment defaults: CORRIDOR_BROKER, CORRIDOR_CERTS_DIR, CORRIDOR_AS.
void AddConnectionFlags(CLI::App& app, ConnectionFlags* flags);

// INVALID_ARGUMENT when neither --as nor --cert/--key are given.
absl::StatusOr<ClientOptions> ToClientOptions(const ConnectionFlags& flags);

// Protobuf JSON mapping with proto field names ("client_message_id"), UTF-8 kept.
std::string ToJson(const google::protobuf::Message& message, bool pretty = false);
// Parses one JSON object (either field-name style); INVALID_ARGUMENT with the parser's reason.
absl::Status FromJson(const std::string& json, google::protobuf::Message* message);

// Multi-line human rendering.
std::string FormatDelivery(const v1::Delivery& delivery);
std::string FormatSubmitResponse(const v1::SubmitResponse& response);
std::string FormatStatus(const v1::StatusResponse& status);

// "INVALID_ARGUMENT: envelope.topic: required" style line for errors.
std::string FormatError(const absl::Status& status);

}  // namespace corridor::cli
