#include "broker/grpc/federation_link.h"

#include <algorithm>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "broker/audit/receipt.h"
#include "broker/wire.h"
#include "grpcpp/grpcpp.h"
#include "grpcpp/security/tls_certificate_provider.h"
#include "grpcpp/security/tls_certificate_verifier.h"
#include "grpcpp/security/tls_credentials_options.h"

namespace corridor::broker::grpc_transport {

namespace {

// Transfers per LinkRequest, at most.
constexpr size_t kMaxTransfersPerRequest = 256;
constexpr absl::Duration kMinBackoff = absl::Milliseconds(200);
constexpr absl::Duration kMaxBackoff = absl::Seconds(5);

google::protobuf::Timestamp ToProto(absl::Time t) {
  google::protobuf::Timestamp ts;
  const int64_t nanos = absl::ToUnixNanos(t);
  ts.set_seconds(nanos / 1000000000);
  ts.set_nanos(static_cast<int32_t>(nanos % 1000000000));
  return ts;
}

// After gRPC checked the peer's chain against its own domain's CA bundle: the
// certificate must name exactly the peer's broker (its SPIFFE id, not a host name).
class PeerBrokerVerifier final : public grpc::experimental::ExternalCertificateVerifier {
 public:
  explicit PeerBrokerVerifier(std::string expected) : expected_(std::move(expected)) {}
  bool Verify(grpc::experimental::TlsCustomVerificationCheckRequest* request,
              std::function<void(grpc::Status)>, grpc::Status* sync_status) override {
    for (const grpc::string_ref& uri : request->uri_names()) {
      if (std::string_view(uri.data(), uri.size()) == expected_) {
        *sync_status = grpc::Status::OK;
        return true;
      }
    }
    *sync_status = grpc::Status(grpc::StatusCode::UNAUTHENTICATED,
                                absl::StrCat("the peer's certificate does not name ", expected_));
    return true;
  }
  void Cancel(grpc::experimental::TlsCustomVerificationCheckRequest*) override {}

 private:
  const std::string expected_;
};

}  // namespace

// The core's handle on one agency's outbox for the current connection. Outlives
// the connection (the core keeps a shared_ptr); once detached, calls are dropped.
class PeerLink::OutboxSink final : public DeliverySink {
 public:
  OutboxSink(PeerLink* link, std::string agency) : link_(link), agency_(std::move(agency)) {}
  void Send(std::shared_ptr<const QueuedDelivery> delivery, uint32_t, const std::string&) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (link_ != nullptr) link_->Enqueue({agency_, std::move(delivery)});
  }
  void Close(const absl::Status& why) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (link_ != nullptr) link_->Broken(absl::StrCat("outbox closed: ", why.message()));
  }
  void Detach() {
    std::lock_guard<std::mutex> lock(mu_);
    link_ = nullptr;
  }

 private:
  std::mutex mu_;
  PeerLink* link_;  // guarded by mu_
  const std::string agency_;
};

PeerLink::PeerLink(ExchangeCore* core, PeerConfig peer, TlsFiles own_tls,
                   std::function<void(std::string_view)> log)
    : core_(core),
      peer_(std::move(peer)),
      own_tls_(std::move(own_tls)),
      log_(std::move(log)),
      expected_id_(absl::StrCat("spiffe://", peer_.domain, "/broker/", peer_.broker)) {}

PeerLink::~PeerLink() { Stop(); }

void PeerLink::Start() {
  if (peer_.audit_key.empty()) {
    Log(absl::StrCat("federation: WARNING: no audit_key for peer ", peer_.domain,
                     ": its receipts are not verified"));
  }
  thread_ = std::thread([this] { Run(); });
}

void PeerLink::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_ && !thread_.joinable()) return;
    stopping_ = true;
    if (context_ != nullptr) context_->TryCancel();
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void PeerLink::Log(std::string_view line) const {
  if (log_) log_(line);
}

