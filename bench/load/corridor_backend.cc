// Corridor over its own gRPC API: SubmitStream (pipelined) or Submit (one RPC per
// message) with the callback client API, and Subscribe with batched acks.
#include <time.h>

#include <cerrno>
#include <condition_variable>
#include <deque>
#include <mutex>

#include "absl/strings/str_cat.h"
#include "agency_adapters/client/agency_client.h"
#include "bench/load/backend.h"
#include "grpcpp/grpcpp.h"

namespace corridor::load {
namespace {

absl::StatusOr<std::shared_ptr<grpc::Channel>> Connect(const BackendOptions& o,
                                                       const std::string& name) {
  ClientOptions c;
  c.target = o.target;
  c.cert_file = absl::StrCat(o.certs_dir, "/", name, ".crt");
  c.key_file = absl::StrCat(o.certs_dir, "/", name, ".key");
  c.ca_file = absl::StrCat(o.certs_dir, "/ca.crt");
  c.dedicated_connection = true;  // one HTTP/2 connection per stream (see PERF-NOTES)
  auto channel = MakeChannel(c);
  if (!channel.ok()) return channel.status();
  if (!(*channel)->WaitForConnected(std::chrono::system_clock::now() +
                                    std::chrono::seconds(o.connect_timeout_s))) {
    return absl::UnavailableError(absl::StrCat("cannot connect to ", o.target, " as ", name));
  }
  return *channel;
}

uint32_t MaskOf(const BackendOptions& o, const v1::SubmitResponse& r) {
  uint32_t mask = 0;
  for (const auto& agency : r.recipients()) {
    for (size_t i = 0; i < o.subscriber_names.size(); ++i) {
      if (o.subscriber_names[i] == agency) mask |= 1u << i;
    }
  }
  return mask;
}

// SubmitStream: one outstanding write at a time (gRPC's rule), fed from a queue
// of message numbers; replies come back in request order.
class StreamSender final
    : public SenderConn,
      public grpc::ClientBidiReactor<v1::SubmitRequest, v1::SubmitStreamResponse> {
 public:
  StreamSender(const BackendOptions& o, Tracker* t, int index,
               std::shared_ptr<grpc::Channel> channel)
      : SenderConn(t, index),
        o_(o),
        channel_(std::move(channel)),
        stub_(v1::Exchange::NewStub(channel_)) {
    request_.mutable_envelope()->ParseFromString(o.payload);
    template_ = request_.envelope();
    request_.set_batch_replies(true);
    stub_->async()->SubmitStream(&ctx_, this);
    StartRead(&reply_);
    AddHold();
    StartCall();
  }

  void Send(uint64_t n) override {
    std::unique_lock<std::mutex> lock(mu_);
    order_.push_back(n);
    if (writing_) {
      to_write_.push_back(n);
      return;
    }
    writing_ = true;
    lock.unlock();
    WriteOne(n);
  }

  void Close(int64_t deadline_ns) override {
    tracker_->WaitForSlot(index_, 1, deadline_ns);  // every answer in
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait_until(lock, std::chrono::steady_clock::now() + std::chrono::seconds(5),
                     [&] { return !writing_; });
    }
    StartWritesDone();
    RemoveHold();
    std::unique_lock<std::mutex> lock(mu_);
    if (!cv_.wait_for(lock, std::chrono::seconds(10), [&] { return done_; })) {
      lock.unlock();
      ctx_.TryCancel();
      lock.lock();
      cv_.wait(lock, [&] { return done_; });
    }
  }

  // What queued behind the write in progress goes out in one message.
  void OnWriteDone(bool ok) override {
    std::unique_lock<std::mutex> lock(mu_);
    if (!ok || to_write_.empty()) {
      writing_ = false;
      cv_.notify_all();
      return;
    }
    std::vector<uint64_t> run;
    while (!to_write_.empty() && run.size() < kMaxPerRequest) {
      run.push_back(to_write_.front());
      to_write_.pop_front();
    }
    lock.unlock();
    WriteRun(run);
  }

