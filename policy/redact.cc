#include "policy/redact.h"

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/wire_append.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/message.h"
#include "google/protobuf/wire_format_lite.h"

namespace corridor::policy {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
using google::protobuf::Reflection;

absl::Status Unknown(std::string_view path, absl::string_view why) {
  const absl::string_view p(path.data(), path.size());
  return absl::InvalidArgumentError(absl::StrCat("unknown payload field path '", p, "': ", why));
}

// Resolves `path` to its chain of field descriptors.
absl::Status Resolve(std::string_view path, std::vector<const FieldDescriptor*>* chain) {
  if (path.empty()) return Unknown(path, "empty path");
  const Descriptor* d = corridor::v1::Envelope::descriptor();
  size_t i = 0;
  for (absl::string_view seg : absl::StrSplit(absl::string_view(path.data(), path.size()), '.')) {
    if (seg.empty()) return Unknown(path, "empty segment");
    if (d == nullptr) {
      return Unknown(path, absl::StrCat("'", chain->back()->name(),
                                        "' is not a message, so it has no field '", seg, "'"));
    }
    const FieldDescriptor* f = d->FindFieldByName(std::string(seg));
    if (f == nullptr) {
      return Unknown(path, absl::StrCat(d->full_name(), " has no field '", seg, "'"));
    }
    if (i == 0) {
      const auto* oneof = f->containing_oneof();
      if (oneof == nullptr || oneof->name() != "payload") {
        return Unknown(path, absl::StrCat("'", seg,
                                          "' is not a payload; a path starts with tip_off, "
                                          "case_record or patrol_report"));
      }
    }
    chain->push_back(f);
    d = f->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE ? f->message_type() : nullptr;
    ++i;
  }
  return absl::OkStatus();
}

void ClearChain(Message* m, const std::vector<const FieldDescriptor*>& chain, size_t i) {
  const Reflection* r = m->GetReflection();
  const FieldDescriptor* f = chain[i];
  if (i + 1 == chain.size()) {
    r->ClearField(m, f);
    return;
  }
  if (f->is_repeated()) {
    const int n = r->FieldSize(*m, f);
    for (int j = 0; j < n; ++j) ClearChain(r->MutableRepeatedMessage(m, f, j), chain, i + 1);
    return;
  }
  if (!r->HasField(*m, f)) return;  // absent (or another payload): nothing to clear
  ClearChain(r->MutableMessage(m, f), chain, i + 1);
}

using WFL = google::protobuf::internal::WireFormatLite;

// Copies the message `bytes` to `out` without the fields the chains name at
// `depth` (a chain ending there), recursing into the fields a chain passes
// through. False when `bytes` is not a message.
bool Strip(std::string_view bytes, const std::vector<const std::vector<int>*>& chains, size_t depth,
           std::string* out) {
  google::protobuf::io::CodedInputStream in(reinterpret_cast<const uint8_t*>(bytes.data()),
                                            static_cast<int>(bytes.size()));
  std::vector<const std::vector<int>*> deeper;
  for (;;) {
    const size_t start = static_cast<size_t>(in.CurrentPosition());
    const uint32_t tag = in.ReadTag();
    if (tag == 0) return in.CurrentPosition() == static_cast<int>(bytes.size());
    const int number = WFL::GetTagFieldNumber(tag);
    bool cut = false;
    deeper.clear();
    for (const std::vector<int>* chain : chains) {
      if ((*chain)[depth] != number) continue;
      if (chain->size() == depth + 1) {
        cut = true;
      } else {
        deeper.push_back(chain);
      }
    }
    if (!deeper.empty() && !cut && WFL::GetTagWireType(tag) == WFL::WIRETYPE_LENGTH_DELIMITED) {
      uint32_t length = 0;
      if (!in.ReadVarint32(&length)) return false;
      const size_t at = static_cast<size_t>(in.CurrentPosition());
      if (length > bytes.size() - at || !in.Skip(static_cast<int>(length))) return false;
      std::string inner;
      if (!Strip(bytes.substr(at, length), deeper, depth + 1, &inner)) return false;
      AppendLengthDelimited(out, number, inner);
      continue;
    }
    if (!WFL::SkipField(&in, tag)) return false;
    if (!cut) out->append(bytes.substr(start, static_cast<size_t>(in.CurrentPosition()) - start));
  }
}

// The field numbers along `path`, resolved once per thread (the paths are the
// policy's, a handful; the map is dropped if it ever grows large). Returned by
// value: a later lookup may grow or clear the map.
absl::StatusOr<std::vector<int>> FieldNumbers(const std::string& path) {
  thread_local absl::flat_hash_map<std::string, std::vector<int>> resolved;
  if (auto it = resolved.find(path); it != resolved.end()) return it->second;
  std::vector<const FieldDescriptor*> chain;
  if (absl::Status s = Resolve(path, &chain); !s.ok()) return s;
  std::vector<int> numbers;
  for (const FieldDescriptor* f : chain) numbers.push_back(f->number());
  if (resolved.size() >= 4096) resolved.clear();
  resolved.emplace(path, numbers);
  return numbers;
}

}  // namespace

absl::StatusOr<std::string> RedactSerialized(std::string_view envelope,
                                             const std::vector<std::string>& paths) {
  std::vector<std::vector<int>> numbers;
  numbers.reserve(paths.size());
  for (const std::string& path : paths) {
    auto resolved = FieldNumbers(path);
    if (!resolved.ok()) return resolved.status();
    numbers.push_back(*std::move(resolved));
  }
  std::vector<const std::vector<int>*> chains;
  chains.reserve(numbers.size());
  for (const auto& n : numbers) chains.push_back(&n);
  std::string out;
  out.reserve(envelope.size());
  if (!Strip(envelope, chains, 0, &out)) {
    return absl::DataLossError("redact: the envelope's bytes are not a message");
  }
  return out;
}

absl::Status ValidatePayloadPath(std::string_view path) {
  std::vector<const FieldDescriptor*> chain;
  return Resolve(path, &chain);
}

absl::Status Redact(corridor::v1::Envelope* msg, const std::vector<std::string>& paths) {
  std::vector<std::vector<const FieldDescriptor*>> chains(paths.size());
  for (size_t i = 0; i < paths.size(); ++i) {
    if (absl::Status s = Resolve(paths[i], &chains[i]); !s.ok()) return s;
  }
  for (const auto& chain : chains) ClearChain(msg, chain, 0);
  return absl::OkStatus();
}

}  // namespace corridor::policy
