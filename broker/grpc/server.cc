#include "broker/grpc/server.h"

#include <algorithm>
#include <limits>
#include <mutex>

#include "absl/strings/str_cat.h"
#include "broker/grpc/audit_service.h"
#include "broker/grpc/exchange_service.h"
#include "broker/grpc/stream_registry.h"
#include "broker/grpc/tls.h"
#include "broker/policy_loader.h"
#include "common/status_macros.h"
#include "grpcpp/ext/proto_server_reflection_plugin.h"
#include "grpcpp/grpcpp.h"
#include "grpcpp/health_check_service_interface.h"

namespace corridor::broker::grpc_transport {

absl::StatusOr<std::unique_ptr<BrokerServer>> BrokerServer::Start(
    const BrokerConfig& config, std::shared_ptr<const DecisionPoint> decision_point) {
  CORRIDOR_RETURN_IF_ERROR(RestrictProcessToTls13());
  CORRIDOR_ASSIGN_OR_RETURN(std::shared_ptr<grpc::ServerCredentials> creds,
                            MakeServerCredentials(config.tls));
  std::unique_ptr<BrokerServer> server(new BrokerServer());
  CORRIDOR_ASSIGN_OR_RETURN(server->core_, ExchangeCore::Open(config, std::move(decision_point)));
  ExchangeCore* core = server->core_.get();
  server->streams_ = std::make_unique<StreamRegistry>(
      config.limits, [core](const PeerIdentity& peer, const std::string& detail) {
        core->RecordSecurityEvent(peer, detail);
      });
  server->exchange_ = std::make_unique<ExchangeService>(core, server->streams_.get());
  server->admin_ = std::make_unique<AdminService>(
      core, [config, core](const std::string& who) { return ReloadPolicy(config, core, who); },
      server->streams_.get());

  static std::once_flag once;
  std::call_once(once, [] {
    grpc::EnableDefaultHealthCheckService(true);
    grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  });
  grpc::ServerBuilder builder;
  builder.AddListeningPort(config.listen, creds, &server->port_);
  builder.RegisterService(server->exchange_.get());
  builder.RegisterService(server->admin_.get());
  server->audit_ = std::make_unique<AuditService>(core);
  builder.RegisterService(server->audit_.get());
  // Our own INVALID_ARGUMENT names the field for envelopes up to 4x the limit;
  // beyond that gRPC refuses the frame (RESOURCE_EXHAUSTED) without buffering it.
  builder.SetMaxReceiveMessageSize(
      static_cast<int>(std::max<size_t>(4 * config.max_message_bytes, 4 << 20)));
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIME_MS, 30000);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 10000);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, 10000);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  // A connection that has not completed its TLS handshake by then is closed
  // (gRPC's default holds it 120 s).
  builder.AddChannelArgument(GRPC_ARG_SERVER_HANDSHAKE_TIMEOUT_MS,
                             static_cast<int>(std::clamp<int64_t>(
                                 absl::ToInt64Milliseconds(config.limits.handshake_timeout), 1,
                                 std::numeric_limits<int>::max())));
  server->server_ = builder.BuildAndStart();
  if (server->server_ == nullptr || server->port_ == 0) {
    server->streams_->Stop();
    server->core_->Shutdown();
    return absl::UnavailableError(absl::StrCat("cannot listen on ", config.listen));
  }
  return server;
}

BrokerServer::~BrokerServer() { Shutdown(); }

void BrokerServer::Shutdown(absl::Duration grace) {
  if (server_) {
    // End the subscription streams first (they never end by themselves), so the
    // grace period is left to unary calls and submit streams.
    if (core_) core_->CloseStreams();
    server_->Shutdown(std::chrono::system_clock::now() + absl::ToChronoMilliseconds(grace));
  }
  if (streams_) streams_->Stop();  // records its pending summaries while the core still runs
  if (core_) core_->Shutdown();
}

void BrokerServer::Wait() {
  if (server_) server_->Wait();
}

}  // namespace corridor::broker::grpc_transport
