// ExchangeCore: the broker without its transport. Submissions are validated,
// routed, decided, committed in group-committed synced batches and only then
// acknowledged; deliveries flow from per-agency durable queues to attached
// subscription sinks until acked.
//
//   auto core = ExchangeCore::Open(config, MakePermitAllDecisionPoint()).value();
//   core->Submit(peer, envelope, [](absl::StatusOr<v1::SubmitResponse> r) { ... });
//   core->Attach(peer, params, sink, [](absl::StatusOr<v1::SubscriptionOpened> r) { ... });
//
// No gRPC types here: the gRPC layer (broker/grpc/) turns calls into these.
//
// Threading: every public method is thread-safe and never blocks on I/O;
// results arrive through callbacks that run on broker threads (the committer or
// the delivery thread) and must not block either. Sinks are called on the
// delivery thread. Lifetime: callers keep the core alive until Shutdown()
// returns; after Shutdown no callback runs.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "broker/config.h"
#include "broker/decision_point.h"
#include "broker/identity.h"
#include "broker/wire.h"
#include "corridor/v1/exchange.pb.h"
#include "corridor/v1/federation.pb.h"

namespace corridor::broker {

class AuditLog;

// Where deliveries go: implemented by the transport. Methods are called on the
// delivery thread and must not block.
class DeliverySink {
 public:
  virtual ~DeliverySink() = default;
  // One delivery (or a redelivery, attempt > 1). At most max_in_flight unacked
  // deliveries are outstanding per sink, plus redeliveries of those.
  // `delivery` is shared and immutable: the same object goes to every
  // subscription and every attempt. What the client sees is the v1::Delivery
  // WriteDelivery(*delivery, attempt, subscription) makes (wire.h).
  virtual void Send(std::shared_ptr<const QueuedDelivery> delivery, uint32_t attempt,
                    const std::string& subscription) = 0;
  // The core is done with this sink: taken over by a newer stream of the same
  // subscription, or the broker is stopping. No Send follows.
  virtual void Close(const absl::Status& why) = 0;
};

struct SubscribeParams {
  std::string name;
  std::vector<std::string> topic_filters;
  v1::StartPosition start = v1::START_POSITION_DEFAULT;
  uint64_t start_seq = 0;
  uint32_t max_in_flight = 256;
  absl::Duration ack_deadline = absl::Seconds(30);
  uint32_t max_batch = 1;  // deliveries per message on the wire (the transport's business)
};

// Checks and defaults SubscribeParams from the wire form (names the field on error).
absl::StatusOr<SubscribeParams> ParamsFromOpen(const v1::SubscriptionOpen& open);

class ExchangeCore {
 public:
  using SubmitCallback = std::function<void(absl::StatusOr<v1::SubmitResponse>)>;
  using OpenCallback = std::function<void(absl::StatusOr<v1::SubscriptionOpened>)>;
  using StatusCallback = std::function<void(v1::StatusResponse)>;

  // Opens the store in config.data_dir, recovers counters and subscriptions and
  // starts the committer and delivery threads.
  static absl::StatusOr<std::unique_ptr<ExchangeCore>> Open(
      const BrokerConfig& config, std::shared_ptr<const DecisionPoint> decision_point);
  ~ExchangeCore();  // Shutdown()s

  // Validates `envelope` from `peer` (an agency node) and commits it. `done` runs
  // exactly once: inline for invalid input, else after the synced write. A known
  // client_message_id answers with the first submission's outcome, duplicate = true.
  void Submit(const PeerIdentity& peer, v1::Envelope envelope, SubmitCallback done);

  // Opens or creates the durable subscription `params.name` of peer's agency and
  // attaches `sink`; a stream already attached to it is closed (taken over).
  // `opened` runs once; when OK, deliveries flow until Detach(session).
  // Returns the session id for Ack/Detach.
  uint64_t Attach(const PeerIdentity& peer, SubscribeParams params,
                  std::shared_ptr<DeliverySink> sink, OpenCallback opened);

