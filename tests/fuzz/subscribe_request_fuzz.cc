// libFuzzer target: the bytes of one Exchange.Subscribe stream message, taken
// as the broker takes them: grpc::SerializationTraits<v1::SubscribeRequest>::
// Deserialize on a grpc::ByteBuffer (with corridord's UTF-8 validator), then
// ParamsFromOpen (subscription name, topic filters, start position, window and
// deadline limits) for an open, or the ack's seqs. Each accepted filter is
// then matched against a few topics; "*" must match them all.
//
// Commands: tests/fuzz/README.md.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "broker/exchange_core.h"
#include "broker/validation.h"
#include "corridor/v1/exchange.pb.h"
#include "grpc/grpc.h"
#include "grpcpp/impl/codegen/proto_utils.h"
#include "grpcpp/impl/grpc_library.h"
#include "grpcpp/support/byte_buffer.h"
#include "grpcpp/support/proto_buffer_reader.h"
#include "grpcpp/support/slice.h"
#include "tests/fuzz/fuzz_support.h"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  corridor::fuzz::QuietProtobufLogs();
  static grpc::internal::GrpcLibraryInitializer init;
  grpc_init();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const size_t cut = size / 2;
  grpc::Slice parts[2] = {grpc::Slice(data, cut), grpc::Slice(data + cut, size - cut)};
  grpc::ByteBuffer buffer(parts, 2);
  corridor::v1::SubscribeRequest request;
  if (!grpc::SerializationTraits<corridor::v1::SubscribeRequest>::Deserialize(&buffer, &request)
           .ok()) {
    return 0;
  }
  if (request.request_case() == corridor::v1::SubscribeRequest::kAck) {
    std::vector<uint64_t> seqs(request.ack().seqs().begin(), request.ack().seqs().end());
    (void)seqs;
    return 0;
  }
  if (request.request_case() != corridor::v1::SubscribeRequest::kOpen) return 0;
  auto params = corridor::broker::ParamsFromOpen(request.open());
  if (!params.ok()) {
    if (params.status().message().find("open.") != 0) __builtin_trap();  // names the field
    return 0;
  }
  if (!corridor::broker::ValidateSubscriptionName(params->name, "name").ok()) __builtin_trap();
  static const char* const kTopics[] = {"smuggling", "smuggling.frozen_goods",
                                        "smuggling.fuel.diesel", "patrol.zs_north", "a"};
  for (const std::string& f : params->topic_filters) {
    for (const char* t : kTopics) {
      const bool match = corridor::broker::TopicMatches(f, t);
      if (f == "*" && !match) __builtin_trap();
      if (f == t && !match) __builtin_trap();
    }
  }
  return 0;
}
