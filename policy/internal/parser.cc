#include "policy/internal/parser.h"

#include <cctype>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "common/utf8.h"

namespace corridor::policy::internal {

// A token quoted in a message ("found '…'"), at most this many bytes.
constexpr size_t kMaxQuotedToken = 60;

const char* CmpOpName(CmpOp op) {
  switch (op) {
    case CmpOp::kEq:
      return "==";
    case CmpOp::kNe:
      return "!=";
    case CmpOp::kLt:
      return "<";
    case CmpOp::kLe:
      return "<=";
    case CmpOp::kGt:
      return ">";
    case CmpOp::kGe:
      return ">=";
    case CmpOp::kIn:
      return "in";
    case CmpOp::kContains:
      return "contains";
    case CmpOp::kIntersects:
      return "intersects";
    case CmpOp::kLike:
      return "like";
  }
  return "?";
}

bool IsReservedWord(absl::string_view word) {
  static const auto* const kWords = new absl::flat_hash_set<absl::string_view>{
      "permit",  "forbid", "assert", "never", "timezone", "when",   "unless",    "redact",
      "because", "on",     "from",   "to",    "any",      "in",     "contains",  "intersects",
      "like",    "has",    "true",   "false", "message",  "sender", "recipient", "context"};
  return kWords->contains(word);
}

namespace {

enum class Tok { kEnd, kIdent, kString, kNumber, kDuration, kPunct, kBad };

struct Token {
  Tok kind = Tok::kEnd;
  Loc loc;
  absl::string_view text;  // raw source text
  std::string value;       // decoded string
  int64_t number = 0;
  absl::Duration duration;
  std::string error;  // kBad: what is wrong
};

bool IsWordChar(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-';
}

class Lexer {
 public:
  Lexer(absl::string_view text, uint32_t file) : text_(text), file_(file) {}

  Token Next() {
    SkipSpaceAndComments();
    Token t;
    t.loc = {file_, static_cast<uint32_t>(pos_), 0};
    if (pos_ >= text_.size()) {
      t.kind = Tok::kEnd;
      return t;
    }
    const size_t start = pos_;
    const char c = text_[pos_];
    if (std::isalnum(static_cast<unsigned char>(c)) || c == '_') {
      while (pos_ < text_.size() && IsWordChar(text_[pos_])) ++pos_;
      t.text = text_.substr(start, pos_ - start);
      ClassifyWord(&t);
    } else if (c == '"') {
      LexString(&t);
    } else {
      LexPunct(&t);
    }
    t.loc.length = static_cast<uint32_t>(pos_ - start);
    if (t.text.empty()) t.text = text_.substr(start, pos_ - start);
    return t;
  }

 private:
  void SkipSpaceAndComments() {
    while (pos_ < text_.size()) {
      const char c = text_[pos_];
      if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
        ++pos_;
      } else if (c == '#' || (c == '/' && pos_ + 1 < text_.size() && text_[pos_ + 1] == '/')) {
        while (pos_ < text_.size() && text_[pos_] != '\n') ++pos_;
      } else {
        break;
      }
    }
  }

  // A run of [A-Za-z0-9_-]: all digits is a number, (digits unit)+ a duration,
  // anything else a word.
  static void ClassifyWord(Token* t) {
    absl::string_view w = t->text;
    bool all_digits = true;
    for (char ch : w) all_digits &= std::isdigit(static_cast<unsigned char>(ch)) != 0;
    if (all_digits) {
      int64_t v = 0;
      for (char ch : w) {
        if (v > (INT64_MAX - 9) / 10) {
          t->kind = Tok::kBad;
          t->error = "number out of range";
          return;
        }
        v = v * 10 + (ch - '0');
      }
      t->kind = Tok::kNumber;
      t->number = v;
      return;
    }
    if (std::isdigit(static_cast<unsigned char>(w[0]))) {
      absl::Duration d;
      size_t i = 0;
      bool ok = true;
      while (i < w.size() && ok) {
        int64_t v = 0;
        size_t digits = 0;
        while (i < w.size() && std::isdigit(static_cast<unsigned char>(w[i]))) {
          if (v > 1000000000) {  // not a duration; stop before v overflows
            ok = false;
            break;
          }
          v = v * 10 + (w[i] - '0');
          ++i;
          ++digits;
        }
        if (digits == 0 || i >= w.size()) {
          ok = false;
          break;
        }
        switch (w[i]) {
          case 'd':
            d += absl::Hours(24 * v);
            break;
          case 'h':
            d += absl::Hours(v);
            break;
          case 'm':
            d += absl::Minutes(v);
            break;
          case 's':
            d += absl::Seconds(v);
            break;
          default:
            ok = false;
        }
        ++i;
      }
      if (ok) {
        t->kind = Tok::kDuration;
        t->duration = d;
        return;
      }
    }
    t->kind = Tok::kIdent;
  }

