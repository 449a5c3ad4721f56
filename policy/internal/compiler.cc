#include "policy/internal/compiler.h"

#include <algorithm>
#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "policy/redact.h"

namespace corridor::policy::internal {

size_t EditDistance(absl::string_view a, absl::string_view b) {
  std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] != b[j - 1])});
    }
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

namespace {

std::string Suggest(absl::string_view word, const std::vector<std::string>& candidates) {
  size_t best = std::max<size_t>(2, word.size() / 3) + 1;
  std::string out;
  for (const std::string& c : candidates) {
    const size_t d = EditDistance(word, c);
    if (d < best) {
      best = d;
      out = c;
    }
  }
  return out.empty() ? "" : absl::StrCat("; did you mean '", out, "'?");
}

std::string LiteralText(const Expr& e) {
  switch (e.lit) {
    case LitKind::kString:
      return absl::StrCat("\"", e.text, "\" (text)");
    case LitKind::kWord:
      return absl::StrCat(e.text, " (word)");
    case LitKind::kNumber:
      return absl::StrCat(e.text, " (number)");
    case LitKind::kDuration:
      return absl::StrCat(e.text, " (duration)");
    case LitKind::kBool:
      return absl::StrCat(e.text, " (boolean)");
  }
  return e.text;
}

CmpOp Flip(CmpOp op) {
  switch (op) {
    case CmpOp::kLt:
      return CmpOp::kGt;
    case CmpOp::kLe:
      return CmpOp::kGe;
    case CmpOp::kGt:
      return CmpOp::kLt;
    case CmpOp::kGe:
      return CmpOp::kLe;
    default:
      return op;
  }
}

bool IsCondition(const Expr& e) {
  switch (e.kind) {
    case Expr::Kind::kAnd:
    case Expr::Kind::kOr:
    case Expr::Kind::kNot:
    case Expr::Kind::kHas:
    case Expr::Kind::kCompare:
      return true;
    case Expr::Kind::kLiteral:
      return e.lit == LitKind::kBool;
    default:
      return false;
  }
}

// Parses "+08:00", "-05:30", "UTC" or an IANA name.
bool LoadZone(const std::string& name, absl::TimeZone* tz) {
  if (name == "UTC" || name == "Z") {
    *tz = absl::UTCTimeZone();
    return true;
  }
  if (name.size() == 6 && (name[0] == '+' || name[0] == '-') && name[3] == ':') {
    int h = 0, m = 0;
    if (!absl::SimpleAtoi(name.substr(1, 2), &h) || !absl::SimpleAtoi(name.substr(4, 2), &m) ||
        h > 14 || m > 59) {
      return false;
    }
    const int secs = (h * 3600 + m * 60) * (name[0] == '-' ? -1 : 1);
    *tz = absl::FixedTimeZone(secs);
    return true;
  }
  return absl::LoadTimeZone(name, tz);
}

class Compiler {
 public:
  Compiler(const Registry& reg, Program* p, Diagnostics* diag) : reg_(reg), p_(p), diag_(diag) {}

  void Run(const std::vector<FileAst>& files) {
    BuildVocabulary();
    bool have_tz = false;
    Loc tz_loc;
    absl::flat_hash_map<std::string, Loc> ids;
    for (const FileAst& f : files) {
      if (f.has_timezone) {
        if (have_tz) {
          diag_->Error(f.timezone.loc, "a bundle has one 'timezone' directive");
          diag_->Note(tz_loc, "the first one is here");
        } else if (!LoadZone(f.timezone.text, &p_->tz)) {
          diag_->Error(f.timezone.loc, absl::StrCat("unknown time zone '", f.timezone.text,
                                                    "' (use \"+08:00\", \"UTC\" or an IANA name)"));
        } else {
          have_tz = true;
          tz_loc = f.timezone.loc;
          p_->tz_name = f.timezone.text;
        }
      }
      for (const RuleAst& r : f.rules) {
        auto [it, inserted] = ids.emplace(r.id, r.id_loc);
        if (!inserted) {
          diag_->Error(r.id_loc, absl::StrCat("duplicate rule id '", r.id, "'"));
          diag_->Note(it->second, "first defined here");
        }
        CompileRule(r);
      }
    }
    BuildIndex();
    FinishLiterals();
  }

