#include "broker/identity.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "certs/spiffe_id.h"

namespace corridor::broker {

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
  // One grammar for the ids certs/ issues and the ids the broker accepts.
  absl::StatusOr<certs::SpiffeId> parsed = certs::ParseSpiffeId(uri);
  if (!parsed.ok()) {
    return absl::UnauthenticatedError(
        absl::StrCat("peer certificate: ", parsed.status().message()));
  }
  if (parsed->trust_domain != expected_trust_domain) {
    return absl::UnauthenticatedError(absl::StrCat("peer trust domain '", parsed->trust_domain,
                                                   "' is not this exchange's '",
                                                   std::string(expected_trust_domain), "'"));
  }
  PeerIdentity id;
  id.spiffe_id = std::string(uri);
  id.trust_domain = parsed->trust_domain;
  id.agency_id = parsed->agency;
  id.node = parsed->name;
  switch (parsed->kind) {
    case certs::SpiffeKind::kAgency:
      id.role = PeerRole::kAgency;
      break;
    case certs::SpiffeKind::kAuditor:
      id.role = PeerRole::kAuditor;
      break;
    case certs::SpiffeKind::kAdmin:
      id.role = PeerRole::kAdmin;
      break;
    case certs::SpiffeKind::kBroker:
      id.role = PeerRole::kBroker;
      break;
  }
  return id;
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
