// Two cities, each with its own broker, trust domain, CA, registry and data
// dir, peered both ways over real mTLS on loopback: zhongshan.corridor
// (zs-broker: zs-police, zs-customs, zs-msa, zs-coastguard) and
// zhuhai.corridor (zh-broker: zh-police, zh-coastguard). In-process
// BrokerServers with real gRPC, real RocksDB and certificates made by certs/.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <map>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "agency_adapters/client/agency_client.h"
#include "broker/audit_log.h"
#include "broker/config.h"
#include "broker/grpc/server.h"
#include "broker/policy_loader.h"
#include "certs/pki.h"
#include "certs/spiffe_id.h"
#include "corridor/v1/audit.grpc.pb.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "tests/testing/temp_dir.h"

namespace corridor::testing {

// A free TCP port on 127.0.0.1 (bound, then released: the brokers' configs
// name each other before either listens).
inline int FreePort() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  socklen_t len = sizeof(a);
  int port = 0;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0) {
    port = ntohs(a.sin_port);
  }
  ::close(fd);
  return port;
}

struct City {
  std::string domain;
  std::string broker;  // its broker's name
  std::string agencies_yaml;
  std::filesystem::path dir;
  std::filesystem::path certs;
  int port = 0;
  std::string policy_dir;  // empty: permit every registered agency
  std::unique_ptr<broker::grpc_transport::BrokerServer> server;
};

class TwoCitiesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    zs_.domain = "zhongshan.corridor";
    zs_.broker = "zs-broker";
    zs_.agencies_yaml = R"(
  - {id: zs-police, kind: police, city: zhongshan, zones: [zs-north], groups: [anti-smuggling, law-enforcement], clearance: secret}
  - {id: zs-customs, kind: customs, city: zhongshan, zones: [zs-north], groups: [anti-smuggling, law-enforcement], clearance: secret}
  - {id: zs-msa, kind: maritime, city: zhongshan, zones: [zs-south], groups: [maritime-safety], clearance: confidential}
  - {id: zs-coastguard, kind: coast_guard, city: zhongshan, zones: [zs-north], groups: [anti-smuggling, law-enforcement], clearance: secret})";
    zh_.domain = "zhuhai.corridor";
    zh_.broker = "zh-broker";
    zh_.agencies_yaml = R"(
  - {id: zh-police, kind: police, city: zhuhai, zones: [zh-west], groups: [anti-smuggling, law-enforcement], clearance: secret}
  - {id: zh-coastguard, kind: coast_guard, city: zhuhai, zones: [zh-west], groups: [anti-smuggling, law-enforcement], clearance: secret})";
    for (City* c : {&zs_, &zh_}) {
      c->dir = dir_.path() / c->domain;
      c->certs = c->dir / "certs";
      ASSERT_TRUE(certs::MakeDevSet(c->certs, c->domain).ok());
      c->port = FreePort();
      ASSERT_NE(c->port, 0);
    }
    // Zhuhai's own broker and coast guard certificates (the dev set's broker is zs-broker).
    ASSERT_TRUE(Issue(zh_, certs::BrokerId(zh_.domain, "zh-broker"), "broker", true).ok());
    ASSERT_TRUE(
        Issue(zh_, certs::AgencyNodeId(zh_.domain, "zh-coastguard", "node1"), "zh-coastguard")
            .ok());
  }

  void TearDown() override {
    for (City* c : {&zs_, &zh_}) Stop(*c);
  }

  absl::Status Issue(const City& c, const std::string& spiffe_id, const std::string& name,
                     bool server = false) {
    certs::IssueOptions o;
    o.spiffe_id = spiffe_id;
    if (server) {
      o.dns_names = {"localhost"};
      o.ip_addresses = {"127.0.0.1"};
    }
    o.out_dir = c.certs;
    o.name = name;
    return certs::Issue(c.certs / "ca", o).status();
  }

  // `self`'s config, with `peer` as its one peer (audit_key: `peer_key`, may be empty).
  broker::BrokerConfig ConfigFor(const City& self, const City& peer, const std::string& peer_key) {
    std::string yaml = absl::StrCat(
        R"(
broker:
  id: )",
        self.broker, R"(
  listen: 127.0.0.1:)",
        self.port, R"(
  data_dir: data
  tls:
    cert: certs/broker.crt
    key: certs/broker.key
    ca: certs/ca.crt
    crl_dir: certs/crl
  audit:
    checkpoint_interval_ms: 100