 private:
  void BuildVocabulary() {
    for (const Agency& a : reg_.agencies) {
      p_->kinds.Add(a.kind);
      if (!a.city.empty()) p_->cities.Add(a.city);
      p_->domains.Add(a.domain.empty() ? reg_.trust_domain : a.domain);
      for (const auto& z : a.zones) p_->zones.Add(z);
      for (const auto& g : a.groups) p_->groups.Add(g);
    }
    for (const HandlingCode& h : reg_.handling_codes) p_->codes.Add(h.code);
    for (const std::string& d : reg_.peer_domains) p_->domains.Add(d);
    for (size_t i = 0; i < reg_.agencies.size(); ++i) {
      const Agency& a = reg_.agencies[i];
      AgencyFacts f;
      f.id = a.id;
      f.index = static_cast<int64_t>(i);
      f.kind = p_->kinds.Find(a.kind);
      f.has_city = !a.city.empty();
      f.city = f.has_city ? p_->cities.Find(a.city) : kOther;
      f.domain = p_->domains.Find(a.domain.empty() ? reg_.trust_domain : a.domain);
      const int c = ClassificationFromName(a.clearance);
      f.clearance = c == 0 ? 1 : c;
      for (const auto& z : a.zones) f.zones.Set(p_->zones.Find(z));
      for (const auto& g : a.groups) f.groups.Set(p_->groups.Find(g));
      p_->agency_index[a.id] = static_cast<int>(i);
      p_->agencies.push_back(std::move(f));
    }
  }

  // --- rules -----------------------------------------------------------------

  void CompileRule(const RuleAst& ast) {
    Rule r;
    r.effect = ast.effect;
    r.id = ast.id;
    r.loc = ast.loc;
    r.head_loc = ast.head_loc;
    r.on_loc = ast.on_loc;
    r.from_loc = ast.from_loc;
    r.to_loc = ast.to_loc;
    r.has_on = ast.has_on;
    r.has_from = ast.has_from;
    r.has_to = ast.has_to;
    r.because = ast.because;
    if (!ast.has_because) {
      diag_->Error(ast.id_loc,
                   absl::StrCat("rule '", ast.id, "' has no reason; add because \"…\" before ';'"));
    }
    for (const Named& k : ast.kinds) {
      const int kind = KindFromName(k.text);
      if (kind == 0) {
        diag_->Error(k.loc, absl::StrCat("unknown message kind '", k.text,
                                         "' (tip_off, case_record, patrol_report)"));
        continue;
      }
      r.kinds |= static_cast<uint8_t>(1u << kind);
    }
    r.from = CompileSelectors(ast.from, ast.has_from);
    r.to = CompileSelectors(ast.to, ast.has_to);
    std::set<std::string> redact;
    for (const Named& path : ast.redact) {
      if (absl::Status s = ValidatePayloadPath(path.text); !s.ok()) {
        diag_->Error(path.loc, s.message());
        continue;
      }
      const std::string payload = path.text.substr(0, path.text.find('.'));
      const int kind = KindFromName(payload);
      if (r.kinds != 0 && !((r.kinds >> kind) & 1)) {
        diag_->Error(path.loc, absl::StrCat("redact path '", path.text, "' is a ", payload,
                                            " field, but rule '", ast.id, "' is not on ", payload));
        continue;
      }
      redact.insert(path.text);
    }
    r.redact.assign(redact.begin(), redact.end());

    rule_ = &r;
    for (const auto& w : ast.when) AddParts(*w, /*unless=*/false);
    for (const auto& u : ast.unless) AddParts(*u, /*unless=*/true);
    rule_ = nullptr;

    if (r.effect == Effect::kAssertNever) {
      r.index = static_cast<uint32_t>(p_->assertions.size());
      p_->assertions.push_back(std::move(r));
    } else {
      (r.effect == Effect::kPermit ? p_->permits : p_->forbids)++;
      r.index = static_cast<uint32_t>(p_->rules.size());
      p_->rules.push_back(std::move(r));
    }
  }