v1::PeerLinkStatus PeerLink::Status() const {
  v1::PeerLinkStatus s;
  s.set_domain(peer_.domain);
  s.set_address(peer_.address);
  s.set_cross_border(peer_.cross_border);
  {
    std::lock_guard<std::mutex> lock(mu_);
    s.set_state(state_);
    s.set_last_error(last_error_);
    s.set_transferred(transferred_);
    s.set_refused(refused_);
    s.set_receipts(receipts_);
    s.set_receipts_invalid(receipts_invalid_);
    if (last_receipt_ != absl::InfinitePast()) *s.mutable_last_receipt() = ToProto(last_receipt_);
    if (connected_since_ != absl::InfinitePast()) {
      *s.mutable_connected_since() = ToProto(connected_since_);
    }
  }
  ExchangeCore::OutboxState o = core_->Outbox(peer_.domain);
  s.set_backlog(o.backlog);
  if (o.oldest != absl::InfinitePast()) *s.mutable_oldest() = ToProto(o.oldest);
  s.set_outbox_bound(core_->config().federation.outbox_max);
  return s;
}

void PeerLink::Enqueue(Queued q) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    queue_.push_back(std::move(q));
  }
  cv_.notify_all();
}

void PeerLink::Broken(std::string why) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!broken_) {
      broken_ = true;
      if (last_error_.empty()) last_error_ = std::move(why);
    }
    if (context_ != nullptr) context_->TryCancel();
  }
  cv_.notify_all();
}

void PeerLink::Run() {
  absl::Duration backoff = kMinBackoff;
  for (;;) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stopping_) return;
      state_ = "connecting";
    }
    const absl::Time started = absl::Now();
    std::string why = RunConnected();
    {
      std::lock_guard<std::mutex> lock(mu_);
      state_ = "down";
      last_error_ = why;
      connected_since_ = absl::InfinitePast();
      if (stopping_) return;
    }
    Log(absl::StrCat("federation: link to ", peer_.domain, " (", peer_.address, ") down: ", why));
    // A link that stayed up a while starts again quickly.
    backoff = absl::Now() - started > absl::Seconds(10) ? kMinBackoff
                                                        : std::min(backoff * 2, kMaxBackoff);
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait_for(lock, absl::ToChronoMilliseconds(backoff), [&] { return stopping_; });
  }
}