trust_domain: )",
        self.domain, R"(
handling_codes:
  - {code: H0, meaning: "releasable"}
  - {code: H1, meaning: "law enforcement"}
  - {code: H2, meaning: "addressees"}
  - {code: H3, meaning: "originator only"}
agencies:)",
        self.agencies_yaml, R"(
federation:
  peers:
    - domain: )",
        peer.domain, R"(
      broker: )",
        peer.broker, R"(
      address: localhost:)",
        peer.port, R"(
      ca: )",
        (peer.certs / "ca.crt").string(), "\n",
        peer_key.empty() ? "" : "      audit_key: \"" + peer_key + "\"\n", R"(      agencies:)",
        absl::StrReplaceAll(peer.agencies_yaml, {{"\n  -", "\n        -"}}), "\n");
    auto cfg = broker::ParseConfig(yaml, self.dir);
    EXPECT_TRUE(cfg.ok()) << cfg.status() << "\n" << yaml;
    if (!cfg.ok()) return {};
    cfg->policy_dir = self.policy_dir;
    return *cfg;
  }

  void Start(City& c, const broker::BrokerConfig& config) {
    auto dp = broker::LoadDecisionPoint(config);
    ASSERT_TRUE(dp.ok()) << dp.status();
    broker::grpc_transport::BrokerServer::Options o;
    o.log = [](std::string_view) {};
    auto server = broker::grpc_transport::BrokerServer::Start(config, *dp, o);
    ASSERT_TRUE(server.ok()) << server.status();
    c.server = *std::move(server);
  }
  void Stop(City& c) {
    if (c.server) c.server->Shutdown(absl::Milliseconds(200));
    c.server.reset();
  }

  // Starts Zhuhai, then Zhongshan with Zhuhai's checkpoint key (so Zhongshan
  // verifies Zhuhai's receipts).
  void StartBoth() {
    Start(zh_, ConfigFor(zh_, zs_, ""));
    ASSERT_NE(zh_.server, nullptr);
    zh_key_ = zh_.server->core()->audit().verifier_key();
    Start(zs_, ConfigFor(zs_, zh_, zh_key_));
  }

  ClientOptions OptionsFor(const City& c, const std::string& stem) const {
    ClientOptions o;
    o.target = absl::StrCat("localhost:", c.port);
    o.cert_file = (c.certs / (stem + ".crt")).string();
    o.key_file = (c.certs / (stem + ".key")).string();
    o.ca_file = (c.certs / "ca.crt").string();
    o.connect_timeout = absl::Seconds(5);
    return o;
  }
  std::unique_ptr<AgencyClient> Client(const City& c, const std::string& stem) {
    auto client = AgencyClient::Connect(OptionsFor(c, stem));
    EXPECT_TRUE(client.ok()) << stem << ": " << client.status();
    return client.ok() ? *std::move(client) : nullptr;
  }

  // The audit entries of `c` matching `query`, as its auditor reads them.
  std::vector<v1::AuditEntry> Entries(const City& c, const v1::AuditQuery& query) {
    auto channel = MakeChannel(OptionsFor(c, "auditor"));
    EXPECT_TRUE(channel.ok());
    if (!channel.ok()) return {};
    auto stub = v1::Audit::NewStub(*channel);
    grpc::ClientContext ctx;
    auto reader = stub->Query(&ctx, query);
    std::vector<v1::AuditEntry> out;
    v1::AuditQueryResponse page;
    while (reader->Read(&page)) {
      for (const auto& r : page.records()) out.push_back(r.entry());
    }
    EXPECT_TRUE(reader->Finish().ok());
    return out;
  }
  std::vector<v1::AuditEntry> Entries(const City& c, v1::AuditEvent event) {
    v1::AuditQuery q;
    q.set_event(event);
    return Entries(c, q);
  }
  // Polls until `pred` holds (true) or `timeout` passes (false).
  template <typename Pred>
  static bool Eventually(Pred pred, absl::Duration timeout = absl::Seconds(15)) {
    const absl::Time end = absl::Now() + timeout;
    while (absl::Now() < end) {
      if (pred()) return true;
      absl::SleepFor(absl::Milliseconds(50));
    }
    return pred();
  }

  TempDir dir_;
  City zs_, zh_;
  std::string zh_key_;
};

}  // namespace corridor::testing
