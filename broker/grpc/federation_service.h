// corridor.v1.Federation, the receiving side of a link: a peer exchange's
// broker streams transfers in; each is stored through ExchangeCore::SubmitTransfer
// (this exchange's policy on top of the sender's, synced write, dedupe by
// origin) and answered; once a signed checkpoint covers the entry recording
// its collection, a receipt follows on the same stream.
//
// Who may call: only a broker certificate of a listed peer domain
// (IdentityFromUris); a certificate of this exchange, an agency or any other
// role of a peer domain is refused and audited.
//
// Threading: gRPC callback reactors; the core answers on its threads. One
// receipt thread per service polls the latest checkpoint (every 100 ms) and
// hands each link the receipts it covers. Lifetime: borrows the core and the
// stream registry, which must outlive the gRPC server; Stop() before the
// core shuts down.
#pragma once

#include <set>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "broker/exchange_core.h"
#include "broker/grpc/stream_registry.h"
#include "corridor/v1/federation.grpc.pb.h"

namespace corridor::broker::grpc_transport {

class FederationService final : public v1::Federation::CallbackService {
 public:
  FederationService(ExchangeCore* core, StreamRegistry* streams);
  ~FederationService() override;  // Stop()s

  grpc::ServerBidiReactor<v1::LinkRequest, v1::LinkResponse>* Link(
      grpc::CallbackServerContext* ctx) override;

  // Ends the receipt thread (links still open get no further receipts). Idempotent.
  void Stop();

  class LinkReactor;

 private:
  friend class LinkReactor;
  void ReceiptLoop();
  void Add(LinkReactor* link);
  void Remove(LinkReactor* link);

  ExchangeCore* const core_;
  StreamRegistry* const streams_;
  absl::Mutex mu_;
  std::set<LinkReactor*> links_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread receipts_;
};

}  // namespace corridor::broker::grpc_transport
