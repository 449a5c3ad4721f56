#include "policy/internal/source.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "common/utf8.h"

namespace corridor::policy::internal {
namespace {

// A quoted source line longer than this is shown in part (a policy can have a
// line of any length; an error message must stay small: it travels in a gRPC
// trailer).
constexpr uint32_t kMaxQuotedLine = 120;
// How much of a long line is shown before the error's column.
constexpr uint32_t kQuotedBefore = 40;

bool IsContinuation(char c) { return (static_cast<unsigned char>(c) & 0xC0) == 0x80; }

}  // namespace

char32_t DecodeUtf8(absl::string_view s, size_t* i) {
  const auto b0 = static_cast<unsigned char>(s[*i]);
  auto cont = [&](size_t k) -> int {
    if (*i + k >= s.size()) return -1;
    const auto b = static_cast<unsigned char>(s[*i + k]);
    return (b & 0xC0) == 0x80 ? (b & 0x3F) : -1;
  };
  if (b0 < 0x80) {
    ++*i;
    return b0;
  }
  int n = 0;
  char32_t c = 0;
  if ((b0 & 0xE0) == 0xC0) {
    n = 1;
    c = b0 & 0x1F;
  } else if ((b0 & 0xF0) == 0xE0) {
    n = 2;
    c = b0 & 0x0F;
  } else if ((b0 & 0xF8) == 0xF0) {
    n = 3;
    c = b0 & 0x07;
  } else {
    ++*i;
    return 0xFFFD;
  }
  for (int k = 1; k <= n; ++k) {
    int v = cont(k);
    if (v < 0) {
      ++*i;
      return 0xFFFD;
    }
    c = (c << 6) | static_cast<char32_t>(v);
  }
  *i += n + 1;
  return c;
}

int DisplayWidth(char32_t c) {
  // The East Asian Wide / Fullwidth blocks that occur in practice.
  if ((c >= 0x1100 && c <= 0x115F) || (c >= 0x2E80 && c <= 0x303E) ||
      (c >= 0x3041 && c <= 0x33FF) || (c >= 0x3400 && c <= 0x4DBF) ||
      (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0xA000 && c <= 0xA4CF) ||
      (c >= 0xAC00 && c <= 0xD7A3) || (c >= 0xF900 && c <= 0xFAFF) ||
      (c >= 0xFE30 && c <= 0xFE4F) || (c >= 0xFF00 && c <= 0xFF60) ||
      (c >= 0xFFE0 && c <= 0xFFE6) || (c >= 0x20000 && c <= 0x3FFFD)) {
    return 2;
  }
  return 1;
}

uint32_t SourceSet::Add(std::string name, std::string text) {
  File f;
  f.name = std::move(name);
  f.text = std::move(text);
  f.line_starts.push_back(0);
  for (uint32_t i = 0; i < f.text.size(); ++i) {
    if (f.text[i] == '\n') f.line_starts.push_back(i + 1);
  }
  files_.push_back(std::move(f));
  return static_cast<uint32_t>(files_.size() - 1);
}

LineCol SourceSet::Position(const Loc& loc) const {
  const File& f = files_[loc.file];
  const uint32_t off = std::min<uint32_t>(loc.offset, f.text.size());
  auto it = std::upper_bound(f.line_starts.begin(), f.line_starts.end(), off);
  const uint32_t line = static_cast<uint32_t>(it - f.line_starts.begin());
  const uint32_t start = f.line_starts[line - 1];
  uint32_t col = 1;
  size_t i = start;
  absl::string_view text(f.text);
  while (i < off) {
    DecodeUtf8(text, &i);
    ++col;
  }
  return {line, col};
}

absl::string_view SourceSet::Slice(const Loc& loc) const {
  const std::string& t = files_[loc.file].text;
  if (loc.offset >= t.size()) return {};
  return absl::string_view(t).substr(loc.offset, loc.length);
}

std::string SourceSet::Where(const Loc& loc) const {
  const LineCol lc = Position(loc);
  return absl::StrCat(files_[loc.file].name, ":", lc.line, ":", lc.col);
}

std::string SourceSet::Render(const Loc& loc, absl::string_view severity,
                              absl::string_view message) const {
  const File& f = files_[loc.file];
  const LineCol lc = Position(loc);
  std::string out =
      absl::StrCat(f.name, ":", lc.line, ":", lc.col, ": ", severity, ": ", message, "\n");
  const uint32_t start = f.line_starts[lc.line - 1];
  uint32_t end = start;
  while (end < f.text.size() && f.text[end] != '\n' && f.text[end] != '\r') ++end;
  const uint32_t off = std::min<uint32_t>(std::max(loc.offset, start), end);
  // A long line is quoted in part: a window of kMaxQuotedLine bytes from a
  // little before the error, cut on character boundaries, "…" where cut.
  uint32_t from = start, to = end;
  if (end - start > kMaxQuotedLine) {
    from = off - start > kQuotedBefore ? off - kQuotedBefore : start;
    while (from > start && IsContinuation(f.text[from])) --from;
    to = std::min<uint32_t>(end, from + kMaxQuotedLine);
    while (to < end && to > from && IsContinuation(f.text[to])) --to;
  }
  const absl::string_view line = absl::string_view(f.text).substr(from, to - from);
  const char* const lead = from > start ? "\xE2\x80\xA6" : "";  // …
  const char* const trail = to < end ? "\xE2\x80\xA6" : "";
  const std::string number = absl::StrCat(lc.line);
  const std::string pad(std::max<size_t>(number.size(), 4), ' ');
  // Invalid UTF-8 is shown as U+FFFD, one per byte, as the caret counts it.
  absl::StrAppend(&out, std::string(pad.size() - number.size(), ' '), number, " | ", lead,
                  ScrubUtf8(std::string_view(line.data(), line.size())), trail, "\n");
  std::string caret(from > start ? 1 : 0, ' ');
  const size_t rel_off = std::min<uint32_t>(off, to) - from;
  size_t i = 0;
  while (i < rel_off) {
    const char c = line[i];
    const char32_t cp = DecodeUtf8(line, &i);
    if (c == '\t') {
      caret.push_back('\t');
    } else {
      caret.append(static_cast<size_t>(DisplayWidth(cp)), ' ');
    }
  }
  caret.push_back('^');
  const uint32_t span_end = std::min<uint32_t>(loc.offset + loc.length, to);
  size_t width = 0;
  if (span_end > off && off >= from) {
    size_t j = off - from;
    bool first = true;
    while (j < span_end - from) {
      const char32_t cp = DecodeUtf8(line, &j);
      const int w = DisplayWidth(cp);
      width += first ? static_cast<size_t>(w - 1) : static_cast<size_t>(w);
      first = false;
    }
  }
  caret.append(width, '~');
  absl::StrAppend(&out, pad, " | ", caret, "\n");
  return out;
}

void Diagnostics::Error(const Loc& loc, absl::string_view message) {
  ++errors_;
  text_ += sources_->Render(loc, "error", message);
}

void Diagnostics::Note(const Loc& loc, absl::string_view message) {
  text_ += sources_->Render(loc, "note", message);
}

void Diagnostics::ErrorNoLoc(absl::string_view message) {
  ++errors_;
  absl::StrAppend(&text_, "error: ", message, "\n");
}

std::string Diagnostics::Text() const {
  return absl::StrCat(text_, errors_, errors_ == 1 ? " error" : " errors");
}

}  // namespace corridor::policy::internal
