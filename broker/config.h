// Broker configuration: where to listen, where to store, which TLS files, which
// policy, and the agency registry. YAML; see deploy/corridord.yaml (which is also
// compiled in as the embedded default that serves the local demo).
//
//   CORRIDOR_ASSIGN_OR_RETURN(BrokerConfig cfg, LoadConfigFile("/etc/corridor/corridord.yaml"));
//
// A BrokerConfig is a plain value; the registry inside is shared and immutable.
#pragma once

#include <cstddef>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "policy/registry.h"

namespace corridor::broker {

struct TlsFiles {
  std::string cert;     // PEM, the broker's certificate (chain)
  std::string key;      // PEM, its private key (mode 0600 or stricter)
  std::string ca;       // PEM, the exchange CA(s) that client certificates must chain to
  std::string crl_dir;  // the CAs' CRLs (*.r<N>, *.pem, *.crl); required unless crl_none
  // broker.tls.crl: "required" (the default: every CA of `ca` needs a CRL in
  // crl_dir, or the broker does not start) or "none" (no revocation checks).
  bool crl_none = false;
  // How often crl_dir and `ca` are read again (SIGHUP does it at once).
  absl::Duration crl_refresh = absl::Seconds(60);
  // A CRL this close to its nextUpdate is reported in logs and status.
  absl::Duration crl_warn_before = absl::Hours(7 * 24);
};

struct AuditSettings {
  std::string key_file;  // Ed25519 checkpoint key (PEM); empty: <data_dir>/audit-signing.key
  uint64_t checkpoint_every = 1000;                       // entries
  absl::Duration checkpoint_interval = absl::Seconds(1);  // or this long, whichever first
};

// Resource limits (`broker.limits` in the YAML). Every limit that is hit is
// counted (Admin.Status `limits_hit`) and recorded as a security entry in the
// audit log, summarized per certificate and per `audit_window`, so that a
// flood of refusals cannot flood the log.
struct LimitSettings {
  // Long-lived streams (Subscribe, SubmitStream) open at once on one client
  // connection, and presented with one certificate over all its connections.
  // The next one is refused with RESOURCE_EXHAUSTED naming the limit.
  size_t streams_per_connection = 64;
  size_t streams_per_certificate = 256;
  // A stream that sends no message this long after it opened (a Subscribe
  // without its SubscriptionOpen, say) is closed (DEADLINE_EXCEEDED).
  absl::Duration stream_first_message_timeout = absl::Seconds(10);
  // A connection whose TLS handshake has not completed this long after it was
  // accepted is closed (gRPC's server handshake timeout; its default is 120 s).
  absl::Duration handshake_timeout = absl::Seconds(10);
  // An unacked delivery is sent again after the ack deadline, then after
  // twice that, four times, ... but never waiting longer than this.
  absl::Duration redelivery_backoff_max = absl::Minutes(5);
  // Redeliveries are audited as one summary entry per subscription per window
  // (more only when over 256 deliveries were sent again within it).
  absl::Duration redelivery_audit_window = absl::Minutes(1);
  // A limit hit again by the same certificate within this window is counted
  // into one summary entry instead of an entry each.
  absl::Duration audit_window = absl::Minutes(1);
};

// Storage (`broker.storage` in the YAML).
struct StorageSettings {
  // Below this much free space on the data dir's file system new submissions
  // are refused (RESOURCE_EXHAUSTED) while acks, deliveries, audit queries and
  // status go on; 0 switches the check off. YAML: free_space_floor_mib.
  uint64_t free_space_floor_bytes = uint64_t{256} << 20;
};

// A peer exchange: another city's broker, under its own trust domain and CA.
// Its agencies are in the registry (policy::Agency::domain == domain).
struct PeerConfig {
  std::string domain;   // its SPIFFE trust domain, e.g. "zhuhai.corridor"
  std::string broker;   // its broker's name: spiffe://<domain>/broker/<broker>
  std::string address;  // host:port of its listener
  std::string ca;  // PEM, that domain's CA bundle: its certificates are checked against it only
  bool cross_border = false;  // e.g. Hong Kong: policy and release steps may treat it stricter
  // The peer's audit checkpoint key (C2SP vkey text; the config may name a
  // file holding it): receipts are verified with it. Empty: receipts are
  // neither verified nor recorded (status and the log say so).
  std::string audit_key;
};

struct FederationSettings {
  std::vector<PeerConfig> peers;  // in config order, domains unique and != the registry's
  uint32_t max_hops = 2;          // a transfer that has crossed more domains is refused
  // Transfers queued for one peer and not yet stored there, at most: past it,
  // submissions that would add to it are refused (RESOURCE_EXHAUSTED).
  uint64_t outbox_max = 100000;

  // The peer of this trust domain, or nullptr.
  const PeerConfig* FindPeer(std::string_view domain) const;
};

struct BrokerConfig {
  std::string broker_id = "broker";
  std::string listen = "127.0.0.1:7443";  // host:port; port 0 picks a free port
  std::string data_dir = "./corridor-data";
  size_t max_message_bytes = 256 * 1024;
  TlsFiles tls;
  std::string policy_dir;  // empty: permit every registered agency
  AuditSettings audit;
  LimitSettings limits;
  StorageSettings storage;
  FederationSettings federation;
  std::shared_ptr<const policy::Registry> registry;
  std::string source;  // the file it came from, or "<embedded>"
};

// Parses a config document. Relative paths are resolved against `base_dir`.
// INVALID_ARGUMENT naming the field (e.g. "broker.listen: required") on error.
absl::StatusOr<BrokerConfig> ParseConfig(std::string_view yaml_text,
                                         const std::filesystem::path& base_dir);

// Reads and parses `path`; relative paths inside resolve against its directory.
// NOT_FOUND when the file cannot be read.
absl::StatusOr<BrokerConfig> LoadConfigFile(const std::filesystem::path& path);

// The compiled-in default (deploy/corridord.yaml), resolved against the current directory.
std::string_view EmbeddedDefaultConfigText();
absl::StatusOr<BrokerConfig> EmbeddedDefaultConfig();

}  // namespace corridor::broker
