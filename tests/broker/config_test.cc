#include "broker/config.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace corridor::broker {
namespace {

using ::corridor::testing::StatusIs;
using ::testing::HasSubstr;

TEST(ConfigTest, EmbeddedDefaultServesTheDemo) {
  auto cfg = EmbeddedDefaultConfig();
  ASSERT_TRUE(cfg.ok()) << cfg.status();
  EXPECT_EQ(cfg->registry->trust_domain, "zhongshan.corridor");
  for (const char* id : {"zs-police", "zs-customs", "zs-msa", "zs-coastguard"}) {
    EXPECT_NE(cfg->registry->Find(id), nullptr) << id;
  }
  EXPECT_EQ(cfg->registry->Find("zs-msa")->display_name, "中山海事局");
  EXPECT_TRUE(cfg->registry->HasHandlingCode("H3"));
  EXPECT_EQ(cfg->source, "<embedded>");
}

TEST(ConfigTest, RelativePathsResolveAgainstBase) {
  auto cfg = ParseConfig(EmbeddedDefaultConfigText(), "/etc/corridor");
  ASSERT_TRUE(cfg.ok());
  EXPECT_EQ(cfg->data_dir, "/etc/corridor/corridor-data");
  EXPECT_EQ(cfg->tls.ca, "/etc/corridor/corridor-certs/ca.crt");
}

TEST(ConfigTest, ErrorsNameTheField) {
  EXPECT_THAT(ParseConfig("trust_domain: x\n", "/"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("broker")));
  EXPECT_THAT(ParseConfig("broker: {listen: 'a:1', data_dir: d, tls: {cert: c, key: k}}\n", "/"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("broker.tls.ca")));
  std::string dup = R"(broker: {listen: 'a:1', data_dir: d, tls: {cert: c, key: k, ca: a}}
trust_domain: t
agencies: [{id: a, kind: police}, {id: a, kind: customs}]
)";
  EXPECT_THAT(ParseConfig(dup, "/"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("agencies[1].id: duplicate")));
  EXPECT_THAT(ParseConfig("broker: [unclosed", "/"), StatusIs(absl::StatusCode::kInvalidArgument));
}

// Config strings reach audit entries and diagnostics (display names, zones,
// groups, ids): text that is not UTF-8 stops the start, naming where it is.
TEST(ConfigTest, TextThatIsNotUtf8IsRefusedNamingTheField) {
  const std::string base =
      R"(broker: {id: b, listen: 'a:1', data_dir: d, tls: {cert: c, key: k, ca: a}}
trust_domain: t
)";
  EXPECT_THAT(
      ParseConfig(base + "agencies: [{id: a, kind: police, display_name: \"\xD6\xD0\xC9\xBD\"}]\n",
                  "/"),
      StatusIs(absl::StatusCode::kInvalidArgument, "agencies[0].display_name: not valid UTF-8"));
  EXPECT_THAT(
      ParseConfig(base + "agencies: [{id: a, kind: police, zones: [ok, \"\xFF\"]}]\n", "/"),
      StatusIs(absl::StatusCode::kInvalidArgument, "agencies[0].zones[1]: not valid UTF-8"));
  EXPECT_THAT(ParseConfig("broker: {id: \"b\xC0\xAF\", listen: 'a:1'}\n", "/"),
              StatusIs(absl::StatusCode::kInvalidArgument, "broker.id: not valid UTF-8"));
  // The same text in UTF-8 is fine.
  auto fine =
      ParseConfig(base + "agencies: [{id: a, kind: police, display_name: \"中山\"}]\n", "/");
  EXPECT_THAT(fine.status().message(), ::testing::Not(HasSubstr("UTF-8")));
}

