#include "policy/tools.h"

#include <fstream>
#include <set>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "google/protobuf/util/json_util.h"
#include "policy/bundle.h"
#include "yaml-cpp/yaml.h"

namespace corridor::policy {
namespace {

absl::StatusOr<std::string> ReadFile(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot open '", path.string(), "'"));
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

absl::Status ParseEnvelopeJson(const std::string& json, corridor::v1::Envelope* msg) {
  google::protobuf::util::JsonParseOptions opts;
  opts.ignore_unknown_fields = false;
  auto st = google::protobuf::util::JsonStringToMessage(json, msg, opts);
  if (!st.ok()) return absl::InvalidArgumentError(std::string(st.message()));
  return absl::OkStatus();
}

bool LooksLikeJsonScalar(const std::string& s) {
  if (s == "true" || s == "false" || s == "null") return true;
  if (s.empty()) return false;
  size_t i = s[0] == '-' ? 1 : 0;
  if (i >= s.size()) return false;
  bool digit = false, dot = false;
  for (; i < s.size(); ++i) {
    if (std::isdigit(static_cast<unsigned char>(s[i]))) {
      digit = true;
    } else if (s[i] == '.' && !dot) {
      dot = true;
    } else {
      return false;
    }
  }
  return digit && s.back() != '.' && !(s.size() > 1 && s[0] == '0' && s[1] != '.');
}

void AppendJsonString(std::string* out, const std::string& s) {
  out->push_back('"');
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') {
      out->push_back('\\');
      out->push_back(static_cast<char>(c));
    } else if (c == '\n') {
      out->append("\\n");
    } else if (c < 0x20) {
      static const char kHex[] = "0123456789abcdef";
      out->append("\\u00");
      out->push_back(kHex[c >> 4]);
      out->push_back(kHex[c & 15]);
    } else {
      out->push_back(static_cast<char>(c));
    }
  }
  out->push_back('"');
}

// YAML -> JSON text: plain scalars that look like numbers or booleans stay
// bare, everything else becomes a JSON string.
void YamlToJson(const YAML::Node& n, std::string* out) {
  switch (n.Type()) {
    case YAML::NodeType::Map: {
      out->push_back('{');
      bool first = true;
      for (const auto& kv : n) {
        if (!first) out->push_back(',');
        first = false;
        AppendJsonString(out, kv.first.as<std::string>());
        out->push_back(':');
        YamlToJson(kv.second, out);
      }
      out->push_back('}');
      return;
    }
    case YAML::NodeType::Sequence: {
      out->push_back('[');
      for (size_t i = 0; i < n.size(); ++i) {
        if (i) out->push_back(',');
        YamlToJson(n[i], out);
      }
      out->push_back(']');
      return;
    }
    case YAML::NodeType::Scalar: {
      const std::string s = n.Scalar();
      if (n.Tag() != "!" && LooksLikeJsonScalar(s)) {
        out->append(s);
      } else {
        AppendJsonString(out, s);
      }
      return;
    }
    default:
      out->append("null");
  }
}

absl::StatusOr<absl::Time> ParseTime(const std::string& text) {
  absl::Time t;
  std::string err;
  if (!absl::ParseTime(absl::RFC3339_full, text, &t, &err)) {
    return absl::InvalidArgumentError(absl::StrCat("'", text, "' is not an RFC 3339 time"));
  }
  return t;
}

std::vector<std::string> StringList(const YAML::Node& n) {
  std::vector<std::string> out;
  if (!n) return out;
  if (n.IsScalar()) {
    out.push_back(n.as<std::string>());
    return out;
  }
  for (const auto& x : n) out.push_back(x.as<std::string>());
  return out;
}

std::string Brief(const Decision& d) {
  std::string out = d.permit ? "permit" : "deny";
  if (!d.permit_rules.empty())
    absl::StrAppend(&out, " permits=[", absl::StrJoin(d.permit_rules, ","), "]");
  if (!d.forbid_rules.empty())
    absl::StrAppend(&out, " forbids=[", absl::StrJoin(d.forbid_rules, ","), "]");
  if (!d.redact.empty()) absl::StrAppend(&out, " redact=[", absl::StrJoin(d.redact, ","), "]");
  return out;
}

struct Expectation {
  bool permit = false;
  bool check_redact = false, check_permits = false, check_forbids = false;
  std::vector<std::string> redact, permit_rules, forbid_rules;
};

absl::StatusOr<Expectation> ParseExpectation(const YAML::Node& n) {
  Expectation e;
  YAML::Node decision = n.IsMap() ? n["decision"] : n;
  if (!decision || !decision.IsScalar()) {
    return absl::InvalidArgumentError("expect: needs 'permit', 'deny' or {decision: …}");
  }
  const std::string d = decision.as<std::string>();
  if (d != "permit" && d != "deny") {
    return absl::InvalidArgumentError(absl::StrCat("expect: '", d, "' is not permit or deny"));
  }
  e.permit = d == "permit";
  if (n.IsMap()) {
    if (n["redact"]) {
      e.check_redact = true;
      e.redact = StringList(n["redact"]);
      std::sort(e.redact.begin(), e.redact.end());
    }
    if (n["permit_rules"]) {
      e.check_permits = true;
      e.permit_rules = StringList(n["permit_rules"]);
    }
    if (n["forbid_rules"]) {
      e.check_forbids = true;
      e.forbid_rules = StringList(n["forbid_rules"]);
    }
  }
  return e;
}

std::vector<std::string> Mismatches(const Expectation& e, const Decision& d) {
  std::vector<std::string> out;
  auto sorted = [](std::vector<std::string> v) {
    std::sort(v.begin(), v.end());
    return v;
  };
  if (e.permit != d.permit) {
    out.push_back(absl::StrCat("expected ", e.permit ? "permit" : "deny"));
  }
  if (e.check_redact && e.redact != d.redact) {
    out.push_back(absl::StrCat("expected redact [", absl::StrJoin(e.redact, ", "), "]"));
  }
  if (e.check_permits && sorted(e.permit_rules) != sorted(d.permit_rules)) {
    out.push_back(
        absl::StrCat("expected permit_rules [", absl::StrJoin(e.permit_rules, ", "), "]"));
  }
  if (e.check_forbids && sorted(e.forbid_rules) != sorted(d.forbid_rules)) {
    out.push_back(
        absl::StrCat("expected forbid_rules [", absl::StrJoin(e.forbid_rules, ", "), "]"));
  }
  return out;
}

int RunCases(const Bundle& bundle, const Registry& reg, const YAML::Node& root, std::ostream& out,
             std::ostream& err) {
  if (!root.IsMap() || !root["cases"] || !root["cases"].IsSequence()) {
    err << "cases: the file needs a top-level 'cases:' list\n";
    return kExitUsage;
  }
  absl::Time default_now = absl::Now();
  if (root["now"]) {
    auto t = ParseTime(root["now"].as<std::string>());
    if (!t.ok()) {
      err << "now: " << t.status().message() << "\n";
      return kExitUsage;
    }
    default_now = *t;
  }
  size_t total = 0, failed = 0;
  std::set<std::string> exercised;
  const YAML::Node cases = root["cases"];
  for (size_t i = 0; i < cases.size(); ++i) {
    const YAML::Node c = cases[i];
    const std::string name =
        c["name"] ? c["name"].as<std::string>() : absl::StrCat("cases[", i, "]");
    auto usage = [&](absl::string_view what) {
      err << "case '" << name << "': " << what << "\n";
      return kExitUsage;
    };
    if (!c["from"] || !c["to"] || !c["expect"]) return usage("needs from, to and expect");
    const Agency* from = reg.Find(c["from"].as<std::string>());
    if (from == nullptr)
      return usage(absl::StrCat("unknown agency '", c["from"].as<std::string>(), "'"));
    absl::Time now = default_now;
    if (c["now"]) {
      auto t = ParseTime(c["now"].as<std::string>());
      if (!t.ok()) return usage(t.status().message());
      now = *t;
    }
    corridor::v1::Envelope msg;
    if (c["message"]) {
      std::string json;
      YamlToJson(c["message"], &json);
      if (absl::Status s = ParseEnvelopeJson(json, &msg); !s.ok()) {
        return usage(absl::StrCat("message: ", s.message()));
      }
    }
    auto expect = ParseExpectation(c["expect"]);
    if (!expect.ok()) return usage(expect.status().message());
    for (const std::string& to_id : StringList(c["to"])) {
      const Agency* to = reg.Find(to_id);
      if (to == nullptr) return usage(absl::StrCat("unknown agency '", to_id, "'"));
      ++total;
      const Decision d = bundle.Decide(msg, *from, *to, now);
      for (const auto& id : d.permit_rules) exercised.insert(id);
      for (const auto& id : d.forbid_rules) exercised.insert(id);
      const std::vector<std::string> bad = Mismatches(*expect, d);
      if (!bad.empty()) {
        ++failed;
        out << "FAIL " << name << " (" << from->id << " -> " << to_id
            << "): " << absl::StrJoin(bad, "; ") << "; got " << Brief(d) << "\n";
      }
    }
  }
  std::vector<std::string> unexercised;
  for (const std::string& id : bundle.RuleIds()) {
    if (!exercised.contains(id)) unexercised.push_back(id);
  }
  if (!unexercised.empty()) {
    out << "rules no case exercised: " << absl::StrJoin(unexercised, ", ") << "\n";
  }
  out << (failed == 0 ? "PASS" : "FAIL") << ": " << (total - failed) << "/" << total
      << " decisions as expected (policy version " << bundle.version() << ")\n";
  return failed == 0 ? kExitOk : kExitFailed;
}

}  // namespace

