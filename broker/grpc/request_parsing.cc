#include "broker/grpc/request_parsing.h"

#include <cstdint>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/utf8.h"
#include "common/utf8_fields.h"
#include "google/protobuf/unknown_field_set.h"
#include "grpcpp/support/slice.h"

namespace corridor::broker::grpc_transport {

using google::protobuf::UnknownField;
using google::protobuf::UnknownFieldSet;

std::string BufferBytes(const grpc::ByteBuffer& buffer) {
  std::vector<grpc::Slice> slices;
  std::string bytes;
  if (!buffer.Dump(&slices).ok()) return bytes;
  for (const grpc::Slice& s : slices) {
    bytes.append(reinterpret_cast<const char*>(s.begin()), s.size());
  }
  return bytes;
}

std::optional<SalvagedSubmitRequest> SalvageSubmitRequest(const std::string& bytes) {
  if (bytes.size() > static_cast<size_t>(INT32_MAX)) return std::nullopt;
  UnknownFieldSet fields;
  if (!fields.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) return std::nullopt;
  // `envelope` may occur more than once: a parser merges the occurrences,
  // which equals parsing their concatenation.
  std::optional<std::string> first;
  std::vector<std::string> more;
  SalvagedSubmitRequest out;
  for (int i = 0; i < fields.field_count(); ++i) {
    const UnknownField& f = fields.field(i);
    switch (f.number()) {
      case v1::SubmitRequest::kEnvelopeFieldNumber:
        if (f.type() != UnknownField::TYPE_LENGTH_DELIMITED) return std::nullopt;
        if (!first) first.emplace();
        first->append(f.length_delimited());
        break;
      case v1::SubmitRequest::kMoreFieldNumber:
        if (f.type() != UnknownField::TYPE_LENGTH_DELIMITED) return std::nullopt;
        more.push_back(f.length_delimited());
        break;
      case v1::SubmitRequest::kBatchRepliesFieldNumber:
        if (f.type() != UnknownField::TYPE_VARINT) return std::nullopt;
        out.request.set_batch_replies(f.varint() != 0);
        break;
      default:
        break;  // an unknown field: a strict parse keeps it aside, harmlessly
    }
  }
  // Parses one envelope into `env`, or records why it is refused; false when
  // it is malformed in another way than UTF-8.
  auto take = [&out](const std::string& env_bytes, size_t position, v1::Envelope* env) {
    if (env->ParseFromString(env_bytes)) return true;
    env->Clear();
    std::optional<std::string> field =
        FindInvalidUtf8Field(*v1::Envelope::descriptor(), env_bytes, "envelope");
    if (!field) return false;
    RefusedEnvelope r;
    r.position = position;
    r.status = absl::InvalidArgumentError(absl::StrCat(*field, ": not valid UTF-8"));
    std::optional<std::string> id =
        ReadTopLevelBytes(env_bytes, v1::Envelope::kClientMessageIdFieldNumber);
    if (id && IsValidUtf8(*id)) r.client_message_id = *std::move(id);
    out.refused.push_back(std::move(r));
    return true;
  };
  if (first && !take(*first, 0, out.request.mutable_envelope())) return std::nullopt;
  for (size_t i = 0; i < more.size(); ++i) {
    if (!take(more[i], i + 1, out.request.add_more())) return std::nullopt;
  }
  // Nothing refused: the strict parse failed for a reason not found here.
  if (out.refused.empty()) return std::nullopt;
  return out;
}

}  // namespace corridor::broker::grpc_transport
