// The compiled form of a policy bundle and the evaluator over it.
//
// Compilation resolves every attribute to a fixed slot of a `Facts` record and
// every literal to an interned id (zone, group, kind, city, agency, handling
// code) or a precompiled matcher (sorted ids, hash set of strings, glob), so a
// decision is a scan over the few rules an index selects, each a handful of
// integer comparisons and bitset tests, with no allocation and no string
// lookups of attribute names.
//
// Conditions are three-valued: true, false, or error (an attribute that is not
// set, such as message.age without observed_time). `&&`, `||` and `!` follow
// Kleene logic (false && error = false; true || error = true), so the result
// does not depend on the order of operands. A rule's when-clauses and negated
// unless-clauses form one conjunction; a rule whose conjunction is an error
// "cannot be evaluated": a forbid then counts as matching, a permit as not.
//
// A Program is immutable after compilation and safe for concurrent readers.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/container/inlined_vector.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "google/protobuf/repeated_ptr_field.h"
#include "policy/internal/ast.h"
#include "policy/internal/source.h"
#include "policy/registry.h"

namespace corridor::policy::internal {

// ---------------------------------------------------------------------------
// Schema

enum class Type : uint8_t {
  kBool,
  kString,
  kAgencyId,
  kAgencyKind,
  kCity,
  kDomain,
  kZone,
  kGroup,
  kHandlingCode,
  kClassification,
  kReliability,
  kCredibility,
  kHour,
  kDuration,
  kTime,
  kMessageKind,
  kZoneSet,
  kGroupSet,
  kAgencyIdSet,
};

const char* TypeName(Type t);
bool IsOrdered(Type t);
bool IsSetType(Type t);
Type ElementType(Type set_type);

enum IntSlot : uint8_t {
  kMsgKind,
  kMsgHandlingCode,
  kMsgClassification,
  kMsgDefenceZone,
  kMsgReliability,
  kMsgCredibility,
  kMsgAge,
  kCtxNow,
  kCtxHour,
  kSenderId,
  kSenderKind,
  kSenderCity,
  kSenderClearance,
  kSenderDomain,
  kRecipientId,
  kRecipientKind,
  kRecipientCity,
  kRecipientClearance,
  kRecipientDomain,
  kNumIntSlots,
};
enum StrSlot : uint8_t { kMsgTopic, kMsgPurpose, kMsgCaseRef, kNumStrSlots };
enum SetSlot : uint8_t {
  kSenderZones,
  kSenderGroups,
  kRecipientZones,
  kRecipientGroups,
  kNumSetSlots
};

enum class Storage : uint8_t { kInt, kStr, kSet, kAddressees };

struct AttrInfo {
  absl::string_view name;  // "message.topic"
  Type type;
  Storage storage;
  uint8_t slot;
  bool optional;          // may be unset; using it unset is an evaluation error
  absl::string_view doc;  // one line for the README and `has` errors
};

// Every attribute the language knows, in documentation order.
const std::vector<AttrInfo>& Attributes();
const AttrInfo* FindAttribute(absl::string_view name);

// Value ids for enum-like types that are not registry-defined.
// Classification: 1 unclassified … 4 secret. Reliability: 1 (A) … 6 (F).
// Message kind: 1 tip_off, 2 case_record, 3 patrol_report (the MessageKind enum).
int ClassificationFromName(absl::string_view name);  // 0 when unknown
absl::string_view ClassificationName(int64_t v);
int KindFromName(absl::string_view name);  // 0 when unknown
absl::string_view KindName(int64_t v);

// Id used for a value that is set but not known to the registry.
inline constexpr int64_t kOther = -2;
// Id used for a recipient value not known to the registry and different from the sender's.
inline constexpr int64_t kOther2 = -3;

// ---------------------------------------------------------------------------
// Small dynamic bitset over interned ids.

class Bits {
 public:
  void Set(int64_t i) {
    if (i < 0) return;
    const size_t w = static_cast<size_t>(i) / 64;
    if (words_.size() <= w) words_.resize(w + 1, 0);
    words_[w] |= uint64_t{1} << (i % 64);
  }
  bool Test(int64_t i) const {
    if (i < 0) return false;
    const size_t w = static_cast<size_t>(i) / 64;
    return w < words_.size() && ((words_[w] >> (i % 64)) & 1);
  }
  bool Intersects(const Bits& o) const {
    const size_t n = std::min(words_.size(), o.words_.size());
    for (size_t i = 0; i < n; ++i) {
      if (words_[i] & o.words_[i]) return true;
    }
    return false;
  }
  bool Empty() const {
    for (uint64_t w : words_) {
      if (w) return false;
    }
    return true;
  }

