// The agency registry: who may connect and what each agency is (kind, city,
// zones, groups, clearance), plus the deployment's handling codes.
//
// It is read from the `trust_domain`, `agencies` and `handling_codes` sections of
// the broker's YAML config, plus the agencies of each peer exchange listed under
// `federation.peers` (remote agencies, of the peer's trust domain), and is the
// vocabulary need-to-share policy speaks:
//
//   CORRIDOR_ASSIGN_OR_RETURN(Registry reg, ParseRegistry(YAML::LoadFile(path)));
//   if (const Agency* a = reg.Find("zs-police")) { ... }
//
// A Registry is an immutable value after parsing; share it as
// std::shared_ptr<const Registry>. Thread-safe for concurrent readers.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"

namespace YAML {
class Node;
}

namespace corridor::policy {

struct Agency {
  std::string id;  // [a-z0-9-]{1,63}, e.g. "zs-police"; unique across all domains
  // The trust domain the agency belongs to: the registry's own for local
  // agencies, the peer's for a remote one (never anything else).
  std::string domain;
  std::string kind;                 // police, customs, maritime, coast_guard, …
  std::string display_name;         // e.g. "中山市公安局水上分局"
  std::string city;                 // e.g. "zhongshan"
  std::vector<std::string> zones;   // defence zones it covers
  std::vector<std::string> groups;  // e.g. "anti-smuggling"
  // Highest classification it may receive, by the lower-case suffix of the
  // corridor.v1.Classification enum: unclassified, restricted, confidential, secret.
  std::string clearance = "restricted";
};

struct HandlingCode {
  std::string code;     // e.g. "H3"
  std::string meaning;  // e.g. "originator only"
};

struct Registry {
  std::string trust_domain;  // e.g. "zhongshan.corridor"
  // Local agencies first, in config order, then each peer's, in config order.
  std::vector<Agency> agencies;
  std::vector<HandlingCode> handling_codes;
  // Trust domains of the peer exchanges, in config order (never trust_domain).
  std::vector<std::string> peer_domains;

  // Returns the agency with this id, local or remote, or nullptr. O(1).
  const Agency* Find(std::string_view id) const;
  // Returns the agency with this id when it is one of this exchange's own
  // (IsLocal), or nullptr: the only agencies that may connect.
  const Agency* FindLocal(std::string_view id) const;
  // An agency built without a domain (in code, not parsed) counts as local.
  bool IsLocal(const Agency& a) const { return a.domain.empty() || a.domain == trust_domain; }
  // True when `code` is declared in handling_codes.
  bool HasHandlingCode(std::string_view code) const;

  // Builds the lookup index; ParseRegistry calls it. Call again after editing `agencies`.
  void Reindex();

 private:
  absl::flat_hash_map<std::string, size_t> by_id_;
};

// Parses the registry sections of a config document. Fails with
// INVALID_ARGUMENT naming the field (e.g. "agencies[2].id: duplicate 'zs-msa'")
// on a missing trust_domain, a malformed or duplicate id, an unknown clearance
// or a duplicate handling code; for `federation.peers[i]`, on a malformed
// domain, one equal to trust_domain or to another peer's, or an agency id
// already used by any domain (an id names one principal everywhere). A peer's
// agencies take the peer's domain: an entry cannot name another. Thread-safe.
absl::StatusOr<Registry> ParseRegistry(const YAML::Node& root);

// True when `id` is a valid agency id: [a-z0-9][a-z0-9-]{0,62}.
bool IsValidAgencyId(std::string_view id);

// True when `td` is a valid SPIFFE trust domain: [a-z0-9._-]{1,255}.
bool IsValidTrustDomain(std::string_view td);

}  // namespace corridor::policy
