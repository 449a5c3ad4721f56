// corridor.v1.Exchange and corridor.v1.Admin over gRPC's callback API. Thin:
// authenticate the peer, turn the request into an ExchangeCore call, turn the
// result into the reply. Reactors never block: the core calls back on its own
// threads, which then StartWrite/Finish.
//
// Lifetime: the services borrow the core and the stream registry, which must
// outlive the gRPC server. Every SubmitStream and Subscribe stream is
// registered (stream_registry.h) for as long as it is open.
#pragma once

#include <atomic>
#include <functional>

#include "broker/exchange_core.h"
#include "broker/grpc/stream_registry.h"
#include "corridor/v1/exchange.grpc.pb.h"

namespace corridor::broker::grpc_transport {

// All three methods are raw (ByteBuffer): deliveries are written as the bytes
// the broker stored (wire.h), not re-serialized per write, and requests are
// parsed here, so bytes that are not the request message are answered with
// INVALID_ARGUMENT (gRPC's typed handlers end a stream as if the client had
// finished, and answer a unary call with a bare UNIMPLEMENTED). Clients see
// the same messages.
using ExchangeServiceBase =
    v1::Exchange::WithRawCallbackMethod_Submit<v1::Exchange::WithRawCallbackMethod_SubmitStream<
        v1::Exchange::WithRawCallbackMethod_Subscribe<v1::Exchange::Service>>>;

class ExchangeService final : public ExchangeServiceBase {
 public:
  ExchangeService(ExchangeCore* core, StreamRegistry* streams) : core_(core), streams_(streams) {}

  grpc::ServerUnaryReactor* Submit(grpc::CallbackServerContext* ctx,
                                   const grpc::ByteBuffer* request,
                                   grpc::ByteBuffer* response) override;
  grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer>* SubmitStream(
      grpc::CallbackServerContext* ctx) override;
  grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer>* Subscribe(
      grpc::CallbackServerContext* ctx) override;

 private:
  ExchangeCore* const core_;
  StreamRegistry* const streams_;
};

class AdminService final : public v1::Admin::CallbackService {
 public:
  // Reloads policy for `who` (a SPIFFE id); returns the error that refused it.
  // Runs on the calling gRPC thread: it reads a few small files.
  using ReloadFn = std::function<absl::Status(const std::string& who)>;

  // The trust store's current problems (expired or nearing CRLs, unusable
  // files), shown to admins in Status. Thread-safe, cheap.
  using TlsProblemsFn = std::function<std::vector<std::string>()>;

  // Each peer exchange's link, for admins. Thread-safe; reads no files.
  using PeersFn = std::function<std::vector<v1::PeerLinkStatus>()>;

  // `streams` (may be null) adds its limit counters to an admin's Status;
  // `tls_problems` (may be null) its TLS warnings; `peers` (may be null) the
  // federation links.
  AdminService(ExchangeCore* core, ReloadFn reload, const StreamRegistry* streams = nullptr,
               TlsProblemsFn tls_problems = nullptr, PeersFn peers = nullptr)
      : core_(core),
        reload_(std::move(reload)),
        streams_(streams),
        tls_problems_(std::move(tls_problems)),
        peers_(std::move(peers)) {}

  grpc::ServerUnaryReactor* Status(grpc::CallbackServerContext* ctx,
                                   const v1::StatusRequest* request,
                                   v1::StatusResponse* response) override;
  grpc::ServerUnaryReactor* ReloadPolicy(grpc::CallbackServerContext* ctx,
                                         const v1::ReloadPolicyRequest* request,
                                         v1::ReloadPolicyResponse* response) override;

 private:
  ExchangeCore* const core_;
  const ReloadFn reload_;
  const StreamRegistry* const streams_;
  const TlsProblemsFn tls_problems_;
  const PeersFn peers_;
};

}  // namespace corridor::broker::grpc_transport
