// What the fuzz targets in this folder share: the demo registry the broker
// embeds, a fixed clock, the submitting peer, the checkpoint signing key, and
// gRPC's library set-up. The seed generator (make_seeds.cc) uses the same
// values, so its seeds are valid for the targets.
//
// Everything is made once and never freed (fuzz targets run until killed).
// Not thread-safe to initialise concurrently; libFuzzer runs one input at a
// time.
#pragma once

#include <cstdlib>
#include <memory>
#include <string>

#include "absl/time/time.h"
#include "broker/config.h"
#include "broker/identity.h"
#include "google/protobuf/stubs/logging.h"
#include "policy/registry.h"

namespace corridor::fuzz {

// The registry of the embedded default config (deploy/corridord.yaml): the
// demo agencies, handling codes H0-H3, trust domain zhongshan.corridor.
inline const policy::Registry& DemoRegistry() {
  static const auto* const reg = [] {
    auto cfg = broker::EmbeddedDefaultConfig();
    if (!cfg.ok()) std::abort();
    return new std::shared_ptr<const policy::Registry>(cfg->registry);
  }();
  return **reg;
}

// A fixed "now" (2026-03-01T02:00:00Z), so a run is reproducible; seeds carry
// times just before it.
inline absl::Time FuzzNow() { return absl::FromUnixSeconds(1772330400); }

// The node every fuzzed envelope arrives from: zs-police/node1.
inline const broker::PeerIdentity& FuzzPeer() {
  static const auto* const peer = [] {
    auto* p = new broker::PeerIdentity;
    p->spiffe_id = "spiffe://zhongshan.corridor/agency/zs-police/node1";
    p->trust_domain = "zhongshan.corridor";
    p->role = broker::PeerRole::kAgency;
    p->agency_id = "zs-police";
    p->node = "node1";
    return p;
  }();
  return *peer;
}

// The checkpoint key of checkpoint_fuzz: an Ed25519 seed of 32 bytes 0x2a,
// key name (and log origin) "zs-broker".
inline std::string CheckpointKeySeed() { return std::string(32, '\x2a'); }
inline constexpr const char* kCheckpointOrigin = "zs-broker";

// Drops libprotobuf's log lines ("String field ... contains invalid UTF-8"),
// which would otherwise be most of a run's output and time.
inline void QuietProtobufLogs() { google::protobuf::SetLogHandler(nullptr); }

}  // namespace corridor::fuzz