  void LexString(Token* t) {
    ++pos_;  // opening quote
    while (true) {
      if (pos_ >= text_.size() || text_[pos_] == '\n') {
        t->kind = Tok::kBad;
        t->error = "unterminated string";
        return;
      }
      const char c = text_[pos_];
      if (c == '"') {
        ++pos_;
        t->kind = Tok::kString;
        return;
      }
      if (c == '\\') {
        if (pos_ + 1 >= text_.size()) {
          t->kind = Tok::kBad;
          t->error = "unterminated string";
          return;
        }
        const char e = text_[pos_ + 1];
        switch (e) {
          case '"':
          case '\\':
            t->value.push_back(e);
            break;
          case 'n':
            t->value.push_back('\n');
            break;
          case 't':
            t->value.push_back('\t');
            break;
          default:
            t->kind = Tok::kBad;
            t->error = "unknown escape (use \\\", \\\\, \\n or \\t)";
            pos_ += 2;
            return;
        }
        pos_ += 2;
        continue;
      }
      t->value.push_back(c);
      ++pos_;
    }
  }

  void LexPunct(Token* t) {
    const char c = text_[pos_];
    const char n = pos_ + 1 < text_.size() ? text_[pos_ + 1] : '\0';
    auto two = [&](const char* s) {
      t->kind = Tok::kPunct;
      t->text = text_.substr(pos_, 2);
      pos_ += 2;
      (void)s;
    };
    auto one = [&]() {
      t->kind = Tok::kPunct;
      t->text = text_.substr(pos_, 1);
      pos_ += 1;
    };
    if ((c == '=' && n == '=') || (c == '!' && n == '=') || (c == '<' && n == '=') ||
        (c == '>' && n == '=') || (c == '&' && n == '&') || (c == '|' && n == '|')) {
      two("");
      return;
    }
    switch (c) {
      case '(':
      case ')':
      case '[':
      case ']':
      case '{':
      case '}':
      case ',':
      case ';':
      case ':':
      case '.':
      case '<':
      case '>':
      case '!':
        one();
        return;
      default:
        break;
    }
    t->kind = Tok::kBad;
    size_t i = pos_;
    DecodeUtf8(text_, &i);
    t->text = text_.substr(pos_, i - pos_);
    if (c == '=') {
      t->error = "unexpected '='; did you mean '=='?";
    } else if (c == '&') {
      t->error = "unexpected '&'; did you mean '&&'?";
    } else if (c == '|') {
      t->error = "unexpected '|'; did you mean '||'?";
    } else {
      t->error = absl::StrCat("unexpected character '", t->text, "'");
    }
    pos_ = i;
  }

  absl::string_view text_;
  uint32_t file_;
  size_t pos_ = 0;
};

// Thrown inside the parser only, after the error is reported; Parser::Run catches
// it, so no exception leaves this file. It keeps the descent free of error plumbing.
struct SyntaxError {};

class Parser {
 public:
  Parser(const SourceSet& sources, uint32_t file, Diagnostics* diag)
      : lexer_(sources.text(file), file), diag_(diag), file_(file) {}

