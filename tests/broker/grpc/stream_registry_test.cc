// StreamRegistry on its own: fake streams record how they were cancelled; the
// recorder collects the security entries. Limits, the first-message timeout,
// the audit summary of repeated hits, CancelWhere, and registrations that end
// while CancelWhere runs. (Over real mTLS: tests/integration/limits_e2e_test.cc.)
#include "broker/grpc/stream_registry.h"

#include <atomic>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace corridor::broker::grpc_transport {
namespace {

using ::corridor::testing::StatusIs;
using ::testing::HasSubstr;

class FakeStream : public CancellableStream {
 public:
  void CancelStream(const grpc::Status& why) override {
    std::lock_guard<std::mutex> lock(mu_);
    cancels_.push_back(why);
  }
  void AbortStream() override { ++aborts_; }
  std::vector<grpc::Status> cancels() {
    std::lock_guard<std::mutex> lock(mu_);
    return cancels_;
  }
  int aborts() const { return aborts_.load(); }

 private:
  std::mutex mu_;
  std::vector<grpc::Status> cancels_;
  std::atomic<int> aborts_{0};
};

StreamInfo Info(const std::string& agency, const std::string& connection) {
  StreamInfo info;
  info.method = "Subscribe";
  info.peer.agency_id = agency;
  info.peer.node = "node1";
  info.peer.spiffe_id = absl::StrCat("spiffe://t/agency/", agency, "/node1");
  info.cert_pem = absl::StrCat("-----BEGIN CERTIFICATE-----\n", agency, "\n");
  info.connection = connection;
  return info;
}

class StreamRegistryTest : public ::testing::Test {
 protected:
  std::unique_ptr<StreamRegistry> Make(LimitSettings limits) {
    return std::make_unique<StreamRegistry>(
        limits, [this](const PeerIdentity& peer, const std::string& detail) {
          std::lock_guard<std::mutex> lock(mu_);
          recorded_.emplace_back(peer.agency_id, detail);
        });
  }
  std::vector<std::pair<std::string, std::string>> Recorded() {
    std::lock_guard<std::mutex> lock(mu_);
    return recorded_;
  }
  std::mutex mu_;
  std::vector<std::pair<std::string, std::string>> recorded_;
};

TEST_F(StreamRegistryTest, RepeatedHitsAreOneEntryThenOneSummaryPerWindow) {
  LimitSettings limits;
  limits.streams_per_certificate = 1;
  limits.audit_window = absl::Milliseconds(300);
  auto registry = Make(limits);
  FakeStream s;
  auto first = registry->Register(Info("zs-customs", "ipv4:127.0.0.1:1"), &s);
  ASSERT_TRUE(first.ok());
  for (int i = 0; i < 5; ++i) {
    EXPECT_THAT(
        registry->Register(Info("zs-customs", absl::StrCat("ipv4:127.0.0.1:", 2 + i)), &s),
        StatusIs(absl::StatusCode::kResourceExhausted, HasSubstr("streams_per_certificate")));
  }
  EXPECT_EQ(registry->hits().at("streams_per_certificate"), 5u);
  ASSERT_EQ(Recorded().size(), 1u);  // the first hit, at once
  EXPECT_THAT(Recorded()[0].second, HasSubstr("limit streams_per_certificate (1) hit"));
  absl::SleepFor(absl::Milliseconds(600));
  auto recorded = Recorded();
  ASSERT_EQ(recorded.size(), 2u);  // and the others when the window ended
  EXPECT_EQ(recorded[1].first, "zs-customs");
  EXPECT_THAT(recorded[1].second, HasSubstr("hit 4 more times"));
  // Another certificate is counted on its own.
  EXPECT_TRUE(registry->Register(Info("zs-msa", "ipv4:127.0.0.1:9"), &s).ok());
  // Deregistering frees the place.
  first->Reset();
  EXPECT_TRUE(registry->Register(Info("zs-customs", "ipv4:127.0.0.1:10"), &s).ok());
}

TEST_F(StreamRegistryTest, ASilentStreamIsCancelledAndOneThatSpokeIsNot) {
  LimitSettings limits;
  limits.stream_first_message_timeout = absl::Milliseconds(200);
  auto registry = Make(limits);
  FakeStream silent, speaking;
  auto a = registry->Register(Info("zs-customs", "c1"), &silent);
  auto b = registry->Register(Info("zs-customs", "c1"), &speaking);
  ASSERT_TRUE(a.ok() && b.ok());
  b->FirstMessage();
  absl::SleepFor(absl::Milliseconds(500));
  ASSERT_EQ(silent.cancels().size(), 1u);
  EXPECT_EQ(silent.cancels()[0].error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
  EXPECT_THAT(silent.cancels()[0].error_message(), HasSubstr("stream_first_message_timeout"));
  EXPECT_TRUE(speaking.cancels().empty());
  EXPECT_EQ(registry->hits().at("stream_first_message_timeout"), 1u);
}

TEST_F(StreamRegistryTest, CancelWhereCancelsTheMatchesAndAbortsThoseStillOpenAfterTheGrace) {
  auto registry = Make(LimitSettings());
  FakeStream customs1, customs2, msa;
  auto r1 = registry->Register(Info("zs-customs", "c1"), &customs1);
  auto r2 = registry->Register(Info("zs-customs", "c2"), &customs2);
  auto r3 = registry->Register(Info("zs-msa", "c3"), &msa);
  ASSERT_TRUE(r1.ok() && r2.ok() && r3.ok());
  EXPECT_EQ(
      registry->CancelWhere(
          [](const StreamInfo& s) { return s.cert_pem.find("zs-customs") != std::string::npos; },
          absl::UnauthenticatedError("certificate revoked")),
      2u);
  ASSERT_EQ(customs1.cancels().size(), 1u);
  EXPECT_EQ(customs1.cancels()[0].error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(customs1.cancels()[0].error_message(), "certificate revoked");
  EXPECT_EQ(customs2.cancels().size(), 1u);
  EXPECT_TRUE(msa.cancels().empty());
  auto recorded = Recorded();
  ASSERT_EQ(recorded.size(), 1u);
  EXPECT_EQ(recorded[0].first, "zs-customs");
  EXPECT_EQ(recorded[0].second, "2 open streams cut: certificate revoked");
  // customs1 finishes in time; customs2 does not and is aborted.
  r1->Reset();
  absl::SleepFor(StreamRegistry::kAbortGrace + absl::Milliseconds(500));
  EXPECT_EQ(customs1.aborts(), 0);
  EXPECT_EQ(customs2.aborts(), 1);
  EXPECT_EQ(msa.aborts(), 0);
  EXPECT_EQ(registry->open_streams(), 2u);
}

// Streams come and go on many threads while CancelWhere runs: a stream is
// cancelled only while registered (its Reset waits for a CancelWhere in
// progress), so none is touched after it was deregistered.
TEST_F(StreamRegistryTest, RegistrationsEndingDuringCancelWhereAreNeverTouchedAfterReset) {
  LimitSettings limits;
  limits.streams_per_certificate = 1'000'000;
  limits.streams_per_connection = 1'000'000;
  auto registry = Make(limits);
  std::atomic<bool> stop{false};
  std::atomic<int> touched_after_reset{0};
  class Checked : public CancellableStream {
   public:
    explicit Checked(std::atomic<int>* bad) : bad_(bad) {}
    void CancelStream(const grpc::Status&) override {
      if (gone_.load()) ++*bad_;
    }
    void AbortStream() override {
      if (gone_.load()) ++*bad_;
    }
    std::atomic<bool> gone_{false};

   private:
    std::atomic<int>* bad_;
  };
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; !stop.load(); ++i) {
        auto stream = std::make_unique<Checked>(&touched_after_reset);
        auto reg = registry->Register(Info("zs-customs", absl::StrCat("c", t)), stream.get());
        ASSERT_TRUE(reg.ok());
        reg->Reset();
        stream->gone_ = true;
      }
    });
  }
  size_t cancelled = 0;
  for (int i = 0; i < 200; ++i) {
    cancelled += registry->CancelWhere([](const StreamInfo&) { return true; },
                                       absl::UnavailableError("test"));
  }
  stop = true;
  for (auto& t : threads) t.join();
  EXPECT_EQ(touched_after_reset.load(), 0);
  EXPECT_EQ(registry->open_streams(), 0u);
  (void)cancelled;
}

}  // namespace
}  // namespace corridor::broker::grpc_transport
