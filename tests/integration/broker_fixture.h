// An in-process broker on 127.0.0.1:0 with a fresh dev PKI (made by certs/) and
// a fresh data dir, plus clients that present the dev certificates. Real gRPC,
// real mTLS, real RocksDB.
#pragma once

#include <memory>
#include <string>

#include "agency_adapters/client/agency_client.h"
#include "broker/config.h"
#include "broker/grpc/server.h"
#include "broker/policy_loader.h"
#include "certs/pki.h"
#include "gtest/gtest.h"
#include "tests/testing/temp_dir.h"

namespace corridor::testing {

class BrokerFixture : public ::testing::Test {
 protected:
  void SetUp() override {
    certs_dir_ = dir_.path() / "certs";
    ASSERT_TRUE(certs::MakeDevSet(certs_dir_, "zhongshan.corridor").ok());
    auto cfg = broker::EmbeddedDefaultConfig();
    ASSERT_TRUE(cfg.ok()) << cfg.status();
    config_ = *cfg;
    config_.listen = "127.0.0.1:0";
    config_.data_dir = (dir_.path() / "data").string();
    config_.tls.cert = (certs_dir_ / "broker.crt").string();
    config_.tls.key = (certs_dir_ / "broker.key").string();
    config_.tls.ca = (certs_dir_ / "ca.crt").string();
    config_.tls.crl_dir = (certs_dir_ / "crl").string();
    config_.policy_dir = "";  // permit-all: these tests are about the core; policy tests opt in
    Customize(config_);
    StartBroker();
  }
  void TearDown() override { StopBroker(); }

  // Lets a test change the config before the first start.
  virtual void Customize(broker::BrokerConfig& config) {}

  void StartBroker() {
    auto dp = broker::LoadDecisionPoint(config_);
    ASSERT_TRUE(dp.ok()) << dp.status();
    auto server = broker::grpc_transport::BrokerServer::Start(config_, *dp);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
  }
  void StopBroker() {
    if (server_) server_->Shutdown(absl::Milliseconds(200));
    server_.reset();
  }

  std::string Target() const { return "localhost:" + std::to_string(server_->port()); }

  ClientOptions OptionsFor(const std::string& stem) const {
    ClientOptions o;
    o.target = Target();
    o.cert_file = (certs_dir_ / (stem + ".crt")).string();
    o.key_file = (certs_dir_ / (stem + ".key")).string();
    o.ca_file = (certs_dir_ / "ca.crt").string();
    o.connect_timeout = absl::Seconds(5);
    return o;
  }

  std::unique_ptr<AgencyClient> Client(const std::string& stem) {
    auto c = AgencyClient::Connect(OptionsFor(stem));
    EXPECT_TRUE(c.ok()) << stem << ": " << c.status();
    return c.ok() ? *std::move(c) : nullptr;
  }

  TempDir dir_;
  std::filesystem::path certs_dir_;
  broker::BrokerConfig config_;
  std::unique_ptr<broker::grpc_transport::BrokerServer> server_;
};

}  // namespace corridor::testing
