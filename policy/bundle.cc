#include "policy/bundle.h"

#include <openssl/evp.h>

#include <algorithm>
#include <fstream>
#include <sstream>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/utf8.h"
#include "policy/internal/compiler.h"
#include "policy/internal/parser.h"
#include "policy/internal/program.h"

namespace corridor::policy {

using internal::AgencyFacts;
using internal::AttrInfo;
using internal::Effect;
using internal::Facts;
using internal::Program;
using internal::Rule;
using internal::Tri;
using internal::Verdict;

namespace {

constexpr char kPermitAllRule[] = "permit-all";
constexpr char kPermitAllReason[] = "no policy configured: every registered agency may receive";
constexpr char kUnregisteredReason[] = "no policy configured: agency is not registered";

absl::Time ToTime(const google::protobuf::Timestamp& ts) {
  return absl::FromUnixSeconds(ts.seconds()) + absl::Nanoseconds(ts.nanos());
}

// The message- and context-dependent facts.
void BuildMessageFacts(const Program& p, const corridor::v1::Envelope& msg, absl::Time now,
                       Facts* f) {
  using corridor::v1::Envelope;
  int kind = msg.kind();
  if (kind < 1 || kind > 3) {
    switch (msg.payload_case()) {
      case Envelope::kTipOff:
        kind = 1;
        break;
      case Envelope::kCaseRecord:
        kind = 2;
        break;
      case Envelope::kPatrolReport:
        kind = 3;
        break;
      default:
        kind = 0;
    }
  }
  if (kind != 0) f->Set(internal::kMsgKind, kind);
  f->strs[internal::kMsgTopic] = msg.topic();
  f->strs[internal::kMsgPurpose] = msg.purpose();
  f->strs[internal::kMsgCaseRef] = msg.case_ref();
  if (!msg.handling_code().empty()) {
    const int code = p.codes.Find(msg.handling_code());
    if (code >= 0) f->Set(internal::kMsgHandlingCode, code);
  }
  if (msg.classification() >= 1 && msg.classification() <= 4) {
    f->Set(internal::kMsgClassification, msg.classification());
  }
  if (!msg.defence_zone().empty()) {
    const int zone = p.zones.Find(msg.defence_zone());
    f->Set(internal::kMsgDefenceZone, zone >= 0 ? zone : internal::kOther);
  }
  if (msg.has_grading()) {
    const int rel = msg.grading().reliability();
    if (rel >= 1 && rel <= 6) f->Set(internal::kMsgReliability, rel);
    const uint32_t cred = msg.grading().credibility();
    if (cred >= 1 && cred <= 6) f->Set(internal::kMsgCredibility, cred);
  }
  if (msg.has_observed_time()) {
    f->Set(internal::kMsgAge, absl::ToInt64Nanoseconds(now - ToTime(msg.observed_time())));
  }
  f->Set(internal::kCtxNow, absl::ToUnixNanos(now));
  f->Set(internal::kCtxHour, absl::ToCivilHour(now, p.tz).hour());
  f->addressees_pb = &msg.addressees();
}

template <typename Get>
void AssignStrings(std::vector<std::string>* out, size_t n, Get get) {
  out->resize(n);
  for (size_t i = 0; i < n; ++i) {
    const std::string& s = get(i);
    (*out)[i].assign(s.data(), s.size());
  }
}

void FillDecision(const Program& p, const Verdict& v, const std::string& version, Decision* d) {
  d->permit = v.permit();
  AssignStrings(&d->permit_rules, v.permits.size(),
                [&](size_t i) -> const std::string& { return p.rules[v.permits[i]].id; });
  AssignStrings(&d->forbid_rules, v.forbids.size(),
                [&](size_t i) -> const std::string& { return p.rules[v.forbids[i]].id; });
  if (!v.forbids.empty()) {
    AssignStrings(&d->reasons, v.forbids.size(),
                  [&](size_t i) -> const std::string& { return p.rules[v.forbids[i]].because; });
    d->redact.clear();
  } else if (!v.permits.empty()) {
    AssignStrings(&d->reasons, v.permits.size(),
                  [&](size_t i) -> const std::string& { return p.rules[v.permits[i]].because; });
    if (v.permits.size() == 1) {
      const auto& r = p.rules[v.permits[0]].redact;
      AssignStrings(&d->redact, r.size(), [&](size_t i) -> const std::string& { return r[i]; });
    } else {
      absl::InlinedVector<const std::string*, 16> all;
      for (uint32_t i : v.permits) {
        for (const std::string& s : p.rules[i].redact) all.push_back(&s);
      }
      std::sort(all.begin(), all.end(),
                [](const std::string* a, const std::string* b) { return *a < *b; });
      auto end = std::unique(all.begin(), all.end(),
                             [](const std::string* a, const std::string* b) { return *a == *b; });
      const size_t n = static_cast<size_t>(end - all.begin());
      AssignStrings(&d->redact, n, [&](size_t i) -> const std::string& { return *all[i]; });
    }
  } else {
    d->redact.clear();
    d->reasons.resize(1);
    d->reasons[0].assign(kDefaultDenyReason);
  }
  d->policy_version.assign(version);
}

std::string Hex(const unsigned char* data, size_t n) {
  static const char kDigits[] = "0123456789abcdef";
  std::string out(n * 2, '0');
  for (size_t i = 0; i < n; ++i) {
    out[2 * i] = kDigits[data[i] >> 4];
    out[2 * i + 1] = kDigits[data[i] & 15];
  }
  return out;
}

struct SourceFile {
  std::string display;  // name in diagnostics (a path for LoadBundle)
  std::string name;     // name in the version hash
  std::string text;
};

absl::StatusOr<std::shared_ptr<const Bundle>> Load(std::vector<SourceFile> files,
                                                   std::shared_ptr<const Registry> registry) {
  if (registry == nullptr) return absl::InvalidArgumentError("policy: no registry");
  std::sort(files.begin(), files.end(),
            [](const SourceFile& a, const SourceFile& b) { return a.name < b.name; });
  for (size_t i = 1; i < files.size(); ++i) {
    if (files[i].name == files[i - 1].name) {
      return absl::InvalidArgumentError(
          absl::StrCat("policy: two files are named '", files[i].name, "'"));
    }
  }
  std::vector<std::pair<std::string, std::string>> named;
  named.reserve(files.size());
  for (const auto& f : files) named.emplace_back(f.name, f.text);
  std::string version = BundleVersion(named);

  auto program = std::make_unique<Program>();
  for (auto& f : files) program->sources.Add(f.display, std::move(f.text));
  internal::Diagnostics diag(&program->sources);
  std::vector<internal::FileAst> asts;
  for (uint32_t i = 0; i < program->sources.size(); ++i) {
    asts.push_back(internal::ParseFile(program->sources, i, &diag));
  }
  // Strings were checked as they were read; this finds invalid UTF-8 anywhere
  // else (a comment, say): policy text must be UTF-8 throughout.
  for (uint32_t i = 0; i < program->sources.size() && !diag.has_errors(); ++i) {
    if (auto at = FirstInvalidUtf8(program->sources.text(i))) {
      diag.Error({i, static_cast<uint32_t>(*at), 1}, "not valid UTF-8 (policy text must be UTF-8)");
    }
  }
  if (!diag.has_errors()) internal::Compile(asts, *registry, program.get(), &diag);
  if (!diag.has_errors()) internal::CheckAssertions(program.get(), &diag);
  if (diag.has_errors()) return absl::InvalidArgumentError(diag.Text());

  Bundle::Stats stats;
  stats.files = program->sources.size();
  stats.permits = program->permits;
  stats.forbids = program->forbids;
  stats.assertions = program->assertions.size();
  stats.assertion_cases = program->assertion_cases;
  return std::make_shared<const Bundle>(Bundle::Private{}, std::move(registry), std::move(program),
                                        std::move(version), stats);
}

std::string AgencySummary(const Program& p, const AgencyFacts& a) {
  auto names = [](const internal::Names& n, const internal::Bits& b) {
    std::vector<absl::string_view> out;
    for (size_t i = 0; i < n.names.size(); ++i) {
      if (b.Test(static_cast<int64_t>(i))) out.push_back(n.names[i]);
    }
    return absl::StrCat("[", absl::StrJoin(out, ", "), "]");
  };
  return absl::StrCat(a.id, ": kind ", p.kinds.Name(a.kind), ", city ",
                      a.has_city ? p.cities.Name(a.city) : "unset", ", domain ",
                      p.domains.Name(a.domain), ", groups ", names(p.groups, a.groups));
}

// What held and what failed of rule r. *satisfied counts the scope items and
// condition parts that held, to rank near misses.
RuleTrace Trace(const Program& p, const Rule& r, const AgencyFacts& s, const AgencyFacts& rc,
                const Facts& f, int* satisfied) {
  RuleTrace t;
  *satisfied = 0;
  t.id = r.id;
  t.effect = r.effect == Effect::kPermit ? "permit" : "forbid";
  t.where = p.sources.Where(r.loc);
  t.because = r.because;
  t.redact = r.redact;
  const int64_t kind = f.Has(internal::kMsgKind) ? f.ints[internal::kMsgKind] : 0;
  if (!r.KindMatch(kind)) {
    t.failed.push_back({std::string(p.sources.Slice(r.on_loc)),
                        p.sources.Where(r.on_loc),
                        "does not admit this message kind",
                        {absl::StrCat("message.kind = ", kind ? internal::KindName(kind)
                                                              : absl::string_view("unset"))}});
  }
  if (!r.from.Match(s)) {
    t.failed.push_back({std::string(p.sources.Slice(r.from_loc)),
                        p.sources.Where(r.from_loc),
                        "does not admit the sender",
                        {AgencySummary(p, s)}});
  }
  if (!r.to.Match(rc)) {
    t.failed.push_back({std::string(p.sources.Slice(r.to_loc)),
                        p.sources.Where(r.to_loc),
                        "does not admit the recipient",
                        {AgencySummary(p, rc)}});
  }
  bool error = false;
  *satisfied += (r.has_on && r.KindMatch(kind)) + (r.has_from && r.from.Match(s)) +
                (r.has_to && r.to.Match(rc));
  for (const internal::Part& part : r.parts) {
    const Tri v = internal::EvalPart(p, part, f);
    if (v == Tri::kTrue) {
      ++*satisfied;
      continue;
    }
    error |= v == Tri::kError;
    ConditionTrace c;
    c.text = absl::StrCat(part.unless ? "unless " : "", p.sources.Slice(part.loc));
    c.where = p.sources.Where(part.loc);
    c.outcome = v == Tri::kError ? "cannot be evaluated" : (part.unless ? "holds" : "is false");
    for (const std::string& name : part.attrs) {
      const AttrInfo* a = internal::FindAttribute(name);
      c.values.push_back(absl::StrCat(name, " = ", internal::FormatAttribute(p, *a, f)));
    }
    t.failed.push_back(std::move(c));
  }
  const bool scope_ok = r.KindMatch(kind) && r.from.Match(s) && r.to.Match(rc);
  const bool any_false = std::any_of(t.failed.begin(), t.failed.end(), [](const auto& c) {
    return c.outcome != "cannot be evaluated";
  });
  t.undetermined = scope_ok && error && !any_false;
  t.matched = internal::RuleMatches(p, r, s, rc, f);
  if (t.matched && r.effect == Effect::kForbid) {
    // A forbid that matched only because it could not be evaluated keeps its
    // failed list: it says what could not be evaluated.
  } else if (t.matched) {
    t.failed.clear();
  }
  return t;
}

void JsonString(std::string* out, absl::string_view s) {
  out->push_back('"');
  for (unsigned char c : s) {
    switch (c) {
      case '"':
        out->append("\\\"");
        break;
      case '\\':
        out->append("\\\\");
        break;
      case '\n':
        out->append("\\n");
        break;
      case '\r':
        out->append("\\r");
        break;
      case '\t':
        out->append("\\t");
        break;
      default:
        if (c < 0x20) {
          absl::StrAppend(out, "\\u00", Hex(&c, 1));
        } else {
          out->push_back(static_cast<char>(c));
        }
    }
  }
  out->push_back('"');
}

void JsonStrings(std::string* out, const std::vector<std::string>& v) {
  out->push_back('[');
  for (size_t i = 0; i < v.size(); ++i) {
    if (i) out->push_back(',');
    JsonString(out, v[i]);
  }
  out->push_back(']');
}

void JsonRule(std::string* out, const RuleTrace& t) {
  absl::StrAppend(out, "{\"id\":");
  JsonString(out, t.id);
  absl::StrAppend(out, ",\"effect\":");
  JsonString(out, t.effect);
  absl::StrAppend(out, ",\"where\":");
  JsonString(out, t.where);
  absl::StrAppend(out, ",\"because\":");
  JsonString(out, t.because);
  absl::StrAppend(out, ",\"matched\":", t.matched ? "true" : "false",
                  ",\"undetermined\":", t.undetermined ? "true" : "false", ",\"redact\":");
  JsonStrings(out, t.redact);
  absl::StrAppend(out, ",\"failed\":[");
  for (size_t i = 0; i < t.failed.size(); ++i) {
    const ConditionTrace& c = t.failed[i];
    if (i) out->push_back(',');
    absl::StrAppend(out, "{\"text\":");
    JsonString(out, c.text);
    absl::StrAppend(out, ",\"where\":");
    JsonString(out, c.where);
    absl::StrAppend(out, ",\"outcome\":");
    JsonString(out, c.outcome);
    absl::StrAppend(out, ",\"values\":");
    JsonStrings(out, c.values);
    out->push_back('}');
  }
  absl::StrAppend(out, "]}");
}

void TextRule(std::string* out, const RuleTrace& t) {
  absl::StrAppend(out, "  ", t.effect, " ", t.id, " (", t.where, ")",
                  t.undetermined ? " [condition could not be evaluated: fails closed]" : "", "\n");
  if (!t.because.empty()) absl::StrAppend(out, "    because \"", t.because, "\"\n");
  if (!t.redact.empty() && t.effect == "permit") {
    absl::StrAppend(out, "    redacts ", absl::StrJoin(t.redact, ", "), "\n");
  }
  for (const ConditionTrace& c : t.failed) {
    absl::StrAppend(out, "    ", t.matched ? "" : "failed: ", c.text, "  ", c.outcome, "  (",
                    c.where, ")\n");
    for (const std::string& v : c.values) absl::StrAppend(out, "      ", v, "\n");
  }
}

}  // namespace

std::string BundleVersion(const std::vector<std::pair<std::string, std::string>>& files) {
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  EVP_DigestInit_ex(ctx, EVP_sha256(), nullptr);
  for (const auto& [name, text] : files) {
    const std::string head = absl::StrCat(name.size(), ":", name, text.size(), ":");
    EVP_DigestUpdate(ctx, head.data(), head.size());
    EVP_DigestUpdate(ctx, text.data(), text.size());
  }
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  EVP_DigestFinal_ex(ctx, md, &n);
  EVP_MD_CTX_free(ctx);
  return Hex(md, n);
}

Bundle::Bundle(Private, std::shared_ptr<const Registry> registry,
               std::unique_ptr<internal::Program> program, std::string version, Stats stats)
    : registry_(std::move(registry)),
      program_(std::move(program)),
      version_(std::move(version)),
      stats_(stats) {}

Bundle::~Bundle() = default;

std::vector<std::string> Bundle::RuleIds() const {
  std::vector<std::string> out;
  if (program_ == nullptr) return {kPermitAllRule};
  for (const Rule& r : program_->rules) out.push_back(r.id);
  return out;
}

void Bundle::DecideInto(const corridor::v1::Envelope& msg, const Agency& sender,
                        const Agency& recipient, absl::Time now, Decision* out) const {
  if (program_ == nullptr) {
    const bool ok =
        registry_->Find(sender.id) != nullptr && registry_->Find(recipient.id) != nullptr;
    out->permit = ok;
    out->redact.clear();
    out->forbid_rules.clear();
    AssignStrings(&out->permit_rules, ok ? 1 : 0, [](size_t) -> const std::string& {
      static const std::string kId = kPermitAllRule;
      return kId;
    });
    out->reasons.resize(1);
    out->reasons[0].assign(ok ? kPermitAllReason : kUnregisteredReason);
    out->policy_version.assign(version_);
    return;
  }
  const Program& p = *program_;
  const AgencyFacts* s = p.FindAgency(sender.id);
  AgencyFacts s_tmp, r_tmp;
  if (s == nullptr) {
    s_tmp = internal::ResolveAgency(p, sender, nullptr, nullptr);
    s = &s_tmp;
  }
  const AgencyFacts* r = p.FindAgency(recipient.id);
  if (r == nullptr) {
    r_tmp = internal::ResolveAgency(p, recipient, &sender, s);
    r = &r_tmp;
  }
  Facts f;
  BuildMessageFacts(p, msg, now, &f);
  internal::SetAgencyFacts(*s, *r, &f);
  Verdict v;
  internal::DecideFacts(p, *s, *r, f, &v);
  FillDecision(p, v, version_, out);
}

Decision Bundle::Decide(const corridor::v1::Envelope& msg, const Agency& sender,
                        const Agency& recipient, absl::Time now) const {
  Decision d;
  DecideInto(msg, sender, recipient, now, &d);
  return d;
}

Explanation Bundle::Explain(const corridor::v1::Envelope& msg, const Agency& sender,
                            const Agency& recipient, absl::Time now) const {
  Explanation e;
  e.decision = Decide(msg, sender, recipient, now);
  e.sender = sender.id;
  e.recipient = recipient.id;
  if (program_ == nullptr) return e;
  const Program& p = *program_;
  AgencyFacts s = internal::ResolveAgency(p, sender, nullptr, nullptr);
  AgencyFacts r = internal::ResolveAgency(p, recipient, &sender, &s);
  Facts f;
  BuildMessageFacts(p, msg, now, &f);
  internal::SetAgencyFacts(s, r, &f);
  for (const AttrInfo& a : internal::Attributes()) {
    if (a.name.substr(0, 8) == "message." || a.name.substr(0, 8) == "context.") {
      e.facts.emplace_back(std::string(a.name), internal::FormatAttribute(p, a, f));
    }
  }
  // Nearest permit: fewest failed items; among those, most items that held.
  std::optional<RuleTrace> nearest;
  int nearest_held = 0;
  for (const Rule& rule : p.rules) {
    int held = 0;
    RuleTrace t = Trace(p, rule, s, r, f, &held);
    if (t.matched) {
      (rule.effect == Effect::kPermit ? e.permits : e.forbids).push_back(std::move(t));
    } else if (rule.effect == Effect::kPermit &&
               (!nearest || t.failed.size() < nearest->failed.size() ||
                (t.failed.size() == nearest->failed.size() && held > nearest_held))) {
      nearest = std::move(t);
      nearest_held = held;
    }
  }
  if (e.permits.empty() && e.forbids.empty()) e.nearest_permit = std::move(nearest);
  return e;
}

std::string Explanation::Text() const {
  std::string out;
  absl::StrAppend(&out, "decision: ", decision.permit ? "PERMIT" : "DENY", " (", sender, " -> ",
                  recipient, ")\n");
  absl::StrAppend(&out, "policy version: ", decision.policy_version, "\n");
  if (!facts.empty()) {
    absl::StrAppend(&out, "message:\n");
    for (const auto& [name, value] : facts) {
      if (value != "unset" && value != "[]") absl::StrAppend(&out, "  ", name, " = ", value, "\n");
    }
  }
  if (!forbids.empty()) {
    absl::StrAppend(&out, "forbidden by:\n");
    for (const RuleTrace& t : forbids) TextRule(&out, t);
    if (!permits.empty()) absl::StrAppend(&out, "overriding permits:\n");
    for (const RuleTrace& t : permits) TextRule(&out, t);
  } else if (!permits.empty()) {
    absl::StrAppend(&out, "permitted by:\n");
    for (const RuleTrace& t : permits) TextRule(&out, t);
    absl::StrAppend(&out, "redacted: ",
                    decision.redact.empty() ? "(nothing)" : absl::StrJoin(decision.redact, ", "),
                    "\n");
  } else if (!decision.permit) {
    absl::StrAppend(&out, "reason: ", decision.reasons.empty() ? "" : decision.reasons[0], "\n");
    if (nearest_permit) {
      absl::StrAppend(&out, "nearest permit:\n");
      TextRule(&out, *nearest_permit);
    } else if (decision.policy_version != "permit-all") {
      absl::StrAppend(&out, "nearest permit: none (the bundle has no permit)\n");
    }
  } else {
    for (const std::string& r : decision.reasons) absl::StrAppend(&out, "because \"", r, "\"\n");
  }
  return out;
}

std::string Explanation::Json() const {
  std::string out = "{\"decision\":";
  JsonString(&out, decision.permit ? "permit" : "deny");
  absl::StrAppend(&out, ",\"sender\":");
  JsonString(&out, sender);
  absl::StrAppend(&out, ",\"recipient\":");
  JsonString(&out, recipient);
  absl::StrAppend(&out, ",\"redact\":");
  JsonStrings(&out, decision.redact);
  absl::StrAppend(&out, ",\"permit_rules\":");
  JsonStrings(&out, decision.permit_rules);
  absl::StrAppend(&out, ",\"forbid_rules\":");
  JsonStrings(&out, decision.forbid_rules);
  absl::StrAppend(&out, ",\"reasons\":");
  JsonStrings(&out, decision.reasons);
  absl::StrAppend(&out, ",\"policy_version\":");
  JsonString(&out, decision.policy_version);
  absl::StrAppend(&out, ",\"facts\":{");
  for (size_t i = 0; i < facts.size(); ++i) {
    if (i) out.push_back(',');
    JsonString(&out, facts[i].first);
    out.push_back(':');
    JsonString(&out, facts[i].second);
  }
  absl::StrAppend(&out, "},\"forbids\":[");
  for (size_t i = 0; i < forbids.size(); ++i) {
    if (i) out.push_back(',');
    JsonRule(&out, forbids[i]);
  }
  absl::StrAppend(&out, "],\"permits\":[");
  for (size_t i = 0; i < permits.size(); ++i) {
    if (i) out.push_back(',');
    JsonRule(&out, permits[i]);
  }
  absl::StrAppend(&out, "],\"nearest_permit\":");
  if (nearest_permit) {
    JsonRule(&out, *nearest_permit);
  } else {
    out.append("null");
  }
  out.push_back('}');
  return out;
}

absl::StatusOr<std::shared_ptr<const Bundle>> LoadBundle(const std::filesystem::path& dir,
                                                         std::shared_ptr<const Registry> registry) {
  std::error_code ec;
  if (!std::filesystem::exists(dir, ec)) {
    return absl::NotFoundError(absl::StrCat("policy dir '", dir.string(), "' does not exist"));
  }
  if (!std::filesystem::is_directory(dir, ec)) {
    return absl::InvalidArgumentError(
        absl::StrCat("policy dir '", dir.string(), "' is not a directory"));
  }
  std::vector<SourceFile> files;
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    if (entry.path().extension() != ".policy" || !entry.is_regular_file(ec)) continue;
    std::ifstream in(entry.path(), std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    if (!in.good() && !in.eof()) {
      return absl::FailedPreconditionError(
          absl::StrCat("cannot read policy file '", entry.path().string(), "'"));
    }
    files.push_back({entry.path().string(), entry.path().filename().string(), ss.str()});
  }
  if (ec) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot list policy dir '", dir.string(), "': ", ec.message()));
  }
  if (files.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("policy dir '", dir.string(), "' holds no *.policy file"));
  }
  return Load(std::move(files), std::move(registry));
}

absl::StatusOr<std::shared_ptr<const Bundle>> LoadBundleFromSources(
    const std::vector<std::pair<std::string, std::string>>& files,
    std::shared_ptr<const Registry> registry) {
  std::vector<SourceFile> v;
  for (const auto& [name, text] : files) v.push_back({name, name, text});
  return Load(std::move(v), std::move(registry));
}

std::shared_ptr<const Bundle> PermitAllBundle(std::shared_ptr<const Registry> registry) {
  Bundle::Stats stats;
  stats.permits = 1;
  return std::make_shared<const Bundle>(Bundle::Private{}, std::move(registry), nullptr,
                                        "permit-all", stats);
}

}  // namespace corridor::policy