 private:
  absl::InlinedVector<uint64_t, 1> words_;
};

// Interned names of one registry vocabulary (kinds, cities, zones, groups, codes,
// trust domains).
struct Names {
  std::vector<std::string> names;
  absl::flat_hash_map<std::string, int> ids;
  int Add(absl::string_view name);
  int Find(absl::string_view name) const;  // -1 when absent
  absl::string_view Name(int64_t id) const;
};

// An agency as the evaluator sees it.
struct AgencyFacts {
  std::string id;
  int64_t index = kOther;  // position in the registry, or kOther/kOther2
  int64_t kind = kOther;
  int64_t city = kOther;  // or unset (empty city) when has_city is false
  bool has_city = false;
  int64_t clearance = 2;    // restricted
  int64_t domain = kOther;  // trust domain (local or a peer's)
  Bits zones, groups;
};

// ---------------------------------------------------------------------------
// Facts: the attribute values of one (message, sender, recipient, now).

struct Facts {
  std::array<int64_t, kNumIntSlots> ints{};
  uint32_t int_set = 0;                                // bit i: ints[i] has a value
  std::array<absl::string_view, kNumStrSlots> strs{};  // empty = unset
  std::array<const Bits*, kNumSetSlots> sets{};
  const google::protobuf::RepeatedPtrField<std::string>* addressees_pb = nullptr;
  const std::vector<std::string>* addressees_vec = nullptr;
  absl::string_view sender_id, recipient_id;

  bool Has(int slot) const { return (int_set >> slot) & 1; }
  void Set(int slot, int64_t v) {
    ints[slot] = v;
    int_set |= uint32_t{1} << slot;
  }
  void Unset(int slot) { int_set &= ~(uint32_t{1} << slot); }
  bool AddresseesContain(absl::string_view id) const;
  size_t AddresseeCount() const;
  absl::string_view Addressee(size_t i) const;
};

// ---------------------------------------------------------------------------
// Compiled conditions.

enum class Tri : uint8_t { kFalse, kTrue, kError };

// A glob over text: '*' matches any run of characters (including '.'), every
// other character itself. Precompiled into its literal pieces.
class Glob {
 public:
  Glob() = default;
  explicit Glob(absl::string_view pattern);
  bool Match(absl::string_view s) const;
  const std::string& pattern() const { return pattern_; }
  // "smuggling." for "smuggling.*": a pattern that is a literal prefix ending in
  // '.' followed by a single trailing '*'; empty otherwise.
  std::string DottedPrefix() const;
  // Strings the pattern matches, for enumerating assertions.
  std::vector<std::string> Witnesses() const;

 private:
  std::string pattern_;
  std::vector<std::string> pieces_;  // split on '*'
};

enum class Op : uint8_t {
  kConst,
  kAnd,
  kOr,
  kNot,
  kHasInt,
  kHasStr,
  kIntCmp,              // ints[slot] <cmp> value
  kIntCmpSlot,          // ints[slot] <cmp> ints[slot2]
  kIntIn,               // ints[slot] in values (sorted)
  kIntInSet,            // sets[slot2] has ints[slot]
  kStrCmp,              // strs[slot] ==/!= str
  kStrCmpSlot,          // strs[slot] ==/!= strs[slot2]
  kStrIn,               // strs[slot] in str_set
  kStrLike,             // glob.Match(strs[slot])
  kSetHas,              // sets[slot] has value
  kSetIntersects,       // sets[slot] ∩ sets[slot2] ≠ ∅
  kSetIntersectsBits,   // sets[slot] ∩ bits ≠ ∅
  kAddrHasAgency,       // addressees contain the sender (slot 0) or recipient (slot 1) id
  kAddrHasStr,          // addressees contain str
  kAddrIntersectsStrs,  // addressees ∩ str_set ≠ ∅
};

struct Node {
  Op op = Op::kConst;
  CmpOp cmp = CmpOp::kEq;
  uint8_t slot = 0, slot2 = 0;
  bool negate = false;  // kStrCmp / kStrCmpSlot with !=
  int64_t value = 0;    // kConst: 0/1
  std::vector<int64_t> values;
  std::string str;
  absl::flat_hash_set<std::string> str_set;
  Glob glob;
  Bits bits;
  std::vector<uint32_t> kids;
};

// Which agencies a scope item admits.
struct SelectorSet {
  bool any = true;
  Bits agencies, kinds, groups, cities, domains;
  bool Match(const AgencyFacts& a) const {
    return any || agencies.Test(a.index) || kinds.Test(a.kind) ||
           (a.has_city && cities.Test(a.city)) || groups.Intersects(a.groups) ||
           domains.Test(a.domain);
  }
};

// One top-level conjunct of a rule's condition: a when-conjunct, or a
// disjunct of an unless-clause (which must be false).
struct Part {
  uint32_t node = 0;
  bool unless = false;
  Loc loc;
  std::vector<std::string> attrs;  // attribute paths it reads, for explanations
};

struct Rule {
  Effect effect = Effect::kPermit;
  std::string id;
  uint32_t index = 0;  // position in Program::rules or Program::assertions
  Loc loc, head_loc, on_loc, from_loc, to_loc;
  bool has_on = false, has_from = false, has_to = false;
  uint8_t kinds = 0;  // bit k for message kind k; 0 when `on` is absent
  SelectorSet from, to;
  Bits from_registered;  // registry indices of the senders `from` admits
  std::vector<Part> parts;
  std::vector<std::string> redact;  // sorted, unique
  std::string because;
  uint32_t int_slots = 0;  // bitmask of IntSlots read by the condition
  uint32_t str_slots = 0;  // bitmask of StrSlots read
  bool reads_addressees = false;