TEST(ConfigTest, LimitsHaveSaneDefaultsAndAreValidated) {
  auto cfg = EmbeddedDefaultConfig();
  ASSERT_TRUE(cfg.ok()) << cfg.status();
  EXPECT_EQ(cfg->limits.streams_per_connection, 64u);
  EXPECT_EQ(cfg->limits.streams_per_certificate, 256u);
  EXPECT_EQ(cfg->limits.stream_first_message_timeout, absl::Seconds(10));
  EXPECT_EQ(cfg->limits.handshake_timeout, absl::Seconds(10));
  EXPECT_EQ(cfg->limits.redelivery_backoff_max, absl::Minutes(5));
  EXPECT_EQ(cfg->limits.redelivery_audit_window, absl::Minutes(1));
  EXPECT_EQ(cfg->limits.audit_window, absl::Minutes(1));
  const std::string base = "broker: {listen: 'a:1', data_dir: d, tls: {cert: c, key: k, ca: a}, ";
  const std::string rest = "}\ntrust_domain: t\nagencies: [{id: a, kind: police}]\n";
  auto set = ParseConfig(
      base + "limits: {streams_per_certificate: 5, handshake_timeout_ms: 1500}" + rest, "/");
  ASSERT_TRUE(set.ok()) << set.status();
  EXPECT_EQ(set->limits.streams_per_certificate, 5u);
  EXPECT_EQ(set->limits.handshake_timeout, absl::Milliseconds(1500));
  EXPECT_EQ(set->limits.streams_per_connection, 64u);  // the default stays
  EXPECT_THAT(ParseConfig(base + "limits: {streams_per_connection: 0}" + rest, "/"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("broker.limits.streams_per_connection: must be 1 to")));
  EXPECT_THAT(ParseConfig(base + "limits: {handshake_timeout: 10}" + rest, "/"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("broker.limits.handshake_timeout: unknown limit")));
}

TEST(ConfigTest, StorageFloorHasADefaultAndIsValidated) {
  auto cfg = EmbeddedDefaultConfig();
  ASSERT_TRUE(cfg.ok()) << cfg.status();
  EXPECT_EQ(cfg->storage.free_space_floor_bytes, uint64_t{256} << 20);
  const std::string base = "broker: {listen: 'a:1', data_dir: d, tls: {cert: c, key: k, ca: a}, ";
  const std::string rest = "}\ntrust_domain: t\nagencies: [{id: a, kind: police}]\n";
  auto set = ParseConfig(base + "storage: {free_space_floor_mib: 64}" + rest, "/");
  ASSERT_TRUE(set.ok()) << set.status();
  EXPECT_EQ(set->storage.free_space_floor_bytes, uint64_t{64} << 20);
  auto off = ParseConfig(base + "storage: {free_space_floor_mib: 0}" + rest, "/");
  ASSERT_TRUE(off.ok()) << off.status();
  EXPECT_EQ(off->storage.free_space_floor_bytes, 0u);
  EXPECT_THAT(ParseConfig(base + "storage: {free_space_floor_mib: -1}" + rest, "/"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("broker.storage.free_space_floor_mib: must be")));
  EXPECT_THAT(ParseConfig(base + "storage: {free_space_floor: 5}" + rest, "/"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("broker.storage.free_space_floor: unknown key")));
}

TEST(ConfigTest, CrlSettings) {
  auto cfg = ParseConfig(EmbeddedDefaultConfigText(), "/etc/corridor");
  ASSERT_TRUE(cfg.ok()) << cfg.status();
  EXPECT_EQ(cfg->tls.crl_dir, "/etc/corridor/corridor-certs/crl");
  EXPECT_FALSE(cfg->tls.crl_none);
  EXPECT_EQ(cfg->tls.crl_refresh, absl::Seconds(60));
  EXPECT_EQ(cfg->tls.crl_warn_before, absl::Hours(7 * 24));
  auto yaml = [](const std::string& tls) {
    return "broker: {listen: 'a:1', data_dir: d, tls: {cert: c, key: k, ca: a" + tls +
           "}}\ntrust_domain: t\nagencies: [{id: a, kind: police}]\n";
  };
  auto none = ParseConfig(yaml(", crl: none"), "/");
  ASSERT_TRUE(none.ok()) << none.status();
  EXPECT_TRUE(none->tls.crl_none);
  EXPECT_THAT(ParseConfig(yaml(", crl: off"), "/"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("broker.tls.crl:")));
  EXPECT_THAT(ParseConfig(yaml(", crl: none, crl_dir: x"), "/"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("broker.tls.crl_dir")));
  EXPECT_THAT(
      ParseConfig(yaml(", crl_dir: x, crl_refresh_seconds: 0"), "/"),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("broker.tls.crl_refresh_seconds")));
  EXPECT_THAT(ParseConfig(yaml(", crl_dir: x, crl_warn_days: -1"), "/"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("broker.tls.crl_warn_days")));
}

