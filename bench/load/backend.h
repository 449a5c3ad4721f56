// Backend: one messaging system driven by the load generator — Corridor over its
// gRPC API, or a peer (NATS JetStream, RabbitMQ) through its own client library.
//
// The driver owns the schedule (open loop or a closed-loop window) and calls
// SenderConn::Send for each message; the backend reports every broker answer
// with Tracker::OnAck and every delivery with Tracker::OnDelivery, from
// whatever thread its client library uses.
//
// Lifetime: the driver creates senders and subscribers after Prepare() and
// destroys them before the backend. Threading: Send and Poll are called from one
// sender thread per SenderConn; everything else from the driver's main thread.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "bench/load/tracker.h"

namespace corridor::load {

struct BackendOptions {
  std::string target;     // host:port
  std::string certs_dir;  // ca.crt and <name>.crt/.key (the Corridor dev set layout)
  std::vector<std::string> sender_names;      // per sender: certificate / agency name
  std::vector<std::string> subscriber_names;  // per subscriber: agency that receives
  int fanout = 1;                             // subscribers [0, fanout) receive each message
  std::string payload;  // serialized envelope, the same bytes for every system
  std::string run_tag;
  bool unary = false;          // Corridor: one Submit RPC per message instead of SubmitStream
  uint32_t sub_window = 1024;  // deliveries in flight per subscriber (server side window)
  int connect_timeout_s = 10;
};

class SenderConn {
 public:
  virtual ~SenderConn() = default;
  // Hands message n (its id: tracker.MessageId(index, n)) to the client library.
  virtual void Send(uint64_t n) = 0;
  // Waits up to deadline_ns for answers (libraries that need the caller's thread
  // to read them do so here). Default: the tracker's window wait.
  virtual void Poll(int64_t deadline_ns, uint64_t window);
  // Open loop: waits until t_ns (monotonic). Default: sleeps.
  virtual void IdleUntil(int64_t t_ns);
  // No more sends: flush, and wait (bounded) for the answers still due.
  virtual void Close(int64_t deadline_ns) = 0;

 protected:
  SenderConn(Tracker* tracker, int index) : tracker_(tracker), index_(index) {}
  Tracker* const tracker_;
  const int index_;
};

class SubscriberConn {
 public:
  virtual ~SubscriberConn() = default;
  // Detaches (unacked deliveries stay with the broker).
  virtual void Stop() = 0;
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual std::string name() const = 0;
  // Creates what must exist before sending so that every subscriber's copy is
  // retained even while it is not attached (durable subscriptions, streams and
  // consumers, queues).
  virtual absl::Status Prepare() = 0;
  virtual absl::StatusOr<std::unique_ptr<SenderConn>> ConnectSender(int index) = 0;
  // Attaches subscriber `index`: it receives, reports to the tracker and acks.
  virtual absl::StatusOr<std::unique_ptr<SubscriberConn>> StartSubscriber(int index) = 0;
  // Removes what Prepare made, when the system is shared between runs.
  virtual void Cleanup() {}
  // Free-form facts for the summary (server version, policy, durability mode).
  virtual std::vector<std::pair<std::string, std::string>> Facts() { return {}; }
  // What the broker itself counts (Corridor's Admin.Status, admin certificate):
  // synced writes, the keys they carried, audit entries. Unavailable by default.
  struct Counters {
    uint64_t synced_writes = 0;
    uint64_t keys_written = 0;
    uint64_t bytes_written = 0;
    uint64_t audit_entries = 0;
    uint64_t exchanges_stored = 0;
  };
  virtual absl::StatusOr<Counters> BrokerCounters() {
    return absl::UnimplementedError("the broker reports no counters");
  }
};

std::unique_ptr<Backend> MakeCorridorBackend(const BackendOptions& o, Tracker* tracker);
// Nullptr when the binary was built without the peer's client library.
std::unique_ptr<Backend> MakeNatsBackend(const BackendOptions& o, Tracker* tracker);
std::unique_ptr<Backend> MakeRabbitBackend(const BackendOptions& o, Tracker* tracker);

}  // namespace corridor::load
