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
// The tail: the hub keeps the latest fresh deliveries of every agency in memory
// (those HeadsAdvanced hands over), bounded by Options (oldest dropped first), and
// serves a subscription from it while the run it needs is there; anything older
// or missing is read from the deliveries CF. Both give the same deliveries in the
// same order: the tail only saves the read. One immutable QueuedDelivery (the
// stored bytes, never parsed: wire.h) is shared by the tail, every
// subscription's in-flight entry and every attempt; sinks get attempt and
// subscription beside it.
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
#include "rocksdb/iterator.h"

namespace corridor::broker {

class Committer;
class Store;

// How much the hub keeps in memory (see "The tail" above).
struct DeliveryHubOptions {
  // Bound on the in-memory tail, over all agencies together: the stored size
  // of the deliveries held, and their number. Past either, the oldest (by
  // arrival, whatever the agency) are dropped; they are then read from the
  // store when a subscription needs them. The heap held is a little more (each
  // delivery's few facts and its shared_ptr control block, ~250 bytes).
  // 16 MiB: at 1 KiB a delivery, 16k of them, four times the largest window
  // (4096 in flight), so a subscription that keeps up is served from memory.
  // A backlog older than that drains from the store.
  size_t tail_max_bytes = size_t{16} << 20;
  size_t tail_max_entries = 65536;
  // Bound on audit entries (acks, redeliveries) recorded but not yet durable.
  // Past it no new delivery is sent until the committer catches up, so a
  // subscriber draining a backlog faster than the log can record its acks
  // waits instead of growing the broker (~1 KiB of heap an entry).
  size_t max_unpersisted_audit = 32768;
  // Redelivery backoff: an unacked delivery is sent again after the ack
  // deadline, then after twice the deadline, four times, ... never waiting
  // longer than this (nor less than the ack deadline).
  absl::Duration redelivery_backoff_max = absl::Minutes(5);
  // Redeliveries are audited as one summary entry (AUDIT_EVENT_REDELIVERY with
  // RedeliverySummary) per subscription per window, opened by the first
  // redelivery; a window that has listed kMaxRedeliveriesPerSummary deliveries
  // is recorded and a new one opened. Also recorded when the node attached to
  // the subscription changes, and at Stop.
  absl::Duration redelivery_audit_window = absl::Minutes(1);
};

// Deliveries listed in one redelivery summary entry, at most: the entry stays
// ~20 KiB however many deliveries a subscriber leaves unacked.
inline constexpr size_t kMaxRedeliveriesPerSummary = 256;

class DeliveryHub {
 public:
  // Called on the committer thread, inside the batch that stores a subscription,
  // so routing sees new filters in the same order as the data.
  using FiltersChanged = std::function<void(const std::string& agency, const std::string& name,
                                            const std::vector<std::string>& filters)>;

  // Called on the committer thread to stage audit entries (acks, redeliveries).
  using AuditAppender =
      std::function<void(std::vector<PreparedEntry>& entries, rocksdb::WriteBatch& batch)>;

  using Options = DeliveryHubOptions;

  DeliveryHub(Store* store, Committer* committer, FiltersChanged on_filters_changed,
              AuditAppender audit_append, Options options = {});
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
  // send it without reading it back (delivery->seq is set).
  struct FreshDelivery {
    std::string agency_id;
    std::shared_ptr<const QueuedDelivery> delivery;
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
    absl::Time expires = absl::InfiniteFuture();  // the envelope's expires_at
    uint32_t attempt = 1;
    std::shared_ptr<const QueuedDelivery> delivery;  // shared, immutable, seq set
  };
  // A first send waiting for its ack deadline. A session's ack deadline is
  // fixed, so these are queued in deadline order; entries whose delivery was
  // acked (or sent again since) are dropped when they reach the front, or
  // compacted away. Redeliveries wait in Session::retry instead (backoff makes
  // their deadlines vary).
  struct Due {
    absl::Time deadline;
    uint64_t seq;
    uint32_t attempt;
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
    std::deque<Due> due;                                 // deadline order, attempt 1
    std::set<std::pair<absl::Time, uint64_t>> retry;     // (deadline, seq), attempt > 1
    std::set<std::pair<absl::Time, uint64_t>> expiring;  // in flight with expires_at
    // The deliveries CF iterator of a session draining from the store, kept
    // across Pumps (a new one per Pump cost a NewIterator and a Seek each time).
    // It sees the store as of store_it_made; made again when it must see
    // further, and when older than kStoreIteratorMaxAge (it pins memtables).
    std::unique_ptr<rocksdb::Iterator> store_it;
    bool store_it_positioned = false;  // on the first stored entry >= scan_pos
    uint64_t store_it_head = 0;        // the head when it was made
    absl::Time store_it_made;
  };
  // One redelivered delivery in the open summary window of a subscription.
  struct Redelivered {
    std::string exchange_id;
    std::string client_message_id;
    std::string sender_agency_id;
    uint32_t count = 0;
    uint32_t first_attempt = 0;
    uint32_t last_attempt = 0;
    absl::Time last_sent;
  };
  // The redeliveries of a subscription not yet recorded (see
  // DeliveryHubOptions::redelivery_audit_window). Open while `by_seq` is not empty.
  struct RedeliveryWindow {
    PeerIdentity peer;  // the node they were sent to
    absl::Time ends;
    absl::Time first;
    absl::Time last;
    uint64_t count = 0;
    std::map<uint64_t, Redelivered> by_seq;
  };
  struct Sub {
    store::v1::SubscriptionRecord record;
    RedeliveryWindow redeliveries;
    std::set<uint64_t> acked;           // acked seqs >= record.ack_floor
    std::vector<uint64_t> new_acks;     // acked since the last persist
    std::vector<PreparedEntry> audit;   // to record with them
    bool dirty = false;                 // floor, acks or audit entries to persist (then in dirty_)
    std::set<uint64_t> persisted_acks;  // ack keys on disk
    uint64_t persisted_floor = 0;       // the floor in the stored record
    Session* session = nullptr;
  };