std::string PeerLink::RunConnected() {
  auto provider = std::make_shared<grpc::experimental::FileWatcherCertificateProvider>(
      own_tls_.key, own_tls_.cert, peer_.ca, /*refresh_interval_sec=*/60);
  grpc::experimental::TlsChannelCredentialsOptions tls;
  tls.set_certificate_provider(provider);
  tls.watch_root_certs();
  tls.watch_identity_key_cert_pairs();
  tls.set_verify_server_certs(true);
  tls.set_check_call_host(false);  // the verifier checks the SPIFFE id instead
  tls.set_certificate_verifier(
      grpc::experimental::ExternalCertificateVerifier::Create<PeerBrokerVerifier>(expected_id_));
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);  // a connection of its own
  args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, 20000);
  args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 10000);
  args.SetMaxReceiveMessageSize(64 << 20);
  auto channel =
      grpc::CreateCustomChannel(peer_.address, grpc::experimental::TlsCredentials(tls), args);
  // In short steps, so Stop() is not kept waiting.
  const absl::Time give_up = absl::Now() + absl::Seconds(5);
  while (!channel->WaitForConnected(absl::ToChronoTime(absl::Now() + absl::Milliseconds(100)))) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stopping_) return "stopping";
    }
    if (absl::Now() >= give_up) return "cannot connect (TLS handshake or network)";
  }
  auto stub = v1::Federation::NewStub(channel);
  grpc::ClientContext context;
  auto stream = stub->Link(&context);
  std::shared_ptr<OutboxSink> sink;
  std::vector<std::string> agencies;
  for (const auto& a : core_->config().registry->agencies) {
    if (a.domain == peer_.domain) agencies.push_back(a.id);
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) return "stopping";
    context_ = &context;
    broken_ = false;
    last_error_.clear();
    queue_.clear();
    in_flight_.clear();
    state_ = "connected";
    connected_since_ = absl::Now();
  }
  Log(absl::StrCat("federation: link to ", peer_.domain, " (", peer_.address, ") up"));
  std::thread reader([this, s = stream.get()] { ReadLoop(s); });
  // Every agency's outbox drains into this stream; what is unanswered from an
  // earlier connection comes again (the hub resends unacked entries).
  for (const std::string& agency : agencies) {
    auto agency_sink = std::make_shared<OutboxSink>(this, agency);
    uint64_t session = core_->AttachOutbox(
        peer_, agency, agency_sink, [this](absl::StatusOr<v1::SubscriptionOpened> opened) {
          if (!opened.ok()) Broken(absl::StrCat("outbox: ", opened.status().message()));
        });
    std::lock_guard<std::mutex> lock(mu_);
    sessions_[agency] = session;
    sinks_.push_back(std::move(agency_sink));
  }
  std::string why;
  for (;;) {
    v1::LinkRequest request;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [&] { return stopping_ || broken_ || !queue_.empty(); });
      if (stopping_) {
        why = "stopping";
        break;
      }
      if (broken_) {
        why = last_error_;
        break;
      }
      while (!queue_.empty() &&
             static_cast<size_t>(request.transfers_size()) < kMaxTransfersPerRequest) {
        Queued q = std::move(queue_.front());
        queue_.pop_front();
        v1::Delivery d;
        if (!d.ParseFromString(q.delivery->wire)) continue;  // stored by this broker: never
        v1::Transfer* t = request.add_transfers();
        t->set_seq(q.delivery->seq);
        t->set_recipient_agency_id(q.agency);
        v1::Envelope* env = t->mutable_envelope();
        *env = std::move(*d.mutable_envelope());
        // Other addressees are none of the peer's business.
        auto* addressees = env->mutable_addressees();
        addressees->erase(std::remove_if(addressees->begin(), addressees->end(),
                                         [&](const std::string& a) {
                                           const policy::Agency* ag =
                                               core_->config().registry->Find(a);
                                           return ag == nullptr || ag->domain != peer_.domain;
                                         }),
                          addressees->end());
        *t->mutable_redacted_fields() = std::move(*d.mutable_redacted_fields());
        t->set_addressed(d.addressed());
        t->add_hops(core_->config().registry->trust_domain);
        in_flight_[{q.agency, q.delivery->seq}] = InFlight{env->exchange_id(), false};
      }
    }
    if (request.transfers_size() == 0) continue;
    if (!stream->Write(request)) {
      why = "the peer closed the link";
      break;
    }
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    context_ = nullptr;
  }
  context.TryCancel();
  reader.join();
  grpc::Status status = stream->Finish();
  std::vector<std::pair<std::string, uint64_t>> sessions;
  std::vector<std::shared_ptr<OutboxSink>> sinks;
  {
    std::lock_guard<std::mutex> lock(mu_);
    sessions.assign(sessions_.begin(), sessions_.end());
    sessions_.clear();
    sinks.swap(sinks_);
  }
  for (auto& s : sinks) s->Detach();
  for (const auto& [agency, session] : sessions) core_->Detach(session);
  if (!status.ok() && status.error_code() != grpc::StatusCode::CANCELLED) {
    return absl::StrCat(why, " (", status.error_message(), ")");
  }
  return why;
}

void PeerLink::ReadLoop(grpc::ClientReaderWriter<v1::LinkRequest, v1::LinkResponse>* stream) {
  v1::LinkResponse response;
  while (stream->Read(&response)) {
    for (const v1::TransferResult& r : response.results()) OnResult(r);
    for (const v1::ReceiptForTransfer& r : response.receipts()) OnReceipt(r);
  }
  Broken("the peer ended the link");
}