  SelectorSet CompileSelectors(const std::vector<Selector>& sels, bool present) {
    SelectorSet out;
    out.any = !present;
    for (const Selector& s : sels) {
      switch (s.kind) {
        case Selector::Kind::kAny:
          out.any = true;
          break;
        case Selector::Kind::kAgency: {
          auto it = p_->agency_index.find(s.value);
          if (it == p_->agency_index.end()) {
            std::vector<std::string> ids;
            for (const auto& a : p_->agencies) ids.push_back(a.id);
            diag_->Error(s.loc, absl::StrCat("unknown agency '", s.value, "' (not in the registry)",
                                             Suggest(s.value, ids)));
          } else {
            out.agencies.Set(it->second);
          }
          break;
        }
        case Selector::Kind::kKind:
          SetName(p_->kinds, "agency kind", s, &out.kinds);
          break;
        case Selector::Kind::kGroup:
          SetName(p_->groups, "group", s, &out.groups);
          break;
        case Selector::Kind::kCity:
          SetName(p_->cities, "city", s, &out.cities);
          break;
        case Selector::Kind::kDomain:
          SetName(p_->domains, "trust domain", s, &out.domains);
          break;
      }
    }
    return out;
  }

  void SetName(const Names& names, absl::string_view what, const Selector& s, Bits* bits) {
    const int id = names.Find(s.value);
    if (id < 0) {
      diag_->Error(s.loc, absl::StrCat("unknown ", what, " '", s.value,
                                       "' (no agency in the registry has it)",
                                       Suggest(s.value, names.names)));
      return;
    }
    bits->Set(id);
  }

  // A when-clause contributes its top-level conjuncts; an unless-clause its
  // top-level disjuncts (each of which must be false).
  void AddParts(const Expr& e, bool unless) {
    const Expr::Kind split = unless ? Expr::Kind::kOr : Expr::Kind::kAnd;
    if (e.kind == split) {
      for (const auto& k : e.children) AddParts(*k, unless);
      return;
    }
    Part part;
    part.unless = unless;
    part.loc = e.loc;
    attrs_.clear();
    const int node = CompileCond(e);
    if (node < 0) return;
    part.node = static_cast<uint32_t>(node);
    part.attrs.assign(attrs_.begin(), attrs_.end());
    rule_->parts.push_back(std::move(part));
  }

  // --- expressions -------------------------------------------------------------

  uint32_t Add(Node n) {
    p_->nodes.push_back(std::move(n));
    return static_cast<uint32_t>(p_->nodes.size() - 1);
  }

  const AttrInfo* ResolveAttr(const Expr& e) {
    const AttrInfo* a = FindAttribute(e.path);
    if (a == nullptr) {
      std::vector<std::string> names;
      for (const AttrInfo& x : Attributes()) names.emplace_back(x.name);
      diag_->Error(e.loc, absl::StrCat("unknown attribute '", e.path, "'", Suggest(e.path, names)));
      return nullptr;
    }
    attrs_.insert(std::string(a->name));
    switch (a->storage) {
      case Storage::kInt:
        rule_->int_slots |= 1u << a->slot;
        break;
      case Storage::kStr:
        rule_->str_slots |= 1u << a->slot;
        break;
      case Storage::kAddressees:
        rule_->reads_addressees = true;
        break;
      case Storage::kSet:
        break;
    }
    return a;
  }

