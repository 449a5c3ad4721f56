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

TEST(ConfigTest, MissingFileIsNotFound) {
  EXPECT_THAT(LoadConfigFile("/nonexistent/corridord.yaml"), StatusIs(absl::StatusCode::kNotFound));
}

}  // namespace
}  // namespace corridor::broker