  FileAst Run() {
    FileAst out;
    try {
      Advance();
      while (tok_.kind != Tok::kEnd) {
        if (IsWord("permit") || IsWord("forbid") || IsWord("assert")) {
          out.rules.push_back(ParseRule());
        } else if (IsWord("timezone")) {
          const Loc loc = tok_.loc;
          Advance();
          if (tok_.kind != Tok::kString) Fail("expected a time zone string, e.g. \"+08:00\"");
          if (out.has_timezone) {
            diag_->Error(loc, "duplicate 'timezone' directive");
            throw SyntaxError{};
          }
          out.has_timezone = true;
          out.timezone = {tok_.value, tok_.loc};
          Advance();
          Expect(";", "after the time zone");
        } else {
          Fail("expected 'permit', 'forbid', 'assert never' or 'timezone'");
        }
      }
    } catch (const SyntaxError&) {
    }
    return out;
  }

 private:
  void Advance() {
    prev_end_ = tok_.loc.offset + tok_.loc.length;
    // A 'because' text gets its own message, naming the rule (ParseRule).
    const bool after_because = IsWord("because");
    tok_ = lexer_.Next();
    if (tok_.kind == Tok::kBad) {
      diag_->Error(tok_.loc, tok_.error);
      throw SyntaxError{};
    }
    // Policy text reaches audit entries (a rule's reasons) and diagnostics:
    // it must be UTF-8, like everything the broker stores.
    if (tok_.kind == Tok::kString && !after_because && !IsValidUtf8(tok_.value)) {
      diag_->Error(tok_.loc, "this string is not valid UTF-8 (policy text must be UTF-8)");
      throw SyntaxError{};
    }
  }

  bool IsWord(absl::string_view w) const { return tok_.kind == Tok::kIdent && tok_.text == w; }
  bool IsPunct(absl::string_view p) const { return tok_.kind == Tok::kPunct && tok_.text == p; }

  std::string Found() const {
    if (tok_.kind == Tok::kEnd) return "end of file";
    return absl::StrCat("'",
                        ScrubUtf8(Utf8Truncated(
                            std::string_view(tok_.text.data(), tok_.text.size()), kMaxQuotedToken)),
                        "'");
  }

  [[noreturn]] void Fail(absl::string_view what) {
    diag_->Error(tok_.loc, absl::StrCat(what, ", found ", Found()));
    throw SyntaxError{};
  }

  void Expect(absl::string_view punct, absl::string_view context) {
    if (!IsPunct(punct)) Fail(absl::StrCat("expected '", punct, "' ", context));
    Advance();
  }

  Loc Span(const Loc& from) const {
    return {file_, from.offset, prev_end_ > from.offset ? prev_end_ - from.offset : 0};
  }

  RuleAst ParseRule() {
    RuleAst r;
    r.loc = tok_.loc;
    if (IsWord("permit")) {
      r.effect = Effect::kPermit;
    } else if (IsWord("forbid")) {
      r.effect = Effect::kForbid;
    } else {
      Advance();
      if (!IsWord("never")) Fail("expected 'never' after 'assert'");
      r.effect = Effect::kAssertNever;
    }
    Advance();
    if (tok_.kind != Tok::kIdent || IsReservedWord(tok_.text)) {
      Fail("expected a rule id (letters, digits, '_' and '-')");
    }
    r.id = std::string(tok_.text);
    r.id_loc = tok_.loc;
    Advance();
    if (IsPunct("(")) ParseScope(&r);
    r.head_loc = Span(r.loc);
    while (!IsPunct(";")) {
      if (IsWord("when") || IsWord("unless")) {
        const bool when = IsWord("when");
        Advance();
        Expect("{", when ? "after 'when'" : "after 'unless'");
        auto e = ParseExpr();
        Expect("}", "to close the condition");
        (when ? r.when : r.unless).push_back(std::move(e));
      } else if (IsWord("redact")) {
        if (r.effect == Effect::kAssertNever) Fail("an 'assert never' cannot redact");
        Advance();
        Expect("[", "after 'redact'");
        while (!IsPunct("]")) {
          r.redact.push_back(ParsePath());
          if (IsPunct(",")) {
            Advance();
          } else if (!IsPunct("]")) {
            Fail("expected ',' or ']' in the redact list");
          }
        }
        Advance();
      } else if (IsWord("because")) {
        if (r.has_because) Fail("a rule has one 'because'");
        Advance();
        if (tok_.kind != Tok::kString) Fail("expected a quoted reason after 'because'");
        if (!IsValidUtf8(tok_.value)) {
          diag_->Error(tok_.loc, absl::StrCat("the 'because' text of rule '", r.id,
                                              "' is not valid UTF-8 (it would be written into "
                                              "audit entries, which must be UTF-8)"));
          throw SyntaxError{};
        }
        r.has_because = true;
        r.because = tok_.value;
        r.because_loc = tok_.loc;
        Advance();
      } else if (tok_.kind == Tok::kEnd) {
        Fail("expected ';' to end the rule");
      } else {
        Fail("expected 'when', 'unless', 'redact', 'because' or ';'");
      }
    }
    Advance();  // ;
    return r;
  }