  void OnReadDone(bool ok) override {
    if (!ok) return;
    const int count = 1 + reply_.more_size();
    std::vector<uint64_t> ns;
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (int i = 0; i < count && !order_.empty(); ++i) {
        ns.push_back(order_.front());
        order_.pop_front();
      }
    }
    const int64_t now = NowNs();
    size_t i = 0;
    ForEachReply(reply_, [&](const v1::SubmitStreamResponse& r) {
      if (i >= ns.size()) return;
      const bool success = r.code() == 0;
      if (!success) {
        tracker_->NoteError(absl::StrCat("SubmitStream reply ", r.code(), ": ", r.error_message()));
      }
      tracker_->OnAck(index_, ns[i++], success, success ? MaskOf(o_, r.result()) : 0, now);
    });
    StartRead(&reply_);
  }

  void OnDone(const grpc::Status& s) override {
    if (!s.ok()) tracker_->NoteError(absl::StrCat("SubmitStream ended: ", s.error_message()));
    std::lock_guard<std::mutex> lock(mu_);
    // Whatever is still unanswered will never be: count it failed.
    for (uint64_t n : order_) tracker_->OnAck(index_, n, false, 0, NowNs());
    order_.clear();
    done_ = true;
    cv_.notify_all();
  }

 private:
  void WriteOne(uint64_t n) { WriteRun({n}); }
  void WriteRun(const std::vector<uint64_t>& run) {
    request_.mutable_envelope()->set_client_message_id(tracker_->MessageId(index_, run[0]));
    while (request_.more_size() > static_cast<int>(run.size()) - 1) {
      request_.mutable_more()->RemoveLast();
    }
    while (request_.more_size() < static_cast<int>(run.size()) - 1) {
      *request_.add_more() = template_;
    }
    for (size_t i = 1; i < run.size(); ++i) {
      request_.mutable_more(static_cast<int>(i - 1))
          ->set_client_message_id(tracker_->MessageId(index_, run[i]));
    }
    StartWrite(&request_);
  }

  const BackendOptions& o_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::Exchange::Stub> stub_;
  grpc::ClientContext ctx_;
  static constexpr size_t kMaxPerRequest = 64;  // envelopes per SubmitStream message
  v1::SubmitRequest request_;                   // owned by the write in progress
  v1::Envelope template_;
  v1::SubmitStreamResponse reply_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<uint64_t> order_;     // sent, not answered, in order
  std::deque<uint64_t> to_write_;  // queued behind the write in progress
  bool writing_ = false;
  bool done_ = false;
};

// Submit: one unary RPC per message (an officer's "send" button).
class UnarySender final : public SenderConn {
 public:
  UnarySender(const BackendOptions& o, Tracker* t, int index,
              std::shared_ptr<grpc::Channel> channel)
      : SenderConn(t, index),
        o_(o),
        channel_(std::move(channel)),
        stub_(v1::Exchange::NewStub(channel_)) {
    proto_.mutable_envelope()->ParseFromString(o.payload);
  }

  void Send(uint64_t n) override {
    auto* call = new Call;
    call->request = proto_;
    call->request.mutable_envelope()->set_client_message_id(tracker_->MessageId(index_, n));
    call->ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    stub_->async()->Submit(
        &call->ctx, &call->request, &call->response, [this, call, n](grpc::Status s) {
          if (!s.ok()) {
            tracker_->NoteError(absl::StrCat("Submit: ", s.error_message()));
          }
          tracker_->OnAck(index_, n, s.ok(), s.ok() ? MaskOf(o_, call->response) : 0, NowNs());
          delete call;
        });
  }

  void Close(int64_t deadline_ns) override { tracker_->WaitForSlot(index_, 1, deadline_ns); }

