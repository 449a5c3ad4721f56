// libFuzzer target: the broker's YAML config (broker/config.h ParseConfig:
// yaml-cpp, the broker section, the agency registry). A config that parses
// must carry a registry whose agencies all pass IsValidAgencyId; a refusal is
// INVALID_ARGUMENT (never an exception that escapes).
//
// Commands: tests/fuzz/README.md.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "broker/config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto cfg = corridor::broker::ParseConfig(text, "/fuzz-base");
  if (!cfg.ok()) {
    if (cfg.status().code() != absl::StatusCode::kInvalidArgument) __builtin_trap();
    return 0;
  }
  if (cfg->registry == nullptr) __builtin_trap();
  for (const auto& a : cfg->registry->agencies) {
    if (!corridor::policy::IsValidAgencyId(a.id)) __builtin_trap();
  }
  return 0;
}
