// A full disk is a pause, not a crash: the real broker (in-process, real mTLS,
// real RocksDB) with its data dir on a small tmpfs or ext4 loop volume that a
// filler file fills. Below the floor submissions get a clear
// RESOURCE_EXHAUSTED; with the floor off, RocksDB itself runs out of space and
// the broker pauses instead of aborting; in both, deleting the filler brings
// acceptance back without a restart, and every acknowledged message is
// delivered. Needs root to mount: skipped (saying so) where it cannot.
#include <condition_variable>
#include <mutex>
#include <set>

#include "absl/strings/match.h"
#include "agency_adapters/cli/common.h"
#include "corridor/v1/audit.grpc.pb.h"
#include "gmock/gmock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "tests/integration/broker_fixture.h"
#include "tests/testing/envelopes.h"
#include "tests/testing/scratch_volume.h"

namespace corridor::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

constexpr uint64_t kVolumeBytes = 48 << 20;
constexpr uint64_t kFloorMib = 8;

// Every client message id delivered to a subscription (acked at once).
class Received {
 public:
  std::function<bool(const v1::Delivery&)> Handler() {
    return [this](const v1::Delivery& d) {
      std::lock_guard<std::mutex> lock(mu_);
      ids_.insert(d.envelope().client_message_id());
      cv_.notify_all();
      return true;
    };
  }
  // Waits until every id of `want` arrived; returns the ones still missing.
  std::set<std::string> Missing(const std::set<std::string>& want, absl::Duration timeout) {
    std::unique_lock<std::mutex> lock(mu_);
    std::set<std::string> missing;
    cv_.wait_for(lock, absl::ToChronoMilliseconds(timeout), [&] {
      missing.clear();
      for (const auto& id : want) {
        if (ids_.count(id) == 0) missing.insert(id);
      }
      return missing.empty();
    });
    return missing;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::set<std::string> ids_;
};

class DiskFullE2eTest : public BrokerFixture,
                        public ::testing::WithParamInterface<ScratchVolume::Kind> {
 protected:
  void SetUp() override {
    auto vol = ScratchVolume::Mount(GetParam(), kVolumeBytes);
    if (!vol.ok()) GTEST_SKIP() << vol.status().message();
    volume_ = *std::move(vol);
    BrokerFixture::SetUp();
  }
  void TearDown() override {
    subscription_.reset();
    BrokerFixture::TearDown();
    volume_.reset();  // unmounts
  }
  void Customize(broker::BrokerConfig& config) override {
    config.data_dir = (volume_->path() / "data").string();
    config.storage.free_space_floor_bytes = FloorBytes();
  }
  virtual uint64_t FloorBytes() const { return kFloorMib << 20; }

  void SubscribeCustoms() {
    customs_ = Client("zs-customs");
    SubscriptionOptions o;
    o.open.set_name("duty");
    o.open.add_topic_filters("smuggling.*");
    o.initial_backoff = absl::Milliseconds(50);
    subscription_ = customs_->Subscribe(o, received_.Handler());
    ASSERT_TRUE(subscription_->WaitOpened(absl::Seconds(10)).ok());
  }

  // Submits tip-offs until one is refused (at most `max`); records the acked ids.
  absl::Status SubmitUntilRefused(AgencyClient& police, int max) {
    for (int i = 0; i < max; ++i) {
      const std::string id = absl::StrCat("tip-", next_++);
      auto r = police.Submit(SampleTipOff(id));
      if (!r.ok()) return r.status();
      acked_.insert(id);
    }
    return absl::OkStatus();
  }

  // Submits until one is accepted again (the pause ended), within `timeout`.
  bool AcceptedAgainWithin(AgencyClient& police, absl::Duration timeout) {
    const absl::Time end = absl::Now() + timeout;
    while (absl::Now() < end) {
      const std::string id = absl::StrCat("tip-", next_++);
      auto r = police.Submit(SampleTipOff(id));
      if (r.ok()) {
        acked_.insert(id);
        return true;
      }
      EXPECT_EQ(r.status().code(), absl::StatusCode::kResourceExhausted) << r.status();
      absl::SleepFor(absl::Milliseconds(100));
    }
    return false;
  }

  v1::StatusResponse AdminStatus() {
    auto admin = Client("admin");
    auto st = admin->Status();
    EXPECT_TRUE(st.ok()) << st.status();
    return st.ok() ? *st : v1::StatusResponse();
  }

  std::vector<v1::AuditEntry> StorageEntries() {
    ClientOptions o = OptionsFor("auditor");
    auto channel = MakeChannel(o);
    EXPECT_TRUE(channel.ok());
    auto stub = v1::Audit::NewStub(*channel);
    grpc::ClientContext ctx;
    v1::AuditQuery q;
    q.set_event(v1::AUDIT_EVENT_SECURITY);
    auto reader = stub->Query(&ctx, q);
    std::vector<v1::AuditEntry> out;
    v1::AuditQueryResponse page;
    while (reader->Read(&page)) {
      for (const auto& r : page.records()) {
        if (absl::StartsWith(r.entry().detail(), "storage: ")) out.push_back(r.entry());
      }
    }
    EXPECT_TRUE(reader->Finish().ok());
    return out;
  }

  // A refusal a sender can act on: never RocksDB's own text or file names.
  static void ExpectClean(const absl::Status& s) {
    EXPECT_THAT(std::string(s.message()), Not(HasSubstr(".log")));
    EXPECT_THAT(std::string(s.message()), Not(HasSubstr("/")));
    EXPECT_THAT(std::string(s.message()), Not(HasSubstr("IO error")));
    EXPECT_THAT(std::string(s.message()), HasSubstr("'data'"));
  }

  std::unique_ptr<ScratchVolume> volume_;
  std::unique_ptr<AgencyClient> customs_;
  std::unique_ptr<Subscription> subscription_;
  Received received_;
  std::set<std::string> acked_;
  int next_ = 0;
};

TEST_P(DiskFullE2eTest, BelowTheFloorSubmissionsPauseAndResumeOnceSpaceIsFreed) {
  SubscribeCustoms();
  auto police = Client("zs-police");
  ASSERT_TRUE(police);
  ASSERT_TRUE(SubmitUntilRefused(*police, 20).ok());

  // The filler leaves 1 MiB above the floor: submissions eat it, then stop.
  ASSERT_TRUE(volume_->FillLeaving((kFloorMib + 1) << 20).ok());
  const absl::Status refused = SubmitUntilRefused(*police, 20000);
  ASSERT_EQ(refused.code(), absl::StatusCode::kResourceExhausted) << refused;
  EXPECT_THAT(std::string(refused.message()), HasSubstr("bytes free"));
  EXPECT_THAT(std::string(refused.message()), HasSubstr("below its floor of 8388608 bytes"));
  ExpectClean(refused);
  EXPECT_GT(acked_.size(), 20u);  // some went in before the floor was reached

  // Status shows the alarm; acks and deliveries went on (checked below).
  v1::StatusResponse st = AdminStatus();
  EXPECT_TRUE(st.storage_paused());
  EXPECT_THAT(st.storage_pause_reason(), HasSubstr("below its floor"));
  EXPECT_LT(st.storage_free_bytes(), kFloorMib << 20);
  EXPECT_EQ(st.storage_floor_bytes(), kFloorMib << 20);
  EXPECT_GE(st.storage_refused_submissions(), 1u);
  EXPECT_THAT(cli::FormatStatus(st), HasSubstr("WARNING (storage): broker storage is paused"));
  EXPECT_TRUE(received_.Missing(acked_, absl::Seconds(20)).empty());

  // Space back: accepted again, no restart.
  volume_->RemoveFiller();
  ASSERT_TRUE(AcceptedAgainWithin(*police, absl::Seconds(10)));
  EXPECT_FALSE(AdminStatus().storage_paused());
  EXPECT_TRUE(received_.Missing(acked_, absl::Seconds(20)).empty());

  // The alarm and its end are in the audit log.
  std::vector<v1::AuditEntry> entries;
  for (int i = 0; i < 50 && entries.size() < 2; ++i) {
    entries = StorageEntries();
    if (entries.size() < 2) absl::SleepFor(absl::Milliseconds(100));
  }
  ASSERT_EQ(entries.size(), 2u);
  EXPECT_THAT(entries[0].detail(), HasSubstr("fell below the floor"));
  EXPECT_THAT(entries[1].detail(), HasSubstr("back above the floor"));
}

// The floor switched off: RocksDB's own write fails with ENOSPC. The broker
// must not abort, must tell the sender plainly, and must resume by itself.
class DiskFullNoFloorE2eTest : public DiskFullE2eTest {
 protected:
  uint64_t FloorBytes() const override { return 0; }
};

TEST_P(DiskFullNoFloorE2eTest, AFailedWriteIsAPauseNotACrashAndNothingAckedIsLost) {
  SubscribeCustoms();
  auto police = Client("zs-police");
  ASSERT_TRUE(police);
  ASSERT_TRUE(SubmitUntilRefused(*police, 20).ok());

  ASSERT_TRUE(volume_->FillLeaving(2 << 20).ok());
  const absl::Status refused = SubmitUntilRefused(*police, 50000);
  ASSERT_EQ(refused.code(), absl::StatusCode::kResourceExhausted) << refused;
  EXPECT_THAT(std::string(refused.message()), HasSubstr("no space left on device"));
  ExpectClean(refused);
  // Still refused, with the same clear message (not "restart required").
  const absl::Status again = SubmitUntilRefused(*police, 1);
  EXPECT_EQ(again.code(), absl::StatusCode::kResourceExhausted) << again;
  EXPECT_TRUE(AdminStatus().storage_paused());

  volume_->RemoveFiller();
  ASSERT_TRUE(AcceptedAgainWithin(*police, absl::Seconds(15)));
  ASSERT_TRUE(SubmitUntilRefused(*police, 20).ok());
  EXPECT_FALSE(AdminStatus().storage_paused());
  EXPECT_TRUE(received_.Missing(acked_, absl::Seconds(20)).empty());

  // A start on a full disk says how much it needs and writes nothing; once
  // space is back it starts and delivers everything acknowledged.
  subscription_.reset();
  customs_.reset();
  police.reset();
  StopBroker();
  ASSERT_TRUE(volume_->FillLeaving(512 << 10).ok());
  const uint64_t free_before = volume_->FreeBytes();
  auto dp = broker::LoadDecisionPoint(config_);
  ASSERT_TRUE(dp.ok());
  auto failed = broker::grpc_transport::BrokerServer::Start(config_, *dp);
  ASSERT_FALSE(failed.ok());
  EXPECT_EQ(failed.status().code(), absl::StatusCode::kResourceExhausted) << failed.status();
  EXPECT_THAT(std::string(failed.status().message()), HasSubstr("opening the store needs"));
  EXPECT_GE(volume_->FreeBytes(), free_before);

  volume_->RemoveFiller();
  StartBroker();
  SubscribeCustoms();
  EXPECT_TRUE(received_.Missing(acked_, absl::Seconds(20)).empty());
}

INSTANTIATE_TEST_SUITE_P(Filesystems, DiskFullE2eTest,
                         ::testing::Values(ScratchVolume::kTmpfs, ScratchVolume::kExt4),
                         [](const auto& info) { return ScratchVolume::KindName(info.param); });
INSTANTIATE_TEST_SUITE_P(Filesystems, DiskFullNoFloorE2eTest,
                         ::testing::Values(ScratchVolume::kTmpfs, ScratchVolume::kExt4),
                         [](const auto& info) { return ScratchVolume::KindName(info.param); });

}  // namespace
}  // namespace corridor::testing
