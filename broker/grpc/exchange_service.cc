#include "broker/grpc/exchange_service.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <utility>
#include <vector>

#include "broker/grpc/auth.h"
#include "broker/grpc/reactor_util.h"
#include "broker/grpc/request_parsing.h"
#include "broker/grpc/status_conversion.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/wire_format_lite.h"
#include "grpc/slice.h"
#include "grpcpp/support/byte_buffer.h"
#include "grpcpp/support/proto_buffer_reader.h"
#include "grpcpp/support/proto_buffer_writer.h"

namespace corridor::broker::grpc_transport {
namespace {

// Requests of one SubmitStream being committed at once; further reads wait.
constexpr size_t kMaxStreamInFlight = 1024;
// Replies in one SubmitStreamResponse, at most (with batch_replies).
constexpr size_t kMaxRepliesPerMessage = 512;
// Deliveries queued for one Subscribe stream, at most (2 x the largest window).
constexpr size_t kMaxOutbox = 8192;

class SubmitStreamReactor final
    : public grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer>,
      public CancellableStream {
 public:
  SubmitStreamReactor(ExchangeCore* core, grpc::CallbackServerContext* ctx, PeerIdentity peer)
      : core_(core), ctx_(ctx), peer_(std::move(peer)) {}

  // Starts reading, registered as `registration` (reset in OnDone).
  void Start(StreamRegistry::Registration registration) {
    registration_ = std::move(registration);
    std::lock_guard<std::mutex> lock(mu_);
    if (!finished_ && !cut_) StartRead(&read_buf_);  // unless cut already
  }

  void CancelStream(const grpc::Status& why) override {
    std::unique_lock<std::mutex> lock(mu_);
    if (finished_ || cut_) return;
    // No more reads or replies; it finishes once the write and the
    // submissions in progress are done.
    cut_ = why;
    MaybeFinishLocked(lock);
  }
  void AbortStream() override { ctx_->TryCancel(); }  // a reply the client never takes

  void OnReadDone(bool ok) override {
    if (ok && first_message_) {
      first_message_ = false;
      registration_.FirstMessage();
    }
    if (!ok) {
      std::unique_lock<std::mutex> lock(mu_);
      reads_done_ = true;
      MaybeFinishLocked(lock);
      return;
    }
    // Parsed here (a raw method) so that bytes which are not a SubmitRequest
    // end the stream with INVALID_ARGUMENT: gRPC's typed reader reports a
    // failed parse as the end of the stream, and the stream closed OK.
    request_.Clear();
    refused_envelopes_.clear();
    // What SerializationTraits::Deserialize does, less its Clear() of the
    // buffer before the failure path below could read it again.
    bool parsed;
    {
      grpc::ProtoBufferReader reader(&read_buf_);
      parsed = reader.status().ok() && request_.ParseFromZeroCopyStream(&reader);
    }
    std::optional<SalvagedSubmitRequest> salvaged;
    // An envelope with a string that is not UTF-8 is answered on its own
    // (naming the field) and the stream goes on; other bytes end it.
    if (!parsed) salvaged = SalvageSubmitRequest(BufferBytes(read_buf_));
    read_buf_.Clear();
    if (!parsed) {
      if (!salvaged) {
        std::unique_lock<std::mutex> lock(mu_);
        reads_done_ = true;
        refused_ = grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                                "request: not a corridor.v1.SubmitRequest");
        MaybeFinishLocked(lock);
        return;
      }
      request_ = std::move(salvaged->request);
      refused_envelopes_ = std::move(salvaged->refused);
    }
    // Each envelope of the request is a submission of its own, in order.
    const size_t count = 1 + static_cast<size_t>(request_.more_size());
    uint64_t first_index;
    {
      std::lock_guard<std::mutex> lock(mu_);
      // The stream may have finished meanwhile (the client's side broke while
      // this read completed): nothing more is submitted for it, or the
      // callbacks would outlive the reactor. Once counted in
      // pending_callbacks_, they hold the finish back.
      if (finished_ || broken_ || cut_) return;
      if (first_read_) {
        first_read_ = false;
        batch_replies_ = request_.batch_replies();
      }
      first_index = base_ + slots_.size();
      slots_.resize(slots_.size() + count);
      pending_callbacks_ += count;
    }
    for (size_t i = 0; i < count; ++i) {
      const uint64_t index = first_index + i;
      const bool present = i == 0 ? request_.has_envelope() : true;
      v1::Envelope* env =
          i == 0 ? request_.mutable_envelope() : request_.mutable_more(static_cast<int>(i - 1));
      std::string client_id = env->client_message_id();
      if (!present) {
        Complete(index, client_id, absl::InvalidArgumentError("envelope: required"));
        continue;
      }
      if (!refused_envelopes_.empty() && refused_envelopes_.front().position == i) {
        RefusedEnvelope& r = refused_envelopes_.front();
        Complete(index, r.client_message_id, std::move(r.status));
        refused_envelopes_.erase(refused_envelopes_.begin());
        continue;
      }
      core_->Submit(peer_, std::move(*env),
                    [this, index, client_id](absl::StatusOr<v1::SubmitResponse> r) {
                      Complete(index, client_id, std::move(r));
                    });
    }
    std::lock_guard<std::mutex> lock(mu_);
    if (cut_) return;
    if (slots_.size() < kMaxStreamInFlight) {
      StartRead(&read_buf_);
    } else {
      read_paused_ = true;
    }
  }

