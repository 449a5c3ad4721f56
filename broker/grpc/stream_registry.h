// StreamRegistry: every long-lived stream the broker serves (Subscribe,
// SubmitStream) is registered here while it is open, with who opened it (the
// PeerIdentity, the certificate's PEM) and over which connection. It enforces
// the stream limits of `broker.limits`, closes a stream that sends nothing in
// its first seconds, and cuts the open streams that match a predicate (say,
// those of a certificate that was just revoked).
//
//   // In a service method, after authenticating the call:
//   auto* reactor = new MyReactor(...);             // implements CancellableStream
//   auto reg = registry->Register(StreamInfoFor(*ctx, "Subscribe", peer), reactor);
//   if (!reg.ok()) { delete reactor; return Reject(reg.status()); }
//   reactor->Start(*std::move(reg));                // keeps the Registration
//   // reactor: reg.FirstMessage() on its first message; reg.Reset() first thing in OnDone.
//
//   // Anywhere: end the streams of one certificate.
//   registry->CancelWhere([&](const StreamInfo& s) { return s.cert_pem == revoked_pem; },
//                         absl::UnauthenticatedError("certificate revoked"));
//
// Every limit that is hit is counted (FillStatus: Admin.Status `limits_hit`)
// and recorded through the SecurityRecorder (the core's security entries):
// the first hit of a limit by a certificate at once, the further hits of that
// window as one summary when the window (limits.audit_window) ends, so a flood
// of refused streams adds at most two entries per certificate and limit per
// window.
//
// Threading: thread-safe. One internal thread closes streams that stay silent
// and records the summaries; the recorder is never called with the lock held.
// Lifetime: must outlive every registered stream (the gRPC server); Stop() (or
// the destructor) ends the thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "broker/config.h"
#include "broker/identity.h"
#include "corridor/v1/exchange.pb.h"
#include "grpcpp/server_context.h"
#include "grpcpp/support/status.h"

namespace corridor::broker::grpc_transport {

// What the registry knows of an open stream.
struct StreamInfo {
  uint64_t id = 0;         // set by Register
  std::string method;      // "Subscribe", "SubmitStream"
  PeerIdentity peer;       // who opened it
  std::string cert_pem;    // the client certificate it presented, PEM
  std::string connection;  // the connection: gRPC's peer string, e.g. "ipv4:127.0.0.1:50412"
  absl::Time opened;       // set by Register
};

// The StreamInfo of a call, from its authenticated TLS context: the PEM from
// the AuthContext property GRPC_X509_PEM_CERT_PROPERTY_NAME, the connection
// from ctx.peer().
StreamInfo StreamInfoFor(const grpc::CallbackServerContext& ctx, std::string method,
                         PeerIdentity peer);

// Implemented by a registered stream's reactor.
class CancellableStream {
 public:
  // Ends the stream with `why`: at once, or as soon as its write and
  // callbacks in progress complete. Called from any thread with the
  // registry's lock held: must not block and must not call the registry.
  // Never called once the stream's Registration was reset.
  virtual void CancelStream(const grpc::Status& why) = 0;
  // The stream was cancelled (CancelStream) StreamRegistry::kAbortGrace ago
  // and is still open (say, a write the client never takes): cancel the call
  // outright (ServerContext::TryCancel). Called like CancelStream.
  virtual void AbortStream() = 0;

 protected:
  ~CancellableStream() = default;
};

class StreamRegistry {
 public:
  // Records a security entry for `peer` (never blocks).
  using SecurityRecorder = std::function<void(const PeerIdentity& peer, const std::string& detail)>;

  // The names of the limits, as counted (and as their `broker.limits` keys).
  static constexpr char kStreamsPerConnection[] = "streams_per_connection";
  static constexpr char kStreamsPerCertificate[] = "streams_per_certificate";
  static constexpr char kFirstMessageTimeout[] = "stream_first_message_timeout";
  // How long a cancelled stream may take to finish before it is aborted.
  static constexpr absl::Duration kAbortGrace = absl::Seconds(2);

