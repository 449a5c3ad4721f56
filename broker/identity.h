// Peer identity: who is calling, computed once per call from the peer
// certificate's URI SAN (never from anything the peer sends).
//
//   CORRIDOR_ASSIGN_OR_RETURN(PeerIdentity id,
//       ParseSpiffeId("spiffe://zhongshan.corridor/agency/zs-police/node1",
//                     "zhongshan.corridor"));
//   id.role == PeerRole::kAgency; id.agency_id == "zs-police"; id.node == "node1"
//
// Pure functions and plain values; thread-safe.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace corridor::broker {

enum class PeerRole { kAgency, kAuditor, kAdmin, kBroker };

std::string_view PeerRoleName(PeerRole role);

struct PeerIdentity {
  std::string spiffe_id;
  std::string trust_domain;
  PeerRole role = PeerRole::kAgency;
  std::string agency_id;  // kAgency only
  std::string node;       // kAgency: the node; other roles: the name
};

// Parses a SPIFFE id of one of the four shapes (grammar: docs/identity.md):
//   spiffe://<td>/agency/<agency-id>/<node>, spiffe://<td>/auditor/<name>,
//   spiffe://<td>/admin/<name>, spiffe://<td>/broker/<name>.
// Returns UNAUTHENTICATED (with the reason) when the id is malformed, of another
// trust domain than `expected_trust_domain`, or of an unknown shape.
absl::StatusOr<PeerIdentity> ParseSpiffeId(std::string_view uri,
                                           std::string_view expected_trust_domain);

// Picks the peer's SPIFFE id from the URI SANs of its certificate: exactly one
// "spiffe://" URI must be present. UNAUTHENTICATED otherwise.
absl::StatusOr<std::string> SelectSpiffeId(const std::vector<std::string>& uri_sans);

}  // namespace corridor::broker
