// Kill -9 the real corridord binary mid-load, restart it on the same data dir,
// and check that nothing acknowledged was lost and every unacked delivery still
// arrives.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <fstream>
#include <map>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>

#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "agency_adapters/client/agency_client.h"
#include "broker/config.h"
#include "certs/pki.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/envelopes.h"
#include "tests/testing/temp_dir.h"

namespace corridor::testing {
namespace {

class CrashTest : public ::testing::Test {
 protected:
  void SetUp() override {
    certs_ = dir_.path() / "certs";
    ASSERT_TRUE(certs::MakeDevSet(certs_).ok());
    std::string yaml = std::string(broker::EmbeddedDefaultConfigText());
    yaml = absl::StrReplaceAll(yaml, {{"listen: 127.0.0.1:7443", "listen: 127.0.0.1:0"},
                                      {"./corridor-data", (dir_.path() / "data").string()},
                                      {"./corridor-certs", certs_.string()}});
    config_path_ = dir_.path() / "corridord.yaml";
    std::ofstream(config_path_) << yaml;
  }
  void TearDown() override {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
  }

  // Starts corridord and waits for it to write its port.
  void StartBroker() {
    auto port_file = dir_.path() / "port";
    std::filesystem::remove(port_file);
    pid_ = fork();
    ASSERT_GE(pid_, 0);
    if (pid_ == 0) {
      execl(CORRIDORD_PATH, "corridord", "--config", config_path_.c_str(), "--port-file",
            port_file.c_str(), static_cast<char*>(nullptr));
      _exit(127);
    }
    for (int i = 0; i < 200 && !std::filesystem::exists(port_file); ++i) {
      absl::SleepFor(absl::Milliseconds(50));
    }
    ASSERT_TRUE(std::filesystem::exists(port_file)) << "corridord did not start";
    std::ifstream(port_file) >> port_;
  }
  void KillBroker() {
    ASSERT_EQ(kill(pid_, SIGKILL), 0);
    int status = 0;
    waitpid(pid_, &status, 0);
    EXPECT_TRUE(WIFSIGNALED(status));
    pid_ = -1;
  }

  ClientOptions Options(const std::string& stem) {
    ClientOptions o;
    o.target = "localhost:" + std::to_string(port_);
    o.cert_file = (certs_ / (stem + ".crt")).string();
    o.key_file = (certs_ / (stem + ".key")).string();
    o.ca_file = (certs_ / "ca.crt").string();
    o.dedicated_connection = true;
    return o;
  }

