// BrokerServer: the broker process's body — opens the core, serves Exchange,
// Admin, health checking and reflection over mTLS on one listener.
//
//   CORRIDOR_ASSIGN_OR_RETURN(auto server, BrokerServer::Start(config, decision_point));
//   std::cout << "listening on port " << server->port();
//   server->Wait();  // until Shutdown() from another thread
//
// Used by corridord and by the integration tests (port 0). Thread-safe.
#pragma once

#include <memory>

#include "absl/status/statusor.h"
#include "broker/config.h"
#include "broker/exchange_core.h"

namespace grpc {
class Server;
}

namespace corridor::broker::grpc_transport {

class ExchangeService;
class StreamRegistry;
class AdminService;
class AuditService;

class BrokerServer {
 public:
  // Fails when a TLS file is unreadable (FAILED_PRECONDITION), the data dir is
  // locked by another broker (FAILED_PRECONDITION) or the address cannot be bound
  // (UNAVAILABLE).
  static absl::StatusOr<std::unique_ptr<BrokerServer>> Start(
      const BrokerConfig& config, std::shared_ptr<const DecisionPoint> decision_point);
  ~BrokerServer();

  int port() const { return port_; }
  ExchangeCore* core() const { return core_.get(); }
  // The open long-lived streams, their limits, and CancelWhere to cut some.
  StreamRegistry* streams() const { return streams_.get(); }

  // Stops accepting, cancels open streams after `grace`, then stops the core. Idempotent.
  void Shutdown(absl::Duration grace = absl::Seconds(2));
  // Blocks until Shutdown() has been called and completed.
  void Wait();

 private:
  BrokerServer() = default;
  std::unique_ptr<ExchangeCore> core_;
  std::unique_ptr<StreamRegistry> streams_;  // outlives the server's streams
  std::unique_ptr<ExchangeService> exchange_;
  std::unique_ptr<AdminService> admin_;
  std::unique_ptr<AuditService> audit_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
};

}  // namespace corridor::broker::grpc_transport
