#include "certs/spiffe_id.h"

#include <string>
#include <string_view>
#include <vector>

namespace corridor::certs {
namespace {

constexpr std::string_view kScheme = "spiffe://";
constexpr size_t kMaxTrustDomainLength = 255;
constexpr size_t kMaxComponentLength = 63;
constexpr size_t kMaxIdLength = 2048;  // SPIFFE-ID spec: URIs up to 2048 bytes

bool IsLowerAlnum(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }

// Quotes untrusted text for an error message: printable ASCII kept, the rest
// escaped, long input cut, so a message never carries control characters.
std::string Quote(std::string_view s) {
  constexpr size_t kMax = 120;
  std::string out = "\"";
  for (size_t i = 0; i < s.size() && i < kMax; ++i) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c >= 0x20 && c < 0x7f) {
      out += static_cast<char>(c);
    } else {
      static constexpr char kHex[] = "0123456789abcdef";
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 0xf];
    }
  }
  if (s.size() > kMax) out += "...";
  out += '"';
  return out;
}

absl::Status Invalid(std::string_view id, std::string_view why) {
  return absl::InvalidArgumentError("spiffe id " + Quote(id) + ": " + std::string(why));
}

std::vector<std::string_view> SplitPath(std::string_view path) {
  std::vector<std::string_view> parts;
  size_t start = 0;
  while (true) {
    const size_t slash = path.find('/', start);
    if (slash == std::string_view::npos) {
      parts.push_back(path.substr(start));
      return parts;
    }
    parts.push_back(path.substr(start, slash - start));
    start = slash + 1;
  }
}

std::string Join(std::string_view a, std::string_view b, std::string_view c = {},
                 std::string_view d = {}) {
  std::string out;
  out.reserve(a.size() + b.size() + c.size() + d.size());
  out.append(a).append(b).append(c).append(d);
  return out;
}

// Splits "spiffe://td[/path]" into td and path (without the leading '/').
absl::Status SplitId(std::string_view id, std::string_view* td, std::string_view* path,
                     bool* has_path) {
  if (id.empty()) return absl::InvalidArgumentError("spiffe id is empty");
  if (id.size() > kMaxIdLength) return Invalid(id, "longer than 2048 bytes");
  if (id.substr(0, kScheme.size()) != kScheme) {
    return Invalid(id, "does not start with \"spiffe://\" (the scheme is lower case)");
  }
  std::string_view rest = id.substr(kScheme.size());
  for (char c : rest) {
    if (c == '?') return Invalid(id, "has a query ('?')");
    if (c == '#') return Invalid(id, "has a fragment ('#')");
    if (c == '%') return Invalid(id, "has percent-encoding ('%')");
  }
  const size_t slash = rest.find('/');
  *td = rest.substr(0, slash);
  *has_path = slash != std::string_view::npos;
  *path = *has_path ? rest.substr(slash + 1) : std::string_view();
  if (td->find('@') != std::string_view::npos) return Invalid(id, "has user info ('@')");
  if (td->find(':') != std::string_view::npos) return Invalid(id, "has a port (':')");
  if (absl::Status s = ValidateTrustDomain(*td); !s.ok()) {
    return Invalid(id, std::string(s.message()));
  }
  return absl::OkStatus();
}

}  // namespace

std::string AgencyNodeId(std::string_view trust_domain, std::string_view agency,
                         std::string_view node) {
  return Join(kScheme, trust_domain, Join("/agency/", agency, "/", node));
}
std::string AuditorId(std::string_view td, std::string_view name) {
  return Join(kScheme, td, "/auditor/", name);
}
std::string AdminId(std::string_view td, std::string_view name) {
  return Join(kScheme, td, "/admin/", name);
}
std::string BrokerId(std::string_view td, std::string_view name) {
  return Join(kScheme, td, "/broker/", name);
}
std::string TrustDomainId(std::string_view td) { return Join(kScheme, td); }

std::string_view SpiffeKindName(SpiffeKind kind) {
  switch (kind) {
    case SpiffeKind::kAgency:
      return "agency";
    case SpiffeKind::kAuditor:
      return "auditor";
    case SpiffeKind::kAdmin:
      return "admin";
    case SpiffeKind::kBroker:
      return "broker";
  }
  return "unknown";
}