  void OnWriteDone(bool ok) override {
    std::unique_lock<std::mutex> lock(mu_);
    writing_ = false;
    if (!ok) {
      broken_ = true;  // the client is gone; drop what remains
    } else {
      slots_.erase(slots_.begin(), slots_.begin() + static_cast<ptrdiff_t>(out_count_));
      base_ += out_count_;
    }
    out_count_ = 0;
    if (read_paused_ && slots_.size() < kMaxStreamInFlight && !broken_ && !cut_) {
      read_paused_ = false;
      StartRead(&read_buf_);
    }
    WriteNextLocked(lock);
  }

  void OnDone() override {
    registration_.Reset();  // first: no cancellation reaches a deleted reactor
    delete this;
  }

 private:
  struct Slot {
    bool ready = false;
    v1::SubmitStreamResponse response;
  };

  void Complete(uint64_t index, const std::string& client_id,
                absl::StatusOr<v1::SubmitResponse> result) {
    std::unique_lock<std::mutex> lock(mu_);
    Slot& slot = slots_[index - base_];
    slot.ready = true;
    slot.response.set_client_message_id(client_id);
    if (result.ok()) {
      *slot.response.mutable_result() = std::move(*result);
    } else {
      slot.response.set_code(static_cast<int>(result.status().code()));
      slot.response.set_error_message(std::string(result.status().message()));
    }
    --pending_callbacks_;
    WriteNextLocked(lock);
  }

  // Writes the oldest reply when it is ready (replies go out in request order)
  // — with batch_replies, every ready reply from the oldest on, in one message —
  // or finishes once everything is answered.
  void WriteNextLocked(std::unique_lock<std::mutex>& lock) {
    if (writing_ || finished_) return;
    if (!broken_ && !cut_ && !slots_.empty() && slots_.front().ready) {
      writing_ = true;
      out_ = std::move(slots_.front().response);
      out_count_ = 1;
      while (batch_replies_ && out_count_ < slots_.size() && out_count_ < kMaxRepliesPerMessage &&
             slots_[out_count_].ready) {
        *out_.add_more() = std::move(slots_[out_count_].response);
        ++out_count_;
      }
      bool own = false;
      write_buf_.Clear();
      if (!grpc::SerializationTraits<v1::SubmitStreamResponse>::Serialize(out_, &write_buf_, &own)
               .ok()) {
        broken_ = true;  // cannot happen for a message built here; never hang on it
        writing_ = false;
        MaybeFinishLocked(lock);
        return;
      }
      // No buffer_hint: gRPC 1.51 holds a hinted write (and its OnWriteDone)
      // until a later write, and with one write in flight that later write never
      // comes — a two-line bridge submit stalled 20 s that way.
      lock.unlock();
      StartWrite(&write_buf_);
      return;
    }
    MaybeFinishLocked(lock);
  }

