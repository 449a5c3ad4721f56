// `assert never` checking: enumerate every registered sender × recipient ×
// message kind the assertion covers and, for each, every combination of
// representative values of the message and context attributes that the
// assertion or the rules in scope read. A case the assertion's condition
// describes (or cannot rule out: an evaluation error counts as "may apply")
// must not be permitted by the bundle.
//
// Representative values: the whole domain of enum-like attributes (handling
// codes, classifications, zones, grading) plus "unset"; for ordered
// attributes (age, time, hour) each literal the policy compares them with and
// its neighbours; for text each literal, a witness for each `like` pattern,
// a text no rule names, and unset.
#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "policy/internal/compiler.h"

namespace corridor::policy::internal {
namespace {

struct Dim {
  enum class Kind { kInt, kStr, kAddr } kind = Kind::kInt;
  uint8_t slot = 0;
  std::vector<std::pair<bool, int64_t>> ints;  // (has value, value)
  std::vector<std::string> strs;               // "" = unset
  std::vector<std::vector<std::string>> addrs;
  size_t size() const {
    return kind == Kind::kInt ? ints.size() : kind == Kind::kStr ? strs.size() : addrs.size();
  }
};

std::vector<std::pair<bool, int64_t>> IntDomain(const Program& p, int slot) {
  std::vector<std::pair<bool, int64_t>> out = {{false, 0}};
  auto range = [&](int64_t lo, int64_t hi) {
    for (int64_t v = lo; v <= hi; ++v) out.push_back({true, v});
  };
  const auto& lits = p.literals.ints[slot];
  auto around = [&](int64_t step, int64_t lo, int64_t hi, std::vector<int64_t> base) {
    for (int64_t v : lits) {
      base.push_back(v - step);
      base.push_back(v);
      base.push_back(v + step);
    }
    std::sort(base.begin(), base.end());
    base.erase(std::unique(base.begin(), base.end()), base.end());
    for (int64_t v : base) {
      if (v >= lo && v <= hi) out.push_back({true, v});
    }
  };
  switch (slot) {
    case kMsgHandlingCode:
      range(0, static_cast<int64_t>(p.codes.names.size()) - 1);
      break;
    case kMsgClassification:
      range(1, 4);
      break;
    case kMsgDefenceZone:
      range(0, static_cast<int64_t>(p.zones.names.size()) - 1);
      out.push_back({true, kOther});
      break;
    case kMsgReliability:
    case kMsgCredibility:
      range(1, 6);
      break;
    case kMsgAge:
      around(absl::ToInt64Nanoseconds(absl::Seconds(1)), INT64_MIN, INT64_MAX, {0});
      break;
    case kCtxNow:
      out.clear();  // always set
      around(absl::ToInt64Nanoseconds(absl::Seconds(1)), INT64_MIN, INT64_MAX,
             {absl::ToUnixNanos(absl::FromUnixSeconds(1735689600))});  // 2025-01-01T00:00:00Z
      break;
    case kCtxHour:
      out.clear();
      around(1, 0, 23, {0, 12});
      break;
    default:
      break;
  }
  return out;
}

std::vector<std::string> StrDomain(const Program& p, int slot) {
  std::vector<std::string> out = {""};
  for (const std::string& s : p.literals.strs[slot]) {
    if (!s.empty()) out.push_back(s);
  }
  out.push_back("zz-no-rule-names-this");
  return out;
}

std::vector<std::vector<std::string>> AddrDomain(const Program& p, const AgencyFacts& r) {
  std::vector<std::vector<std::string>> out = {{}, {r.id}};
  if (!p.literals.addressees.empty()) {
    out.push_back(p.literals.addressees);
    std::vector<std::string> with = p.literals.addressees;
    if (std::find(with.begin(), with.end(), r.id) == with.end()) {
      with.push_back(r.id);
      out.push_back(with);
    }
  }
  return out;
}

bool IsFixedSlot(int slot) { return slot == kMsgKind || slot >= kSenderId; }

std::string Describe(const Program& p, const AgencyFacts& s, const AgencyFacts& r, int kind,
                     const std::vector<Dim>& dims, const Facts& f) {
  std::vector<std::string> parts;
  for (const Dim& d : dims) {
    for (const AttrInfo& a : Attributes()) {
      const bool same =
          (d.kind == Dim::Kind::kInt && a.storage == Storage::kInt && a.slot == d.slot) ||
          (d.kind == Dim::Kind::kStr && a.storage == Storage::kStr && a.slot == d.slot) ||
          (d.kind == Dim::Kind::kAddr && a.storage == Storage::kAddressees);
      if (same) parts.push_back(absl::StrCat(a.name, " = ", FormatAttribute(p, a, f)));
    }
  }
  std::string out = absl::StrCat("a ", KindName(kind), " from ", s.id, " to ", r.id);
  if (!parts.empty()) absl::StrAppend(&out, " with ", absl::StrJoin(parts, ", "));
  return out;
}

}  // namespace

void CheckAssertions(Program* p, Diagnostics* diag, uint64_t budget) {
  uint64_t cases = 0;
  for (const Rule& a : p->assertions) {
    bool violated = false;
    for (const AgencyFacts& s : p->agencies) {
      for (const AgencyFacts& r : p->agencies) {
        for (int kind = 1; kind <= 3 && !violated; ++kind) {
          if (!a.KindMatch(kind) || !a.from.Match(s) || !a.to.Match(r)) continue;
          std::vector<const Rule*> relevant;
          bool any_permit = false;
          uint32_t int_mask = a.int_slots, str_mask = a.str_slots;
          bool addr = a.reads_addressees;
          for (const Rule& rule : p->rules) {
            if (!rule.KindMatch(kind) || !rule.from.Match(s) || !rule.to.Match(r)) continue;
            relevant.push_back(&rule);
            any_permit |= rule.effect == Effect::kPermit;
            int_mask |= rule.int_slots;
            str_mask |= rule.str_slots;
            addr |= rule.reads_addressees;
          }
          if (!any_permit) continue;
          std::vector<Dim> dims;
          for (int slot = 0; slot < kNumIntSlots; ++slot) {
            if (!((int_mask >> slot) & 1) || IsFixedSlot(slot)) continue;
            Dim d;
            d.kind = Dim::Kind::kInt;
            d.slot = static_cast<uint8_t>(slot);
            d.ints = IntDomain(*p, slot);
            dims.push_back(std::move(d));
          }
          for (int slot = 0; slot < kNumStrSlots; ++slot) {
            if (!((str_mask >> slot) & 1)) continue;
            Dim d;
            d.kind = Dim::Kind::kStr;
            d.slot = static_cast<uint8_t>(slot);
            d.strs = StrDomain(*p, slot);
            dims.push_back(std::move(d));
          }
          if (addr) {
            Dim d;
            d.kind = Dim::Kind::kAddr;
            d.addrs = AddrDomain(*p, r);
            dims.push_back(std::move(d));
          }
          uint64_t product = 1;
          for (const Dim& d : dims) {
            product *= d.size();
            if (product > budget) break;
          }
          cases += product;
          if (product > budget || cases > budget) {
            diag->Error(a.loc, absl::StrCat("assert never '", a.id, "' needs more than ", budget,
                                            " cases to check; narrow its scope or the rules'"));
            p->assertion_cases = cases;
            return;
          }
          Facts f;
          SetAgencyFacts(s, r, &f);
          f.Set(kMsgKind, kind);
          f.Set(kCtxNow, absl::ToUnixNanos(absl::FromUnixSeconds(1735689600)));
          f.Set(kCtxHour, 0);
          std::vector<size_t> at(dims.size(), 0);
          while (true) {
            for (size_t i = 0; i < dims.size(); ++i) {
              const Dim& d = dims[i];
              switch (d.kind) {
                case Dim::Kind::kInt:
                  if (d.ints[at[i]].first) {
                    f.Set(d.slot, d.ints[at[i]].second);
                  } else {
                    f.Unset(d.slot);
                  }
                  break;
                case Dim::Kind::kStr:
                  f.strs[d.slot] = d.strs[at[i]];
                  break;
                case Dim::Kind::kAddr:
                  f.addressees_vec = &d.addrs[at[i]];
                  break;
              }
            }
            if (EvalCondition(*p, a, f) != Tri::kFalse) {
              bool forbidden = false;
              std::vector<const Rule*> permits;
              for (const Rule* rule : relevant) {
                const Tri t = EvalCondition(*p, *rule, f);
                if (rule->effect == Effect::kPermit) {
                  if (t == Tri::kTrue) permits.push_back(rule);
                } else if (t != Tri::kFalse) {
                  forbidden = true;
                  break;
                }
              }
              if (!forbidden && !permits.empty()) {
                std::vector<std::string> ids;
                for (const Rule* pr : permits) ids.push_back(absl::StrCat("'", pr->id, "'"));
                diag->Error(a.loc,
                            absl::StrCat("assert never '", a.id, "' is violated: rule",
                                         ids.size() > 1 ? "s " : " ", absl::StrJoin(ids, ", "),
                                         ids.size() > 1 ? " permit " : " permits ",
                                         Describe(*p, s, r, kind, dims, f)));
                for (const Rule* pr : permits) {
                  diag->Note(pr->loc, absl::StrCat("rule '", pr->id, "' lets this case through"));
                }
                violated = true;
                break;
              }
            }
            size_t i = 0;
            while (i < dims.size() && ++at[i] == dims[i].size()) at[i++] = 0;
            if (i == dims.size()) break;
          }
        }
        if (violated) break;
      }
      if (violated) break;
    }
  }
  p->assertion_cases = cases;
}

}  // namespace corridor::policy::internal
