// BrokerServer: the broker process's body — opens the core, serves Exchange,
// Admin, health checking and reflection over mTLS on one listener.
//
//   CORRIDOR_ASSIGN_OR_RETURN(auto server, BrokerServer::Start(config, decision_point));
//   std::cout << "listening on port " << server->port();
//   server->Wait();  // until Shutdown() from another thread
//
// Used by corridord and by the integration tests (port 0). Thread-safe.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "broker/config.h"
#include "broker/exchange_core.h"
#include "broker/grpc/federation_link.h"
#include "broker/grpc/federation_service.h"
#include "broker/trust_store.h"

namespace grpc {
class Server;
}

namespace corridor::broker::grpc_transport {

class ExchangeService;
class StreamRegistry;
class AdminService;
class AuditService;
class SecurityEvents;

class BrokerServer {
 public:
  struct Options {
    // Where the server's own log lines go (CRL changes and problems, refusal
    // summaries). Default: stderr with a UTC timestamp. Called from the
    // server's threads; must be thread-safe.
    std::function<void(std::string_view)> log;
  };

  // Fails when a TLS file is unreadable, a private key (broker.tls.key, the
  // audit signing key) is readable by group or others, or the CA has no usable
  // CRL while broker.tls.crl is not none (FAILED_PRECONDITION naming the file
  // and the fix), the data dir is locked by another broker
  // (FAILED_PRECONDITION) or the address cannot be bound (UNAVAILABLE).
  static absl::StatusOr<std::unique_ptr<BrokerServer>> Start(
      const BrokerConfig& config, std::shared_ptr<const DecisionPoint> decision_point,
      Options options = {});
  ~BrokerServer();

  int port() const { return port_; }
  ExchangeCore* core() const { return core_.get(); }
  // The open long-lived streams, their limits, and CancelWhere to cut some.
  StreamRegistry* streams() const { return streams_.get(); }

  // Reads the CA bundle and the CRL dir again now (also done every
  // broker.tls.crl_refresh_seconds); logs and audits what changed and new
  // problems (`who` names the trigger: "SIGHUP", "timer", a SPIFFE id). Calls
  // on connections of a newly revoked certificate are refused from then on;
  // the revocations-changed hook runs. Thread-safe.
  void ReloadTrust(std::string_view who);
  // The operator-facing problems of the trust store (see TrustStore::Problems).
  std::vector<std::string> TlsProblems() const;
  // Runs (on the reloading thread) after a reload changed the set of revoked
  // certificates; `is_revoked` tells whether a leaf (PEM) is revoked now.
  // Start() sets one that cuts the open streams of revoked certificates
  // (StreamRegistry::CancelWhere, UNAUTHENTICATED "certificate revoked");
  // this replaces it. Thread-safe.
  void SetRevocationsChangedHook(
      std::function<void(std::function<bool(std::string_view leaf_pem)> is_revoked)> hook);

  // Stops accepting, cancels open streams after `grace`, then stops the core. Idempotent.
  void Shutdown(absl::Duration grace = absl::Seconds(2));
  // Blocks until Shutdown() has been called and completed.
  void Wait();

 private:
  BrokerServer() = default;
  void MaintenanceLoop(absl::Duration refresh);
  void Log(std::string_view line) const;

  std::function<void(std::string_view)> log_;
  std::shared_ptr<TrustStore> trust_;
  std::shared_ptr<SecurityEvents> events_;
  mutable absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::string> reported_problems_ ABSL_GUARDED_BY(mu_);
  std::function<void(std::function<bool(std::string_view)>)> revocations_hook_ ABSL_GUARDED_BY(mu_);
  std::thread maintenance_;
  std::unique_ptr<ExchangeCore> core_;
  std::unique_ptr<StreamRegistry> streams_;  // outlives the server's streams
  std::unique_ptr<ExchangeService> exchange_;
  std::unique_ptr<AdminService> admin_;
  std::unique_ptr<AuditService> audit_;
  std::unique_ptr<FederationService> federation_;
  // One per listed peer; stopped before the core, destroyed after it (a
  // receipt being recorded calls back into its link).
  std::vector<std::unique_ptr<PeerLink>> links_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
};

}  // namespace corridor::broker::grpc_transport