  bool KindMatch(int64_t kind) const {
    return kinds == 0 || (kind >= 1 && kind <= 3 && ((kinds >> kind) & 1));
  }
};

// Rules of one message kind, indexed by the topic their condition requires.
struct KindIndex {
  std::vector<uint32_t> all;      // every rule admitting this kind
  std::vector<uint32_t> generic;  // rules with no indexable topic conjunct
  absl::flat_hash_map<std::string, std::vector<uint32_t>> exact;   // topic == / in
  absl::flat_hash_map<std::string, std::vector<uint32_t>> prefix;  // topic like "p.*"
};

// Literal values the policy compares attributes with, per slot, for
// enumerating assertions.
struct Literals {
  std::array<std::vector<int64_t>, kNumIntSlots> ints;
  std::array<std::vector<std::string>, kNumStrSlots> strs;
  std::vector<std::string> addressees;
};

struct Program {
  SourceSet sources;
  Names kinds, cities, zones, groups, codes, domains;
  std::vector<AgencyFacts> agencies;
  absl::flat_hash_map<std::string, int> agency_index;
  std::vector<Node> nodes;
  std::vector<Rule> rules;           // permits and forbids, in bundle order
  std::vector<Rule> assertions;      // assert never
  std::array<KindIndex, 4> by_kind;  // [0]: kind unspecified
  // by_recipient[i][k]: the rules of kind k whose `to` admits registered
  // agency i (so only `from` and the condition remain to check). Empty when
  // the registry × rules product is too large to index this way.
  std::vector<std::array<KindIndex, 4>> by_recipient;
  absl::TimeZone tz = absl::UTCTimeZone();
  std::string tz_name = "UTC";
  Literals literals;
  size_t permits = 0, forbids = 0;
  uint64_t assertion_cases = 0;  // cases enumerated at load

  const AgencyFacts* FindAgency(absl::string_view id) const;
};

// Which rules matched. Indices into Program::rules, ascending.
struct Verdict {
  absl::InlinedVector<uint32_t, 8> permits, forbids;
  bool permit() const { return forbids.empty() && !permits.empty(); }
  void Clear() {
    permits.clear();
    forbids.clear();
  }
};

Tri Eval(const Program& p, uint32_t node, const Facts& f);
// The rule's condition (its parts, Kleene conjunction).
Tri EvalCondition(const Program& p, const Rule& r, const Facts& f);
// One part, with unless negated: true means the part is satisfied.
Tri EvalPart(const Program& p, const Part& part, const Facts& f);
// Whether a rule applies: scope and condition, with fail-closed errors.
bool RuleMatches(const Program& p, const Rule& r, const AgencyFacts& s, const AgencyFacts& rc,
                 const Facts& f);
// Evaluates the indexed candidates for these facts into *v (cleared first).
void DecideFacts(const Program& p, const AgencyFacts& s, const AgencyFacts& rc, const Facts& f,
                 Verdict* v);

// Fills the agency-dependent slots of *f. `s` and `rc` must outlive *f.
void SetAgencyFacts(const AgencyFacts& s, const AgencyFacts& rc, Facts* f);
// Facts of an agency: the registry's own when `a.id` is registered (its
// fields are then taken from the registry, not from `a`); otherwise built from
// `a`, with values the registry does not know set to kOther, or, for the
// recipient (`other` = the sender), to the sender's id when the text is equal
// and to kOther2 when it differs.
AgencyFacts ResolveAgency(const Program& p, const Agency& a, const Agency* other_raw,
                          const AgencyFacts* other);

// Human-readable value of an attribute in these facts ("unset" when unset).
std::string FormatAttribute(const Program& p, const AttrInfo& a, const Facts& f);

}  // namespace corridor::policy::internal