int PolicyCheck(const std::filesystem::path& dir, std::shared_ptr<const Registry> reg,
                std::ostream& out, std::ostream& err) {
  auto bundle = LoadBundle(dir, std::move(reg));
  if (!bundle.ok()) {
    err << bundle.status().message() << "\n";
    return bundle.status().code() == absl::StatusCode::kInvalidArgument ? kExitFailed : kExitUsage;
  }
  const Bundle::Stats s = (*bundle)->stats();
  out << "OK: " << s.files << (s.files == 1 ? " file, " : " files, ") << s.permits << " permits, "
      << s.forbids << " forbids, " << s.assertions << " assertions (" << s.assertion_cases
      << " cases enumerated)\n"
      << "version: " << (*bundle)->version() << "\n";
  return kExitOk;
}

int PolicyExplain(const std::filesystem::path& dir, std::shared_ptr<const Registry> reg,
                  std::string_view from, std::string_view to,
                  const std::filesystem::path& message_json, bool json, std::ostream& out,
                  std::ostream& err) {
  return PolicyExplain(dir, std::move(reg), from, to, message_json, json, std::nullopt, out, err);
}

int PolicyExplain(const std::filesystem::path& dir, std::shared_ptr<const Registry> reg,
                  std::string_view from, std::string_view to,
                  const std::filesystem::path& message_json, bool json,
                  std::optional<absl::Time> now, std::ostream& out, std::ostream& err) {
  if (reg == nullptr) {
    err << "no registry\n";
    return kExitUsage;
  }
  const Agency* sender = reg->Find(from);
  if (sender == nullptr) {
    err << "--from: unknown agency '" << from << "'\n";
    return kExitUsage;
  }
  const Agency* recipient = reg->Find(to);
  if (recipient == nullptr) {
    err << "--to: unknown agency '" << to << "'\n";
    return kExitUsage;
  }
  auto text = ReadFile(message_json);
  if (!text.ok()) {
    err << "--message: " << text.status().message() << "\n";
    return kExitUsage;
  }
  corridor::v1::Envelope msg;
  if (absl::Status s = ParseEnvelopeJson(*text, &msg); !s.ok()) {
    err << message_json.string() << ": not a corridor.v1.Envelope in JSON: " << s.message() << "\n";
    return kExitUsage;
  }
  auto bundle = LoadBundle(dir, reg);
  if (!bundle.ok()) {
    err << bundle.status().message() << "\n";
    return kExitUsage;
  }
  const Explanation e = (*bundle)->Explain(msg, *sender, *recipient, now.value_or(absl::Now()));
  if (json) {
    out << e.Json() << "\n";
  } else {
    out << e.Text();
  }
  return e.decision.permit ? kExitOk : kExitFailed;
}

int PolicyTest(const std::filesystem::path& dir, const std::filesystem::path& cases_yaml,
               std::shared_ptr<const Registry> reg, std::ostream& out, std::ostream& err) {
  if (reg == nullptr) {
    err << "no registry\n";
    return kExitUsage;
  }
  auto bundle = LoadBundle(dir, reg);
  if (!bundle.ok()) {
    err << bundle.status().message() << "\n";
    return kExitUsage;
  }
  try {
    const YAML::Node root = YAML::LoadFile(cases_yaml.string());
    return RunCases(**bundle, *reg, root, out, err);
  } catch (const YAML::Exception& e) {
    err << cases_yaml.string() << ": " << e.what() << "\n";
    return kExitUsage;
  }
}

}  // namespace corridor::policy
