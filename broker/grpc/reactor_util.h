// Small pieces every streaming service shares: a reactor that only refuses,
// and registering a new stream with the stream registry before it starts.
#pragma once

#include <string>

#include "broker/grpc/status_conversion.h"
#include "broker/grpc/stream_registry.h"
#include "grpcpp/support/server_callback.h"

namespace corridor::broker::grpc_transport {

// Answers a stream with `status` at once; deletes itself when done.
template <typename Req, typename Resp>
class RejectingBidiReactor final : public grpc::ServerBidiReactor<Req, Resp> {
 public:
  explicit RejectingBidiReactor(grpc::Status status) { this->Finish(std::move(status)); }
  void OnDone() override { delete this; }
};

// Registers a new stream's reactor with the stream registry and starts it
// (Reactor::Start(Registration)), or, when a limit refuses it, deletes it
// unstarted and answers with the refusal.
template <typename Req, typename Resp, typename Reactor>
grpc::ServerBidiReactor<Req, Resp>* RegisterAndStart(StreamRegistry* streams,
                                                     const grpc::CallbackServerContext& ctx,
                                                     std::string method, const PeerIdentity& peer,
                                                     Reactor* reactor) {
  auto registration = streams->Register(StreamInfoFor(ctx, std::move(method), peer), reactor);
  if (!registration.ok()) {
    delete reactor;  // never started
    return new RejectingBidiReactor<Req, Resp>(ToGrpcStatus(registration.status()));
  }
  reactor->Start(*std::move(registration));
  return reactor;
}

}  // namespace corridor::broker::grpc_transport