  void MaybeFinishLocked(std::unique_lock<std::mutex>& lock) {
    if (finished_ || writing_ || pending_callbacks_ > 0) return;
    if (!broken_ && !cut_ && !(reads_done_ && slots_.empty())) return;
    finished_ = true;
    lock.unlock();
    Finish(cut_       ? *cut_
           : broken_  ? grpc::Status(grpc::StatusCode::CANCELLED, "stream broken")
           : refused_ ? *refused_
                      : grpc::Status::OK);
  }

  ExchangeCore* const core_;
  grpc::CallbackServerContext* const ctx_;  // valid until OnDone
  const PeerIdentity peer_;
  StreamRegistry::Registration registration_;
  bool first_message_ = true;  // reads are serial, so no lock
  grpc::ByteBuffer read_buf_;  // owned by the read in progress, like the next one
  v1::SubmitRequest request_;
  std::vector<RefusedEnvelope> refused_envelopes_;  // request_'s, when it was salvaged
  std::mutex mu_;
  std::optional<grpc::Status> refused_;  // a request that was not a SubmitRequest
  grpc::ByteBuffer write_buf_;           // out_, serialized for the write in progress
  bool first_read_ = true;               // guarded by mu_, like what follows
  bool batch_replies_ = false;
  v1::SubmitStreamResponse out_;  // owned by the write in progress
  size_t out_count_ = 0;          // slots answered by out_
  std::deque<Slot> slots_;        // replies, oldest first
  uint64_t base_ = 0;             // request index of slots_.front()
  size_t pending_callbacks_ = 0;
  bool writing_ = false;
  bool reads_done_ = false;
  bool read_paused_ = false;
  bool broken_ = false;
  bool finished_ = false;
  std::optional<grpc::Status> cut_;  // cancelled through the registry, and why
};

class SubscribeReactor;

// The core's handle on a Subscribe stream. Outlives the reactor (the core keeps a
// shared_ptr); once the reactor is done, calls are dropped.
class StreamSink final : public DeliverySink {
 public:
  explicit StreamSink(SubscribeReactor* reactor) : reactor_(reactor) {}
  void Send(std::shared_ptr<const QueuedDelivery> delivery, uint32_t attempt,
            const std::string& subscription) override;
  void Close(const absl::Status& why) override;
  void Opened(absl::StatusOr<v1::SubscriptionOpened> opened);
  void Detach() {
    std::lock_guard<std::mutex> lock(mu_);
    reactor_ = nullptr;
  }