  Named ParsePath() {
    if (tok_.kind != Tok::kIdent) Fail("expected a payload field path, e.g. tip_off.informant");
    Named n;
    const Loc start = tok_.loc;
    n.text = std::string(tok_.text);
    Advance();
    while (IsPunct(".")) {
      Advance();
      if (tok_.kind != Tok::kIdent) Fail("expected a field name after '.'");
      absl::StrAppend(&n.text, ".", tok_.text);
      Advance();
    }
    n.loc = Span(start);
    return n;
  }

  void ParseScope(RuleAst* r) {
    Advance();  // (
    while (!IsPunct(")")) {
      const Loc start = tok_.loc;
      if (IsWord("on")) {
        if (r->has_on) Fail("duplicate 'on' in the scope");
        Advance();
        r->has_on = true;
        auto one = [&] {
          if (tok_.kind != Tok::kIdent) {
            Fail("expected a message kind (tip_off, case_record, patrol_report)");
          }
          r->kinds.push_back({std::string(tok_.text), tok_.loc});
          Advance();
        };
        if (IsPunct("[")) {
          Advance();
          while (!IsPunct("]")) {
            one();
            if (IsPunct(",")) {
              Advance();
            } else if (!IsPunct("]")) {
              Fail("expected ',' or ']' in the list of kinds");
            }
          }
          Advance();
        } else {
          one();
        }
        r->on_loc = Span(start);
      } else if (IsWord("from") || IsWord("to")) {
        const bool from = IsWord("from");
        if (from ? r->has_from : r->has_to) {
          Fail(absl::StrCat("duplicate '", from ? "from" : "to", "' in the scope"));
        }
        Advance();
        (from ? r->has_from : r->has_to) = true;
        std::vector<Selector>& out = from ? r->from : r->to;
        if (IsPunct("[")) {
          Advance();
          while (!IsPunct("]")) {
            out.push_back(ParseSelector());
            if (IsPunct(",")) {
              Advance();
            } else if (!IsPunct("]")) {
              Fail("expected ',' or ']' in the list of agencies");
            }
          }
          Advance();
        } else {
          out.push_back(ParseSelector());
        }
        (from ? r->from_loc : r->to_loc) = Span(start);
      } else {
        Fail("expected 'on', 'from' or 'to' in the scope");
      }
      if (IsPunct(",")) {
        Advance();
      } else if (!IsPunct(")")) {
        Fail("expected ',' or ')' in the scope");
      }
    }
    Advance();  // )
  }

