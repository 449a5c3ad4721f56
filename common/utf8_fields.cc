#include "common/utf8_fields.h"

#include <cstdint>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "common/utf8.h"
#include "google/protobuf/reflection.h"
#include "google/protobuf/unknown_field_set.h"

namespace corridor {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;
using google::protobuf::UnknownField;
using google::protobuf::UnknownFieldSet;

// Deeper nesting than protobuf's own parser allows (100) is not walked.
constexpr int kMaxDepth = 100;

bool Parse(std::string_view bytes, UnknownFieldSet* set) {
  if (bytes.size() > static_cast<size_t>(INT32_MAX)) return false;
  return set->ParseFromArray(bytes.data(), static_cast<int>(bytes.size()));
}

// Appends to `path` the path below `type` of the first invalid string and
// returns true; leaves `path` as it was and returns false when there is none.
bool Walk(const Descriptor& type, std::string_view bytes, int depth, std::string* path) {
  if (depth > kMaxDepth) return false;
  UnknownFieldSet set;
  if (!Parse(bytes, &set)) return false;
  absl::flat_hash_map<int, int> seen;  // occurrences so far, per field number
  for (int i = 0; i < set.field_count(); ++i) {
    const UnknownField& f = set.field(i);
    const FieldDescriptor* fd = type.FindFieldByNumber(f.number());
    if (fd == nullptr) continue;
    const int occurrence = seen[f.number()]++;
    if (f.type() != UnknownField::TYPE_LENGTH_DELIMITED) continue;
    const bool is_string = fd->type() == FieldDescriptor::TYPE_STRING;
    const bool is_message = fd->type() == FieldDescriptor::TYPE_MESSAGE;
    if (!is_string && !is_message) continue;
    const std::string& value = f.length_delimited();
    if (is_string && IsValidUtf8(value)) continue;
    const size_t before = path->size();
    if (!path->empty()) path->push_back('.');
    path->append(fd->name());
    if (fd->is_repeated()) absl::StrAppend(path, "[", occurrence, "]");
    if (is_string) return true;
    if (Walk(*fd->message_type(), value, depth + 1, path)) return true;
    path->resize(before);
  }
  return false;
}

}  // namespace

std::optional<std::string> FindInvalidUtf8Field(const Descriptor& type, std::string_view bytes,
                                                std::string_view root) {
  std::string path(root);
  if (!Walk(type, bytes, 0, &path)) return std::nullopt;
  return path;
}

std::optional<uint64_t> ReadTopLevelVarint(std::string_view bytes, int number) {
  UnknownFieldSet set;
  if (!Parse(bytes, &set)) return std::nullopt;
  std::optional<uint64_t> out;
  for (int i = 0; i < set.field_count(); ++i) {
    const UnknownField& f = set.field(i);
    if (f.number() == number && f.type() == UnknownField::TYPE_VARINT) out = f.varint();
  }
  return out;
}

std::optional<std::string> ReadTopLevelBytes(std::string_view bytes, int number) {
  UnknownFieldSet set;
  if (!Parse(bytes, &set)) return std::nullopt;
  std::optional<std::string> out;
  for (int i = 0; i < set.field_count(); ++i) {
    const UnknownField& f = set.field(i);
    if (f.number() == number && f.type() == UnknownField::TYPE_LENGTH_DELIMITED) {
      out = f.length_delimited();
    }
  }
  return out;
}

int ScrubInvalidUtf8Strings(google::protobuf::Message* message) {
  const google::protobuf::Reflection* r = message->GetReflection();
  std::vector<const FieldDescriptor*> fields;
  r->ListFields(*message, &fields);
  int replaced = 0;
  for (const FieldDescriptor* fd : fields) {
    if (fd->type() == FieldDescriptor::TYPE_STRING) {
      if (fd->is_repeated()) {
        for (int i = 0; i < r->FieldSize(*message, fd); ++i) {
          const std::string v = r->GetRepeatedString(*message, fd, i);
          if (IsValidUtf8(v)) continue;
          r->SetRepeatedString(message, fd, i, ScrubUtf8(v));
          ++replaced;
        }
      } else {
        const std::string v = r->GetString(*message, fd);
        if (IsValidUtf8(v)) continue;
        r->SetString(message, fd, ScrubUtf8(v));
        ++replaced;
      }
    } else if (fd->type() == FieldDescriptor::TYPE_MESSAGE) {
      if (fd->is_repeated()) {
        for (int i = 0; i < r->FieldSize(*message, fd); ++i) {
          replaced += ScrubInvalidUtf8Strings(r->MutableRepeatedMessage(message, fd, i));
        }
      } else {
        replaced += ScrubInvalidUtf8Strings(r->MutableMessage(message, fd));
      }
    }
  }
  return replaced;
}

}  // namespace corridor
