#include "broker/grpc/federation_service.h"

#include <algorithm>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "broker/audit_log.h"
#include "broker/grpc/auth.h"
#include "broker/grpc/reactor_util.h"
#include "broker/grpc/status_conversion.h"

namespace corridor::broker::grpc_transport {

namespace {

// Transfers being stored at once per link; past it the link reads no more
// until some are answered (the sender's window is the rest of the bound).
constexpr int kMaxPendingTransfers = 4096;
// Receipts waiting for a checkpoint per link, at most (bounds memory; a
// transfer whose receipt was not kept stays in the sender's outbox, so it is
// sent again later and its receipt made then).
constexpr size_t kMaxWaitingReceipts = 65536;

}  // namespace

class FederationService::LinkReactor final
    : public grpc::ServerBidiReactor<v1::LinkRequest, v1::LinkResponse>,
      public CancellableStream {
 public:
  LinkReactor(FederationService* service, grpc::CallbackServerContext* ctx, PeerIdentity peer)
      : service_(service), core_(service->core_), ctx_(ctx), peer_(std::move(peer)) {}

  void Start(StreamRegistry::Registration registration) {
    registration_ = std::move(registration);
    service_->Add(this);
    StartRead(&request_);
  }

  void CancelStream(const grpc::Status& why) override { EndStream(why); }
  void AbortStream() override { ctx_->TryCancel(); }  // a write the peer never takes

  void OnReadDone(bool ok) override {
    if (!ok) {
      EndStream(grpc::Status::OK);  // the peer closed its side
      return;
    }
    registration_.FirstMessage();
    std::vector<v1::Transfer> transfers(request_.transfers().begin(), request_.transfers().end());
    request_.Clear();
    {
      std::lock_guard<std::mutex> lock(mu_);
      pending_ += static_cast<int>(transfers.size());
    }
    for (v1::Transfer& t : transfers) {
      std::string origin_exchange = t.envelope().exchange_id();
      core_->SubmitTransfer(peer_, std::move(t),
                            [this, origin_exchange](ExchangeCore::TransferOutcome o) {
                              Answered(std::move(o), origin_exchange);
                            });
    }
    std::unique_lock<std::mutex> lock(mu_);
    if (end_status_ || finished_) return;
    if (pending_ >= kMaxPendingTransfers) {
      read_paused_ = true;
    } else {
      lock.unlock();
      StartRead(&request_);
    }
  }

  void OnWriteDone(bool ok) override {
    std::unique_lock<std::mutex> lock(mu_);
    writing_ = false;
    if (!ok && !end_status_) end_status_ = grpc::Status(grpc::StatusCode::CANCELLED, "link broken");
    WriteNextLocked(lock);
  }

  void OnDone() override {
    registration_.Reset();  // first: no cancellation reaches a deleted reactor
    service_->Remove(this);
    delete this;
  }

  // Receipt thread: hands out the receipts a checkpoint of `size` entries covers.
  void Covered(uint64_t size) {
    std::vector<Waiting> due;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (end_status_ || finished_) return;
      auto it = waiting_.begin();
      while (it != waiting_.end() && it->index < size) ++it;
      due.assign(std::make_move_iterator(waiting_.begin()), std::make_move_iterator(it));
      waiting_.erase(waiting_.begin(), it);
    }
    if (due.empty()) return;
    std::vector<v1::ReceiptForTransfer> receipts;
    for (Waiting& w : due) {
      auto proof = core_->audit().GetInclusionProof(w.index, 0);
      if (!proof.ok() || !proof->has_checkpoint()) continue;  // the next checkpoint will do
      v1::ReceiptForTransfer& r = receipts.emplace_back();
      r.set_recipient_agency_id(std::move(w.recipient));
      r.set_seq(w.seq);
      r.set_origin_exchange_id(std::move(w.origin_exchange_id));
      v1::TransferReceipt* receipt = r.mutable_receipt();
      receipt->set_checkpoint(proof->checkpoint().note());
      receipt->set_leaf_index(w.index);
      for (const std::string& h : proof->hashes()) receipt->add_inclusion_path(h);
      receipt->set_entry(proof->record().entry_bytes());
    }
    std::unique_lock<std::mutex> lock(mu_);
    for (auto& r : receipts) *next_.add_receipts() = std::move(r);
    WriteNextLocked(lock);
  }

 private:
  struct Waiting {
    uint64_t index = 0;
    std::string recipient;
    uint64_t seq = 0;
    std::string origin_exchange_id;
  };

