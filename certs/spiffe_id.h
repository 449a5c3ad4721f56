// SPIFFE ids of Corridor (docs/identity.md, "SPIFFE ids"): build them,
// parse them, and check that one names a node of a given trust domain.
//
// Corridor uses exactly four shapes, all under one trust domain:
//
//   spiffe://<td>/agency/<agency-id>/<node>   an agency's node (adapter, client)
//   spiffe://<td>/auditor/<name>              an auditor / data-protection officer
//   spiffe://<td>/admin/<name>                an operator
//   spiffe://<td>/broker/<name>               a broker (federation peers too)
//
//   CORRIDOR_ASSIGN_OR_RETURN(SpiffeId id, ParseSpiffeId(uri_san));
//   if (id.kind == SpiffeKind::kAgency) { ... id.agency ... }
//
// Everything here is a pure function of its arguments (no OpenSSL, no files);
// thread-safe.
#pragma once

#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace corridor::certs {

// Builders. They concatenate without validating; pass the result through
// ValidateSpiffeId() when the parts come from untrusted input.
//
// spiffe://<trust_domain>/agency/<agency>/<node>
std::string AgencyNodeId(std::string_view trust_domain, std::string_view agency,
                         std::string_view node);
// spiffe://<td>/auditor/<name>
std::string AuditorId(std::string_view td, std::string_view name);
// spiffe://<td>/admin/<name>
std::string AdminId(std::string_view td, std::string_view name);
// spiffe://<td>/broker/<name>
std::string BrokerId(std::string_view td, std::string_view name);
// spiffe://<td> (the trust domain's own id; the CA certificate carries it).
std::string TrustDomainId(std::string_view td);

enum class SpiffeKind { kAgency, kAuditor, kAdmin, kBroker };

// "agency", "auditor", "admin" or "broker".
std::string_view SpiffeKindName(SpiffeKind kind);

// A parsed, valid Corridor SPIFFE id.
struct SpiffeId {
  std::string trust_domain;  // e.g. "zhongshan.corridor"
  SpiffeKind kind = SpiffeKind::kAgency;
  std::string agency;  // the agency id for kAgency, empty otherwise
  std::string name;    // the node for kAgency, the name otherwise (= last path component)
};

// OK if `td` is a valid trust domain name: 1..255 characters of [a-z0-9._-],
// made of non-empty dot-separated labels. INVALID_ARGUMENT otherwise, naming it.
absl::Status ValidateTrustDomain(std::string_view td);

// OK if `component` is a valid agency id, node or name: [a-z0-9][a-z0-9-_.]{0,62}.
// INVALID_ARGUMENT otherwise; `what` (e.g. "agency id") names it in the message.
absl::Status ValidateComponent(std::string_view component, std::string_view what);

// Parses `id` as one of the four Corridor shapes. INVALID_ARGUMENT (naming the
// id and what is wrong) if it is not a spiffe:// URI, has an invalid trust
// domain, a query, fragment, port, user info, percent-encoding, empty or
// dot segments, or is not one of the four shapes with valid components.
absl::StatusOr<SpiffeId> ParseSpiffeId(std::string_view id);

// ParseSpiffeId(id) plus: the id's trust domain must equal `trust_domain`.
// INVALID_ARGUMENT otherwise (also when `trust_domain` itself is invalid).
absl::Status ValidateSpiffeId(std::string_view id, std::string_view trust_domain);

// Extracts the trust domain of a bare trust-domain id "spiffe://<td>" (no path),
// as carried by the CA certificate. INVALID_ARGUMENT for anything else.
absl::StatusOr<std::string> ParseTrustDomainId(std::string_view id);

}  // namespace corridor::certs