  int CompileCond(const Expr& e) {
    switch (e.kind) {
      case Expr::Kind::kAnd:
      case Expr::Kind::kOr: {
        Node n;
        n.op = e.kind == Expr::Kind::kAnd ? Op::kAnd : Op::kOr;
        bool ok = true;
        for (const auto& k : e.children) {
          const int c = CompileCond(*k);
          ok &= c >= 0;
          n.kids.push_back(static_cast<uint32_t>(std::max(c, 0)));
        }
        return ok ? static_cast<int>(Add(std::move(n))) : -1;
      }
      case Expr::Kind::kNot: {
        const int c = CompileCond(*e.children[0]);
        if (c < 0) return -1;
        Node n;
        n.op = Op::kNot;
        n.kids.push_back(static_cast<uint32_t>(c));
        return static_cast<int>(Add(std::move(n)));
      }
      case Expr::Kind::kHas: {
        const AttrInfo* a = ResolveAttr(*e.children[0]);
        if (a == nullptr) return -1;
        Node n;
        if (a->storage == Storage::kInt) {
          n.op = Op::kHasInt;
          n.slot = a->slot;
        } else if (a->storage == Storage::kStr) {
          n.op = Op::kHasStr;
          n.slot = a->slot;
        } else {
          n.op = Op::kConst;  // sets always have a value (possibly empty)
          n.value = 1;
        }
        return static_cast<int>(Add(std::move(n)));
      }
      case Expr::Kind::kLiteral:
        if (e.lit == LitKind::kBool) {
          Node n;
          n.op = Op::kConst;
          n.value = e.boolean ? 1 : 0;
          return static_cast<int>(Add(std::move(n)));
        }
        diag_->Error(e.loc, absl::StrCat(LiteralText(e), " is a value, not a condition"));
        return -1;
      case Expr::Kind::kAttr: {
        const AttrInfo* a = ResolveAttr(e);
        if (a == nullptr) return -1;
        diag_->Error(e.loc, absl::StrCat("'", e.path, "' is a ", TypeName(a->type),
                                         ", not a condition; compare it with a value"));
        return -1;
      }
      case Expr::Kind::kList:
        diag_->Error(e.loc, "a list is not a condition");
        return -1;
      case Expr::Kind::kCompare:
        return CompileCompare(e);
    }
    return -1;
  }

