// Who is calling: computed once per call from the TLS peer (the certificate's
// URI SAN), never from request contents.
#pragma once

#include <initializer_list>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "broker/exchange_core.h"
#include "broker/identity.h"
#include "grpcpp/server_context.h"
#include "policy/registry.h"

namespace corridor::broker::grpc_transport {

// Pure: the identity for a peer presenting these URI SANs. UNAUTHENTICATED when
// there is no single SPIFFE id, or an agency id is not in the registry. An id
// of another trust domain is accepted only as the broker of a listed peer
// (federation.peers: spiffe://<domain>/broker/<its broker name>), with role
// kBroker and that trust_domain; any other shape of a peer domain (an agency,
// an auditor, an admin, another broker name) and any unlisted domain is refused.
absl::StatusOr<PeerIdentity> IdentityFromUris(const std::vector<std::string>& uri_sans,
                                              const policy::Registry& registry,
                                              const FederationSettings& federation);

// The identity of the call's authenticated TLS peer (UNAUTHENTICATED otherwise).
absl::StatusOr<PeerIdentity> Authenticate(const grpc::CallbackServerContext& ctx,
                                          const policy::Registry& registry,
                                          const FederationSettings& federation);

// Authenticate(), and when a peer that completed the TLS handshake is refused
// (unregistered agency, foreign trust domain), a security entry in the audit log.
absl::StatusOr<PeerIdentity> AuthenticateCall(const grpc::CallbackServerContext& ctx,
                                              ExchangeCore* core);

// OK when `peer` has one of `allowed`; otherwise PERMISSION_DENIED with
// `refusal` and a security entry in the audit log naming the peer and `method`
// (e.g. an agency calling the Audit service, an auditor calling Subscribe).
absl::Status RequireRole(const PeerIdentity& peer, std::initializer_list<PeerRole> allowed,
                         std::string_view method, std::string_view refusal, ExchangeCore* core);

}  // namespace corridor::broker::grpc_transport