absl::Status ValidateTrustDomain(std::string_view td) {
  if (td.empty()) return absl::InvalidArgumentError("trust domain is empty");
  if (td.size() > kMaxTrustDomainLength) {
    return absl::InvalidArgumentError("trust domain " + Quote(td) +
                                      " is longer than 255 characters");
  }
  for (char c : td) {
    if (!IsLowerAlnum(c) && c != '.' && c != '-' && c != '_') {
      return absl::InvalidArgumentError(
          "trust domain " + Quote(td) +
          " may contain only lower-case letters, digits, '.', '-' and '_'");
    }
  }
  if (td.front() == '.' || td.back() == '.' || td.find("..") != std::string_view::npos) {
    return absl::InvalidArgumentError("trust domain " + Quote(td) + " has an empty label");
  }
  return absl::OkStatus();
}

absl::Status ValidateComponent(std::string_view component, std::string_view what) {
  const std::string name(what);
  if (component.empty()) return absl::InvalidArgumentError(name + " is empty");
  if (component.size() > kMaxComponentLength) {
    return absl::InvalidArgumentError(name + " " + Quote(component) +
                                      " is longer than 63 characters");
  }
  if (!IsLowerAlnum(component.front())) {
    return absl::InvalidArgumentError(name + " " + Quote(component) +
                                      " must start with a lower-case letter or a digit");
  }
  for (char c : component) {
    if (!IsLowerAlnum(c) && c != '-' && c != '_' && c != '.') {
      return absl::InvalidArgumentError(
          name + " " + Quote(component) +
          " may contain only lower-case letters, digits, '-', '_' and '.'");
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<SpiffeId> ParseSpiffeId(std::string_view id) {
  std::string_view td, path;
  bool has_path = false;
  if (absl::Status s = SplitId(id, &td, &path, &has_path); !s.ok()) return s;
  if (!has_path || path.empty()) {
    return Invalid(id,
                   "has no path; expected /agency/<agency>/<node>, /auditor/<name>, "
                   "/admin/<name> or /broker/<name>");
  }
  const std::vector<std::string_view> parts = SplitPath(path);
  for (std::string_view p : parts) {
    if (p.empty()) return Invalid(id, "has an empty path segment");
    if (p == "." || p == "..") return Invalid(id, "has a '.' or '..' path segment");
  }

  SpiffeId out;
  out.trust_domain = std::string(td);
  const std::string_view kind = parts[0];
  auto check = [&](std::string_view component, std::string_view what) -> absl::Status {
    absl::Status s = ValidateComponent(component, what);
    return s.ok() ? s : Invalid(id, std::string(s.message()));
  };
  if (kind == "agency") {
    if (parts.size() != 3) return Invalid(id, "an agency id must be /agency/<agency>/<node>");
    if (absl::Status s = check(parts[1], "agency id"); !s.ok()) return s;
    if (absl::Status s = check(parts[2], "node"); !s.ok()) return s;
    out.kind = SpiffeKind::kAgency;
    out.agency = std::string(parts[1]);
    out.name = std::string(parts[2]);
    return out;
  }
  if (kind == "auditor" || kind == "admin" || kind == "broker") {
    if (parts.size() != 2) {
      return Invalid(id, Join("must be /", kind, "/<name>"));
    }
    if (absl::Status s = check(parts[1], Join(kind, " name")); !s.ok()) return s;
    out.kind = kind == "auditor" ? SpiffeKind::kAuditor
               : kind == "admin" ? SpiffeKind::kAdmin
                                 : SpiffeKind::kBroker;
    out.name = std::string(parts[1]);
    return out;
  }
  return Invalid(id, "path must start with /agency/, /auditor/, /admin/ or /broker/");
}

absl::Status ValidateSpiffeId(std::string_view id, std::string_view trust_domain) {
  if (absl::Status s = ValidateTrustDomain(trust_domain); !s.ok()) return s;
  absl::StatusOr<SpiffeId> parsed = ParseSpiffeId(id);
  if (!parsed.ok()) return parsed.status();
  if (parsed->trust_domain != trust_domain) {
    return Invalid(id, "is in trust domain " + Quote(parsed->trust_domain) + ", expected " +
                           Quote(trust_domain));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> ParseTrustDomainId(std::string_view id) {
  std::string_view td, path;
  bool has_path = false;
  if (absl::Status s = SplitId(id, &td, &path, &has_path); !s.ok()) return s;
  if (has_path) return Invalid(id, "a trust domain id has no path");
  return std::string(td);
}

}  // namespace corridor::certs
