#include "agency_adapters/client/agency_client.h"

#include <algorithm>
#include <fstream>
#include <random>
#include <utility>

#include "absl/strings/str_cat.h"
#include "grpcpp/grpcpp.h"
#include "grpcpp/security/tls_certificate_provider.h"
#include "grpcpp/security/tls_certificate_verifier.h"
#include "grpcpp/security/tls_credentials_options.h"

namespace corridor {
namespace {

std::chrono::system_clock::time_point DeadlineIn(absl::Duration d) {
  return std::chrono::system_clock::now() + absl::ToChronoMilliseconds(d);
}

}  // namespace

absl::Status FromGrpcStatus(const grpc::Status& s) {
  if (s.ok()) return absl::OkStatus();
  // absl and gRPC share the canonical code numbering.
  return absl::Status(static_cast<absl::StatusCode>(s.error_code()), s.error_message());
}

absl::StatusOr<std::shared_ptr<grpc::Channel>> MakeChannel(const ClientOptions& options) {
  for (const std::string* f : {&options.cert_file, &options.key_file, &options.ca_file}) {
    if (f->empty() || !std::ifstream(*f).good()) {
      return absl::FailedPreconditionError(absl::StrCat("cannot read TLS file '", *f, "'"));
    }
  }
  auto provider = std::make_shared<grpc::experimental::FileWatcherCertificateProvider>(
      options.key_file, options.cert_file, options.ca_file, /*refresh_interval_sec=*/60);
  grpc::experimental::TlsChannelCredentialsOptions tls;
  tls.set_certificate_provider(provider);
  tls.watch_root_certs();
  tls.watch_identity_key_cert_pairs();
  tls.set_verify_server_certs(true);
  tls.set_certificate_verifier(std::make_shared<grpc::experimental::HostNameCertificateVerifier>());
  auto creds = grpc::experimental::TlsCredentials(tls);
  grpc::ChannelArguments args;
  if (!options.server_name.empty()) {
    args.SetString(GRPC_SSL_TARGET_NAME_OVERRIDE_ARG, options.server_name);
  }
  if (options.dedicated_connection) args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, 20000);
  args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 10000);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 5000);
  args.SetMaxReceiveMessageSize(64 << 20);
  return grpc::CreateCustomChannel(options.target, creds, args);
}

absl::StatusOr<std::unique_ptr<AgencyClient>> AgencyClient::Connect(const ClientOptions& options) {
  auto channel = MakeChannel(options);
  if (!channel.ok()) return channel.status();
  if (!(*channel)->WaitForConnected(DeadlineIn(options.connect_timeout))) {
    return absl::UnavailableError(
        absl::StrCat("cannot reach the broker at ", options.target, " within ",
                     absl::FormatDuration(options.connect_timeout),
                     " (is it running, and do the certificates belong to its exchange CA?)"));
  }
  std::unique_ptr<AgencyClient> client(new AgencyClient());
  client->options_ = options;
  client->channel_ = *channel;
  client->exchange_ = v1::Exchange::NewStub(client->channel_);
  client->admin_ = v1::Admin::NewStub(client->channel_);
  return client;
}

absl::StatusOr<v1::SubmitResponse> AgencyClient::Submit(const v1::Envelope& envelope) {
  grpc::ClientContext ctx;
  ctx.set_deadline(DeadlineIn(options_.rpc_timeout));
  v1::SubmitRequest request;
  *request.mutable_envelope() = envelope;
  v1::SubmitResponse response;
  grpc::Status s = exchange_->Submit(&ctx, request, &response);
  if (!s.ok()) return FromGrpcStatus(s);
  return response;
}

namespace {
// Envelopes per SubmitStream message, at most (1 KiB each: well under gRPC's
// 4 MiB message limit).
constexpr size_t kMaxPerRequest = 64;
// Deliveries per Subscribe message unless the options say otherwise.
constexpr uint32_t kDefaultMaxBatch = 64;
}  // namespace

std::vector<absl::StatusOr<v1::SubmitResponse>> AgencyClient::SubmitAll(
    const std::vector<v1::Envelope>& envelopes, size_t window) {
  std::vector<absl::StatusOr<v1::SubmitResponse>> results(envelopes.size(),
                                                          absl::UnavailableError("not answered"));
  if (envelopes.empty()) return results;
  if (window == 0) window = 1;
  grpc::ClientContext ctx;
  auto stream = exchange_->SubmitStream(&ctx);
  std::mutex mu;
  std::condition_variable cv;
  size_t answered = 0;  // guarded by mu
  std::thread reader([&] {
    v1::SubmitStreamResponse reply;
    size_t i = 0;
    auto take = [&](const v1::SubmitStreamResponse& r) {
      if (i >= envelopes.size()) return;
      if (r.code() == 0) {
        results[i] = r.result();
      } else {
        results[i] = absl::Status(static_cast<absl::StatusCode>(r.code()), r.error_message());
      }
      ++i;
    };
    while (i < envelopes.size() && stream->Read(&reply)) {
      ForEachReply(reply, take);
      std::lock_guard<std::mutex> lock(mu);
      answered = i;
      cv.notify_all();
    }
    std::lock_guard<std::mutex> lock(mu);
    answered = envelopes.size() + 1;  // reading ended: unblock the writer
    cv.notify_all();
  });
  v1::SubmitRequest request;
  request.set_batch_replies(true);
  for (size_t i = 0; i < envelopes.size();) {
    size_t room;
    {
      std::unique_lock<std::mutex> lock(mu);
      cv.wait(lock, [&] { return i < answered + window; });
      if (answered > envelopes.size()) break;
      room = answered + window - i;
    }
    // Everything the window allows goes in one message (at most kMaxPerRequest).
    const size_t n = std::min({room, envelopes.size() - i, kMaxPerRequest});
    *request.mutable_envelope() = envelopes[i];
    request.clear_more();
    for (size_t j = 1; j < n; ++j) *request.add_more() = envelopes[i + j];
    i += n;
    // No buffer_hint: a corked write waits for a later one, and the window may
    // make this the last write for a while.
    if (!stream->Write(request)) break;
  }
  stream->WritesDone();
  reader.join();
  grpc::Status final_status = stream->Finish();
  if (!final_status.ok()) {
    for (auto& r : results) {
      if (!r.ok() && r.status().message() == "not answered") r = FromGrpcStatus(final_status);
    }
  }
  return results;
}