  // Resolves a literal to the representation of type t: *iv for integer-coded
  // types, *sv for text. `attr` names the other side for error messages.
  bool Coerce(const Expr& lit, Type t, absl::string_view attr, int64_t* iv, std::string* sv) {
    const bool wordy = lit.lit == LitKind::kString || lit.lit == LitKind::kWord;
    auto mismatch = [&] {
      diag_->Error(lit.loc, absl::StrCat("cannot compare ", attr, " (", TypeName(t), ") with ",
                                         LiteralText(lit)));
      return false;
    };
    auto named = [&](const Names& names, absl::string_view what, absl::string_view extra) {
      if (!wordy) return mismatch();
      const int id = names.Find(lit.text);
      if (id < 0) {
        diag_->Error(lit.loc, absl::StrCat("unknown ", what, " '", lit.text, "'", extra,
                                           Suggest(lit.text, names.names)));
        return false;
      }
      *iv = id;
      *sv = lit.text;
      return true;
    };
    switch (t) {
      case Type::kString:
        if (!wordy) return mismatch();
        if (lit.text.empty()) {
          diag_->Error(lit.loc, absl::StrCat("empty text: an empty ", attr,
                                             " is unset; test it with 'has ", attr, "'"));
          return false;
        }
        *sv = lit.text;
        return true;
      case Type::kAgencyId: {
        if (!wordy) return mismatch();
        auto it = p_->agency_index.find(lit.text);
        if (it == p_->agency_index.end()) {
          std::vector<std::string> ids;
          for (const auto& a : p_->agencies) ids.push_back(a.id);
          diag_->Error(lit.loc, absl::StrCat("unknown agency '", lit.text,
                                             "' (not in the registry)", Suggest(lit.text, ids)));
          return false;
        }
        *iv = it->second;
        *sv = lit.text;
        return true;
      }
      case Type::kAgencyKind:
        return named(p_->kinds, "agency kind", " (no agency in the registry has it)");
      case Type::kCity:
        return named(p_->cities, "city", " (no agency in the registry is in it)");
      case Type::kDomain:
        return named(p_->domains, "trust domain",
                     " (neither this exchange's nor a peer's in the registry)");
      case Type::kZone:
        return named(p_->zones, "zone", " (no agency in the registry covers it)");
      case Type::kGroup:
        return named(p_->groups, "group", " (no agency in the registry is in it)");
      case Type::kHandlingCode:
        return named(
            p_->codes, "handling code",
            absl::StrCat(" (the deployment declares ", absl::StrJoin(p_->codes.names, ", "), ")"));
      case Type::kClassification: {
        if (!wordy) return mismatch();
        const int c = ClassificationFromName(lit.text);
        if (c == 0) {
          diag_->Error(lit.loc, absl::StrCat("unknown classification '", lit.text,
                                             "' (unclassified, restricted, confidential, secret)"));
          return false;
        }
        *iv = c;
        return true;
      }
      case Type::kReliability: {
        if (!wordy) return mismatch();
        const std::string u = absl::AsciiStrToUpper(lit.text);
        if (u.size() != 1 || u[0] < 'A' || u[0] > 'F') {
          diag_->Error(lit.loc, absl::StrCat("unknown source reliability '", lit.text,
                                             "' (A, B, C, D, E or F)"));
          return false;
        }
        *iv = u[0] - 'A' + 1;
        return true;
      }
      case Type::kCredibility:
      case Type::kHour: {
        if (lit.lit != LitKind::kNumber) return mismatch();
        const int64_t lo = t == Type::kHour ? 0 : 1, hi = t == Type::kHour ? 23 : 6;
        if (lit.number < lo || lit.number > hi) {
          diag_->Error(lit.loc, absl::StrCat(attr, " is between ", lo, " and ", hi, "; ",
                                             lit.number, " is out of range"));
          return false;
        }
        *iv = lit.number;
        return true;
      }
      case Type::kDuration:
        if (lit.lit != LitKind::kDuration) {
          if (lit.lit == LitKind::kNumber) {
            diag_->Error(lit.loc,
                         absl::StrCat("cannot compare ", attr, " (duration) with ",
                                      LiteralText(lit), "; give a unit, e.g. ", lit.text, "h"));
            return false;
          }
          return mismatch();
        }
        *iv = absl::ToInt64Nanoseconds(lit.duration);
        return true;
      case Type::kTime: {
        if (lit.lit != LitKind::kString) return mismatch();
        absl::Time tm;
        std::string err;
        if (!absl::ParseTime(absl::RFC3339_full, lit.text, &tm, &err)) {
          diag_->Error(lit.loc, absl::StrCat("'", lit.text,
                                             "' is not an RFC 3339 time, e.g. "
                                             "\"2025-06-30T00:00:00+08:00\""));
          return false;
        }
        *iv = absl::ToUnixNanos(tm);
        return true;
      }
      case Type::kMessageKind: {
        if (!wordy) return mismatch();
        const int k = KindFromName(lit.text);
        if (k == 0) {
          diag_->Error(lit.loc, absl::StrCat("unknown message kind '", lit.text,
                                             "' (tip_off, case_record, patrol_report)"));
          return false;
        }
        *iv = k;
        return true;
      }
      default:
        return mismatch();
    }
  }

  void NoteLiteral(const AttrInfo& a, int64_t iv, const std::string& sv) {
    if (a.storage == Storage::kInt) {
      p_->literals.ints[a.slot].push_back(iv);
    } else if (a.storage == Storage::kStr) {
      p_->literals.strs[a.slot].push_back(sv);
    } else if (a.storage == Storage::kAddressees) {
      p_->literals.addressees.push_back(sv);
    }
  }

