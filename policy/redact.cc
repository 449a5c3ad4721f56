#include "policy/redact.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/message.h"

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

}  // namespace

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