void PeerLink::Done(const std::string& agency, uint64_t seq) {
  uint64_t session = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = sessions_.find(agency);
    if (it != sessions_.end()) session = it->second;
    in_flight_.erase({agency, seq});
  }
  if (session != 0) core_->Ack(session, {seq});
}

void PeerLink::OnResult(const v1::TransferResult& r) {
  // A pause on the peer's side (its disk below the floor, its storage
  // resuming): not an answer. The transfer stays queued and is sent again
  // (after the outbox's ack deadline, or on the next connection).
  if (r.code() == grpc::StatusCode::RESOURCE_EXHAUSTED ||
      r.code() == grpc::StatusCode::UNAVAILABLE) {
    return;
  }
  std::string exchange_id;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = in_flight_.find({r.recipient_agency_id(), r.seq()});
    if (it == in_flight_.end()) return;  // not ours, or answered before
    exchange_id = it->second.exchange_id;
    if (r.code() == 0) {
      it->second.stored = true;
      ++transferred_;
    } else {
      ++refused_;
    }
  }
  core_->OutboxAnswered(r.recipient_agency_id(), r.seq());
  if (r.code() != 0) {
    // Refused for good (a loop, a recipient or sender the peer does not
    // accept, a malformed transfer): audited here, and not sent again.
    PeerIdentity peer;
    peer.spiffe_id = expected_id_;
    peer.trust_domain = peer_.domain;
    peer.role = PeerRole::kBroker;
    peer.node = peer_.broker;
    core_->RecordSecurityEvent(
        peer,
        absl::StrCat("transfer of ", exchange_id, " to ", r.recipient_agency_id(),
                     " refused by peer ", peer_.domain, ": ", r.error_message().substr(0, 512)));
    Done(r.recipient_agency_id(), r.seq());
    return;
  }
  // Without the peer's key there is no receipt to wait for.
  if (peer_.audit_key.empty()) Done(r.recipient_agency_id(), r.seq());
}

void PeerLink::OnReceipt(const v1::ReceiptForTransfer& r) {
  if (peer_.audit_key.empty()) return;
  std::string exchange_id;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = in_flight_.find({r.recipient_agency_id(), r.seq()});
    if (it == in_flight_.end()) return;  // already recorded (a resend's receipt)
    exchange_id = it->second.exchange_id;
  }
  audit::ReceiptExpectation expect;
  expect.origin_domain = core_->config().registry->trust_domain;
  expect.origin_exchange_id = exchange_id;
  expect.recipient_agency_id = r.recipient_agency_id();
  expect.peer_domain = peer_.domain;
  auto verified = audit::VerifyTransferReceipt(r.receipt(), peer_.audit_key, expect);
  if (!verified.ok()) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      ++receipts_invalid_;
    }
    PeerIdentity peer;
    peer.spiffe_id = expected_id_;
    peer.trust_domain = peer_.domain;
    peer.role = PeerRole::kBroker;
    peer.node = peer_.broker;
    // The transfer stays in the outbox: it is sent again, and a valid receipt awaited.
    core_->RecordSecurityEvent(
        peer, absl::StrCat("receipt from ", peer_.domain, " for ", exchange_id,
                           " refused: ", verified.status().message().substr(0, 512)));
    return;
  }
  const std::string agency = r.recipient_agency_id();
  const uint64_t seq = r.seq();
  core_->RecordReceipt(peer_, exchange_id, agency, r.receipt(),
                       [this, agency, seq](absl::Status s) {
                         if (!s.ok()) return;  // not durable: the transfer stays queued
                         {
                           std::lock_guard<std::mutex> lock(mu_);
                           ++receipts_;
                           last_receipt_ = absl::Now();
                         }
                         Done(agency, seq);
                       });
}

}  // namespace corridor::broker::grpc_transport
