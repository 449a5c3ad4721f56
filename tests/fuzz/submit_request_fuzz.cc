// libFuzzer target: the bytes of one Exchange.Submit / SubmitStream message,
// taken as the broker takes them. Exchange's raw methods receive a
// grpc::ByteBuffer and parse it with
// grpc::SerializationTraits<v1::SubmitRequest>::Deserialize (with the UTF-8
// validator corridord links, common/protobuf_utf8.cc); then every envelope of
// the request (`envelope` and each of `more`) goes through ValidateEnvelope, as
// ExchangeCore::Submit does before anything is staged. A valid envelope must
// then serialize to bytes whose payload broker/wire.h can find.
//
// Commands: tests/fuzz/README.md.
#include <cstddef>
#include <cstdint>
#include <string>

#include "broker/validation.h"
#include "broker/wire.h"
#include "corridor/v1/exchange.pb.h"
#include "grpc/grpc.h"
#include "grpcpp/impl/codegen/proto_utils.h"
#include "grpcpp/impl/grpc_library.h"
#include "grpcpp/support/byte_buffer.h"
#include "grpcpp/support/proto_buffer_reader.h"
#include "grpcpp/support/slice.h"
#include "tests/fuzz/fuzz_support.h"

namespace {

void CheckEnvelope(const corridor::v1::Envelope& env) {
  corridor::broker::EnvelopeLimits limits;
  const absl::Status s = corridor::broker::ValidateEnvelope(env, corridor::fuzz::FuzzPeer(),
                                                            corridor::fuzz::DemoRegistry(), limits,
                                                            corridor::fuzz::FuzzNow());
  if (!s.ok()) {
    // Every refusal names the field: "envelope...: <reason>".
    if (s.message().rfind("envelope", 0) != 0) __builtin_trap();
    return;
  }
  const std::string bytes = env.SerializeAsString();
  auto payload = corridor::broker::FindPayload(bytes);
  if (!payload.ok()) __builtin_trap();
  if (env.payload_case() != corridor::v1::Envelope::PAYLOAD_NOT_SET && payload->field.empty()) {
    __builtin_trap();
  }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  corridor::fuzz::QuietProtobufLogs();
  static grpc::internal::GrpcLibraryInitializer init;
  grpc_init();
  (void)corridor::fuzz::DemoRegistry();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // Two slices, so that the reader crosses a slice boundary as it does for
  // messages that arrive in several frames.
  const size_t cut = size / 2;
  grpc::Slice parts[2] = {grpc::Slice(data, cut), grpc::Slice(data + cut, size - cut)};
  grpc::ByteBuffer buffer(parts, 2);
  corridor::v1::SubmitRequest request;
  if (!grpc::SerializationTraits<corridor::v1::SubmitRequest>::Deserialize(&buffer, &request)
           .ok()) {
    return 0;
  }
  if (request.has_envelope()) CheckEnvelope(request.envelope());
  for (const corridor::v1::Envelope& env : request.more()) CheckEnvelope(env);
  return 0;
}
