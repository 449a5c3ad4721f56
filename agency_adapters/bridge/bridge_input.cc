#include "agency_adapters/bridge/bridge_input.h"

#include "agency_adapters/cli/common.h"

namespace corridor::bridge {

absl::StatusOr<std::optional<v1::Envelope>> ParseEnvelopeLine(const std::string& line) {
  if (line.find_first_not_of(" \t\r") == std::string::npos) return std::nullopt;
  v1::Envelope env;
  if (auto s = corridor::cli::FromJson(line, &env); !s.ok()) return s;
  return env;
}

}  // namespace corridor::bridge