  Selector ParseSelector() {
    Selector s;
    const Loc start = tok_.loc;
    if (IsWord("any")) {
      s.kind = Selector::Kind::kAny;
      Advance();
      s.loc = Span(start);
      return s;
    }
    if (IsWord("agency")) {
      s.kind = Selector::Kind::kAgency;
    } else if (IsWord("kind")) {
      s.kind = Selector::Kind::kKind;
    } else if (IsWord("group")) {
      s.kind = Selector::Kind::kGroup;
    } else if (IsWord("city")) {
      s.kind = Selector::Kind::kCity;
    } else if (IsWord("domain")) {
      s.kind = Selector::Kind::kDomain;
    } else {
      Fail("expected 'any', agency:ID, kind:KIND, group:GROUP, city:CITY or domain:DOMAIN");
    }
    Advance();
    Expect(":", "after the selector (e.g. kind:police)");
    if (tok_.kind == Tok::kString) {
      s.value = tok_.value;
    } else if (tok_.kind == Tok::kIdent || tok_.kind == Tok::kNumber) {
      s.value = std::string(tok_.text);
    } else {
      Fail("expected a name after ':'");
    }
    Advance();
    s.loc = Span(start);
    return s;
  }

  std::unique_ptr<Expr> Node(Expr::Kind kind, const Loc& start) {
    auto e = std::make_unique<Expr>();
    e->kind = kind;
    e->loc = Span(start);
    return e;
  }

  std::unique_ptr<Expr> ParseExpr() {
    if (++depth_ > 64) Fail("expression nested too deeply");
    auto e = ParseOr();
    --depth_;
    return e;
  }

  std::unique_ptr<Expr> ParseOr() {
    const Loc start = tok_.loc;
    auto first = ParseAnd();
    if (!IsPunct("||")) return first;
    std::vector<std::unique_ptr<Expr>> kids;
    kids.push_back(std::move(first));
    while (IsPunct("||")) {
      Advance();
      kids.push_back(ParseAnd());
    }
    auto e = Node(Expr::Kind::kOr, start);
    e->children = std::move(kids);
    return e;
  }

  std::unique_ptr<Expr> ParseAnd() {
    const Loc start = tok_.loc;
    auto first = ParseUnary();
    if (!IsPunct("&&")) return first;
    std::vector<std::unique_ptr<Expr>> kids;
    kids.push_back(std::move(first));
    while (IsPunct("&&")) {
      Advance();
      kids.push_back(ParseUnary());
    }
    auto e = Node(Expr::Kind::kAnd, start);
    e->children = std::move(kids);
    return e;
  }

  std::unique_ptr<Expr> ParseUnary() {
    const Loc start = tok_.loc;
    if (IsPunct("!")) {
      if (++depth_ > 64) Fail("expression nested too deeply");
      Advance();
      auto inner = ParseUnary();
      --depth_;
      auto e = Node(Expr::Kind::kNot, start);
      e->children.push_back(std::move(inner));
      return e;
    }
    if (IsWord("has")) {
      Advance();
      if (!IsRoot()) Fail("expected an attribute after 'has', e.g. has message.case_ref");
      auto attr = ParseAttr();
      auto e = Node(Expr::Kind::kHas, start);
      e->children.push_back(std::move(attr));
      return e;
    }
    return ParseCompare();
  }

  bool IsRoot() const {
    return IsWord("message") || IsWord("sender") || IsWord("recipient") || IsWord("context");
  }

  bool AtCmpOp(CmpOp* op) const {
    if (tok_.kind == Tok::kPunct) {
      if (tok_.text == "==") return *op = CmpOp::kEq, true;
      if (tok_.text == "!=") return *op = CmpOp::kNe, true;
      if (tok_.text == "<") return *op = CmpOp::kLt, true;
      if (tok_.text == "<=") return *op = CmpOp::kLe, true;
      if (tok_.text == ">") return *op = CmpOp::kGt, true;
      if (tok_.text == ">=") return *op = CmpOp::kGe, true;
      return false;
    }
    if (IsWord("in")) return *op = CmpOp::kIn, true;
    if (IsWord("contains")) return *op = CmpOp::kContains, true;
    if (IsWord("intersects")) return *op = CmpOp::kIntersects, true;
    if (IsWord("like")) return *op = CmpOp::kLike, true;
    return false;
  }

