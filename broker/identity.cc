#include "broker/identity.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace corridor::broker {
namespace {

bool IsSegment(absl::string_view s) {
  if (s.empty() || s.size() > 63) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              (i > 0 && (c == '-' || c == '_' || c == '.'));
    if (!ok) return false;
  }
  return true;
}

}  // namespace

std::string_view PeerRoleName(PeerRole role) {
  switch (role) {
    case PeerRole::kAgency:
      return "agency";
    case PeerRole::kAuditor:
      return "auditor";
    case PeerRole::kAdmin:
      return "admin";
    case PeerRole::kBroker:
      return "broker";
  }
  return "unknown";
}

absl::StatusOr<PeerIdentity> ParseSpiffeId(std::string_view uri,
                                           std::string_view expected_trust_domain) {
  constexpr absl::string_view kScheme = "spiffe://";
  absl::string_view u(uri.data(), uri.size());
  if (!absl::StartsWith(u, kScheme)) {
    return absl::UnauthenticatedError("peer certificate URI SAN is not a spiffe:// id");
  }
  std::vector<absl::string_view> parts = absl::StrSplit(u.substr(kScheme.size()), '/');
  PeerIdentity id;
  id.spiffe_id = std::string(uri);
  id.trust_domain = std::string(parts[0]);
  if (id.trust_domain != expected_trust_domain) {
    return absl::UnauthenticatedError(absl::StrCat("peer trust domain '", id.trust_domain,
                                                   "' is not this exchange's '",
                                                   std::string(expected_trust_domain), "'"));
  }
  for (size_t i = 1; i < parts.size(); ++i) {
    if (!IsSegment(parts[i])) {
      return absl::UnauthenticatedError(absl::StrCat("peer SPIFFE id has a malformed segment ", i));
    }
  }
  if (parts.size() == 4 && parts[1] == "agency") {
    id.role = PeerRole::kAgency;
    id.agency_id = std::string(parts[2]);
    id.node = std::string(parts[3]);
    return id;
  }
  if (parts.size() == 3) {
    id.node = std::string(parts[2]);
    if (parts[1] == "auditor") {
      id.role = PeerRole::kAuditor;
      return id;
    }
    if (parts[1] == "admin") {
      id.role = PeerRole::kAdmin;
      return id;
    }
    if (parts[1] == "broker") {
      id.role = PeerRole::kBroker;
      return id;
    }
  }
  return absl::UnauthenticatedError(
      "peer SPIFFE id is not agency/<id>/<node>, auditor/<name>, admin/<name> or broker/<name>");
}

absl::StatusOr<std::string> SelectSpiffeId(const std::vector<std::string>& uri_sans) {
  std::string found;
  for (const std::string& uri : uri_sans) {
    if (!absl::StartsWith(uri, "spiffe://")) continue;
    if (!found.empty()) {
      return absl::UnauthenticatedError("peer certificate has more than one spiffe:// URI SAN");
    }
    found = uri;
  }
  if (found.empty()) {
    return absl::UnauthenticatedError("peer certificate has no spiffe:// URI SAN");
  }
  return found;
}

}  // namespace corridor::broker
