#include "policy/registry.h"

#include <algorithm>
#include <set>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "yaml-cpp/yaml.h"

namespace corridor::policy {
namespace {

const std::set<std::string, std::less<>> kClearances = {"unclassified", "restricted",
                                                        "confidential", "secret"};

absl::StatusOr<std::vector<std::string>> StringList(const YAML::Node& node,
                                                    const std::string& field) {
  std::vector<std::string> out;
  if (!node) return out;
  if (!node.IsSequence()) {
    return absl::InvalidArgumentError(absl::StrCat(field, ": must be a list of strings"));
  }
  for (size_t i = 0; i < node.size(); ++i) {
    if (!node[i].IsScalar()) {
      return absl::InvalidArgumentError(absl::StrCat(field, "[", i, "]: must be a string"));
    }
    out.push_back(node[i].as<std::string>());
  }
  return out;
}

// Appends the agencies of the list at `field` (all of trust domain `domain`)
// to `out`; `seen` holds the ids of every domain parsed so far.
absl::Status ParseAgencies(const YAML::Node& agencies, const std::string& field,
                           const std::string& domain, std::set<std::string>* seen,
                           std::vector<Agency>* out) {
  for (size_t i = 0; i < agencies.size(); ++i) {
    const YAML::Node a = agencies[i];
    const std::string at = absl::StrCat(field, "[", i, "]");
    if (!a.IsMap()) return absl::InvalidArgumentError(absl::StrCat(at, ": must be a map"));
    Agency agency;
    agency.domain = domain;
    if (!a["id"]) return absl::InvalidArgumentError(absl::StrCat(at, ".id: required"));
    agency.id = a["id"].as<std::string>();
    if (!IsValidAgencyId(agency.id)) {
      return absl::InvalidArgumentError(
          absl::StrCat(at, ".id: '", agency.id, "' must match [a-z0-9][a-z0-9-]{0,62}"));
    }
    if (!seen->insert(agency.id).second) {
      return absl::InvalidArgumentError(absl::StrCat(at, ".id: duplicate '", agency.id, "'"));
    }
    if (a["domain"] && a["domain"].as<std::string>() != domain) {
      return absl::InvalidArgumentError(absl::StrCat(at, ".domain: '",
                                                     a["domain"].as<std::string>(),
                                                     "' is not this list's domain '", domain, "'"));
    }
    if (!a["kind"]) return absl::InvalidArgumentError(absl::StrCat(at, ".kind: required"));
    agency.kind = a["kind"].as<std::string>();
    if (a["display_name"]) agency.display_name = a["display_name"].as<std::string>();
    if (a["city"]) agency.city = a["city"].as<std::string>();
    auto zones = StringList(a["zones"], at + ".zones");
    if (!zones.ok()) return zones.status();
    agency.zones = *std::move(zones);
    auto groups = StringList(a["groups"], at + ".groups");
    if (!groups.ok()) return groups.status();
    agency.groups = *std::move(groups);
    if (a["clearance"]) {
      agency.clearance = a["clearance"].as<std::string>();
      if (!kClearances.contains(agency.clearance)) {
        return absl::InvalidArgumentError(
            absl::StrCat(at, ".clearance: '", agency.clearance,
                         "' is not one of unclassified, restricted, confidential, secret"));
      }
    }
    out->push_back(std::move(agency));
  }
  return absl::OkStatus();
}

absl::StatusOr<Registry> ParseRegistryOrThrow(const YAML::Node& root) {
  Registry reg;
  if (!root["trust_domain"] || !root["trust_domain"].IsScalar()) {
    return absl::InvalidArgumentError("trust_domain: required");
  }
  reg.trust_domain = root["trust_domain"].as<std::string>();
  if (!IsValidTrustDomain(reg.trust_domain)) {
    return absl::InvalidArgumentError(
        absl::StrCat("trust_domain: '", reg.trust_domain, "' is not a valid SPIFFE trust domain"));
  }
  const YAML::Node agencies = root["agencies"];
  if (!agencies || !agencies.IsSequence() || agencies.size() == 0) {
    return absl::InvalidArgumentError("agencies: required, a non-empty list");
  }
  std::set<std::string> seen;
  CORRIDOR_RETURN_IF_ERROR(
      ParseAgencies(agencies, "agencies", reg.trust_domain, &seen, &reg.agencies));
  if (const YAML::Node federation = root["federation"]; federation) {
    if (!federation.IsMap()) return absl::InvalidArgumentError("federation: must be a map");
    const YAML::Node peers = federation["peers"];
    if (peers && !peers.IsSequence()) {
      return absl::InvalidArgumentError("federation.peers: must be a list");
    }
    for (size_t i = 0; peers && i < peers.size(); ++i) {
      const std::string at = absl::StrCat("federation.peers[", i, "]");
      const YAML::Node peer = peers[i];
      if (!peer.IsMap()) return absl::InvalidArgumentError(absl::StrCat(at, ": must be a map"));
      if (!peer["domain"] || !peer["domain"].IsScalar()) {
        return absl::InvalidArgumentError(absl::StrCat(at, ".domain: required"));
      }
      std::string domain = peer["domain"].as<std::string>();
      if (!IsValidTrustDomain(domain)) {
        return absl::InvalidArgumentError(
            absl::StrCat(at, ".domain: '", domain, "' is not a valid SPIFFE trust domain"));
      }
      if (domain == reg.trust_domain) {
        return absl::InvalidArgumentError(
            absl::StrCat(at, ".domain: '", domain, "' is this exchange's own trust domain"));
      }
      if (std::find(reg.peer_domains.begin(), reg.peer_domains.end(), domain) !=
          reg.peer_domains.end()) {
        return absl::InvalidArgumentError(
            absl::StrCat(at, ".domain: duplicate peer '", domain, "'"));
      }
      const YAML::Node remote = peer["agencies"];
      if (remote && !remote.IsSequence()) {
        return absl::InvalidArgumentError(absl::StrCat(at, ".agencies: must be a list"));
      }
      if (remote) {
        CORRIDOR_RETURN_IF_ERROR(
            ParseAgencies(remote, at + ".agencies", domain, &seen, &reg.agencies));
      }
      reg.peer_domains.push_back(std::move(domain));
    }
  }
  const YAML::Node codes = root["handling_codes"];
  if (codes) {
    if (!codes.IsSequence()) {
      return absl::InvalidArgumentError("handling_codes: must be a list");
    }
    std::set<std::string> seen_codes;
    for (size_t i = 0; i < codes.size(); ++i) {
      const std::string at = absl::StrCat("handling_codes[", i, "]");
      if (!codes[i].IsMap() || !codes[i]["code"]) {
        return absl::InvalidArgumentError(absl::StrCat(at, ".code: required"));
      }
      HandlingCode hc;
      hc.code = codes[i]["code"].as<std::string>();
      if (codes[i]["meaning"]) hc.meaning = codes[i]["meaning"].as<std::string>();
      if (hc.code.empty()) return absl::InvalidArgumentError(absl::StrCat(at, ".code: empty"));
      if (!seen_codes.insert(hc.code).second) {
        return absl::InvalidArgumentError(absl::StrCat(at, ".code: duplicate '", hc.code, "'"));
      }
      reg.handling_codes.push_back(std::move(hc));
    }
  }
  reg.Reindex();
  return reg;
}

}  // namespace

bool IsValidTrustDomain(std::string_view td) {
  if (td.empty() || td.size() > 255) return false;
  for (char c : td) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '-' || c == '_';
    if (!ok) return false;
  }
  return true;
}

bool IsValidAgencyId(std::string_view id) {
  if (id.empty() || id.size() > 63) return false;
  for (size_t i = 0; i < id.size(); ++i) {
    char c = id[i];
    bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || (c == '-' && i > 0);
    if (!ok) return false;
  }
  return true;
}

const Agency* Registry::Find(std::string_view id) const {
  auto it = by_id_.find(absl::string_view(id.data(), id.size()));
  return it == by_id_.end() ? nullptr : &agencies[it->second];
}

const Agency* Registry::FindLocal(std::string_view id) const {
  const Agency* a = Find(id);
  return a != nullptr && IsLocal(*a) ? a : nullptr;
}

bool Registry::HasHandlingCode(std::string_view code) const {
  for (const auto& hc : handling_codes) {
    if (hc.code == code) return true;
  }
  return false;
}

void Registry::Reindex() {
  by_id_.clear();
  for (size_t i = 0; i < agencies.size(); ++i) by_id_[agencies[i].id] = i;
}

absl::StatusOr<Registry> ParseRegistry(const YAML::Node& root) {
  try {
    return ParseRegistryOrThrow(root);
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("registry: ", e.what()));
  }
}

}  // namespace corridor::policy