constexpr char kWithPeers[] =
    R"(broker: {listen: 'a:1', data_dir: d, tls: {cert: c, key: k, ca: ca.crt}}
trust_domain: zhongshan.corridor
agencies: [{id: zs-police, kind: police}]
federation:
  max_hops: 3
  peers:
    - domain: zhuhai.corridor
      broker: zh-broker
      address: 127.0.0.1:7444
      ca: peers/zhuhai-ca.crt
      agencies: [{id: zh-water-police, kind: police, city: zhuhai}]
    - domain: hongkong.corridor
      broker: hk-broker
      address: 127.0.0.1:7445
      ca: peers/hongkong-ca.crt
      cross_border: true
)";

TEST(ConfigTest, PeersAreParsedWithTheirOwnCaBundles) {
  auto cfg = ParseConfig(kWithPeers, "/etc/corridor");
  ASSERT_TRUE(cfg.ok()) << cfg.status();
  EXPECT_EQ(cfg->federation.max_hops, 3u);
  ASSERT_EQ(cfg->federation.peers.size(), 2u);
  const PeerConfig& zh = cfg->federation.peers[0];
  EXPECT_EQ(zh.domain, "zhuhai.corridor");
  EXPECT_EQ(zh.broker, "zh-broker");
  EXPECT_EQ(zh.address, "127.0.0.1:7444");
  EXPECT_EQ(zh.ca, "/etc/corridor/peers/zhuhai-ca.crt");
  EXPECT_FALSE(zh.cross_border);
  EXPECT_TRUE(cfg->federation.peers[1].cross_border);
  EXPECT_EQ(cfg->federation.FindPeer("hongkong.corridor"), &cfg->federation.peers[1]);
  EXPECT_EQ(cfg->federation.FindPeer("zhongshan.corridor"), nullptr);
  EXPECT_EQ(cfg->registry->Find("zh-water-police")->domain, "zhuhai.corridor");
}

TEST(ConfigTest, PeerErrorsNameTheField) {
  auto with = [](std::string from, std::string to) {
    std::string yaml = kWithPeers;
    yaml.replace(yaml.find(from), from.size(), to);
    return ParseConfig(yaml, "/etc/corridor");
  };
  EXPECT_THAT(with("      address: 127.0.0.1:7445\n", ""),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("federation.peers[1].address: required")));
  EXPECT_THAT(with("address: 127.0.0.1:7444", "address: nowhere"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("federation.peers[0].address: must be host:port")));
  EXPECT_THAT(with("broker: zh-broker", "broker: ZH/broker"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("federation.peers[0].broker: 'ZH/broker' must match")));
  EXPECT_THAT(with("ca: peers/zhuhai-ca.crt", "ca: ca.crt"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("federation.peers[0].ca: is broker.tls.ca")));
  EXPECT_THAT(with("max_hops: 3", "max_hops: 0"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("federation.max_hops: must be 1 to 16")));
  EXPECT_THAT(with("{id: zh-water-police,", "{id: zs-police,"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("federation.peers[0].agencies[0].id: duplicate 'zs-police'")));
}

TEST(ConfigTest, MissingFileIsNotFound) {
  EXPECT_THAT(LoadConfigFile("/nonexistent/corridord.yaml"), StatusIs(absl::StatusCode::kNotFound));
}

}  // namespace
}  // namespace corridor::broker
