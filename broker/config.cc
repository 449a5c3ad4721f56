#include "broker/config.h"

#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "yaml-cpp/yaml.h"

namespace corridor::broker {

extern const char kEmbeddedConfigYaml[];  // generated from deploy/corridord.yaml

namespace {

std::string Resolve(const std::string& p, const std::filesystem::path& base) {
  if (p.empty() || p.rfind("embedded:", 0) == 0) return p;
  std::filesystem::path path(p);
  if (path.is_absolute()) return p;
  return (base / path).lexically_normal().string();
}

absl::StatusOr<BrokerConfig> ParseOrThrow(std::string_view text,
                                          const std::filesystem::path& base) {
  YAML::Node root = YAML::Load(std::string(text));
  if (!root.IsMap()) return absl::InvalidArgumentError("config: must be a YAML map");
  BrokerConfig cfg;
  const YAML::Node b = root["broker"];
  if (!b || !b.IsMap()) return absl::InvalidArgumentError("broker: required section");
  if (b["id"]) cfg.broker_id = b["id"].as<std::string>();
  if (!policy::IsValidAgencyId(cfg.broker_id)) {
    return absl::InvalidArgumentError("broker.id: must match [a-z0-9][a-z0-9-]{0,62}");
  }
  if (!b["listen"]) return absl::InvalidArgumentError("broker.listen: required");
  cfg.listen = b["listen"].as<std::string>();
  if (cfg.listen.find(':') == std::string::npos) {
    return absl::InvalidArgumentError("broker.listen: must be host:port");
  }
  if (!b["data_dir"]) return absl::InvalidArgumentError("broker.data_dir: required");
  cfg.data_dir = Resolve(b["data_dir"].as<std::string>(), base);
  if (b["max_message_bytes"]) {
    int64_t v = b["max_message_bytes"].as<int64_t>();
    if (v < 1024 || v > 16 * 1024 * 1024) {
      return absl::InvalidArgumentError("broker.max_message_bytes: must be 1 KiB to 16 MiB");
    }
    cfg.max_message_bytes = static_cast<size_t>(v);
  }
  const YAML::Node tls = b["tls"];
  if (!tls || !tls.IsMap()) return absl::InvalidArgumentError("broker.tls: required section");
  for (const char* f : {"cert", "key", "ca"}) {
    if (!tls[f]) return absl::InvalidArgumentError(absl::StrCat("broker.tls.", f, ": required"));
  }
  cfg.tls.cert = Resolve(tls["cert"].as<std::string>(), base);
  cfg.tls.key = Resolve(tls["key"].as<std::string>(), base);
  cfg.tls.ca = Resolve(tls["ca"].as<std::string>(), base);
  if (tls["crl_dir"]) cfg.tls.crl_dir = Resolve(tls["crl_dir"].as<std::string>(), base);
  if (b["policy_dir"]) cfg.policy_dir = Resolve(b["policy_dir"].as<std::string>(), base);
  if (const YAML::Node a = b["audit"]; a) {
    if (a["key_file"]) cfg.audit.key_file = Resolve(a["key_file"].as<std::string>(), base);
    if (a["checkpoint_every"]) {
      int64_t v = a["checkpoint_every"].as<int64_t>();
      if (v < 1) return absl::InvalidArgumentError("broker.audit.checkpoint_every: must be >= 1");
      cfg.audit.checkpoint_every = static_cast<uint64_t>(v);
    }
    if (a["checkpoint_interval_ms"]) {
      int64_t v = a["checkpoint_interval_ms"].as<int64_t>();
      if (v < 10) {
        return absl::InvalidArgumentError("broker.audit.checkpoint_interval_ms: must be >= 10");
      }
      cfg.audit.checkpoint_interval = absl::Milliseconds(v);
    }
  }
  auto registry = policy::ParseRegistry(root);
  if (!registry.ok()) return registry.status();
  if (const YAML::Node f = root["federation"]; f) {
    // ParseRegistry checked the section's shape, the domains and the agencies.
    if (f["max_hops"]) {
      int64_t v = f["max_hops"].as<int64_t>();
      if (v < 1 || v > 16)
        return absl::InvalidArgumentError("federation.max_hops: must be 1 to 16");
      cfg.federation.max_hops = static_cast<uint32_t>(v);
    }
    const YAML::Node peers = f["peers"];
    for (size_t i = 0; peers && i < peers.size(); ++i) {
      const YAML::Node p = peers[i];
      const std::string at = absl::StrCat("federation.peers[", i, "]");
      PeerConfig peer;
      peer.domain = p["domain"].as<std::string>();
      for (const char* field : {"broker", "address", "ca"}) {
        if (!p[field] || !p[field].IsScalar() || p[field].as<std::string>().empty()) {
          return absl::InvalidArgumentError(absl::StrCat(at, ".", field, ": required"));
        }
      }
      peer.broker = p["broker"].as<std::string>();
      if (!policy::IsValidAgencyId(peer.broker)) {
        return absl::InvalidArgumentError(
            absl::StrCat(at, ".broker: '", peer.broker, "' must match [a-z0-9][a-z0-9-]{0,62}"));
      }
      peer.address = p["address"].as<std::string>();
      if (peer.address.find(':') == std::string::npos) {
        return absl::InvalidArgumentError(absl::StrCat(at, ".address: must be host:port"));
      }
      peer.ca = Resolve(p["ca"].as<std::string>(), base);
      if (peer.ca == cfg.tls.ca) {
        return absl::InvalidArgumentError(absl::StrCat(
            at, ".ca: is broker.tls.ca; each peer domain is checked against its own CA bundle"));
      }
      if (p["cross_border"]) peer.cross_border = p["cross_border"].as<bool>();
      cfg.federation.peers.push_back(std::move(peer));
    }
  }
  cfg.registry = std::make_shared<const policy::Registry>(*std::move(registry));
  return cfg;
}

}  // namespace

const PeerConfig* FederationSettings::FindPeer(std::string_view domain) const {
  for (const PeerConfig& p : peers) {
    if (p.domain == domain) return &p;
  }
  return nullptr;
}

absl::StatusOr<BrokerConfig> ParseConfig(std::string_view yaml_text,
                                         const std::filesystem::path& base_dir) {
  try {
    return ParseOrThrow(yaml_text, base_dir);
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("config: ", e.what()));
  }
}

absl::StatusOr<BrokerConfig> LoadConfigFile(const std::filesystem::path& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat("config: cannot read ", path.string()));
  std::stringstream ss;
  ss << in.rdbuf();
  std::filesystem::path base = std::filesystem::absolute(path).parent_path();
  auto cfg = ParseConfig(ss.str(), base);
  if (!cfg.ok()) {
    return absl::Status(cfg.status().code(),
                        absl::StrCat(path.string(), ": ", cfg.status().message()));
  }
  cfg->source = path.string();
  return cfg;
}

std::string_view EmbeddedDefaultConfigText() { return kEmbeddedConfigYaml; }

absl::StatusOr<BrokerConfig> EmbeddedDefaultConfig() {
  auto cfg = ParseConfig(kEmbeddedConfigYaml, std::filesystem::current_path());
  if (cfg.ok()) cfg->source = "<embedded>";
  return cfg;
}

}  // namespace corridor::broker