 private:
  std::mutex mu_;
  SubscribeReactor* reactor_;  // guarded by mu_
};

class SubscribeReactor final : public grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer>,
                               public CancellableStream {
 public:
  SubscribeReactor(ExchangeCore* core, grpc::CallbackServerContext* ctx, PeerIdentity peer)
      : core_(core), ctx_(ctx), peer_(std::move(peer)), sink_(std::make_shared<StreamSink>(this)) {}

  // Starts reading, registered as `registration` (reset in OnDone).
  void Start(StreamRegistry::Registration registration) {
    registration_ = std::move(registration);
    if (!Ending()) StartRead(&read_buf_);
  }

  void CancelStream(const grpc::Status& why) override { EndStream(why); }
  void AbortStream() override { ctx_->TryCancel(); }  // a write the client never takes

  void OnReadDone(bool ok) override {
    if (ok && !opened_requested_) registration_.FirstMessage();
    if (!ok) {
      // The client half-closed or went away: its unacked deliveries stay queued.
      EndStream(grpc::Status::OK);
      return;
    }
    request_.Clear();
    if (!grpc::SerializationTraits<v1::SubscribeRequest>::Deserialize(&read_buf_, &request_).ok()) {
      EndStream(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                             "request: not a corridor.v1.SubscribeRequest"));
      return;
    }
    if (!opened_requested_) {
      opened_requested_ = true;
      if (request_.request_case() != v1::SubscribeRequest::kOpen) {
        EndStream(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                               "open: the first message must open a subscription"));
        return;
      }
      auto params = ParamsFromOpen(request_.open());
      if (!params.ok()) {
        EndStream(ToGrpcStatus(params.status()));
        return;
      }
      {
        std::lock_guard<std::mutex> lock(mu_);
        max_batch_ = std::max<uint32_t>(1, params->max_batch);
      }
      std::shared_ptr<StreamSink> sink = sink_;
      uint64_t session = core_->Attach(
          peer_, *std::move(params), sink,
          [sink](absl::StatusOr<v1::SubscriptionOpened> r) { sink->Opened(std::move(r)); });
      std::lock_guard<std::mutex> lock(mu_);
      session_ = session;
      return;  // the next read starts once the subscription is open
    }
    if (request_.request_case() != v1::SubscribeRequest::kAck) {
      EndStream(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                             "request: after open, only acks are accepted"));
      return;
    }
    std::vector<uint64_t> seqs(request_.ack().seqs().begin(), request_.ack().seqs().end());
    uint64_t session;
    {
      std::lock_guard<std::mutex> lock(mu_);
      session = session_;
    }
    if (!seqs.empty()) core_->Ack(session, std::move(seqs));
    if (!Ending()) StartRead(&read_buf_);
  }

  void OnWriteDone(bool ok) override {
    std::unique_lock<std::mutex> lock(mu_);
    writing_ = false;
    outbox_.erase(outbox_.begin(), outbox_.begin() + static_cast<ptrdiff_t>(written_));
    written_ = 0;
    if (!ok) {
      outbox_.clear();
      end_status_ = grpc::Status(grpc::StatusCode::CANCELLED, "stream broken");
    }
    WriteNextLocked(lock);
  }

  void OnDone() override {
    registration_.Reset();  // first: no cancellation reaches a deleted reactor
    sink_->Detach();
    uint64_t session;
    {
      std::lock_guard<std::mutex> lock(mu_);
      session = session_;
    }
    if (session != 0) core_->Detach(session);
    delete this;
  }

  // From the core, via StreamSink (never under mu_ of the sink's caller).
  void OnOpened(absl::StatusOr<v1::SubscriptionOpened> opened) {
    if (!opened.ok()) {
      EndStream(ToGrpcStatus(opened.status()));
      return;
    }
    v1::SubscribeResponse msg;
    *msg.mutable_opened() = std::move(*opened);
    grpc::ByteBuffer bytes;
    bool own = false;
    if (!grpc::SerializationTraits<v1::SubscribeResponse>::Serialize(msg, &bytes, &own).ok()) {
      EndStream(grpc::Status(grpc::StatusCode::INTERNAL, "opened: could not serialize"));
      return;
    }
    {
      std::unique_lock<std::mutex> lock(mu_);
      if (!end_status_ && !finished_) {
        outbox_.push_back(Outgoing{nullptr, 0, std::move(bytes)});
        WriteNextLocked(lock);
      }
    }
    if (!Ending()) StartRead(&read_buf_);
  }

  // `delivery` is shared with the core and other streams: never copied or
  // changed here; its stored bytes go out with this stream's seq framing.
  void Deliver(std::shared_ptr<const QueuedDelivery> delivery, uint32_t attempt,
               const std::string& subscription) {
    std::unique_lock<std::mutex> lock(mu_);
    if (end_status_ || finished_) return;
    // A client that stops reading must not grow the broker: beyond this, a
    // (re)delivery is dropped here; the core still holds it in flight and
    // sends it again after its ack deadline.
    if (outbox_.size() >= kMaxOutbox) return;
    if (subscription_ != subscription) subscription_ = subscription;
    outbox_.push_back(Outgoing{std::move(delivery), attempt, {}});
    WriteNextLocked(lock);
  }

  void EndStream(grpc::Status status) {
    std::unique_lock<std::mutex> lock(mu_);
    if (!end_status_) end_status_ = std::move(status);
    WriteNextLocked(lock);
  }

 private:
  // True once the stream is finishing: no new reads are started then.
  bool Ending() {
    std::lock_guard<std::mutex> lock(mu_);
    return finished_ || end_status_.has_value();
  }

  // One queued response: a delivery (shared, with this stream's attempt) or
  // another message, already serialized (the opened reply).
  struct Outgoing {
    std::shared_ptr<const QueuedDelivery> delivery;
    uint32_t attempt = 0;
    grpc::ByteBuffer message;
  };

  // The SubscribeResponse carrying the first `count` queued deliveries, as one
  // buffer: `delivery` when count is 1, else a DeliveryBatch (max_batch > 1).
  // Each delivery is its stored bytes plus seq, attempt and subscription
  // (WriteDelivery), so nothing is parsed or re-serialized here.
  // Called with mu_ held and no write in flight.
  void PrepareDeliveriesLocked(size_t count) {
    using WFL = google::protobuf::internal::WireFormatLite;
    using google::protobuf::io::CodedOutputStream;
    sizes_.clear();
    size_t inner = 0;  // the batch's contents
    for (size_t i = 0; i < count; ++i) {
      const size_t n = DeliverySize(*outbox_[i].delivery, outbox_[i].attempt, subscription_);
      sizes_.push_back(n);
      inner += 1 + CodedOutputStream::VarintSize64(n) + n;
    }
    const uint32_t outer_tag = WFL::MakeTag(count == 1 ? v1::SubscribeResponse::kDeliveryFieldNumber
                                                       : v1::SubscribeResponse::kBatchFieldNumber,
                                            WFL::WIRETYPE_LENGTH_DELIMITED);
    const size_t outer_len = count == 1 ? sizes_[0] : inner;
    const size_t total = CodedOutputStream::VarintSize32(outer_tag) +
                         CodedOutputStream::VarintSize64(outer_len) + outer_len;
    grpc_slice slice = grpc_slice_malloc(total);
    uint8_t* p = GRPC_SLICE_START_PTR(slice);
    p = CodedOutputStream::WriteTagToArray(outer_tag, p);
    p = CodedOutputStream::WriteVarint64ToArray(outer_len, p);
    for (size_t i = 0; i < count; ++i) {
      if (count > 1) {
        p = CodedOutputStream::WriteTagToArray(
            WFL::MakeTag(v1::DeliveryBatch::kDeliveriesFieldNumber, WFL::WIRETYPE_LENGTH_DELIMITED),
            p);
        p = CodedOutputStream::WriteVarint64ToArray(sizes_[i], p);
      }
      p = WriteDelivery(*outbox_[i].delivery, outbox_[i].attempt, subscription_, p);
    }
    if (p != GRPC_SLICE_END_PTR(slice)) {
      // Sizing and writing disagree: a bug, and the bytes would be garbage.
      std::fprintf(stderr, "subscribe: a delivery message is not the size computed for it\n");
      std::abort();
    }
    grpc::Slice owned(slice, grpc::Slice::STEAL_REF);
    write_buf_ = grpc::ByteBuffer(&owned, 1);
  }

  void WriteNextLocked(std::unique_lock<std::mutex>& lock) {
    if (writing_ || finished_) return;
    if (end_status_) {
      // Ending: what is queued but unwritten stays unacked, so it is redelivered later.
      outbox_.clear();
      finished_ = true;
      grpc::Status status = *end_status_;
      lock.unlock();
      Finish(status);
      return;
    }
    if (outbox_.empty()) return;
    writing_ = true;
    const Outgoing& out = outbox_.front();
    written_ = 1;
    if (out.delivery) {
      while (written_ < outbox_.size() && written_ < max_batch_ && outbox_[written_].delivery) {
        ++written_;
      }
      PrepareDeliveriesLocked(written_);
    } else {
      write_buf_ = out.message;
    }
    lock.unlock();
    StartWrite(&write_buf_);  // no buffer_hint: see SubmitStreamReactor::WriteNextLocked
  }

  ExchangeCore* const core_;
  grpc::CallbackServerContext* const ctx_;  // valid until OnDone
  const PeerIdentity peer_;
  const std::shared_ptr<StreamSink> sink_;
  StreamRegistry::Registration registration_;
  grpc::ByteBuffer read_buf_;  // owned by the read in progress
  v1::SubscribeRequest request_;
  bool opened_requested_ = false;  // reads are serial, so no lock
  std::mutex mu_;
  uint64_t session_ = 0;
  std::deque<Outgoing> outbox_;
  std::string subscription_;    // the name deliveries carry
  grpc::ByteBuffer write_buf_;  // the message being written (one at a time)
  std::vector<size_t> sizes_;   // PrepareDeliveriesLocked's scratch
  size_t written_ = 0;          // outbox entries the write in flight carries
  uint32_t max_batch_ = 1;      // deliveries per message (from the open)
  bool writing_ = false;
  bool finished_ = false;
  std::optional<grpc::Status> end_status_;
};

