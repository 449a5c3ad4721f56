// corridor::AgencyClient — what an agency system links to talk to its Corridor
// exchange: mTLS connect, submit (one, or pipelined many), subscribe with a
// handler that acks, reconnect with backoff and resume where it left off.
//
//   corridor::ClientOptions opts{.target = "localhost:7443", .cert_file = "zs-police.crt",
//                                .key_file = "zs-police.key", .ca_file = "ca.crt"};
//   auto client = corridor::AgencyClient::Connect(opts).value();
//   auto reply = client->Submit(envelope);            // after the broker's synced write
//   auto sub = client->Subscribe({.open = open}, [](const corridor::v1::Delivery& d) {
//     Handle(d);
//     return true;                                    // ack
//   });
//
// Threading: AgencyClient is thread-safe; calls from several threads share one
// HTTP/2 connection. Each Subscription runs its own thread and calls the handler
// there, one delivery at a time. Destroy subscriptions before their client.
#pragma once

#include <atomic>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "corridor/v1/exchange.grpc.pb.h"

namespace corridor {

struct ClientOptions {
  std::string target = "localhost:7443";  // host:port of the broker
  std::string cert_file;                  // this node's certificate (PEM)
  std::string key_file;                   // its private key (PEM)
  std::string ca_file;                    // the exchange CA (PEM)
  // TLS name to expect in the broker's certificate; empty: the target's host.
  std::string server_name;
  absl::Duration connect_timeout = absl::Seconds(10);
  absl::Duration rpc_timeout = absl::Seconds(30);
  // A connection of its own instead of gRPC's shared subchannel (one HTTP/2
  // connection is served serially; load generators want one per stream).
  bool dedicated_connection = false;
};

struct SubscriptionOptions {
  v1::SubscriptionOpen open;  // name, topic filters, start, window, ack deadline
  absl::Duration initial_backoff = absl::Milliseconds(200);
  absl::Duration max_backoff = absl::Seconds(10);
};

// A running durable subscription. Stops (and joins its thread) when destroyed.
class Subscription {
 public:
  ~Subscription();
  // Ends the stream and joins the thread; unacked deliveries stay queued at the broker.
  void Stop();
  // Blocks until the broker confirmed the subscription (or timeout). Returns what it said.
  absl::StatusOr<v1::SubscriptionOpened> WaitOpened(absl::Duration timeout);
  // Status of the last stream that ended (OK while connected or never failed).
  absl::Status last_error() const;
  uint64_t reconnects() const { return reconnects_.load(); }
  uint64_t received() const { return received_.load(); }

 private:
  friend class AgencyClient;
  Subscription() = default;
  void Run();

  v1::Exchange::Stub* stub_ = nullptr;
  SubscriptionOptions options_;
  std::function<bool(const v1::Delivery&)> handler_;
  std::function<void(const absl::Status&)> on_stream_end_;
  std::thread thread_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;                               // guarded by mu_
  grpc::ClientContext* live_ctx_ = nullptr;             // guarded by mu_
  bool opened_ = false;                                 // guarded by mu_
  absl::StatusOr<v1::SubscriptionOpened> opened_info_;  // guarded by mu_
  absl::Status last_error_;                             // guarded by mu_
  std::atomic<uint64_t> reconnects_{0};
  std::atomic<uint64_t> received_{0};
};

class AgencyClient {
 public:
  // Builds the mTLS channel and waits up to connect_timeout for it to be ready.
  // FAILED_PRECONDITION naming the file when a TLS file is unreadable;
  // UNAVAILABLE when the broker cannot be reached or the handshake fails.
  static absl::StatusOr<std::unique_ptr<AgencyClient>> Connect(const ClientOptions& options);

  // Submits one envelope; OK only after the broker stored it durably.
  absl::StatusOr<v1::SubmitResponse> Submit(const v1::Envelope& envelope);

  // Submits many over one SubmitStream with up to `window` in flight (several
  // envelopes per message, replies batched); returns one result per envelope, in
  // order. If the stream breaks, the unanswered ones get
  // the stream's error (resubmitting them is safe: client_message_id dedupes).
  std::vector<absl::StatusOr<v1::SubmitResponse>> SubmitAll(
      const std::vector<v1::Envelope>& envelopes, size_t window = 256);

  // The broker's status as this node may see it.
  absl::StatusOr<v1::StatusResponse> Status();

  // Starts a durable subscription on a thread of its own. `handler` returns true
  // to ack a delivery (false leaves it unacked: it comes back after the ack
  // deadline or a reconnect). Reconnects with exponential backoff and jitter; the
  // broker resumes at the first unacked delivery. Gives up (last_error()) on
  // INVALID_ARGUMENT, PERMISSION_DENIED, UNAUTHENTICATED and ABORTED (another
  // stream took the subscription over). `on_stream_end` (optional) hears
  // each stream's end status.
  std::unique_ptr<Subscription> Subscribe(
      SubscriptionOptions options, std::function<bool(const v1::Delivery&)> handler,
      std::function<void(const absl::Status&)> on_stream_end = {});

  v1::Exchange::Stub* exchange_stub() { return exchange_.get(); }
  v1::Admin::Stub* admin_stub() { return admin_.get(); }
  const ClientOptions& options() const { return options_; }

 private:
  AgencyClient() = default;
  ClientOptions options_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::Exchange::Stub> exchange_;
  std::unique_ptr<v1::Admin::Stub> admin_;
};

// Credentials and channel for any Corridor client (also used by corridorctl's
// audit and admin commands). FAILED_PRECONDITION naming an unreadable file.
absl::StatusOr<std::shared_ptr<grpc::Channel>> MakeChannel(const ClientOptions& options);

// The client side's one grpc::Status -> absl::Status conversion (same codes).
absl::Status FromGrpcStatus(const grpc::Status& status);

// Every reply one SubmitStream message carries, in order: the message itself,
// then its `more` (only with batch_replies).
template <typename F>
void ForEachReply(const v1::SubmitStreamResponse& message, F&& f) {
  f(message);
  for (const v1::SubmitStreamResponse& more : message.more()) f(more);
}

// Every delivery one Subscribe message carries, in order: its `delivery` or
// each of its `batch` (only with max_batch > 1); none for `opened`.
template <typename F>
void ForEachDelivery(const v1::SubscribeResponse& message, F&& f) {
  if (message.has_delivery()) f(message.delivery());
  for (const v1::Delivery& d : message.batch().deliveries()) f(d);
}

}  // namespace corridor