  int CompileCompare(const Expr& e) {
    const Expr* lhs = e.children[0].get();
    const Expr* rhs = e.children[1].get();
    for (const Expr* side : {lhs, rhs}) {
      if (IsCondition(*side) && side->kind != Expr::Kind::kLiteral) {
        diag_->Error(side->loc, absl::StrCat("the sides of '", CmpOpName(e.op),
                                             "' are values, not conditions; use && || ! to "
                                             "combine conditions"));
        return -1;
      }
    }
    const AttrInfo* la = nullptr;
    const AttrInfo* ra = nullptr;
    if (lhs->kind == Expr::Kind::kAttr && (la = ResolveAttr(*lhs)) == nullptr) return -1;
    if (rhs->kind == Expr::Kind::kAttr && (ra = ResolveAttr(*rhs)) == nullptr) return -1;
    CmpOp op = e.op;
    if (op == CmpOp::kContains) {
      // `S contains x` is `x in S`.
      std::swap(lhs, rhs);
      std::swap(la, ra);
      op = CmpOp::kIn;
      if (rhs->kind != Expr::Kind::kList && (ra == nullptr || !IsSetType(ra->type))) {
        diag_->Error(rhs->loc,
                     "the left of 'contains' must be a set attribute, e.g. "
                     "recipient.groups contains \"anti-smuggling\"");
        return -1;
      }
    }
    switch (op) {
      case CmpOp::kEq:
      case CmpOp::kNe:
      case CmpOp::kLt:
      case CmpOp::kLe:
      case CmpOp::kGt:
      case CmpOp::kGe:
        return CompileScalar(e, op, lhs, la, rhs, ra);
      case CmpOp::kIn:
        return CompileIn(e, lhs, la, rhs, ra);
      case CmpOp::kIntersects:
        return CompileIntersects(e, lhs, la, rhs, ra);
      case CmpOp::kLike:
        return CompileLike(e, lhs, la, rhs);
      case CmpOp::kContains:
        break;
    }
    return -1;
  }

  int CompileScalar(const Expr& e, CmpOp op, const Expr* lhs, const AttrInfo* la, const Expr* rhs,
                    const AttrInfo* ra) {
    for (const Expr* side : {lhs, rhs}) {
      if (side->kind == Expr::Kind::kList) {
        diag_->Error(side->loc, "a list can only follow 'in' or 'intersects'");
        return -1;
      }
    }
    if (la == nullptr && ra == nullptr) {
      diag_->Error(e.loc, "compare an attribute with a value (both sides are values)");
      return -1;
    }
    if (la == nullptr) {
      std::swap(lhs, rhs);
      std::swap(la, ra);
      op = Flip(op);
    }
    const Type t = la->type;
    if (IsSetType(t)) {
      diag_->Error(lhs->loc, absl::StrCat("'", la->name, "' is a ", TypeName(t),
                                          "; use contains, in or intersects"));
      return -1;
    }
    const bool ordered = op != CmpOp::kEq && op != CmpOp::kNe;
    if (ordered && !IsOrdered(t)) {
      diag_->Error(e.op_loc, absl::StrCat("'", CmpOpName(op), "' needs an ordered value, but ",
                                          la->name, " is a ", TypeName(t),
                                          " (ordered: classification, reliability, credibility, "
                                          "hour, duration, time)"));
      return -1;
    }
    Node n;
    n.cmp = op;
    n.slot = la->slot;
    if (ra != nullptr) {
      if (ra->type != t) {
        diag_->Error(rhs->loc, absl::StrCat("cannot compare ", la->name, " (", TypeName(t),
                                            ") with ", ra->name, " (", TypeName(ra->type), ")"));
        return -1;
      }
      n.slot2 = ra->slot;
      if (la->storage == Storage::kStr) {
        n.op = Op::kStrCmpSlot;
        n.negate = op == CmpOp::kNe;
      } else {
        n.op = Op::kIntCmpSlot;
      }
      return static_cast<int>(Add(std::move(n)));
    }
    int64_t iv = 0;
    std::string sv;
    if (!Coerce(*rhs, t, la->name, &iv, &sv)) return -1;
    NoteLiteral(*la, iv, sv);
    if (la->storage == Storage::kStr) {
      n.op = Op::kStrCmp;
      n.str = sv;
      n.negate = op == CmpOp::kNe;
    } else {
      n.op = Op::kIntCmp;
      n.value = iv;
    }
    return static_cast<int>(Add(std::move(n)));
  }

