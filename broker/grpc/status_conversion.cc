#include "broker/grpc/status_conversion.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "common/utf8.h"

namespace corridor::broker::grpc_transport {

grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  // absl and gRPC share the canonical code numbering.
  const auto code = static_cast<grpc::StatusCode>(status.code());
  const std::string_view message(status.message().data(), status.message().size());
  // The encoded size of each prefix; cut where the budget, less room for the
  // note saying so, runs out.
  constexpr size_t kBudget = kMaxEncodedStatusMessage - 64;
  size_t encoded = 0, cut = message.size();
  for (size_t i = 0; i < message.size(); ++i) {
    const auto c = static_cast<unsigned char>(message[i]);
    encoded += (c >= 0x20 && c <= 0x7E && c != '%') ? 1 : 3;
    if (encoded > kBudget && cut == message.size()) cut = i;
  }
  if (encoded <= kMaxEncodedStatusMessage) return grpc::Status(code, std::string(message));
  const std::string_view kept = Utf8Prefix(message, cut);
  return grpc::Status(
      code, absl::StrCat(absl::string_view(kept.data(), kept.size()),
                         "\xE2\x80\xA6 (message cut: ", message.size(), " bytes in all)"));
}

absl::Status FromGrpcStatus(const grpc::Status& status) {
  if (status.ok()) return absl::OkStatus();
  return absl::Status(static_cast<absl::StatusCode>(status.error_code()), status.error_message());
}

}  // namespace corridor::broker::grpc_transport
