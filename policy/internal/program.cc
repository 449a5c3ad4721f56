#include "policy/internal/program.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"

namespace corridor::policy::internal {

const char* TypeName(Type t) {
  switch (t) {
    case Type::kBool:
      return "boolean";
    case Type::kString:
      return "text";
    case Type::kAgencyId:
      return "agency";
    case Type::kAgencyKind:
      return "agency kind";
    case Type::kCity:
      return "city";
    case Type::kDomain:
      return "trust domain";
    case Type::kZone:
      return "zone";
    case Type::kGroup:
      return "group";
    case Type::kHandlingCode:
      return "handling code";
    case Type::kClassification:
      return "classification";
    case Type::kReliability:
      return "source reliability";
    case Type::kCredibility:
      return "credibility";
    case Type::kHour:
      return "hour";
    case Type::kDuration:
      return "duration";
    case Type::kTime:
      return "time";
    case Type::kMessageKind:
      return "message kind";
    case Type::kZoneSet:
      return "set of zones";
    case Type::kGroupSet:
      return "set of groups";
    case Type::kAgencyIdSet:
      return "set of agencies";
  }
  return "?";
}

bool IsOrdered(Type t) {
  switch (t) {
    case Type::kClassification:
    case Type::kReliability:
    case Type::kCredibility:
    case Type::kHour:
    case Type::kDuration:
    case Type::kTime:
      return true;
    default:
      return false;
  }
}

bool IsSetType(Type t) {
  return t == Type::kZoneSet || t == Type::kGroupSet || t == Type::kAgencyIdSet;
}

Type ElementType(Type t) {
  switch (t) {
    case Type::kZoneSet:
      return Type::kZone;
    case Type::kGroupSet:
      return Type::kGroup;
    case Type::kAgencyIdSet:
      return Type::kAgencyId;
    default:
      return t;
  }
}

const std::vector<AttrInfo>& Attributes() {
  static const auto* const kAttrs = new std::vector<AttrInfo>{
      {"message.kind", Type::kMessageKind, Storage::kInt, kMsgKind, true,
       "tip_off, case_record or patrol_report (from kind, else from the payload)"},
      {"message.topic", Type::kString, Storage::kStr, kMsgTopic, true,
       "dotted topic, e.g. \"smuggling.frozen_goods\""},
      {"message.handling_code", Type::kHandlingCode, Storage::kInt, kMsgHandlingCode, true,
       "one of the deployment's handling codes (unset if empty or undeclared)"},
      {"message.classification", Type::kClassification, Storage::kInt, kMsgClassification, true,
       "unclassified < restricted < confidential < secret"},
      {"message.purpose", Type::kString, Storage::kStr, kMsgPurpose, true, "stated purpose"},
      {"message.case_ref", Type::kString, Storage::kStr, kMsgCaseRef, true, "case reference"},
      {"message.defence_zone", Type::kZone, Storage::kInt, kMsgDefenceZone, true,
       "the defence zone the message concerns"},
      {"message.grading.reliability", Type::kReliability, Storage::kInt, kMsgReliability, true,
       "source reliability A < B < … < F (A is best)"},
      {"message.grading.credibility", Type::kCredibility, Storage::kInt, kMsgCredibility, true,
       "information credibility 1 (confirmed) … 6"},
      {"message.age", Type::kDuration, Storage::kInt, kMsgAge, true,
       "now − observed_time (unset without observed_time)"},
      {"message.addressees", Type::kAgencyIdSet, Storage::kAddressees, 0, false,
       "agency ids the sender addressed"},
      {"context.now", Type::kTime, Storage::kInt, kCtxNow, false, "the time of the decision"},
      {"context.hour", Type::kHour, Storage::kInt, kCtxHour, false,
       "hour of day 0–23 in the bundle's time zone"},
      {"sender.id", Type::kAgencyId, Storage::kInt, kSenderId, false, "agency id"},
      {"sender.kind", Type::kAgencyKind, Storage::kInt, kSenderKind, false, "agency kind"},
      {"sender.city", Type::kCity, Storage::kInt, kSenderCity, true, "agency city"},
      {"sender.zones", Type::kZoneSet, Storage::kSet, kSenderZones, false, "defence zones"},
      {"sender.groups", Type::kGroupSet, Storage::kSet, kSenderGroups, false, "groups"},
      {"sender.clearance", Type::kClassification, Storage::kInt, kSenderClearance, false,
       "highest classification it may receive"},
      {"sender.domain", Type::kDomain, Storage::kInt, kSenderDomain, false,
       "the agency's trust domain: this exchange's, or a peer exchange's"},
      {"recipient.id", Type::kAgencyId, Storage::kInt, kRecipientId, false, "agency id"},
      {"recipient.kind", Type::kAgencyKind, Storage::kInt, kRecipientKind, false, "agency kind"},
      {"recipient.city", Type::kCity, Storage::kInt, kRecipientCity, true, "agency city"},
      {"recipient.zones", Type::kZoneSet, Storage::kSet, kRecipientZones, false, "defence zones"},
      {"recipient.groups", Type::kGroupSet, Storage::kSet, kRecipientGroups, false, "groups"},
      {"recipient.clearance", Type::kClassification, Storage::kInt, kRecipientClearance, false,
       "highest classification it may receive"},
      {"recipient.domain", Type::kDomain, Storage::kInt, kRecipientDomain, false,
       "the agency's trust domain: this exchange's, or a peer exchange's"},
  };
  return *kAttrs;
}

const AttrInfo* FindAttribute(absl::string_view name) {
  for (const AttrInfo& a : Attributes()) {
    if (a.name == name) return &a;
  }
  return nullptr;
}

namespace {
constexpr absl::string_view kClassNames[] = {"", "unclassified", "restricted", "confidential",
                                             "secret"};
constexpr absl::string_view kKindNames[] = {"", "tip_off", "case_record", "patrol_report"};
}  // namespace

int ClassificationFromName(absl::string_view name) {
  for (int i = 1; i <= 4; ++i) {
    if (kClassNames[i] == name) return i;
  }
  return 0;
}
absl::string_view ClassificationName(int64_t v) {
  return v >= 1 && v <= 4 ? kClassNames[v] : absl::string_view("?");
}
int KindFromName(absl::string_view name) {
  for (int i = 1; i <= 3; ++i) {
    if (kKindNames[i] == name) return i;
  }
  return 0;
}
absl::string_view KindName(int64_t v) {
  return v >= 1 && v <= 3 ? kKindNames[v] : absl::string_view("?");
}

int Names::Add(absl::string_view name) {
  auto it = ids.find(absl::string_view(name.data(), name.size()));
  if (it != ids.end()) return it->second;
  const int id = static_cast<int>(names.size());
  names.emplace_back(name);
  ids.emplace(std::string(name), id);
  return id;
}

int Names::Find(absl::string_view name) const {
  auto it = ids.find(absl::string_view(name.data(), name.size()));
  return it == ids.end() ? -1 : it->second;
}

absl::string_view Names::Name(int64_t id) const {
  if (id >= 0 && static_cast<size_t>(id) < names.size()) return names[id];
  return "(not in the registry)";
}

const AgencyFacts* Program::FindAgency(absl::string_view id) const {
  auto it = agency_index.find(absl::string_view(id.data(), id.size()));
  return it == agency_index.end() ? nullptr : &agencies[it->second];
}

bool Facts::AddresseesContain(absl::string_view id) const {
  if (addressees_pb != nullptr) {
    for (const std::string& a : *addressees_pb) {
      if (a == id) return true;
    }
  }
  if (addressees_vec != nullptr) {
    for (const std::string& a : *addressees_vec) {
      if (a == id) return true;
    }
  }
  return false;
}

size_t Facts::AddresseeCount() const {
  return (addressees_pb ? addressees_pb->size() : 0) +
         (addressees_vec ? addressees_vec->size() : 0);
}

absl::string_view Facts::Addressee(size_t i) const {
  const size_t n = addressees_pb ? addressees_pb->size() : 0;
  if (i < n) return (*addressees_pb)[static_cast<int>(i)];
  return (*addressees_vec)[i - n];
}

// ---------------------------------------------------------------------------
// Glob

Glob::Glob(absl::string_view pattern) : pattern_(pattern) {
  pieces_ = absl::StrSplit(pattern_, '*');
}

bool Glob::Match(absl::string_view s) const {
  if (pieces_.size() == 1) return s == pieces_[0];
  const std::string& first = pieces_.front();
  const std::string& last = pieces_.back();
  if (s.size() < first.size() + last.size()) return false;
  if (s.substr(0, first.size()) != first) return false;
  if (s.substr(s.size() - last.size()) != last) return false;
  size_t pos = first.size();
  const size_t end = s.size() - last.size();
  for (size_t i = 1; i + 1 < pieces_.size(); ++i) {
    const std::string& piece = pieces_[i];
    if (piece.empty()) continue;
    const size_t found = s.substr(0, end).find(piece, pos);
    if (found == absl::string_view::npos) return false;
    pos = found + piece.size();
  }
  return true;
}

std::string Glob::DottedPrefix() const {
  if (pieces_.size() != 2 || !pieces_[1].empty()) return "";
  if (pieces_[0].empty() || pieces_[0].back() != '.') return "";
  return pieces_[0];
}

std::vector<std::string> Glob::Witnesses() const {
  return {absl::StrJoin(pieces_, ""), absl::StrJoin(pieces_, "x")};
}

// ---------------------------------------------------------------------------
// Evaluation

namespace {

inline bool Compare(int64_t a, CmpOp op, int64_t b) {
  switch (op) {
    case CmpOp::kEq:
      return a == b;
    case CmpOp::kNe:
      return a != b;
    case CmpOp::kLt:
      return a < b;
    case CmpOp::kLe:
      return a <= b;
    case CmpOp::kGt:
      return a > b;
    case CmpOp::kGe:
      return a >= b;
    default:
      return false;
  }
}

inline Tri FromBool(bool b) { return b ? Tri::kTrue : Tri::kFalse; }

}  // namespace

Tri Eval(const Program& p, uint32_t idx, const Facts& f) {
  const Node& n = p.nodes[idx];
  switch (n.op) {
    case Op::kConst:
      return FromBool(n.value != 0);
    case Op::kAnd: {
      bool err = false;
      for (uint32_t k : n.kids) {
        const Tri t = Eval(p, k, f);
        if (t == Tri::kFalse) return Tri::kFalse;
        err |= t == Tri::kError;
      }
      return err ? Tri::kError : Tri::kTrue;
    }
    case Op::kOr: {
      bool err = false;
      for (uint32_t k : n.kids) {
        const Tri t = Eval(p, k, f);
        if (t == Tri::kTrue) return Tri::kTrue;
        err |= t == Tri::kError;
      }
      return err ? Tri::kError : Tri::kFalse;
    }
    case Op::kNot: {
      const Tri t = Eval(p, n.kids[0], f);
      return t == Tri::kError ? t : FromBool(t == Tri::kFalse);
    }
    case Op::kHasInt:
      return FromBool(f.Has(n.slot));
    case Op::kHasStr:
      return FromBool(!f.strs[n.slot].empty());
    case Op::kIntCmp:
      if (!f.Has(n.slot)) return Tri::kError;
      return FromBool(Compare(f.ints[n.slot], n.cmp, n.value));
    case Op::kIntCmpSlot:
      if (!f.Has(n.slot) || !f.Has(n.slot2)) return Tri::kError;
      return FromBool(Compare(f.ints[n.slot], n.cmp, f.ints[n.slot2]));
    case Op::kIntIn:
      if (!f.Has(n.slot)) return Tri::kError;
      return FromBool(std::binary_search(n.values.begin(), n.values.end(), f.ints[n.slot]));
    case Op::kIntInSet:
      if (!f.Has(n.slot)) return Tri::kError;
      return FromBool(f.sets[n.slot2]->Test(f.ints[n.slot]));
    case Op::kStrCmp:
      if (f.strs[n.slot].empty()) return Tri::kError;
      return FromBool((f.strs[n.slot] == n.str) != n.negate);
    case Op::kStrCmpSlot:
      if (f.strs[n.slot].empty() || f.strs[n.slot2].empty()) return Tri::kError;
      return FromBool((f.strs[n.slot] == f.strs[n.slot2]) != n.negate);
    case Op::kStrIn: {
      const absl::string_view s = f.strs[n.slot];
      if (s.empty()) return Tri::kError;
      return FromBool(n.str_set.contains(absl::string_view(s.data(), s.size())));
    }
    case Op::kStrLike:
      if (f.strs[n.slot].empty()) return Tri::kError;
      return FromBool(n.glob.Match(f.strs[n.slot]));
    case Op::kSetHas:
      return FromBool(f.sets[n.slot]->Test(n.value));
    case Op::kSetIntersects:
      return FromBool(f.sets[n.slot]->Intersects(*f.sets[n.slot2]));
    case Op::kSetIntersectsBits:
      return FromBool(f.sets[n.slot]->Intersects(n.bits));
    case Op::kAddrHasAgency:
      return FromBool(f.AddresseesContain(n.slot == 0 ? f.sender_id : f.recipient_id));
    case Op::kAddrHasStr:
      return FromBool(f.AddresseesContain(n.str));
    case Op::kAddrIntersectsStrs:
      for (size_t i = 0; i < f.AddresseeCount(); ++i) {
        const absl::string_view a = f.Addressee(i);
        if (n.str_set.contains(absl::string_view(a.data(), a.size()))) return Tri::kTrue;
      }
      return Tri::kFalse;
  }
  return Tri::kError;
}

Tri EvalPart(const Program& p, const Part& part, const Facts& f) {
  const Tri t = Eval(p, part.node, f);
  if (!part.unless || t == Tri::kError) return t;
  return FromBool(t == Tri::kFalse);
}

Tri EvalCondition(const Program& p, const Rule& r, const Facts& f) {
  bool err = false;
  for (const Part& part : r.parts) {
    const Tri t = EvalPart(p, part, f);
    if (t == Tri::kFalse) return Tri::kFalse;
    err |= t == Tri::kError;
  }
  return err ? Tri::kError : Tri::kTrue;
}

bool RuleMatches(const Program& p, const Rule& r, const AgencyFacts& s, const AgencyFacts& rc,
                 const Facts& f) {
  const int64_t kind = f.Has(kMsgKind) ? f.ints[kMsgKind] : 0;
  if (!r.KindMatch(kind) || !r.from.Match(s) || !r.to.Match(rc)) return false;
  const Tri t = EvalCondition(p, r, f);
  return r.effect == Effect::kPermit ? t == Tri::kTrue : t != Tri::kFalse;
}

namespace {

template <bool kCheckTo>
inline void Visit(const Program& p, const std::vector<uint32_t>& list, const AgencyFacts& s,
                  const AgencyFacts& rc, const Facts& f, Verdict* v) {
  const bool registered_sender = s.index >= 0;
  for (const uint32_t i : list) {
    const Rule& r = p.rules[i];
    if (registered_sender ? !r.from_registered.Test(s.index) : !r.from.Match(s)) continue;
    if (kCheckTo && !r.to.Match(rc)) continue;
    const Tri t = EvalCondition(p, r, f);
    if (r.effect == Effect::kPermit) {
      if (t == Tri::kTrue) v->permits.push_back(i);
    } else if (t != Tri::kFalse) {
      v->forbids.push_back(i);
    }
  }
}

template <bool kCheckTo>
void VisitIndex(const Program& p, const KindIndex& ix, const AgencyFacts& s, const AgencyFacts& rc,
                const Facts& f, Verdict* v) {
  const absl::string_view topic = f.strs[kMsgTopic];
  if (topic.empty()) {
    Visit<kCheckTo>(p, ix.all, s, rc, f, v);
    return;
  }
  Visit<kCheckTo>(p, ix.generic, s, rc, f, v);
  bool several = false;
  if (!ix.exact.empty()) {
    auto it = ix.exact.find(topic);
    if (it != ix.exact.end()) {
      Visit<kCheckTo>(p, it->second, s, rc, f, v);
      several = true;
    }
  }
  if (!ix.prefix.empty()) {
    for (size_t i = 0; i < topic.size(); ++i) {
      if (topic[i] != '.') continue;
      auto it = ix.prefix.find(topic.substr(0, i + 1));
      if (it != ix.prefix.end()) {
        Visit<kCheckTo>(p, it->second, s, rc, f, v);
        several = true;
      }
    }
  }
  if (several) {
    std::sort(v->permits.begin(), v->permits.end());
    std::sort(v->forbids.begin(), v->forbids.end());
  }
}

}  // namespace

void DecideFacts(const Program& p, const AgencyFacts& s, const AgencyFacts& rc, const Facts& f,
                 Verdict* v) {
  v->Clear();
  int64_t kind = f.Has(kMsgKind) ? f.ints[kMsgKind] : 0;
  if (kind < 0 || kind > 3) kind = 0;
  if (rc.index >= 0 && static_cast<size_t>(rc.index) < p.by_recipient.size()) {
    VisitIndex</*kCheckTo=*/false>(p, p.by_recipient[rc.index][kind], s, rc, f, v);
  } else {
    VisitIndex</*kCheckTo=*/true>(p, p.by_kind[kind], s, rc, f, v);
  }
}

void SetAgencyFacts(const AgencyFacts& s, const AgencyFacts& rc, Facts* f) {
  f->Set(kSenderId, s.index);
  f->Set(kSenderKind, s.kind);
  if (s.has_city) {
    f->Set(kSenderCity, s.city);
  } else {
    f->Unset(kSenderCity);
  }
  f->Set(kSenderClearance, s.clearance);
  f->Set(kSenderDomain, s.domain);
  f->Set(kRecipientId, rc.index);
  f->Set(kRecipientKind, rc.kind);
  if (rc.has_city) {
    f->Set(kRecipientCity, rc.city);
  } else {
    f->Unset(kRecipientCity);
  }
  f->Set(kRecipientClearance, rc.clearance);
  f->Set(kRecipientDomain, rc.domain);
  f->sets[kSenderZones] = &s.zones;
  f->sets[kSenderGroups] = &s.groups;
  f->sets[kRecipientZones] = &rc.zones;
  f->sets[kRecipientGroups] = &rc.groups;
  f->sender_id = s.id;
  f->recipient_id = rc.id;
}

AgencyFacts ResolveAgency(const Program& p, const Agency& a, const Agency* other_raw,
                          const AgencyFacts* other) {
  if (const AgencyFacts* known = p.FindAgency(a.id)) return *known;
  auto resolve = [&](const Names& names, const std::string& text, const std::string* other_text,
                     int64_t other_value) -> int64_t {
    const int id = names.Find(text);
    if (id >= 0) return id;
    if (other_text == nullptr) return kOther;
    return *other_text == text ? other_value : kOther2;
  };
  AgencyFacts out;
  out.id = a.id;
  out.index = other_raw == nullptr ? kOther : (other_raw->id == a.id ? other->index : kOther2);
  const Names no_agencies;
  out.kind = resolve(p.kinds, a.kind, other_raw ? &other_raw->kind : nullptr,
                     other ? other->kind : kOther);
  out.has_city = !a.city.empty();
  out.city = resolve(p.cities, a.city, other_raw ? &other_raw->city : nullptr,
                     other ? other->city : kOther);
  out.domain = resolve(p.domains, a.domain, other_raw ? &other_raw->domain : nullptr,
                       other ? other->domain : kOther);
  const int c = ClassificationFromName(a.clearance);
  out.clearance = c == 0 ? 1 : c;
  for (const std::string& z : a.zones) out.zones.Set(p.zones.Find(z));
  for (const std::string& g : a.groups) out.groups.Set(p.groups.Find(g));
  return out;
}

std::string FormatAttribute(const Program& p, const AttrInfo& a, const Facts& f) {
  auto set_text = [](const Names& names, const Bits* bits) {
    std::vector<absl::string_view> out;
    for (size_t i = 0; i < names.names.size(); ++i) {
      if (bits->Test(static_cast<int64_t>(i))) out.push_back(names.names[i]);
    }
    return absl::StrCat("[", absl::StrJoin(out, ", "), "]");
  };
  switch (a.storage) {
    case Storage::kStr: {
      const absl::string_view s = f.strs[a.slot];
      if (s.empty()) return "unset";
      return absl::StrCat("\"", s, "\"");
    }
    case Storage::kSet:
      return set_text(a.type == Type::kZoneSet ? p.zones : p.groups, f.sets[a.slot]);
    case Storage::kAddressees: {
      std::vector<absl::string_view> out;
      for (size_t i = 0; i < f.AddresseeCount(); ++i) out.push_back(f.Addressee(i));
      return absl::StrCat("[", absl::StrJoin(out, ", "), "]");
    }
    case Storage::kInt:
      break;
  }
  if (!f.Has(a.slot)) return "unset";
  const int64_t v = f.ints[a.slot];
  switch (a.type) {
    case Type::kMessageKind:
      return std::string(KindName(v));
    case Type::kHandlingCode:
      return std::string(p.codes.Name(v));
    case Type::kClassification:
      return std::string(ClassificationName(v));
    case Type::kZone:
      return std::string(p.zones.Name(v));
    case Type::kAgencyKind:
      return std::string(p.kinds.Name(v));
    case Type::kCity:
      return std::string(p.cities.Name(v));
    case Type::kDomain:
      return std::string(p.domains.Name(v));
    case Type::kAgencyId:
      return std::string(a.slot == kSenderId ? f.sender_id : f.recipient_id);
    case Type::kReliability:
      return v >= 1 && v <= 6 ? std::string(1, static_cast<char>('A' + v - 1)) : "?";
    case Type::kDuration:
      return absl::FormatDuration(absl::Nanoseconds(v));
    case Type::kTime:
      return absl::FormatTime(absl::RFC3339_sec, absl::FromUnixNanos(v), p.tz);
    default:
      return absl::StrCat(v);
  }
}

}  // namespace corridor::policy::internal