  // Federation (docs/federation.md). An exchange addressed to an agency of a
  // peer exchange is decided like any other; when permitted, its delivery is
  // queued in that agency's queue, the outbox, which the link to the peer
  // drains through AttachOutbox.

  // What a transfer from a peer came to: `result` for the peer; when stored,
  // the index of the collection entry its receipt proves.
  struct TransferOutcome {
    v1::TransferResult result;
    bool stored = false;
    uint64_t collection_index = 0;
  };
  using TransferCallback = std::function<void(TransferOutcome)>;
  // Stores a transfer from `peer` (a listed peer exchange's broker): checks the
  // hop path (a loop, too many hops, or a path through a third domain is
  // refused), that the recipient is an agency of this exchange and that the
  // sender is one of the peer's, then decides it with this exchange's policy
  // (its redactions add to the sending side's) and commits it, deduped by
  // (origin domain, origin exchange id, recipient). `done` runs once: inline
  // for a refusal (result.code != 0, a security entry for PERMISSION_DENIED),
  // else after the synced write.
  void SubmitTransfer(const PeerIdentity& peer, v1::Transfer transfer, TransferCallback done);
  // Attaches `sink` to the outbox of `agency_id`, an agency of `peer`: its
  // queued transfers flow to the sink until Detach; Ack(session, seqs) once
  // the peer answered them. Otherwise as Attach.
  uint64_t AttachOutbox(const PeerConfig& peer, const std::string& agency_id,
                        std::shared_ptr<DeliverySink> sink, OpenCallback opened);
  // The peer answered (stored or refused) the outbox entry `seq` of `agency_id`:
  // for the backlog figures and the outbox bound (federation.outbox_max).
  void OutboxAnswered(const std::string& agency_id, uint64_t seq);
  struct OutboxState {
    uint64_t backlog = 0;                      // queued and not yet answered
    absl::Time oldest = absl::InfinitePast();  // when the oldest was stored; none: InfinitePast
  };
  OutboxState Outbox(const std::string& peer_domain) const;
  // Records a verified receipt of `peer` for the transfer of `exchange_id` to
  // `recipient_agency_id` (AUDIT_EVENT_RECEIPT); `done` once durable.
  void RecordReceipt(const PeerConfig& peer, const std::string& exchange_id,
                     const std::string& recipient_agency_id, v1::TransferReceipt receipt,
                     std::function<void(absl::Status)> done);

  // Acknowledges deliveries of a session. Unknown or repeated seqs are ignored.
  void Ack(uint64_t session, std::vector<uint64_t> seqs);
  // Detaches a session; its unacked deliveries stay queued for the next attach.
  void Detach(uint64_t session);

  // A snapshot for the Admin service: agencies see their own subscriptions,
  // admins see all.
  void Status(const PeerIdentity& caller, StatusCallback done);

  // Swaps the decision point; later submissions use the new one. Recorded in the
  // audit log as a policy change by `who` (a SPIFFE id or "SIGHUP").
  void SetDecisionPoint(std::shared_ptr<const DecisionPoint> decision_point,
                        const std::string& who);

  // Audit: a refused peer or spoof attempt (`detail` never holds payload).
  void RecordSecurityEvent(const PeerIdentity& peer, const std::string& detail);
  // Audit: an auditor's query and how many entries it returned; `done` runs
  // once the entry is durable.
  void RecordConsultation(const PeerIdentity& auditor, const std::string& query,
                          uint64_t result_count, std::function<void(absl::Status)> done);
  // The exchange log, for readers (queries, proofs, checkpoints). Thread-safe.
  const AuditLog& audit() const;
  std::shared_ptr<const DecisionPoint> decision_point() const;

  const BrokerConfig& config() const { return config_; }
  uint64_t synced_writes() const;

  // Ends every attached subscription stream (UNAVAILABLE); the core keeps
  // serving. The first step of a graceful stop.
  void CloseStreams();

  // Completes queued work, closes every sink, stops the threads. Idempotent.
  void Shutdown();

  class Impl;

 private:
  ExchangeCore(BrokerConfig config, std::unique_ptr<Impl> impl);
  BrokerConfig config_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace corridor::broker