 private:
  struct Call {
    grpc::ClientContext ctx;
    v1::SubmitRequest request;
    v1::SubmitResponse response;
  };
  const BackendOptions& o_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::Exchange::Stub> stub_;
  v1::SubmitRequest proto_;
};

// A durable subscription that acks everything it receives, batching the seqs
// that arrive while the previous ack is being written.
class Subscriber final
    : public SubscriberConn,
      public grpc::ClientBidiReactor<v1::SubscribeRequest, v1::SubscribeResponse> {
 public:
  Subscriber(const BackendOptions& o, Tracker* t, int index, std::shared_ptr<grpc::Channel> channel,
             bool count)
      : o_(o),
        tracker_(t),
        index_(index),
        count_(count),
        channel_(std::move(channel)),
        stub_(v1::Exchange::NewStub(channel_)) {
    v1::SubscriptionOpen* open = write_.mutable_open();
    open->set_name(absl::StrCat("load-", o.run_tag));
    open->set_start(v1::START_POSITION_NEW_ONLY);  // an existing one resumes
    open->set_max_in_flight(o.sub_window);
    open->set_max_batch(64);
    stub_->async()->Subscribe(&ctx_, this);
    writing_ = true;
    StartWrite(&write_);
    StartRead(&read_);
    StartCall();
  }

  absl::Status WaitOpened() {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait_for(lock, std::chrono::seconds(10), [&] { return opened_ || done_; });
    if (opened_) return absl::OkStatus();
    return absl::UnavailableError(absl::StrCat("subscription of ", o_.subscriber_names[index_],
                                               " not opened: ", end_message_));
  }

  void Stop() override {
    ctx_.TryCancel();
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return done_; });
  }

  void OnReadDone(bool ok) override {
    if (!ok) return;
    if (read_.has_opened()) {
      std::lock_guard<std::mutex> lock(mu_);
      opened_ = true;
      cv_.notify_all();
    } else if (read_.has_delivery() || read_.has_batch()) {
      const int64_t now = NowNs();
      std::vector<uint64_t> seqs;
      auto take = [&](const v1::Delivery& d) {
        if (count_) tracker_->OnDelivery(index_, d.envelope().client_message_id(), now);
        seqs.push_back(d.seq());
      };
      ForEachDelivery(read_, take);
      std::unique_lock<std::mutex> lock(mu_);
      pending_acks_.insert(pending_acks_.end(), seqs.begin(), seqs.end());
      if (!writing_) {
        writing_ = true;
        FillAckLocked();
        lock.unlock();
        StartWrite(&write_);
      }
    }
    StartRead(&read_);
  }

  void OnWriteDone(bool ok) override {
    std::unique_lock<std::mutex> lock(mu_);
    if (!ok || pending_acks_.empty()) {
      writing_ = false;
      return;
    }
    FillAckLocked();
    lock.unlock();
    StartWrite(&write_);
  }

  void OnDone(const grpc::Status& s) override {
    std::lock_guard<std::mutex> lock(mu_);
    end_message_ = s.error_message();
    done_ = true;
    cv_.notify_all();
  }

 private:
  void FillAckLocked() {
    write_.Clear();
    auto* seqs = write_.mutable_ack()->mutable_seqs();
    seqs->Reserve(static_cast<int>(pending_acks_.size()));
    for (uint64_t s : pending_acks_) seqs->Add(s);
    pending_acks_.clear();
  }

  const BackendOptions& o_;
  Tracker* const tracker_;
  const int index_;
  const bool count_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::Exchange::Stub> stub_;
  grpc::ClientContext ctx_;
  v1::SubscribeRequest write_;  // owned by the write in progress
  v1::SubscribeResponse read_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<uint64_t> pending_acks_;
  bool writing_ = false;
  bool opened_ = false;
  bool done_ = false;
  std::string end_message_;
};

class CorridorBackend final : public Backend {
 public:
  CorridorBackend(const BackendOptions& o, Tracker* t) : o_(o), tracker_(t) {}
  std::string name() const override { return "corridor"; }

