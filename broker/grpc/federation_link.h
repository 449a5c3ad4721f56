// PeerLink: the sending side of a link to one peer exchange. It drains the
// outboxes of the peer's agencies (their durable queues in this broker, fed
// by ExchangeCore when policy permits an exchange to them) into one
// Federation.Link stream, over mTLS with this broker's own certificate.
//
//   PeerLink link(core, peer_config, config.tls, log);
//   link.Start();                 // connects, and reconnects after a cut
//   v1::PeerLinkStatus s = link.Status();
//   link.Stop();
//
// The peer's certificate must chain to its own CA bundle (peer.ca) and name
// spiffe://<peer.domain>/broker/<peer.broker>; nothing else is accepted as
// that peer. A transfer leaves the outbox only when the peer answered it:
// refused for good, or stored and (when peer.audit_key is set) its receipt
// verified and recorded in this broker's audit log. Whatever is unanswered
// when the link breaks stays queued and is sent again (the peer dedupes).
//
// Threading: a connect/write thread and, while connected, a read thread; the
// core calls the outbox sinks on its delivery thread (they only queue).
// Status() is thread-safe. Lifetime: borrows the core; Stop() before the core
// shuts down.
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "broker/config.h"
#include "broker/exchange_core.h"
#include "corridor/v1/exchange.pb.h"
#include "corridor/v1/federation.grpc.pb.h"

namespace corridor::broker::grpc_transport {

class PeerLink {
 public:
  PeerLink(ExchangeCore* core, PeerConfig peer, TlsFiles own_tls,
           std::function<void(std::string_view)> log);
  ~PeerLink();  // Stop()s

  void Start();
  // Closes the stream; what is unanswered stays queued. Idempotent.
  void Stop();

  v1::PeerLinkStatus Status() const;

  class OutboxSink;

 private:
  struct Queued {
    std::string agency;
    std::shared_ptr<const QueuedDelivery> delivery;
  };
  // A transfer sent and not yet done with: awaiting its result, then its receipt.
  struct InFlight {
    std::string exchange_id;
    bool stored = false;
  };
  using Key = std::pair<std::string, uint64_t>;  // agency, seq

  void Run();
  // One connection's life: returns when the stream ended (why, for status).
  std::string RunConnected();
  void ReadLoop(grpc::ClientReaderWriter<v1::LinkRequest, v1::LinkResponse>* stream);
  void OnResult(const v1::TransferResult& r);
  void OnReceipt(const v1::ReceiptForTransfer& r);
  // Acks the outbox entry (agency, seq) to the core (its session may be gone).
  void Done(const std::string& agency, uint64_t seq);
  void Enqueue(Queued q);
  void Broken(std::string why);
  void Log(std::string_view line) const;

  ExchangeCore* const core_;
  const PeerConfig peer_;
  const TlsFiles own_tls_;
  const std::function<void(std::string_view)> log_;
  const std::string expected_id_;  // spiffe://<domain>/broker/<name>

  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;                              // guarded by mu_
  bool broken_ = false;                                // guarded by mu_: the current stream ended
  std::deque<Queued> queue_;                           // guarded by mu_: to send
  std::map<Key, InFlight> in_flight_;                  // guarded by mu_
  std::map<std::string, uint64_t> sessions_;           // guarded by mu_: agency -> outbox session
  std::vector<std::shared_ptr<OutboxSink>> sinks_;     // guarded by mu_: this connection's
  grpc::ClientContext* context_ = nullptr;             // guarded by mu_: the open stream's
  std::string state_ = "connecting";                   // guarded by mu_
  std::string last_error_;                             // guarded by mu_
  absl::Time connected_since_ = absl::InfinitePast();  // guarded by mu_
  absl::Time last_receipt_ = absl::InfinitePast();     // guarded by mu_
  uint64_t transferred_ = 0, refused_ = 0, receipts_ = 0, receipts_invalid_ = 0;  // guarded by mu_
  std::thread thread_;
};

}  // namespace corridor::broker::grpc_transport