  // Runs fn on the hub thread; false (fn dropped) once stopping.
  bool Post(std::function<void()> fn);
  void Run();
  void DoAttach(uint64_t id, PeerIdentity peer, SubscribeParams params,
                std::shared_ptr<DeliverySink> sink, ExchangeCore::OpenCallback opened);
  void Activate(Session* s, ExchangeCore::OpenCallback opened, bool created);
  void Pump(Session* s);
  // Sends `d` (seq `seq`) to s as attempt 1 and tracks it in flight.
  void SendFirst(Session* s, uint64_t seq, std::shared_ptr<const QueuedDelivery> d, absl::Time now);
  void EraseInflight(Session* s, std::map<uint64_t, Inflight>::iterator it);
  void Redeliver(absl::Time now);
  // Sends the in-flight delivery `seq` again, with the next backoff deadline.
  void Resend(Session* s, uint64_t seq, Inflight& inf, absl::Time now);
  // Adds a redelivery to its subscription's summary window.
  void NoteRedelivery(Session* s, uint64_t seq, const Inflight& inf, absl::Time now);
  // Records a subscription's open summary window as an audit entry, and closes it.
  void RecordRedeliveries(Sub* sub);
  // Records the windows that ended by `now` (all of them when `now` is InfiniteFuture).
  void RecordEndedWindows(absl::Time now);
  void UpdateFloor(Sub* sub);
  void MarkDirty(Sub* sub);
  void Audit(Session* s, const QueuedDelivery& d, uint32_t attempt, v1::AuditEvent event);
  // Adds fresh deliveries of one agency to its tail, then enforces the bound.
  void AddToTail(const std::string& agency, std::shared_ptr<const QueuedDelivery> d);
  void PersistDirty();
  Session* FindSession(uint64_t id);
  void DropSession(Session* s, const absl::Status& why, bool close_sink);

  Store* const store_;
  Committer* const committer_;
  const FiltersChanged on_filters_changed_;
  const AuditAppender audit_append_;
  const Options options_;

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
  // An agency's tail: deliveries of seqs first_seq, first_seq + 1, ... (no gaps).
  struct TailEntry {
    std::shared_ptr<const QueuedDelivery> delivery;
    size_t bytes = 0;
    uint64_t arrival = 0;  // global arrival order, for dropping the oldest
  };
  struct Tail {
    uint64_t first_seq = 0;
    std::deque<TailEntry> entries;
    bool Covers(uint64_t seq) const {
      return !entries.empty() && seq >= first_seq && seq - first_seq < entries.size();
    }
  };
  absl::flat_hash_map<std::string, Tail> tails_;
  size_t tail_bytes_ = 0;
  size_t tail_entries_ = 0;
  uint64_t tail_arrivals_ = 0;
  std::vector<Sub*> dirty_;    // subs with dirty set, in marking order
  size_t inflight_total_ = 0;  // over all sessions
  // Audit entries recorded (Audit) whose commit has not completed yet.
  size_t unpersisted_audit_ = 0;
  std::vector<Sub*> open_windows_;  // subs whose redelivery window is open (or was)
  uint64_t redeliveries_ = 0;       // all time, for Status
  uint64_t backoff_capped_ = 0;     // redeliveries scheduled at redelivery_backoff_max
  absl::Time next_deadline_check_ = absl::InfinitePast();
  absl::Time next_persist_ = absl::InfinitePast();
};

}  // namespace corridor::broker
