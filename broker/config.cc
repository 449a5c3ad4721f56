#include "broker/config.h"

#include <algorithm>
#include <fstream>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "common/utf8.h"
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

// Every key and scalar of the config must be UTF-8: ids, names, zones and
// groups reach audit entries and diagnostics. INVALID_ARGUMENT naming the
// first that is not ("agencies[2].display_name: not valid UTF-8").
absl::Status CheckUtf8(const YAML::Node& node, const std::string& path) {
  if (node.IsScalar()) {
    if (!IsValidUtf8(node.Scalar())) {
      return absl::InvalidArgumentError(
          absl::StrCat(path.empty() ? "config" : path, ": not valid UTF-8"));
    }
  } else if (node.IsSequence()) {
    for (size_t i = 0; i < node.size(); ++i) {
      CORRIDOR_RETURN_IF_ERROR(CheckUtf8(node[i], absl::StrCat(path, "[", i, "]")));
    }
  } else if (node.IsMap()) {
    for (const auto& kv : node) {
      const std::string key = kv.first.IsScalar() ? kv.first.Scalar() : std::string("?");
      if (!IsValidUtf8(key)) {
        return absl::InvalidArgumentError(
            absl::StrCat(path.empty() ? "config" : path, ": a key is not valid UTF-8"));
      }
      CORRIDOR_RETURN_IF_ERROR(
          CheckUtf8(kv.second, path.empty() ? key : absl::StrCat(path, ".", key)));
    }
  }
  return absl::OkStatus();
}

// A whole number in [min, max] at `node` (named `field` in errors).
absl::StatusOr<int64_t> Bounded(const YAML::Node& node, std::string_view field, int64_t min,
                                int64_t max) {
  const int64_t v = node.as<int64_t>();
  if (v < min || v > max) {
    return absl::InvalidArgumentError(absl::StrCat("broker.limits.",
                                                   absl::string_view(field.data(), field.size()),
                                                   ": must be ", min, " to ", max));
  }
  return v;
}

absl::Status ParseLimits(const YAML::Node& l, LimitSettings* out) {
  if (!l.IsMap()) return absl::InvalidArgumentError("broker.limits: must be a map");
  struct Count {
    const char* key;
    size_t* value;
  };
  for (const Count& c : {Count{"streams_per_connection", &out->streams_per_connection},
                         Count{"streams_per_certificate", &out->streams_per_certificate}}) {
    if (!l[c.key]) continue;
    CORRIDOR_ASSIGN_OR_RETURN(int64_t v, Bounded(l[c.key], c.key, 1, 1'000'000));
    *c.value = static_cast<size_t>(v);
  }
  struct Millis {
    const char* key;
    absl::Duration* value;
    int64_t min;
    int64_t max;
  };
  constexpr int64_t kDay = 24 * 3600 * 1000;
  for (const Millis& m : {
           Millis{"stream_first_message_timeout_ms", &out->stream_first_message_timeout, 100, kDay},
           Millis{"handshake_timeout_ms", &out->handshake_timeout, 100, 600'000},
           Millis{"redelivery_backoff_max_ms", &out->redelivery_backoff_max, 1000, kDay},
           Millis{"redelivery_audit_window_ms", &out->redelivery_audit_window, 10, kDay},
           Millis{"audit_window_ms", &out->audit_window, 10, kDay},
       }) {
    if (!l[m.key]) continue;
    CORRIDOR_ASSIGN_OR_RETURN(int64_t v, Bounded(l[m.key], m.key, m.min, m.max));
    *m.value = absl::Milliseconds(v);
  }
  for (const auto& kv : l) {
    static constexpr std::string_view kKnown[] = {
        "streams_per_connection", "streams_per_certificate",   "stream_first_message_timeout_ms",
        "handshake_timeout_ms",   "redelivery_backoff_max_ms", "redelivery_audit_window_ms",
        "audit_window_ms"};
    const std::string key = kv.first.as<std::string>();
    if (std::find(std::begin(kKnown), std::end(kKnown), key) == std::end(kKnown)) {
      return absl::InvalidArgumentError(absl::StrCat("broker.limits.", key, ": unknown limit"));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<BrokerConfig> ParseOrThrow(std::string_view text,
                                          const std::filesystem::path& base) {
  YAML::Node root = YAML::Load(std::string(text));
  if (!root.IsMap()) return absl::InvalidArgumentError("config: must be a YAML map");
  CORRIDOR_RETURN_IF_ERROR(CheckUtf8(root, ""));
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
  if (tls["crl"]) {
    const std::string crl = tls["crl"].as<std::string>();
    if (crl != "required" && crl != "none") {
      return absl::InvalidArgumentError("broker.tls.crl: must be required or none");
    }
    cfg.tls.crl_none = crl == "none";
    if (cfg.tls.crl_none && !cfg.tls.crl_dir.empty()) {
      return absl::InvalidArgumentError(
          "broker.tls.crl: none, but broker.tls.crl_dir is set: remove one of them");
    }
  }
  if (tls["crl_refresh_seconds"]) {
    int64_t v = tls["crl_refresh_seconds"].as<int64_t>();
    if (v < 1 || v > 86400) {
      return absl::InvalidArgumentError("broker.tls.crl_refresh_seconds: must be 1 to 86400");
    }
    cfg.tls.crl_refresh = absl::Seconds(v);
  }
  if (tls["crl_warn_days"]) {
    int64_t v = tls["crl_warn_days"].as<int64_t>();
    if (v < 0 || v > 365) {
      return absl::InvalidArgumentError("broker.tls.crl_warn_days: must be 0 to 365");
    }
    cfg.tls.crl_warn_before = absl::Hours(24 * v);
  }
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
  if (const YAML::Node l = b["limits"]; l) {
    CORRIDOR_RETURN_IF_ERROR(ParseLimits(l, &cfg.limits));
  }
  if (const YAML::Node st = b["storage"]; st) {
    if (!st.IsMap()) return absl::InvalidArgumentError("broker.storage: must be a map");
    for (const auto& kv : st) {
      if (kv.first.as<std::string>() != "free_space_floor_mib") {
        return absl::InvalidArgumentError(
            absl::StrCat("broker.storage.", kv.first.as<std::string>(), ": unknown key"));
      }
    }
    if (st["free_space_floor_mib"]) {
      const int64_t v = st["free_space_floor_mib"].as<int64_t>();
      if (v < 0 || v > (int64_t{1} << 30)) {
        return absl::InvalidArgumentError(
            "broker.storage.free_space_floor_mib: must be 0 (off) to 1073741824");
      }
      cfg.storage.free_space_floor_bytes = static_cast<uint64_t>(v) << 20;
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
    if (f["outbox_max"]) {
      int64_t v = f["outbox_max"].as<int64_t>();
      if (v < 1) return absl::InvalidArgumentError("federation.outbox_max: must be at least 1");
      cfg.federation.outbox_max = static_cast<uint64_t>(v);
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
      if (p["audit_key"]) {
        const std::string v = p["audit_key"].as<std::string>();
        const std::filesystem::path file = Resolve(v, base);
        if (std::ifstream in(file); in) {
          std::stringstream text;
          text << in.rdbuf();
          peer.audit_key = std::string(absl::StripAsciiWhitespace(text.str()));
        } else if (v.find('+') != std::string::npos) {
          peer.audit_key = v;
        } else {
          return absl::InvalidArgumentError(absl::StrCat(
              at, ".audit_key: '", v, "' is neither a readable file nor a vkey (name+id+key)"));
        }
      }
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
