// DeliveryHub: moves each agency's durable delivery queue to the subscription
// streams attached to it, tracks what is in flight, redelivers what is not acked
// by its deadline, and persists ack floors.
//
// A durable subscription is a cursor over its agency's queue (deliveries CF,
// keyed agency + seq): it receives the entries addressed to the agency and those
// whose topic matches its filters. Its state is an ack floor (every seq below is
// acked or not for it) plus the acked seqs above the floor. At most one stream is
// attached to a subscription; a newer attach takes it over.
//
// Threading: one hub thread owns all subscription and session state. Public
// methods post work to it and return at once; callbacks and sinks run on it.
// Durable changes go through the Committer. Internal to broker/.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "broker/audit_log.h"
#include "broker/exchange_core.h"
#include "corridor/v1/store.pb.h"

namespace corridor::broker {

class Committer;
class Store;

class DeliveryHub {
 public:
  // Called on the committer thread, inside the batch that stores a subscription,
  // so routing sees new filters in the same order as the data.
  using FiltersChanged = std::function<void(const std::string& agency, const std::string& name,
                                            const std::vector<std::string>& filters)>;

  // Called on the committer thread to stage audit entries (acks, redeliveries).
  using AuditAppender =
      std::function<void(std::vector<v1::AuditEntry>& entries, rocksdb::WriteBatch& batch)>;

  DeliveryHub(Store* store, Committer* committer, FiltersChanged on_filters_changed,
              AuditAppender audit_append);
  ~DeliveryHub();

  // Before Start(): loads persisted subscriptions and acks, and the queue heads.
  absl::Status Recover(const std::vector<std::string>& agencies);
  // The filters of every recovered subscription (for the router), before Start().
  std::vector<store::v1::SubscriptionRecord> subscriptions() const;
  uint64_t head(const std::string& agency) const;

  void Start();
  void Stop();  // closes every sink with UNAVAILABLE
  // Closes every attached stream now (UNAVAILABLE, "shutting down") so a server
  // shutdown does not wait out its grace period on them; the hub keeps running.
  void CloseStreams();

  // A delivery the batch just written made durable, handed over so the hub can
  // send it without reading it back (delivery->seq() is set).
  struct FreshDelivery {
    std::string agency_id;
    std::shared_ptr<const v1::Delivery> delivery;
  };
  // New deliveries are durable up to these heads (called after each batch);
  // `fresh` holds some or all of them, in seq order per agency.
  void HeadsAdvanced(std::vector<std::pair<std::string, uint64_t>> heads,
                     std::vector<FreshDelivery> fresh = {});

  uint64_t Attach(const PeerIdentity& peer, SubscribeParams params,
                  std::shared_ptr<DeliverySink> sink, ExchangeCore::OpenCallback opened);
  void Ack(uint64_t session, std::vector<uint64_t> seqs);
  void Detach(uint64_t session);
  void FillStatus(const PeerIdentity& caller, v1::StatusResponse base,
                  ExchangeCore::StatusCallback done);

 private:
  struct Sub;
  struct Inflight {
    absl::Time deadline;
    uint32_t attempt = 1;
    std::shared_ptr<const v1::Delivery> delivery;
  };
  struct Session {
    uint64_t id = 0;
    PeerIdentity peer;
    Sub* sub = nullptr;
    std::shared_ptr<DeliverySink> sink;
    bool ready = false;   // the subscription record is durable
    bool replay = false;  // FROM_SEQ: deliver acked entries too
    uint64_t scan_pos = 1;
    uint32_t max_in_flight = 256;
    absl::Duration ack_deadline = absl::Seconds(30);
    std::map<uint64_t, Inflight> inflight;
  };
  struct Sub {
    store::v1::SubscriptionRecord record;
    std::set<uint64_t> acked;                                      // acked seqs >= record.ack_floor
    std::vector<uint64_t> new_acks;                                // acked since the last persist
    std::vector<v1::AuditEntry> audit;                             // to record with them
    bool dirty = false;                                            // floor or acks to persist
    std::set<uint64_t> persisted_acks;                             // ack keys on disk
    uint64_t persisted_floor = 0;                                  // the floor in the stored record
    Session* session = nullptr;
  };

  // Runs fn on the hub thread; false (fn dropped) once stopping.
  bool Post(std::function<void()> fn);
  void Run();
  void DoAttach(uint64_t id, PeerIdentity peer, SubscribeParams params,
                std::shared_ptr<DeliverySink> sink, ExchangeCore::OpenCallback opened);
  void Activate(Session* s, ExchangeCore::OpenCallback opened, bool created);
  void Pump(Session* s);
  void Redeliver(absl::Time now);
  void UpdateFloor(Sub* sub);
  void Audit(Session* s, const v1::Delivery& d, v1::AuditEvent event);
  void PersistDirty();
  Session* FindSession(uint64_t id);
  void DropSession(Session* s, const absl::Status& why, bool close_sink);

  Store* const store_;
  Committer* const committer_;
  const FiltersChanged on_filters_changed_;
  const AuditAppender audit_append_;

  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::function<void()>> queue_;  // guarded by mu_
  bool stopping_ = false;                     // guarded by mu_
  std::atomic<uint64_t> next_session_{1};
  std::thread thread_;

  // Hub thread only (and Recover before Start).
  std::map<std::pair<std::string, std::string>, std::unique_ptr<Sub>> subs_;
  absl::flat_hash_map<uint64_t, std::unique_ptr<Session>> sessions_;
  absl::flat_hash_map<std::string, uint64_t> heads_;
  absl::Time next_deadline_check_ = absl::InfinitePast();
  absl::Time next_persist_ = absl::InfinitePast();
};

}  // namespace corridor::broker