  // A core thread: one transfer was stored or refused.
  void Answered(ExchangeCore::TransferOutcome o, const std::string& origin_exchange) {
    std::unique_lock<std::mutex> lock(mu_);
    --pending_;
    if (o.stored && waiting_.size() < kMaxWaitingReceipts) {
      // Collection entries are appended in commit order, so `waiting_` stays sorted
      // except for duplicates (an earlier index): those go to the front.
      Waiting w{o.collection_index, o.result.recipient_agency_id(), o.result.seq(),
                origin_exchange};
      auto at = std::upper_bound(waiting_.begin(), waiting_.end(), w.index,
                                 [](uint64_t index, const Waiting& x) { return index < x.index; });
      waiting_.insert(at, std::move(w));
    }
    *next_.add_results() = std::move(o.result);
    if (read_paused_ && pending_ < kMaxPendingTransfers / 2 && !end_status_ && !finished_) {
      read_paused_ = false;
      StartRead(&request_);
    }
    WriteNextLocked(lock);
  }

  void EndStream(grpc::Status status) {
    std::unique_lock<std::mutex> lock(mu_);
    if (!end_status_) end_status_ = std::move(status);
    WriteNextLocked(lock);
  }

  // Writes what is queued (one write at a time), or finishes once the stream
  // is ending, nothing is being stored for it and nothing is left to write.
  void WriteNextLocked(std::unique_lock<std::mutex>& lock) {
    if (writing_ || finished_) return;
    if (next_.results_size() > 0 || next_.receipts_size() > 0) {
      if (end_status_ && !end_status_->ok()) {
        next_.Clear();  // broken or cancelled: the peer resends what it has no answer for
      } else {
        writing_ = true;
        out_ = std::move(next_);
        next_.Clear();
        lock.unlock();
        StartWrite(&out_);
        return;
      }
    }
    if (end_status_ && pending_ == 0) {
      finished_ = true;
      grpc::Status status = *end_status_;
      lock.unlock();
      Finish(status);
    }
  }

  FederationService* const service_;
  ExchangeCore* const core_;
  grpc::CallbackServerContext* const ctx_;
  const PeerIdentity peer_;
  StreamRegistry::Registration registration_;
  v1::LinkRequest request_;
  v1::LinkResponse out_;  // being written

  std::mutex mu_;
  v1::LinkResponse next_;         // guarded by mu_: queued for the next write
  std::vector<Waiting> waiting_;  // guarded by mu_: stored, receipt not yet sent (index order)
  int pending_ = 0;               // guarded by mu_: transfers the core has not answered
  bool read_paused_ = false;      // guarded by mu_
  bool writing_ = false;          // guarded by mu_
  bool finished_ = false;         // guarded by mu_
  std::optional<grpc::Status> end_status_;  // guarded by mu_
};

FederationService::FederationService(ExchangeCore* core, StreamRegistry* streams)
    : core_(core), streams_(streams), receipts_([this] { ReceiptLoop(); }) {}

FederationService::~FederationService() { Stop(); }

void FederationService::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  if (receipts_.joinable()) receipts_.join();
}

void FederationService::Add(LinkReactor* link) {
  absl::MutexLock lock(&mu_);
  links_.insert(link);
}

void FederationService::Remove(LinkReactor* link) {
  absl::MutexLock lock(&mu_);
  links_.erase(link);
}

void FederationService::ReceiptLoop() {
  absl::MutexLock lock(&mu_);
  while (!stopping_) {
    mu_.AwaitWithTimeout(absl::Condition(&stopping_), absl::Milliseconds(100));
    if (stopping_) break;
    auto checkpoint = core_->audit().GetCheckpoint(0);
    if (!checkpoint.ok()) continue;
    // Under mu_: a link cannot be deleted meanwhile (OnDone removes it first).
    for (LinkReactor* link : links_) link->Covered(checkpoint->size());
  }
}

grpc::ServerBidiReactor<v1::LinkRequest, v1::LinkResponse>* FederationService::Link(
    grpc::CallbackServerContext* ctx) {
  using Rejecting = RejectingBidiReactor<v1::LinkRequest, v1::LinkResponse>;
  auto peer = AuthenticateCall(*ctx, core_);
  if (!peer.ok()) return new Rejecting(ToGrpcStatus(peer.status()));
  if (auto s = RequireRole(*peer, {PeerRole::kBroker}, "Federation.Link",
                           "only a peer exchange's broker may open a link", core_);
      !s.ok()) {
    return new Rejecting(ToGrpcStatus(s));
  }
  if (peer->trust_domain == core_->config().registry->trust_domain) {
    core_->RecordSecurityEvent(
        *peer, "refused: a broker certificate of this exchange opened Federation.Link");
    return new Rejecting(grpc::Status(grpc::StatusCode::PERMISSION_DENIED,
                                      "a certificate of this exchange is never a peer"));
  }
  return RegisterAndStart<v1::LinkRequest, v1::LinkResponse>(
      streams_, *ctx, "Federation.Link", *peer, new LinkReactor(this, ctx, *peer));
}

}  // namespace corridor::broker::grpc_transport