  absl::Status Prepare() override {
    // Create each durable subscription (at the queue head), then detach: from
    // now on every message for the agency is kept for it until it acks.
    for (size_t i = 0; i < o_.subscriber_names.size(); ++i) {
      auto channel = Connect(o_, o_.subscriber_names[i]);
      if (!channel.ok()) return channel.status();
      auto sub = std::make_unique<Subscriber>(o_, tracker_, static_cast<int>(i), *channel,
                                              /*count=*/false);
      absl::Status s = sub->WaitOpened();
      sub->Stop();
      if (!s.ok()) return s;
    }
    // Facts for the summary: what the broker says about itself.
    auto channel = Connect(o_, o_.sender_names.empty() ? "zs-police" : o_.sender_names[0]);
    if (channel.ok()) {
      auto admin = v1::Admin::NewStub(*channel);
      grpc::ClientContext ctx;
      ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
      v1::StatusResponse st;
      if (admin->Status(&ctx, v1::StatusRequest(), &st).ok()) {
        facts_.emplace_back("broker_version", st.version());
        facts_.emplace_back("policy_version", st.policy_version());
        facts_.emplace_back("broker_id", st.broker_id());
      }
    }
    return absl::OkStatus();
  }

  absl::StatusOr<std::unique_ptr<SenderConn>> ConnectSender(int index) override {
    auto channel = Connect(o_, o_.sender_names[index]);
    if (!channel.ok()) return channel.status();
    if (o_.unary) return std::make_unique<UnarySender>(o_, tracker_, index, *channel);
    return std::make_unique<StreamSender>(o_, tracker_, index, *channel);
  }

  absl::StatusOr<std::unique_ptr<SubscriberConn>> StartSubscriber(int index) override {
    auto channel = Connect(o_, o_.subscriber_names[index]);
    if (!channel.ok()) return channel.status();
    auto sub = std::make_unique<Subscriber>(o_, tracker_, index, *channel, /*count=*/true);
    if (absl::Status s = sub->WaitOpened(); !s.ok()) {
      sub->Stop();
      return s;
    }
    return sub;
  }

  std::vector<std::pair<std::string, std::string>> Facts() override { return facts_; }

  absl::StatusOr<Counters> BrokerCounters() override {
    if (admin_ == nullptr) {
      auto channel = Connect(o_, "admin");
      if (!channel.ok()) return channel.status();
      admin_ = v1::Admin::NewStub(*channel);
    }
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    v1::StatusResponse st;
    grpc::Status s = admin_->Status(&ctx, v1::StatusRequest(), &st);
    if (!s.ok()) return absl::UnavailableError("Admin.Status: " + s.error_message());
    if (st.synced_writes() == 0 && st.keys_written() == 0) {
      return absl::UnimplementedError("this corridord reports no synced-write counters");
    }
    return Counters{.synced_writes = st.synced_writes(),
                    .keys_written = st.keys_written(),
                    .bytes_written = st.bytes_written(),
                    .audit_entries = st.audit_entries(),
                    .exchanges_stored = st.exchanges_stored()};
  }

 private:
  const BackendOptions& o_;
  Tracker* const tracker_;
  std::vector<std::pair<std::string, std::string>> facts_;
  std::unique_ptr<v1::Admin::Stub> admin_;
};

}  // namespace

void SenderConn::IdleUntil(int64_t t_ns) {
  timespec ts{static_cast<time_t>(t_ns / 1'000'000'000), static_cast<long>(t_ns % 1'000'000'000)};
  while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, nullptr) == EINTR) {
  }
}

void SenderConn::Poll(int64_t deadline_ns, uint64_t window) {
  tracker_->WaitForSlot(index_, window, deadline_ns);
}

std::unique_ptr<Backend> MakeCorridorBackend(const BackendOptions& o, Tracker* tracker) {
  return std::make_unique<CorridorBackend>(o, tracker);
}

}  // namespace corridor::load