void StreamSink::Send(std::shared_ptr<const QueuedDelivery> delivery, uint32_t attempt,
                      const std::string& subscription) {
  std::lock_guard<std::mutex> lock(mu_);
  if (reactor_ != nullptr) reactor_->Deliver(std::move(delivery), attempt, subscription);
}

void StreamSink::Close(const absl::Status& why) {
  std::lock_guard<std::mutex> lock(mu_);
  if (reactor_ != nullptr) reactor_->EndStream(ToGrpcStatus(why));
}

void StreamSink::Opened(absl::StatusOr<v1::SubscriptionOpened> opened) {
  std::lock_guard<std::mutex> lock(mu_);
  if (reactor_ != nullptr) reactor_->OnOpened(std::move(opened));
}

}  // namespace

grpc::ServerUnaryReactor* ExchangeService::Submit(grpc::CallbackServerContext* ctx,
                                                  const grpc::ByteBuffer* request_bytes,
                                                  grpc::ByteBuffer* response_bytes) {
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  auto peer = AuthenticateCall(*ctx, core_);
  if (!peer.ok()) {
    reactor->Finish(ToGrpcStatus(peer.status()));
    return reactor;
  }
  // Parsed here: gRPC's typed handler answers bytes it cannot parse with
  // UNIMPLEMENTED and no message.
  grpc::ByteBuffer copy = *request_bytes;  // shares the slices
  v1::SubmitRequest request;
  if (!grpc::SerializationTraits<v1::SubmitRequest>::Deserialize(&copy, &request).ok()) {
    // A string that is not UTF-8 is named; other bytes are not a request.
    std::optional<SalvagedSubmitRequest> salvaged =
        SalvageSubmitRequest(BufferBytes(*request_bytes));
    if (!salvaged) {
      reactor->Finish(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                                   "request: not a corridor.v1.SubmitRequest"));
    } else if (salvaged->request.more_size() > 0 || salvaged->request.batch_replies()) {
      reactor->Finish(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                                   "more, batch_replies: only on SubmitStream"));
    } else {
      reactor->Finish(ToGrpcStatus(salvaged->refused.front().status));
    }
    return reactor;
  }
  if (!request.has_envelope()) {
    reactor->Finish(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "envelope: required"));
    return reactor;
  }
  if (request.more_size() > 0 || request.batch_replies()) {
    reactor->Finish(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                                 "more, batch_replies: only on SubmitStream"));
    return reactor;
  }
  core_->Submit(
      *peer, std::move(*request.mutable_envelope()),
      [reactor, response_bytes](absl::StatusOr<v1::SubmitResponse> result) {
        if (!result.ok()) {
          reactor->Finish(ToGrpcStatus(result.status()));
          return;
        }
        bool own = false;
        if (!grpc::SerializationTraits<v1::SubmitResponse>::Serialize(*result, response_bytes, &own)
                 .ok()) {
          reactor->Finish(
              grpc::Status(grpc::StatusCode::INTERNAL, "response: could not serialize"));
          return;
        }
        reactor->Finish(grpc::Status::OK);
      });
  return reactor;
}

grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer>* ExchangeService::SubmitStream(
    grpc::CallbackServerContext* ctx) {
  auto peer = AuthenticateCall(*ctx, core_);
  if (!peer.ok()) {
    return new RejectingBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer>(
        ToGrpcStatus(peer.status()));
  }
  return RegisterAndStart<grpc::ByteBuffer, grpc::ByteBuffer>(
      streams_, *ctx, "SubmitStream", *peer, new SubmitStreamReactor(core_, ctx, *peer));
}

grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer>* ExchangeService::Subscribe(
    grpc::CallbackServerContext* ctx) {
  auto peer = AuthenticateCall(*ctx, core_);
  if (!peer.ok()) {
    return new RejectingBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer>(
        ToGrpcStatus(peer.status()));
  }
  if (auto s = RequireRole(*peer, {PeerRole::kAgency}, "Exchange.Subscribe",
                           "only agency nodes may subscribe to deliveries", core_);
      !s.ok()) {
    return new RejectingBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer>(ToGrpcStatus(s));
  }
  return RegisterAndStart<grpc::ByteBuffer, grpc::ByteBuffer>(
      streams_, *ctx, "Subscribe", *peer, new SubscribeReactor(core_, ctx, *peer));
}

grpc::ServerUnaryReactor* AdminService::Status(grpc::CallbackServerContext* ctx,
                                               const v1::StatusRequest* request,
                                               v1::StatusResponse* response) {
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  auto peer = AuthenticateCall(*ctx, core_);
  if (!peer.ok()) {
    reactor->Finish(ToGrpcStatus(peer.status()));
    return reactor;
  }
  if (auto s = RequireRole(*peer, {PeerRole::kAgency, PeerRole::kAdmin}, "Admin.Status",
                           "status is for agency nodes and admins", core_);
      !s.ok()) {
    reactor->Finish(ToGrpcStatus(s));
    return reactor;
  }
  const bool admin = peer->role == PeerRole::kAdmin;
  std::vector<std::string> tls_problems;
  if (admin && tls_problems_) tls_problems = tls_problems_();
  std::vector<v1::PeerLinkStatus> peers;
  if (admin && peers_) peers = peers_();
  core_->Status(*peer, [this, admin, reactor, response, tls_problems,
                        peers = std::move(peers)](v1::StatusResponse r) {
    if (admin && streams_ != nullptr) streams_->FillStatus(&r);  // broker-wide: admins only
    *response = std::move(r);
    for (const std::string& p : tls_problems) response->add_tls_warnings(p);
    for (const v1::PeerLinkStatus& p : peers) *response->add_peers() = p;
    reactor->Finish(grpc::Status::OK);
  });
  return reactor;
}

grpc::ServerUnaryReactor* AdminService::ReloadPolicy(grpc::CallbackServerContext* ctx,
                                                     const v1::ReloadPolicyRequest* request,
                                                     v1::ReloadPolicyResponse* response) {
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  auto peer = AuthenticateCall(*ctx, core_);
  if (!peer.ok()) {
    reactor->Finish(ToGrpcStatus(peer.status()));
    return reactor;
  }
  if (auto s = RequireRole(*peer, {PeerRole::kAdmin}, "Admin.ReloadPolicy",
                           "reloading policy needs an admin certificate", core_);
      !s.ok()) {
    reactor->Finish(ToGrpcStatus(s));
    return reactor;
  }
  response->set_old_version(core_->decision_point()->version());
  absl::Status s = reload_(peer->spiffe_id);
  if (s.ok()) response->set_new_version(core_->decision_point()->version());
  reactor->Finish(ToGrpcStatus(s));
  return reactor;
}

}  // namespace corridor::broker::grpc_transport