  TempDir dir_;
  std::filesystem::path certs_, config_path_;
  pid_t pid_ = -1;
  int port_ = 0;
};

TEST_F(CrashTest, NothingAcknowledgedIsLostAcrossKillDashNine) {
  StartBroker();
  std::mutex mu;
  std::set<std::string> received;            // client ids delivered to customs
  std::map<std::string, std::string> acked;  // client id -> exchange id (sender got OK)

  auto customs = AgencyClient::Connect(Options("zs-customs"));
  ASSERT_TRUE(customs.ok()) << customs.status();
  SubscriptionOptions so;
  so.open.set_name("duty");
  so.open.add_topic_filters("smuggling.*");
  so.initial_backoff = absl::Milliseconds(50);
  auto handler = [&](const v1::Delivery& d) {
    std::lock_guard<std::mutex> lock(mu);
    received.insert(d.envelope().client_message_id());
    return true;
  };
  auto sub = (*customs)->Subscribe(so, handler);
  ASSERT_TRUE(sub->WaitOpened(absl::Seconds(5)).ok());

  std::atomic<bool> stop{false};
  std::vector<std::thread> loaders;
  for (int t = 0; t < 3; ++t) {
    loaders.emplace_back([&, t] {
      auto police = AgencyClient::Connect(Options("zs-police"));
      if (!police.ok()) return;
      for (int batch = 0; !stop.load(); ++batch) {
        std::vector<v1::Envelope> envs;
        for (int i = 0; i < 40; ++i) {
          envs.push_back(SampleTipOff(absl::StrCat("crash-", t, "-", batch, "-", i)));
        }
        auto results = (*police)->SubmitAll(envs, 40);
        std::lock_guard<std::mutex> lock(mu);
        for (size_t i = 0; i < results.size(); ++i) {
          if (results[i].ok()) acked[envs[i].client_message_id()] = results[i]->exchange_id();
        }
        if (!results.empty() && !results.back().ok()) return;  // broker gone
      }
    });
  }
  // Let load build up, then kill the broker while writes are in flight.
  for (int i = 0; i < 100; ++i) {
    absl::SleepFor(absl::Milliseconds(50));
    std::lock_guard<std::mutex> lock(mu);
    if (acked.size() > 2000) break;
  }
  KillBroker();
  stop.store(true);
  for (auto& th : loaders) th.join();
  sub->Stop();
  size_t acked_before_kill;
  size_t received_before_kill;
  {
    std::lock_guard<std::mutex> lock(mu);
    acked_before_kill = acked.size();
    received_before_kill = received.size();
  }
  ASSERT_GT(acked_before_kill, 100u) << "the load never got going";

  StartBroker();
  auto customs2 = AgencyClient::Connect(Options("zs-customs"));
  ASSERT_TRUE(customs2.ok()) << customs2.status();
  auto sub2 = (*customs2)->Subscribe(so, handler);
  ASSERT_TRUE(sub2->WaitOpened(absl::Seconds(5)).ok());
  // Drain until every acked message arrived (or 60 s).
  std::vector<std::string> missing;
  for (int i = 0; i < 600; ++i) {
    missing.clear();
    {
      std::lock_guard<std::mutex> lock(mu);
      for (const auto& [id, ex] : acked) {
        if (!received.count(id)) missing.push_back(id);
      }
    }
    if (missing.empty()) break;
    absl::SleepFor(absl::Milliseconds(100));
  }
  sub2->Stop();
  EXPECT_TRUE(missing.empty()) << missing.size() << " acknowledged messages never delivered, e.g. "
                               << missing.front();
  // The dedupe table survived too: resubmitting acked ids stores nothing new.
  auto police = AgencyClient::Connect(Options("zs-police"));
  ASSERT_TRUE(police.ok());
  int checked = 0;
  for (const auto& [id, exchange_id] : acked) {
    if (++checked > 20) break;
    auto r = (*police)->Submit(SampleTipOff(id));
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_TRUE(r->duplicate()) << id;
    EXPECT_EQ(r->exchange_id(), exchange_id) << id;
  }
  std::cout << "acked before kill: " << acked_before_kill
            << ", delivered before kill: " << received_before_kill
            << ", delivered in all: " << received.size() << "\n";
}

TEST_F(CrashTest, SighupReloadsPolicyAndKeepsTheOldOneWhenTheNewOneIsBad) {
  // Run the real binary on a policy directory we can edit.
  auto policy_dir = dir_.path() / "policy";
  std::filesystem::create_directories(policy_dir);
  for (const char* f : {"demo.policy", "invariants.policy"}) {
    std::filesystem::copy_file(std::filesystem::path(CORRIDOR_SOURCE_DIR) / "deploy/policy" / f,
                               policy_dir / f);
  }
  {
    std::ifstream in(config_path_);
    std::stringstream ss;
    ss << in.rdbuf();
    std::string yaml = absl::StrReplaceAll(
        ss.str(), {{"policy_dir: \"embedded:demo\"", "policy_dir: " + policy_dir.string()}});
    std::ofstream(config_path_) << yaml;
  }
  StartBroker();
  auto admin = AgencyClient::Connect(Options("admin"));
  ASSERT_TRUE(admin.ok()) << admin.status();
  auto version = [&] {
    auto st = (*admin)->Status();
    return st.ok() ? st->policy_version() : std::string("?");
  };
  auto wait_for_change = [&](const std::string& from) {
    for (int i = 0; i < 100; ++i) {
      if (version() != from) return true;
      absl::SleepFor(absl::Milliseconds(50));
    }
    return false;
  };
  const std::string first = version();
  ASSERT_EQ(first.size(), 64u);  // a SHA-256, not permit-all

  std::ofstream(policy_dir / "zz-local.policy")
      << "forbid no-tipoffs-to-customs (on tip_off, to agency:zs-customs) because \"test\";\n";
  ASSERT_EQ(kill(pid_, SIGHUP), 0);
  ASSERT_TRUE(wait_for_change(first)) << "SIGHUP did not reload the policy";
  const std::string second = version();

  std::ofstream(policy_dir / "zz-local.policy") << "permit broken (\n";
  ASSERT_EQ(kill(pid_, SIGHUP), 0);
  absl::SleepFor(absl::Seconds(1));
  EXPECT_EQ(version(), second) << "a bad bundle replaced the running one";
  auto police = AgencyClient::Connect(Options("zs-police"));
  ASSERT_TRUE(police.ok());
  v1::Envelope e = SampleTipOff("after-sighup");
  e.add_addressees("zs-customs");
  e.add_addressees("zs-coastguard");
  auto r = (*police)->Submit(e);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_THAT(r->recipients(), ::testing::ElementsAre("zs-coastguard"));
}

}  // namespace
}  // namespace corridor::testing

namespace corridor::testing {
namespace {

// `corridor-certs revoke` + a new CRL + SIGHUP to the real corridord: the
// revoked node gets no further call on its open connection, without a restart.
TEST_F(CrashTest, SighupAppliesANewCrlWithoutRestart) {
  StartBroker();
  auto msa = AgencyClient::Connect(Options("zs-msa"));
  ASSERT_TRUE(msa.ok()) << msa.status();
  ASSERT_TRUE((*msa)->Status().ok());
  ASSERT_TRUE(certs::Revoke(certs_ / "ca", (certs_ / "zs-msa.crt").string()).ok());
  ASSERT_TRUE(certs::WriteCrl(certs_ / "ca", certs_ / "crl").ok());
  ASSERT_EQ(kill(pid_, SIGHUP), 0);
  absl::Status s;
  for (int i = 0; i < 50; ++i) {
    s = (*msa)->Status().status();
    if (!s.ok()) break;
    absl::SleepFor(absl::Milliseconds(100));
  }
  EXPECT_EQ(s.code(), absl::StatusCode::kUnauthenticated) << s;
  auto police = AgencyClient::Connect(Options("zs-police"));
  ASSERT_TRUE(police.ok()) << police.status();
  EXPECT_TRUE((*police)->Status().ok());
}

}  // namespace
}  // namespace corridor::testing