  int CompileIn(const Expr& e, const Expr* lhs, const AttrInfo* la, const Expr* rhs,
                const AttrInfo* ra) {
    if (lhs->kind == Expr::Kind::kList) {
      diag_->Error(lhs->loc, "a list cannot be the left of 'in'; did you mean 'intersects'?");
      return -1;
    }
    if (la != nullptr && IsSetType(la->type)) {
      diag_->Error(lhs->loc, absl::StrCat("'", la->name, "' is a ", TypeName(la->type),
                                          "; use 'intersects' to compare sets"));
      return -1;
    }
    Node n;
    if (rhs->kind == Expr::Kind::kList) {
      if (la == nullptr) {
        diag_->Error(lhs->loc, "the left of 'in' must be an attribute when the right is a list");
        return -1;
      }
      bool ok = true;
      std::set<int64_t> ints;
      for (const auto& item : rhs->children) {
        int64_t iv = 0;
        std::string sv;
        if (!Coerce(*item, la->type, la->name, &iv, &sv)) {
          ok = false;
          continue;
        }
        NoteLiteral(*la, iv, sv);
        ints.insert(iv);
        n.str_set.insert(sv);
      }
      if (!ok) return -1;
      n.slot = la->slot;
      if (la->storage == Storage::kStr) {
        n.op = Op::kStrIn;
      } else {
        n.op = Op::kIntIn;
        n.values.assign(ints.begin(), ints.end());
        n.str_set.clear();
      }
      return static_cast<int>(Add(std::move(n)));
    }
    if (ra == nullptr || !IsSetType(ra->type)) {
      diag_->Error(rhs->loc, absl::StrCat("the right of 'in' must be a list [ … ] or a set "
                                          "attribute (zones, groups, message.addressees)"));
      return -1;
    }
    const Type elem = ElementType(ra->type);
    if (la != nullptr) {
      if (la->type != elem) {
        diag_->Error(lhs->loc, absl::StrCat("cannot look for ", la->name, " (", TypeName(la->type),
                                            ") in ", ra->name, " (", TypeName(ra->type), ")"));
        return -1;
      }
      if (ra->storage == Storage::kAddressees) {
        n.op = Op::kAddrHasAgency;
        n.slot = la->slot == kSenderId ? 0 : 1;
      } else {
        n.op = Op::kIntInSet;
        n.slot = la->slot;
        n.slot2 = ra->slot;
      }
      return static_cast<int>(Add(std::move(n)));
    }
    int64_t iv = 0;
    std::string sv;
    if (!Coerce(*lhs, elem, ra->name, &iv, &sv)) return -1;
    NoteLiteral(*ra, iv, sv);
    if (ra->storage == Storage::kAddressees) {
      n.op = Op::kAddrHasStr;
      n.str = sv;
    } else {
      n.op = Op::kSetHas;
      n.slot = ra->slot;
      n.value = iv;
    }
    return static_cast<int>(Add(std::move(n)));
  }

  int CompileIntersects(const Expr& e, const Expr* lhs, const AttrInfo* la, const Expr* rhs,
                        const AttrInfo* ra) {
    if (la == nullptr || !IsSetType(la->type)) {
      std::swap(lhs, rhs);
      std::swap(la, ra);
    }
    if (la == nullptr || !IsSetType(la->type)) {
      diag_->Error(e.loc,
                   "'intersects' needs a set attribute on one side (zones, groups, "
                   "message.addressees)");
      return -1;
    }
    const Type elem = ElementType(la->type);
    Node n;
    n.slot = la->slot;
    if (ra != nullptr) {
      if (ra->type != la->type || la->storage != Storage::kSet) {
        diag_->Error(rhs->loc, absl::StrCat("cannot intersect ", la->name, " (", TypeName(la->type),
                                            ") with ", ra->name, " (", TypeName(ra->type), ")"));
        return -1;
      }
      n.op = Op::kSetIntersects;
      n.slot2 = ra->slot;
      return static_cast<int>(Add(std::move(n)));
    }
    if (rhs->kind != Expr::Kind::kList) {
      diag_->Error(rhs->loc, "the other side of 'intersects' must be a set attribute or a list");
      return -1;
    }
    bool ok = true;
    for (const auto& item : rhs->children) {
      int64_t iv = 0;
      std::string sv;
      if (!Coerce(*item, elem, la->name, &iv, &sv)) {
        ok = false;
        continue;
      }
      NoteLiteral(*la, iv, sv);
      n.bits.Set(iv);
      n.str_set.insert(sv);
    }
    if (!ok) return -1;
    n.op = la->storage == Storage::kAddressees ? Op::kAddrIntersectsStrs : Op::kSetIntersectsBits;
    return static_cast<int>(Add(std::move(n)));
  }

