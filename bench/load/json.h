// A minimal JSON object builder for the load generator's summary.
//
//   Json j;
//   j.Set("system", "corridor").Set("acked", 1234).Set("latency", Json().Set("p99_us", 812.5));
//   std::string text = j.Dump();
//
// Keys keep insertion order. Not thread-safe.
#pragma once

#include <cmath>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace corridor::load {

class Json {
 public:
  Json& Set(const std::string& key, const std::string& v) { return Raw(key, Quote(v)); }
  Json& Set(const std::string& key, const char* v) { return Raw(key, Quote(v)); }
  Json& Set(const std::string& key, bool v) { return Raw(key, v ? "true" : "false"); }
  Json& Set(const std::string& key, int v) { return Raw(key, absl::StrCat(v)); }
  Json& Set(const std::string& key, int64_t v) { return Raw(key, absl::StrCat(v)); }
  Json& Set(const std::string& key, uint64_t v) { return Raw(key, absl::StrCat(v)); }
  Json& Set(const std::string& key, uint32_t v) { return Raw(key, absl::StrCat(v)); }
  Json& Set(const std::string& key, double v) {
    return Raw(key, std::isfinite(v) ? absl::StrFormat("%.6g", v) : "null");
  }
  Json& Set(const std::string& key, const Json& v) { return Raw(key, v.Dump()); }
  Json& SetNull(const std::string& key) { return Raw(key, "null"); }
  Json& SetArray(const std::string& key, const std::vector<Json>& items) {
    std::string s = "[";
    for (size_t i = 0; i < items.size(); ++i) absl::StrAppend(&s, i ? "," : "", items[i].Dump());
    return Raw(key, s + "]");
  }
  Json& SetNumbers(const std::string& key, const std::vector<double>& items) {
    std::string s = "[";
    for (size_t i = 0; i < items.size(); ++i) {
      absl::StrAppend(&s, i ? "," : "", absl::StrFormat("%.6g", items[i]));
    }
    return Raw(key, s + "]");
  }
  Json& Raw(const std::string& key, std::string raw) {
    fields_.emplace_back(key, std::move(raw));
    return *this;
  }

  std::string Dump() const {
    std::string s = "{";
    for (size_t i = 0; i < fields_.size(); ++i) {
      absl::StrAppend(&s, i ? "," : "", Quote(fields_[i].first), ":", fields_[i].second);
    }
    return s + "}";
  }

  static std::string Quote(const std::string& v) {
    std::string s = "\"";
    for (unsigned char c : v) {
      if (c == '"' || c == '\\') {
        s.push_back('\\');
        s.push_back(static_cast<char>(c));
      } else if (c < 0x20) {
        absl::StrAppend(&s, absl::StrFormat("\\u%04x", c));
      } else {
        s.push_back(static_cast<char>(c));
      }
    }
    return s + "\"";
  }

 private:
  std::vector<std::pair<std::string, std::string>> fields_;
};

}  // namespace corridor::load
