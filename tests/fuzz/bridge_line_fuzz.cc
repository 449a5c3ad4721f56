// libFuzzer target: corridor-bridge's input. The input is a JSON-lines
// document, split into lines as `corridor-bridge submit` splits stdin
// (std::getline); each line goes through corridor::bridge::ParseEnvelopeLine
// (protobuf JSON mapping of corridor.v1.Envelope, unknown fields refused).
// Each envelope that parses is then serialized and parsed back as the broker
// receives it (with corridord's UTF-8 validator) and validated
// (ValidateEnvelope), as ExchangeCore::Submit does.
//
// Commands: tests/fuzz/README.md.
#include <cstddef>
#include <cstdint>
#include <sstream>
#include <string>

#include "agency_adapters/bridge/bridge_input.h"
#include "broker/validation.h"
#include "tests/fuzz/fuzz_support.h"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  corridor::fuzz::QuietProtobufLogs();
  (void)corridor::fuzz::DemoRegistry();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::istringstream in(std::string(reinterpret_cast<const char*>(data), size));
  std::string line;
  while (std::getline(in, line)) {
    auto env = corridor::bridge::ParseEnvelopeLine(line);
    if (!env.ok()) {
      if (env.status().message().rfind("JSON: ", 0) != 0) __builtin_trap();
      continue;
    }
    if (!env->has_value()) continue;
    corridor::v1::Envelope received;
    if (!received.ParseFromString((*env)->SerializeAsString())) continue;
    corridor::broker::EnvelopeLimits limits;
    (void)corridor::broker::ValidateEnvelope(received, corridor::fuzz::FuzzPeer(),
                                             corridor::fuzz::DemoRegistry(), limits,
                                             corridor::fuzz::FuzzNow());
  }
  return 0;
}