  std::unique_ptr<Expr> ParseCompare() {
    const Loc start = tok_.loc;
    auto lhs = ParsePrimary();
    CmpOp op;
    if (!AtCmpOp(&op)) return lhs;
    const Loc op_loc = tok_.loc;
    Advance();
    auto rhs = ParsePrimary();
    auto e = Node(Expr::Kind::kCompare, start);
    e->op = op;
    e->op_loc = op_loc;
    e->children.push_back(std::move(lhs));
    e->children.push_back(std::move(rhs));
    CmpOp again;
    if (AtCmpOp(&again)) Fail("comparisons do not chain; join them with '&&'");
    return e;
  }

  std::unique_ptr<Expr> ParseAttr() {
    const Loc start = tok_.loc;
    std::string path(tok_.text);
    Advance();
    if (!IsPunct(".")) {
      Fail(absl::StrCat("expected '.' and an attribute name after '", path, "'"));
    }
    while (IsPunct(".")) {
      Advance();
      if (tok_.kind != Tok::kIdent) Fail("expected an attribute name after '.'");
      absl::StrAppend(&path, ".", tok_.text);
      Advance();
    }
    auto e = Node(Expr::Kind::kAttr, start);
    e->path = std::move(path);
    return e;
  }

  std::unique_ptr<Expr> ParseLiteral() {
    const Loc start = tok_.loc;
    auto e = std::make_unique<Expr>();
    e->kind = Expr::Kind::kLiteral;
    switch (tok_.kind) {
      case Tok::kString:
        e->lit = LitKind::kString;
        e->text = tok_.value;
        break;
      case Tok::kNumber:
        e->lit = LitKind::kNumber;
        e->number = tok_.number;
        e->text = std::string(tok_.text);
        break;
      case Tok::kDuration:
        e->lit = LitKind::kDuration;
        e->duration = tok_.duration;
        e->text = std::string(tok_.text);
        break;
      case Tok::kIdent:
        if (IsWord("true") || IsWord("false")) {
          e->lit = LitKind::kBool;
          e->boolean = IsWord("true");
          e->text = std::string(tok_.text);
        } else if (IsReservedWord(tok_.text)) {
          Fail("expected a value");
        } else {
          e->lit = LitKind::kWord;
          e->text = std::string(tok_.text);
        }
        break;
      default:
        Fail("expected a value");
    }
    Advance();
    e->loc = Span(start);
    return e;
  }

  std::unique_ptr<Expr> ParsePrimary() {
    const Loc start = tok_.loc;
    if (IsPunct("(")) {
      Advance();
      auto e = ParseExpr();
      Expect(")", "to close '('");
      e->loc = Span(start);  // include the parentheses
      return e;
    }
    if (IsPunct("[")) {
      Advance();
      std::vector<std::unique_ptr<Expr>> items;
      while (!IsPunct("]")) {
        items.push_back(ParseLiteral());
        if (IsPunct(",")) {
          Advance();
        } else if (!IsPunct("]")) {
          Fail("expected ',' or ']' in the list");
        }
      }
      Advance();
      auto e = Node(Expr::Kind::kList, start);
      e->children = std::move(items);
      return e;
    }
    if (IsRoot()) return ParseAttr();
    if (tok_.kind == Tok::kIdent && IsReservedWord(tok_.text) && !IsWord("true") &&
        !IsWord("false")) {
      Fail("expected an attribute, a value, '(' or '['");
    }
    if (tok_.kind == Tok::kEnd || tok_.kind == Tok::kPunct) {
      Fail("expected an attribute, a value, '(' or '['");
    }
    return ParseLiteral();
  }

  Lexer lexer_;
  Diagnostics* diag_;
  uint32_t file_;
  Token tok_;
  uint32_t prev_end_ = 0;
  int depth_ = 0;
};

}  // namespace

FileAst ParseFile(const SourceSet& sources, uint32_t file, Diagnostics* diag) {
  Parser p(sources, file, diag);
  return p.Run();
}

}  // namespace corridor::policy::internal