  int CompileLike(const Expr& e, const Expr* lhs, const AttrInfo* la, const Expr* rhs) {
    if (la == nullptr || la->type != Type::kString) {
      diag_->Error(
          lhs->loc,
          absl::StrCat("'like' matches text (message.topic, message.purpose, "
                       "message.case_ref)",
                       la ? absl::StrCat("; ", la->name, " is a ", TypeName(la->type)) : ""));
      return -1;
    }
    if (rhs->kind != Expr::Kind::kLiteral || rhs->lit != LitKind::kString || rhs->text.empty()) {
      diag_->Error(rhs->loc, "'like' takes a quoted pattern, e.g. \"smuggling.*\"");
      return -1;
    }
    Node n;
    n.op = Op::kStrLike;
    n.slot = la->slot;
    n.glob = Glob(rhs->text);
    for (std::string& w : n.glob.Witnesses()) p_->literals.strs[la->slot].push_back(std::move(w));
    return static_cast<int>(Add(std::move(n)));
  }

  // --- index -------------------------------------------------------------------

  // The first when-conjunct of r that pins the topic, if any.
  const Node* TopicPin(const Rule& r) const {
    for (const Part& part : r.parts) {
      if (part.unless) continue;
      const Node& n = p_->nodes[part.node];
      if (n.slot != kMsgTopic) continue;
      if ((n.op == Op::kStrCmp && !n.negate) || n.op == Op::kStrIn ||
          (n.op == Op::kStrLike && !n.glob.DottedPrefix().empty())) {
        return &n;
      }
    }
    return nullptr;
  }

  static void AddToIndex(const Rule& r, const Node* pin, KindIndex* ix) {
    ix->all.push_back(r.index);
    if (pin == nullptr) {
      ix->generic.push_back(r.index);
    } else if (pin->op == Op::kStrCmp) {
      ix->exact[pin->str].push_back(r.index);
    } else if (pin->op == Op::kStrIn) {
      for (const std::string& s : pin->str_set) ix->exact[s].push_back(r.index);
    } else {
      ix->prefix[pin->glob.DottedPrefix()].push_back(r.index);
    }
  }

  // Per recipient index entries are bounded by agencies × rules × kinds.
  static constexpr size_t kMaxRecipientIndexEntries = 8'000'000;

  void BuildIndex() {
    const size_t n_agencies = p_->agencies.size();
    const bool per_recipient = n_agencies * p_->rules.size() * 4 <= kMaxRecipientIndexEntries;
    if (per_recipient) p_->by_recipient.resize(n_agencies);
    for (Rule& r : p_->rules) {
      for (const AgencyFacts& a : p_->agencies) {
        if (r.from.Match(a)) r.from_registered.Set(a.index);
      }
      const Node* pin = TopicPin(r);
      for (int k = 0; k <= 3; ++k) {
        if (k == 0 ? r.kinds != 0 : !r.KindMatch(k)) continue;
        AddToIndex(r, pin, &p_->by_kind[k]);
        if (!per_recipient) continue;
        for (const AgencyFacts& a : p_->agencies) {
          if (r.to.Match(a)) AddToIndex(r, pin, &p_->by_recipient[a.index][k]);
        }
      }
    }
  }

  void FinishLiterals() {
    for (auto& v : p_->literals.ints) {
      std::sort(v.begin(), v.end());
      v.erase(std::unique(v.begin(), v.end()), v.end());
    }
    for (auto& v : p_->literals.strs) {
      std::sort(v.begin(), v.end());
      v.erase(std::unique(v.begin(), v.end()), v.end());
    }
    auto& a = p_->literals.addressees;
    std::sort(a.begin(), a.end());
    a.erase(std::unique(a.begin(), a.end()), a.end());
  }

  const Registry& reg_;
  Program* p_;
  Diagnostics* diag_;
  Rule* rule_ = nullptr;
  std::set<std::string> attrs_;
};

}  // namespace

void Compile(const std::vector<FileAst>& files, const Registry& registry, Program* p,
             Diagnostics* diag) {
  Compiler c(registry, p, diag);
  c.Run(files);
}

}  // namespace corridor::policy::internal