  // A stream's place in the registry; move-only. Resetting it (or destroying
  // it) deregisters the stream: do that first in OnDone, before the reactor
  // goes away, so no cancellation can reach a deleted reactor.
  class Registration {
   public:
    Registration() = default;
    Registration(Registration&& other) noexcept
        : registry_(std::exchange(other.registry_, nullptr)), id_(other.id_) {}
    Registration& operator=(Registration&& other) noexcept {
      if (this != &other) {
        Reset();
        registry_ = std::exchange(other.registry_, nullptr);
        id_ = other.id_;
      }
      return *this;
    }
    ~Registration() { Reset(); }

    // The stream sent its first message: it is no longer closed for silence.
    void FirstMessage();
    // Deregisters (idempotent). When it returns, no CancelStream runs or will.
    void Reset();
    uint64_t id() const { return id_; }

   private:
    friend class StreamRegistry;
    Registration(StreamRegistry* registry, uint64_t id) : registry_(registry), id_(id) {}
    StreamRegistry* registry_ = nullptr;
    uint64_t id_ = 0;
  };

  StreamRegistry(const LimitSettings& limits, SecurityRecorder record);
  ~StreamRegistry();  // Stop()s
  StreamRegistry(const StreamRegistry&) = delete;
  StreamRegistry& operator=(const StreamRegistry&) = delete;

  // Registers a stream about to start; `stream` is cancelled through until the
  // Registration is reset. RESOURCE_EXHAUSTED naming the limit when its
  // connection or its certificate already has as many open streams as allowed
  // (counted and audited).
  absl::StatusOr<Registration> Register(StreamInfo info, CancellableStream* stream);

  // Cancels every open stream for which `match` holds (called with the lock
  // held: it must not call the registry), with `reason` as its status, and
  // records one security entry per certificate whose streams were cut.
  // Returns how many streams it cancelled.
  size_t CancelWhere(const std::function<bool(const StreamInfo&)>& match,
                     const absl::Status& reason);

  // Streams open now.
  size_t open_streams() const;
  // How often each limit was hit since start.
  std::map<std::string, uint64_t> hits() const;
  // Adds hits() to `status.limits_hit`.
  void FillStatus(v1::StatusResponse* status) const;

  // Ends the internal thread (pending summaries are recorded). Idempotent.
  void Stop();

 private:
  struct Entry {
    StreamInfo info;
    CancellableStream* stream = nullptr;
    bool spoke = false;  // sent its first message
  };
  // Audit summarization of one limit hit by one certificate (spiffe id).
  struct HitWindow {
    PeerIdentity peer;
    absl::Time ends;
    absl::Time first_more;  // the further hits: when the first and last were
    absl::Time last_more;
    uint64_t more = 0;
  };
  struct Record {
    PeerIdentity peer;
    std::string detail;
  };

  void Deregister(uint64_t id);
  // CancelStream, and the abort after kAbortGrace should it still be open.
  void CancelLocked(uint64_t id, Entry& entry, const grpc::Status& why)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void FirstMessage(uint64_t id);
  // Counts a hit of `limit` and, when it opens a window, returns the entry to
  // record (else folds it into the window's summary).
  void HitLocked(const char* limit, const PeerIdentity& peer, std::string detail, absl::Time now,
                 std::vector<Record>* out) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Summaries of the windows that ended by `now`.
  void EndWindowsLocked(absl::Time now, std::vector<Record>* out)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void RecordAll(std::vector<Record>& records);
  void Run();
  // The key a certificate's streams are counted under.
  static const std::string& CertKey(const StreamInfo& info);

  const LimitSettings limits_;
  const SecurityRecorder record_;

  mutable absl::Mutex mu_;
  absl::CondVar cv_;
  uint64_t next_id_ ABSL_GUARDED_BY(mu_) = 1;
  absl::flat_hash_map<uint64_t, Entry> streams_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, size_t> per_connection_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, size_t> per_certificate_ ABSL_GUARDED_BY(mu_);
  // Streams that have not spoken yet, by when they must have.
  std::set<std::pair<absl::Time, uint64_t>> silent_ ABSL_GUARDED_BY(mu_);
  // Cancelled streams, by when they are aborted if still open.
  std::set<std::pair<absl::Time, uint64_t>> cancelled_ ABSL_GUARDED_BY(mu_);
  // (limit, spiffe id) -> its open audit window.
  std::map<std::pair<std::string, std::string>, HitWindow> windows_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, uint64_t> hits_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace corridor::broker::grpc_transport
