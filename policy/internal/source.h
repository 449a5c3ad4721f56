// Policy source files and the diagnostics that point into them.
//
// A SourceSet owns the text of every file of a bundle; a Loc is a byte range in
// one of them. Diagnostics render clang-style, with `file:line:col`, the
// offending line and a caret under the offending text:
//
//   demo.policy:12:10: error: unknown attribute 'message.topci'; did you mean 'message.topic'?
//      12 |   when { message.topci like "smuggling.*" }
//         |          ^~~~~~~~~~~~~
//
// Columns count Unicode code points from 1; the caret line pads East Asian wide
// characters with two spaces so it lines up under Chinese text in a terminal.
// A line longer than 120 bytes is quoted in part (from a little before the
// error's column, cut on character boundaries, "…" where cut), so that a
// message stays small whatever the source; bytes that are not UTF-8 are shown
// as U+FFFD.
// Not thread-safe while being filled; immutable afterwards.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"

namespace corridor::policy::internal {

struct Loc {
  uint32_t file = 0;
  uint32_t offset = 0;  // byte offset of the first character
  uint32_t length = 0;  // bytes; 0 renders a single caret
};

struct LineCol {
  uint32_t line = 1;  // 1-based
  uint32_t col = 1;   // 1-based, in code points
};

class SourceSet {
 public:
  // Adds a file and returns its index.
  uint32_t Add(std::string name, std::string text);

  const std::string& name(uint32_t file) const { return files_[file].name; }
  const std::string& text(uint32_t file) const { return files_[file].text; }
  size_t size() const { return files_.size(); }

  LineCol Position(const Loc& loc) const;
  // The source text a Loc spans (clipped to its line's end is NOT applied).
  absl::string_view Slice(const Loc& loc) const;
  // "demo.policy:12:10".
  std::string Where(const Loc& loc) const;
  // One diagnostic: "<where>: <severity>: <message>\n<gutter> line\n<gutter> caret\n".
  std::string Render(const Loc& loc, absl::string_view severity, absl::string_view message) const;

 private:
  struct File {
    std::string name;
    std::string text;
    std::vector<uint32_t> line_starts;
  };
  std::vector<File> files_;
};

// Collects diagnostics in the order they are reported.
class Diagnostics {
 public:
  explicit Diagnostics(const SourceSet* sources) : sources_(sources) {}

  void Error(const Loc& loc, absl::string_view message);
  // A note attached to the previous error (e.g. the rule that caused it).
  void Note(const Loc& loc, absl::string_view message);
  // An error not tied to a source position (e.g. a missing directory).
  void ErrorNoLoc(absl::string_view message);

  size_t error_count() const { return errors_; }
  bool has_errors() const { return errors_ > 0; }
  // All diagnostics, rendered, followed by "N error(s)".
  std::string Text() const;

 private:
  const SourceSet* sources_;
  std::string text_;
  size_t errors_ = 0;
};

// Decodes one UTF-8 code point at s[*i] and advances *i; returns U+FFFD on
// malformed input (advancing one byte).
char32_t DecodeUtf8(absl::string_view s, size_t* i);
// Terminal display width of a code point: 2 for East Asian wide, else 1.
int DisplayWidth(char32_t c);

}  // namespace corridor::policy::internal
