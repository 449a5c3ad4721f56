#include "broker/grpc/auth.h"

#include <grpc/grpc_security_constants.h>

#include "absl/strings/str_cat.h"
#include "certs/spiffe_id.h"
#include "common/status_macros.h"

namespace corridor::broker::grpc_transport {

absl::StatusOr<PeerIdentity> IdentityFromUris(const std::vector<std::string>& uri_sans,
                                              const policy::Registry& registry,
                                              const FederationSettings& federation) {
  CORRIDOR_ASSIGN_OR_RETURN(std::string spiffe_id, SelectSpiffeId(uri_sans));
  auto parsed = certs::ParseSpiffeId(spiffe_id);
  if (parsed.ok() && parsed->trust_domain != registry.trust_domain) {
    const PeerConfig* listed = federation.FindPeer(parsed->trust_domain);
    if (listed == nullptr) {
      return absl::UnauthenticatedError(absl::StrCat(
          "peer trust domain '", parsed->trust_domain, "' is neither this exchange's '",
          registry.trust_domain, "' nor a listed peer (federation.peers)"));
    }
    const std::string expected =
        absl::StrCat("spiffe://", listed->domain, "/broker/", listed->broker);
    if (spiffe_id != expected) {
      return absl::UnauthenticatedError(absl::StrCat(
          "a certificate of peer domain ", listed->domain, " is accepted only as its broker ",
          expected, ", not as ", spiffe_id.substr(0, 200)));
    }
    return ParseSpiffeId(spiffe_id, listed->domain);
  }
  CORRIDOR_ASSIGN_OR_RETURN(PeerIdentity peer, ParseSpiffeId(spiffe_id, registry.trust_domain));
  if (peer.role == PeerRole::kAgency && registry.FindLocal(peer.agency_id) == nullptr) {
    if (const policy::Agency* remote = registry.Find(peer.agency_id); remote != nullptr) {
      // A certificate of this domain naming a peer domain's agency: refused,
      // whatever this domain's CA signed (an id names one principal).
      return absl::UnauthenticatedError(absl::StrCat("agency '", peer.agency_id,
                                                     "' is an agency of peer domain ",
                                                     remote->domain, ", not of this exchange"));
    }
    return absl::UnauthenticatedError(
        absl::StrCat("agency '", peer.agency_id, "' is not registered with this exchange"));
  }
  return peer;
}

absl::StatusOr<PeerIdentity> Authenticate(const grpc::CallbackServerContext& ctx,
                                          const policy::Registry& registry,
                                          const FederationSettings& federation) {
  std::shared_ptr<const grpc::AuthContext> auth = ctx.auth_context();
  if (auth == nullptr || !auth->IsPeerAuthenticated()) {
    return absl::UnauthenticatedError("no verified client certificate");
  }
  std::vector<std::string> uris;
  for (const auto& v : auth->FindPropertyValues(GRPC_PEER_URI_PROPERTY_NAME)) {
    uris.emplace_back(v.data(), v.size());
  }
  if (uris.empty()) {
    for (const auto& v : auth->FindPropertyValues(GRPC_PEER_SPIFFE_ID_PROPERTY_NAME)) {
      uris.emplace_back(v.data(), v.size());
    }
  }
  return IdentityFromUris(uris, registry, federation);
}

absl::StatusOr<PeerIdentity> AuthenticateCall(const grpc::CallbackServerContext& ctx,
                                              ExchangeCore* core) {
  auto peer = Authenticate(ctx, *core->config().registry, core->config().federation);
  if (!peer.ok()) {
    PeerIdentity who;
    std::shared_ptr<const grpc::AuthContext> auth = ctx.auth_context();
    if (auth != nullptr) {
      for (const auto& v : auth->FindPropertyValues(GRPC_PEER_URI_PROPERTY_NAME)) {
        if (!who.spiffe_id.empty()) who.spiffe_id += " ";
        who.spiffe_id.append(v.data(), v.size());
      }
    }
    core->RecordSecurityEvent(who, absl::StrCat("peer refused: ", peer.status().message()));
  }
  return peer;
}

absl::Status RequireRole(const PeerIdentity& peer, std::initializer_list<PeerRole> allowed,
                         std::string_view method, std::string_view refusal, ExchangeCore* core) {
  for (PeerRole r : allowed) {
    if (peer.role == r) return absl::OkStatus();
  }
  core->RecordSecurityEvent(
      peer, absl::StrCat("refused by role: ", std::string(PeerRoleName(peer.role)), " called ",
                         std::string(method)));
  return absl::PermissionDeniedError(std::string(refusal));
}

}  // namespace corridor::broker::grpc_transport