absl::StatusOr<v1::StatusResponse> AgencyClient::Status() {
  grpc::ClientContext ctx;
  ctx.set_deadline(DeadlineIn(options_.rpc_timeout));
  v1::StatusResponse response;
  grpc::Status s = admin_->Status(&ctx, v1::StatusRequest(), &response);
  if (!s.ok()) return FromGrpcStatus(s);
  return response;
}

std::unique_ptr<Subscription> AgencyClient::Subscribe(
    SubscriptionOptions options, std::function<bool(const v1::Delivery&)> handler,
    std::function<void(const absl::Status&)> on_stream_end) {
  std::unique_ptr<Subscription> sub(new Subscription());
  sub->stub_ = exchange_.get();
  sub->options_ = std::move(options);
  sub->handler_ = std::move(handler);
  sub->on_stream_end_ = std::move(on_stream_end);
  sub->opened_info_ = absl::UnavailableError("not opened yet");
  sub->thread_ = std::thread([s = sub.get()] { s->Run(); });
  return sub;
}

Subscription::~Subscription() { Stop(); }

void Subscription::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
    if (live_ctx_ != nullptr) live_ctx_->TryCancel();
    cv_.notify_all();
  }
  if (thread_.joinable()) thread_.join();
}

absl::StatusOr<v1::SubscriptionOpened> Subscription::WaitOpened(absl::Duration timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait_for(lock, absl::ToChronoMilliseconds(timeout),
               [&] { return opened_ || stopping_ || !last_error_.ok(); });
  if (opened_) return opened_info_;
  if (!last_error_.ok()) return last_error_;
  return absl::DeadlineExceededError("subscription not opened in time");
}

absl::Status Subscription::last_error() const {
  std::lock_guard<std::mutex> lock(mu_);
  return last_error_;
}

void Subscription::Run() {
  std::mt19937_64 rng(std::random_device{}());
  absl::Duration backoff = options_.initial_backoff;
  for (uint64_t attempt = 0;; ++attempt) {
    grpc::ClientContext ctx;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stopping_) return;
      live_ctx_ = &ctx;
    }
    if (attempt > 0) reconnects_.fetch_add(1);
    auto stream = stub_->Subscribe(&ctx);
    v1::SubscribeRequest open;
    *open.mutable_open() = options_.open;
    if (open.open().max_batch() == 0) open.mutable_open()->set_max_batch(kDefaultMaxBatch);
    v1::SubscribeResponse msg;
    bool got_open = stream->Write(open) && stream->Read(&msg) && msg.has_opened();
    if (got_open) {
      backoff = options_.initial_backoff;
      std::lock_guard<std::mutex> lock(mu_);
      opened_ = true;
      opened_info_ = msg.opened();
      last_error_ = absl::OkStatus();
      cv_.notify_all();
    }
    v1::SubscribeRequest ack;
    while (got_open && stream->Read(&msg)) {
      // One ack message per response: the seqs the handler took, in order.
      ack.mutable_ack()->clear_seqs();
      auto take = [&](const v1::Delivery& d) {
        received_.fetch_add(1);
        if (handler_(d)) ack.mutable_ack()->add_seqs(d.seq());
      };
      ForEachDelivery(msg, take);
      if (ack.ack().seqs_size() > 0 && !stream->Write(ack)) break;
    }
    stream->WritesDone();
    grpc::Status end = stream->Finish();
    absl::Status status = FromGrpcStatus(end);
    // Retrying cannot help these; ABORTED means another stream took the
    // subscription over, and taking it back would start a tug of war.
    bool permanent = end.error_code() == grpc::StatusCode::INVALID_ARGUMENT ||
                     end.error_code() == grpc::StatusCode::PERMISSION_DENIED ||
                     end.error_code() == grpc::StatusCode::UNAUTHENTICATED ||
                     end.error_code() == grpc::StatusCode::ABORTED;
    {
      std::lock_guard<std::mutex> lock(mu_);
      live_ctx_ = nullptr;
      if (stopping_) return;
      last_error_ = status.ok() ? absl::UnavailableError("stream ended") : status;
      cv_.notify_all();
    }
    if (on_stream_end_) on_stream_end_(status);
    if (permanent) return;  // retrying cannot help: the caller reads last_error()
    // Exponential backoff with full jitter.
    std::uniform_int_distribution<int64_t> jitter(0, absl::ToInt64Milliseconds(backoff));
    absl::Duration wait = absl::Milliseconds(jitter(rng)) + absl::Milliseconds(50);
    backoff = std::min(backoff * 2, options_.max_backoff);
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait_for(lock, absl::ToChronoMilliseconds(wait), [&] { return stopping_; });
  }
}

}  // namespace corridor
