// Who is calling: computed once per call from the TLS peer (the certificate's
// URI SAN), never from request contents.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "broker/identity.h"
#include "grpcpp/server_context.h"
#include "policy/registry.h"

namespace corridor::broker::grpc_transport {

// Pure: the identity for a peer presenting these URI SANs. UNAUTHENTICATED when
// there is no single SPIFFE id of this trust domain, or an agency id is not in
// the registry.
absl::StatusOr<PeerIdentity> IdentityFromUris(const std::vector<std::string>& uri_sans,
                                              const policy::Registry& registry);

// The identity of the call's authenticated TLS peer (UNAUTHENTICATED otherwise).
absl::StatusOr<PeerIdentity> Authenticate(const grpc::CallbackServerContext& ctx,
                                          const policy::Registry& registry);

}  // namespace corridor::broker::grpc_transport
