// ExchangeCore without gRPC: real RocksDB in a temp dir, a recording sink.
#include "broker/exchange_core.h"

#include <atomic>
#include <condition_variable>
#include <future>
#include <map>
#include <mutex>
#include <set>

#include "absl/strings/str_cat.h"
#include "broker/audit_log.h"
#include "broker/policy_loader.h"
#include "broker/store.h"
#include "corridor/v1/store.pb.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "openssl/sha.h"
#include "tests/broker/recording_sink.h"
#include "tests/testing/envelopes.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"

namespace corridor::broker {
namespace {

using ::corridor::broker::testing::RecordingSink;
using ::corridor::testing::SampleTipOff;
using ::corridor::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::UnorderedElementsAre;

std::string Sha256Of(const std::string& bytes) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size(), digest);
  return std::string(reinterpret_cast<const char*>(digest), sizeof(digest));
}

PeerIdentity Agency(const std::string& id) {
  PeerIdentity p;
  p.role = PeerRole::kAgency;
  p.agency_id = id;
  p.node = "node1";
  p.spiffe_id = "spiffe://zhongshan.corridor/agency/" + id + "/node1";
  return p;
}

class ExchangeCoreTest : public ::testing::Test {
 protected:
  void SetUp() override { Open(); }

  void Open() {
    auto cfg = EmbeddedDefaultConfig();
    ASSERT_TRUE(cfg.ok());
    cfg->data_dir = (dir_.path() / "data").string();
    cfg->limits.redelivery_audit_window = absl::Milliseconds(300);  // summaries come soon
    auto core = ExchangeCore::Open(*cfg, MakePermitAllDecisionPoint());
    ASSERT_TRUE(core.ok()) << core.status();
    core_ = *std::move(core);
  }
  void Reopen() {
    core_.reset();
    Open();
  }
  // The same data dir under the embedded demo policy instead of permit-all.
  void ReopenWithDemoPolicy() {
    core_.reset();
    auto cfg = EmbeddedDefaultConfig();
    ASSERT_TRUE(cfg.ok());
    cfg->data_dir = (dir_.path() / "data").string();
    auto dp = LoadDecisionPoint(*cfg);
    ASSERT_TRUE(dp.ok()) << dp.status();
    auto core = ExchangeCore::Open(*cfg, *dp);
    ASSERT_TRUE(core.ok()) << core.status();
    core_ = *std::move(core);
  }

  absl::StatusOr<v1::SubmitResponse> Submit(const std::string& from, v1::Envelope e) {
    std::promise<absl::StatusOr<v1::SubmitResponse>> p;
    core_->Submit(Agency(from), std::move(e),
                  [&](absl::StatusOr<v1::SubmitResponse> r) { p.set_value(std::move(r)); });
    return p.get_future().get();
  }

  struct Attached {
    uint64_t session;
    std::shared_ptr<RecordingSink> sink;
    absl::StatusOr<v1::SubscriptionOpened> opened;
  };
  Attached Attach(const std::string& agency, SubscribeParams params) {
    Attached a;
    a.sink = std::make_shared<RecordingSink>();
    std::promise<absl::StatusOr<v1::SubscriptionOpened>> p;
    a.session = core_->Attach(Agency(agency), std::move(params), a.sink,
                              [&](absl::StatusOr<v1::SubscriptionOpened> r) { p.set_value(r); });
    a.opened = p.get_future().get();
    return a;
  }

  static SubscribeParams Params(const std::string& name, std::vector<std::string> filters = {}) {
    SubscribeParams p;
    p.name = name;
    p.topic_filters = std::move(filters);
    return p;
  }

  // The durable audit entries matching `q`, asked again every 20 ms for up to
  // 10 s until there are at least `at_least` (erasure waits for an idle sweep).
  std::vector<v1::AuditEntry> AuditEntries(const v1::AuditQuery& q, size_t at_least) {
    const absl::Time deadline = absl::Now() + absl::Seconds(10);
    for (;;) {
      std::vector<v1::AuditEntry> out;
      absl::Status s = core_->audit()
                           .Query(q,
                                  [&](const v1::AuditEntryRecord& r) {
                                    out.push_back(r.entry());
                                    return true;
                                  })
                           .status();
      EXPECT_TRUE(s.ok()) << s;
      if (!s.ok() || out.size() >= at_least || absl::Now() > deadline) return out;
      absl::SleepFor(absl::Milliseconds(20));
    }
  }

  v1::StatusResponse Status(const PeerIdentity& who) {
    std::promise<v1::StatusResponse> p;
    core_->Status(who, [&](v1::StatusResponse r) { p.set_value(std::move(r)); });
    return p.get_future().get();
  }

  ::corridor::testing::TempDir dir_;
  std::unique_ptr<ExchangeCore> core_;
};

TEST_F(ExchangeCoreTest, AddressedMessageIsStampedAndDelivered) {
  auto customs = Attach("zs-customs", Params("ops"));
  ASSERT_TRUE(customs.opened.ok()) << customs.opened.status();
  EXPECT_TRUE(customs.opened->created());

  v1::Envelope e = SampleTipOff("tip-1");
  e.add_addressees("zs-customs");
  auto r = Submit("zs-police", e);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_FALSE(r->duplicate());
  EXPECT_THAT(r->recipients(), ElementsAre("zs-customs"));
  EXPECT_EQ(r->exchange_id(), "zs-broker-1");

  auto got = customs.sink->WaitFor(1);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].seq(), 1u);
  EXPECT_TRUE(got[0].addressed());
  EXPECT_EQ(got[0].attempt(), 1u);
  EXPECT_EQ(got[0].subscription(), "ops");
  EXPECT_EQ(got[0].envelope().sender().agency_id(), "zs-police");
  EXPECT_EQ(got[0].envelope().sender().node(), "node1");
  EXPECT_EQ(got[0].envelope().exchange_id(), r->exchange_id());
  EXPECT_EQ(got[0].envelope().tip_off().location().waterway(), "磨刀门水道");
  EXPECT_EQ(got[0].envelope().tip_off().vessel().name(), "粤中山渔运12345");
}

TEST_F(ExchangeCoreTest, TopicSubscribersReceiveAndSenderDoesNot) {
  auto customs = Attach("zs-customs", Params("ops", {"smuggling.*"}));
  auto msa = Attach("zs-msa", Params("ops", {"patrol.*"}));
  auto police = Attach("zs-police", Params("ops", {"*"}));
  ASSERT_TRUE(customs.opened.ok() && msa.opened.ok() && police.opened.ok());

  auto r = Submit("zs-police", SampleTipOff("tip-1", "smuggling.frozen_goods"));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_THAT(r->recipients(), UnorderedElementsAre("zs-customs"));
  auto got = customs.sink->WaitFor(1);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_FALSE(got[0].addressed());
  // A later patrol message reaches MSA and not customs; nothing ever reaches police.
  auto r2 = Submit("zs-police", SampleTipOff("tip-2", "patrol.zs_north"));
  ASSERT_TRUE(r2.ok());
  EXPECT_THAT(r2->recipients(), ElementsAre("zs-msa"));
  EXPECT_EQ(msa.sink->WaitFor(1).size(), 1u);
  EXPECT_EQ(police.sink->WaitFor(0).size(), 0u);
  EXPECT_EQ(customs.sink->WaitFor(1).size(), 1u);
}

TEST_F(ExchangeCoreTest, SameClientMessageIdIsStoredOnce) {
  auto customs = Attach("zs-customs", Params("ops", {"smuggling.*"}));
  auto first = Submit("zs-police", SampleTipOff("same-id"));
  auto second = Submit("zs-police", SampleTipOff("same-id"));
  ASSERT_TRUE(first.ok() && second.ok());
  EXPECT_FALSE(first->duplicate());
  EXPECT_TRUE(second->duplicate());
  EXPECT_EQ(first->exchange_id(), second->exchange_id());
  EXPECT_EQ(first->recipients_size(), second->recipients_size());
  // Another agency may use the same id: ids are per sender.
  auto other = Submit("zs-msa", SampleTipOff("same-id"));
  ASSERT_TRUE(other.ok());
  EXPECT_FALSE(other->duplicate());
  EXPECT_NE(other->exchange_id(), first->exchange_id());
  PeerIdentity admin;
  admin.role = PeerRole::kAdmin;
  EXPECT_EQ(Status(admin).exchanges_stored(), 2u);
  EXPECT_EQ(Status(Agency("zs-customs")).exchanges_stored(), 0u);  // not for agencies
  auto st = Status(Agency("zs-customs"));
  customs.sink->WaitFor(2);
  ASSERT_EQ(st.subscriptions_size(), 1);
  EXPECT_EQ(st.subscriptions(0).queue_head(), 2u);  // police's + msa's, not the duplicate
}

// Copies submitted at once mostly meet in one commit batch (the batch's own
// dedupe map answers them): still exactly one is stored, every copy gets its
// exchange id.
TEST_F(ExchangeCoreTest, CopiesSubmittedAtOnceAreStoredOnce) {
  constexpr int kCopies = 64;
  std::mutex mu;
  std::condition_variable cv;
  std::vector<absl::StatusOr<v1::SubmitResponse>> results;
  v1::Envelope e = SampleTipOff("burst");
  e.add_addressees("zs-customs");
  // Others first, so the committer is busy writing while the copies queue up
  // behind it and then go into one batch together.
  std::atomic<int> others{0};
  for (int i = 0; i < 256; ++i) {
    core_->Submit(Agency("zs-police"), SampleTipOff(absl::StrCat("before-", i)),
                  [&](absl::StatusOr<v1::SubmitResponse>) { ++others; });
  }
  for (int i = 0; i < kCopies; ++i) {
    core_->Submit(Agency("zs-police"), e, [&](absl::StatusOr<v1::SubmitResponse> r) {
      std::lock_guard<std::mutex> lock(mu);
      results.push_back(std::move(r));
      cv.notify_all();
    });
  }
  std::unique_lock<std::mutex> lock(mu);
  cv.wait_for(lock, std::chrono::seconds(10), [&] { return results.size() == kCopies; });
  ASSERT_EQ(results.size(), static_cast<size_t>(kCopies));
  int firsts = 0;
  std::set<std::string> ids;
  for (const auto& r : results) {
    ASSERT_TRUE(r.ok()) << r.status();
    firsts += r->duplicate() ? 0 : 1;
    ids.insert(r->exchange_id());
    EXPECT_THAT(r->recipients(), ElementsAre("zs-customs"));
  }
  EXPECT_EQ(firsts, 1);
  EXPECT_EQ(ids.size(), 1u);
  lock.unlock();
  PeerIdentity admin;
  admin.role = PeerRole::kAdmin;
  EXPECT_EQ(Status(admin).exchanges_stored(), 1u + others.load());
}

TEST_F(ExchangeCoreTest, InvalidInputIsRefusedAndNothingStored) {
  v1::Envelope e = SampleTipOff("x");
  e.mutable_sender()->set_agency_id("zs-customs");
  EXPECT_THAT(Submit("zs-police", e), StatusIs(absl::StatusCode::kPermissionDenied,
                                               HasSubstr("envelope.sender.agency_id")));
  EXPECT_THAT(Submit("zs-police", v1::Envelope()), StatusIs(absl::StatusCode::kInvalidArgument));
  PeerIdentity admin;
  admin.role = PeerRole::kAdmin;
  EXPECT_EQ(Status(admin).exchanges_stored(), 0u);
}

TEST_F(ExchangeCoreTest, AckedIsNotRedeliveredUnackedIs) {
  auto a = Attach("zs-customs", Params("ops", {"smuggling.*"}));
  for (int i = 0; i < 3; ++i)
    ASSERT_TRUE(Submit("zs-police", SampleTipOff(absl::StrCat("t", i))).ok());
  auto got = a.sink->WaitFor(3);
  ASSERT_EQ(got.size(), 3u);
  core_->Ack(a.session, {1, 3});
  core_->Detach(a.session);
  auto b = Attach("zs-customs", Params("ops"));
  ASSERT_TRUE(b.opened.ok());
  EXPECT_FALSE(b.opened->created());
  EXPECT_THAT(b.opened->topic_filters(), ElementsAre("smuggling.*"));  // kept
  auto again = b.sink->WaitFor(1);
  ASSERT_EQ(again.size(), 1u);
  EXPECT_EQ(again[0].seq(), 2u);
  // Still only one: nothing else arrives.
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  EXPECT_EQ(b.sink->WaitFor(1).size(), 1u);
}

TEST_F(ExchangeCoreTest, RedeliveredAfterAckDeadline) {
  SubscribeParams p = Params("ops", {"smuggling.*"});
  p.ack_deadline = absl::Milliseconds(200);
  auto a = Attach("zs-customs", p);
  ASSERT_TRUE(Submit("zs-police", SampleTipOff("t1")).ok());
  auto got = a.sink->WaitFor(2);
  ASSERT_GE(got.size(), 2u);
  EXPECT_EQ(got[0].seq(), 1u);
  EXPECT_EQ(got[1].seq(), 1u);
  EXPECT_EQ(got[0].attempt(), 1u);
  EXPECT_EQ(got[1].attempt(), 2u);
}

TEST_F(ExchangeCoreTest, NewerStreamTakesOverTheSubscription) {
  auto a = Attach("zs-customs", Params("ops"));
  auto b = Attach("zs-customs", Params("ops"));
  ASSERT_TRUE(b.opened.ok());
  EXPECT_THAT(a.sink->WaitClosed(), StatusIs(absl::StatusCode::kAborted, HasSubstr("taken over")));
}

TEST_F(ExchangeCoreTest, NewOnlySkipsTheBacklogFromSeqReplaysIt) {
  v1::Envelope e = SampleTipOff("t1");
  e.add_addressees("zs-customs");
  ASSERT_TRUE(Submit("zs-police", e).ok());
  SubscribeParams p = Params("fresh");
  p.start = v1::START_POSITION_NEW_ONLY;
  auto a = Attach("zs-customs", p);
  ASSERT_TRUE(a.opened.ok());
  EXPECT_EQ(a.opened->ack_floor(), 2u);
  EXPECT_EQ(a.sink->WaitFor(0).size(), 0u);

  SubscribeParams replay = Params("fresh");
  replay.start = v1::START_POSITION_FROM_SEQ;
  replay.start_seq = 1;
  auto b = Attach("zs-customs", replay);
  auto got = b.sink->WaitFor(1);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].seq(), 1u);
}

// A client repeating a refused call cannot grow the log without bound: the
// same security event again within the window is counted into one summary.
TEST_F(ExchangeCoreTest, RepeatedSecurityEventsAreSummarizedPerWindow) {
  const PeerIdentity msa = Agency("zs-msa");
  for (int i = 0; i < 200; ++i) {
    core_->RecordSecurityEvent(msa, "refused by role: agency called Audit.Query");
  }
  core_->RecordSecurityEvent(msa, "something else");
  v1::AuditQuery q;
  q.set_event(v1::AUDIT_EVENT_SECURITY);
  std::vector<v1::AuditEntry> got = AuditEntries(q, 2);
  ASSERT_EQ(got.size(), 2u);  // the first of each, at once
  EXPECT_EQ(got[0].detail(), "refused by role: agency called Audit.Query");
  EXPECT_EQ(got[0].actor_agency_id(), "zs-msa");
  EXPECT_EQ(got[1].detail(), "something else");
  Reopen();  // a stop writes the counts of the windows still open
  got = AuditEntries(q, 3);
  ASSERT_EQ(got.size(), 3u);
  EXPECT_THAT(got[2].detail(), ::testing::StartsWith("refused by role: agency called Audit.Query "
                                                     "(repeated 199 more times between "));
  EXPECT_EQ(got[2].actor_spiffe_id(), msa.spiffe_id);
}

TEST_F(ExchangeCoreTest, StateSurvivesReopen) {
  {
    auto a = Attach("zs-customs", Params("ops", {"smuggling.*"}));
    for (int i = 0; i < 4; ++i) {
      ASSERT_TRUE(Submit("zs-police", SampleTipOff(absl::StrCat("t", i))).ok());
    }
    ASSERT_EQ(a.sink->WaitFor(4).size(), 4u);
    core_->Ack(a.session, {1, 2, 4});
    core_->Detach(a.session);
  }
  Reopen();
  // The subscription (with its filters) still routes, the exchange ids continue,
  // the dedupe table still knows old ids, and the counts are all-time.
  PeerIdentity admin;
  admin.role = PeerRole::kAdmin;
  EXPECT_EQ(Status(admin).exchanges_stored(), 4u);
  auto r = Submit("zs-police", SampleTipOff("t-after"));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->exchange_id(), "zs-broker-5");
  EXPECT_THAT(r->recipients(), ElementsAre("zs-customs"));
  auto dup = Submit("zs-police", SampleTipOff("t0"));
  ASSERT_TRUE(dup.ok());
  EXPECT_TRUE(dup->duplicate());
  EXPECT_EQ(dup->exchange_id(), "zs-broker-1");
  // Unacked 3 and the new 5 arrive; acked 1, 2, 4 do not.
  auto b = Attach("zs-customs", Params("ops"));
  ASSERT_TRUE(b.opened.ok());
  auto got = b.sink->WaitFor(2);
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].seq(), 3u);
  EXPECT_EQ(got[1].seq(), 5u);
}

TEST_F(ExchangeCoreTest, OnlyAgenciesSubmitAndSubscribe) {
  PeerIdentity auditor;
  auditor.role = PeerRole::kAuditor;
  auditor.node = "a1";
  std::promise<absl::StatusOr<v1::SubmitResponse>> p;
  core_->Submit(auditor, SampleTipOff("x"),
                [&](absl::StatusOr<v1::SubmitResponse> r) { p.set_value(std::move(r)); });
  EXPECT_THAT(p.get_future().get(), StatusIs(absl::StatusCode::kPermissionDenied));
  EXPECT_THAT(Submit("zz-unknown", SampleTipOff("x")),
              StatusIs(absl::StatusCode::kUnauthenticated));
}

TEST_F(ExchangeCoreTest, ExpiredMessagesAreErasedAndNeverDelivered) {
  v1::Envelope e = SampleTipOff("short-lived");
  e.add_addressees("zs-customs");
  *e.mutable_expires_at() = google::protobuf::util::TimeUtil::MillisecondsToTimestamp(
      absl::ToUnixMillis(absl::Now() + absl::Milliseconds(800)));
  v1::Envelope keep = SampleTipOff("long-lived");
  keep.add_addressees("zs-customs");
  ASSERT_TRUE(Submit("zs-police", e).ok());
  ASSERT_TRUE(Submit("zs-police", keep).ok());
  // Wait past the expiry and one erasure sweep (the committer sweeps when idle).
  v1::AuditQuery q;
  q.set_event(v1::AUDIT_EVENT_ERASURE);
  std::vector<v1::AuditEntry> erased = AuditEntries(q, 1);
  ASSERT_EQ(erased.size(), 1u);
  EXPECT_EQ(erased[0].client_message_id(), "short-lived");
  EXPECT_THAT(erased[0].detail(), HasSubstr("zs-customs#1"));
  // What the envelope says, as on its other entries; the broker, not an agency, acted.
  EXPECT_EQ(erased[0].topic(), e.topic());
  EXPECT_EQ(erased[0].purpose(), e.purpose());
  EXPECT_EQ(erased[0].sender_agency_id(), "zs-police");
  EXPECT_TRUE(erased[0].has_grading());
  EXPECT_TRUE(erased[0].has_sender_time());
  EXPECT_TRUE(erased[0].has_broker_time());
  EXPECT_TRUE(erased[0].actor_agency_id().empty());
  EXPECT_TRUE(erased[0].officer_id().empty());
  // The offline agency connects: only the message that has not expired arrives.
  auto a = Attach("zs-customs", Params("ops"));
  auto got = a.sink->WaitFor(1);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].envelope().client_message_id(), "long-lived");
  absl::SleepFor(absl::Milliseconds(200));
  EXPECT_EQ(a.sink->WaitFor(1).size(), 1u);
}

TEST_F(ExchangeCoreTest, ErasedNewestDeliveriesDoNotLetTheirSeqsBeReusedAfterARestart) {
  {
    auto a = Attach("zs-customs", Params("ops", {"smuggling.*"}));
    ASSERT_TRUE(Submit("zs-police", SampleTipOff("kept")).ok());  // seq 1
    for (const char* id : {"brief-1", "brief-2"}) {               // seqs 2 and 3
      v1::Envelope e = SampleTipOff(id);
      *e.mutable_expires_at() = google::protobuf::util::TimeUtil::MillisecondsToTimestamp(
          absl::ToUnixMillis(absl::Now() + absl::Milliseconds(600)));
      ASSERT_TRUE(Submit("zs-police", e).ok());
    }
    ASSERT_EQ(a.sink->WaitFor(3).size(), 3u);
    core_->Ack(a.session, {1, 2, 3});
    // The two expire and are erased with their deliveries: the agency's newest
    // stored delivery is then seq 1, though 3 was handed out and acked.
    v1::AuditQuery q;
    q.set_event(v1::AUDIT_EVENT_ERASURE);
    ASSERT_EQ(AuditEntries(q, 2).size(), 2u);
    core_->Detach(a.session);
  }
  Reopen();
  ASSERT_TRUE(Submit("zs-police", SampleTipOff("after-restart")).ok());
  auto b = Attach("zs-customs", Params("ops"));
  ASSERT_TRUE(b.opened.ok());
  auto got = b.sink->WaitFor(1);
  ASSERT_EQ(got.size(), 1u) << "a reused seq at or below the ack floor is never delivered";
  EXPECT_EQ(got[0].envelope().client_message_id(), "after-restart");
  EXPECT_EQ(got[0].seq(), 4u);
}

TEST_F(ExchangeCoreTest, AQueryByClientIdReachesTheExchangesAcksAndRedeliveries) {
  // Acks and redeliveries are not listed under the client id (audit format 3):
  // the query finds them through the exchange its collection names.
  SubscribeParams params = Params("ops", {"smuggling.*"});
  params.ack_deadline = absl::Milliseconds(200);
  auto a = Attach("zs-customs", params);
  auto b = Attach("zs-msa", Params("duty", {"smuggling.*"}));
  // Two senders' "same-id" (each sender's ids are its own), and a neighbour.
  ASSERT_TRUE(Submit("zs-police", SampleTipOff("same-id")).ok());
  ASSERT_TRUE(Submit("zs-coastguard", SampleTipOff("neighbour")).ok());
  ASSERT_TRUE(Submit("zs-coastguard", SampleTipOff("same-id")).ok());
  auto first = a.sink->WaitFor(3);
  ASSERT_EQ(first.size(), 3u);
  ASSERT_GE(a.sink->WaitFor(4).size(), 4u);  // the first one again: its ack deadline passed
  core_->Ack(a.session, {1, 2, 3});
  ASSERT_EQ(b.sink->WaitFor(3).size(), 3u);
  core_->Ack(b.session, {1, 2, 3});
  v1::AuditQuery q;
  q.set_client_message_id("same-id");
  // Per sender: collection, 2 disclosures (customs, msa), 2 acks; and a
  // redelivery summary for customs naming at least the police's exchange (it
  // may name the coast guard's too).
  std::vector<v1::AuditEntry> got = AuditEntries(q, 2 * 5 + 1);
  std::map<std::string, std::multiset<int>> by_sender;
  for (const auto& e : got) {
    if (e.event() == v1::AUDIT_EVENT_REDELIVERY) {
      EXPECT_EQ(e.recipient_agency_id(), "zs-customs");
      for (const auto& x : e.redeliveries().exchanges()) {
        if (x.client_message_id() == "same-id") by_sender[x.sender_agency_id()].insert(e.event());
      }
      continue;
    }
    EXPECT_EQ(e.client_message_id(), "same-id");
    by_sender[e.sender_agency_id()].insert(e.event());
  }
  for (const char* sender : {"zs-police", "zs-coastguard"}) {
    SCOPED_TRACE(sender);
    const auto& events = by_sender[sender];
    EXPECT_EQ(events.count(v1::AUDIT_EVENT_COLLECTION), 1u);
    EXPECT_EQ(events.count(v1::AUDIT_EVENT_DISCLOSURE), 2u);
    EXPECT_EQ(events.count(v1::AUDIT_EVENT_CONSULTATION), 2u);
  }
  EXPECT_GE(by_sender["zs-police"].count(v1::AUDIT_EVENT_REDELIVERY), 1u);
}

TEST_F(ExchangeCoreTest, AnErasedMessageStillAnswersItsResubmissionAsADuplicate) {
  v1::Envelope e = SampleTipOff("short-lived");
  e.add_addressees("zs-customs");
  *e.mutable_expires_at() = google::protobuf::util::TimeUtil::MillisecondsToTimestamp(
      absl::ToUnixMillis(absl::Now() + absl::Milliseconds(500)));
  auto first = Submit("zs-police", e);
  ASSERT_TRUE(first.ok()) << first.status();
  v1::AuditQuery q;
  q.set_event(v1::AUDIT_EVENT_ERASURE);
  ASSERT_FALSE(AuditEntries(q, 1).empty());
  // The same client message id again (an expiry in the past would be refused as
  // invalid before the dedupe check).
  *e.mutable_expires_at() = google::protobuf::util::TimeUtil::MillisecondsToTimestamp(
      absl::ToUnixMillis(absl::Now() + absl::Minutes(5)));
  auto again = Submit("zs-police", e);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_TRUE(again->duplicate());
  EXPECT_EQ(again->exchange_id(), first->exchange_id());
  EXPECT_THAT(again->recipients(), ElementsAre("zs-customs"));
}

TEST_F(ExchangeCoreTest, AuditHashesAreOfThePayloadAsSubmittedAndAsDelivered) {
  v1::Envelope e = SampleTipOff("hashed");
  e.add_addressees("zs-customs");
  const std::string payload = e.tip_off().SerializeAsString();
  ASSERT_TRUE(Submit("zs-police", e).ok());
  v1::AuditQuery q;
  q.set_client_message_id("hashed");
  std::vector<v1::AuditEntry> entries = AuditEntries(q, 2);
  ASSERT_EQ(entries.size(), 2u);
  const std::string expected = Sha256Of(payload);
  EXPECT_EQ(entries[0].payload_sha256(), expected);
  EXPECT_EQ(entries[1].event(), v1::AUDIT_EVENT_DISCLOSURE);
  EXPECT_EQ(entries[1].delivered_sha256(), expected);  // unredacted
}

// The payload is stored once: in the first unredacted delivery when there is
// one, else in the message record itself.
TEST_F(ExchangeCoreTest, ThePayloadIsStoredOnce) {
  v1::Envelope delivered = SampleTipOff("delivered");
  delivered.add_addressees("zs-customs");
  delivered.add_addressees("zs-msa");
  v1::Envelope kept = SampleTipOff("kept");  // no recipient at all
  ASSERT_TRUE(Submit("zs-police", delivered).ok());
  ASSERT_TRUE(Submit("zs-police", kept).ok());
  core_.reset();
  auto store = Store::Open(dir_.path() / "data");
  ASSERT_TRUE(store.ok()) << store.status();
  ::corridor::store::v1::StoredMessage m;
  auto bytes = (*store)->Get(Store::kMessages, MessageKey("zs-police", "delivered"));
  ASSERT_TRUE(bytes.ok() && m.ParseFromString(*bytes));
  EXPECT_EQ(m.envelope().payload_case(), v1::Envelope::PAYLOAD_NOT_SET);
  EXPECT_EQ(m.envelope().client_message_id(), "delivered");
  ASSERT_EQ(m.recipients_size(), 2);
  EXPECT_TRUE(m.recipients(0).holds_payload());
  EXPECT_FALSE(m.recipients(1).holds_payload());
  v1::Delivery d;
  auto dbytes = (*store)->Get(Store::kDeliveries,
                              DeliveryKey(m.recipients(0).agency_id(), m.recipients(0).seq()));
  ASSERT_TRUE(dbytes.ok() && d.ParseFromString(*dbytes));
  EXPECT_EQ(d.envelope().tip_off().SerializeAsString(), delivered.tip_off().SerializeAsString());
  bytes = (*store)->Get(Store::kMessages, MessageKey("zs-police", "kept"));
  ASSERT_TRUE(bytes.ok() && m.ParseFromString(*bytes));
  EXPECT_EQ(m.recipients_size(), 0);
  EXPECT_EQ(m.envelope().tip_off().SerializeAsString(), kept.tip_off().SerializeAsString());
}

TEST_F(ExchangeCoreTest, ARedactedDeliveryIsHashedAsDelivered) {
  ReopenWithDemoPolicy();  // customs never sees the informant
  v1::Envelope e = SampleTipOff("redacted");
  e.add_addressees("zs-customs");
  ASSERT_TRUE(Submit("zs-police", e).ok());
  auto a = Attach("zs-customs", Params("ops"));
  auto got = a.sink->WaitFor(1);
  ASSERT_EQ(got.size(), 1u);
  ASSERT_THAT(got[0].redacted_fields(), ElementsAre("tip_off.informant"));
  v1::AuditQuery q;
  q.set_client_message_id("redacted");
  q.set_event(v1::AUDIT_EVENT_DISCLOSURE);
  std::vector<v1::AuditEntry> entries = AuditEntries(q, 1);
  ASSERT_EQ(entries.size(), 1u);
  EXPECT_EQ(entries[0].payload_sha256(), Sha256Of(e.tip_off().SerializeAsString()));
  EXPECT_EQ(entries[0].delivered_sha256(),
            Sha256Of(got[0].envelope().tip_off().SerializeAsString()));
  EXPECT_NE(entries[0].delivered_sha256(), entries[0].payload_sha256());
}

// An exchange's audit entries are written in wire form, field by field
// (audit_entry_wire.h): each stored entry must be exactly protobuf's own
// serialization of the entry it parses to, and carry its kind's fields.
TEST_F(ExchangeCoreTest, AuditEntriesAreStoredAsProtobufSerializesThem) {
  struct Sent {
    v1::Envelope envelope;
    size_t entries;  // collection + one per addressee
  };
  auto check = [&](const Sent& sent) {
    const v1::Envelope& env = sent.envelope;
    v1::AuditQuery q;
    q.set_client_message_id(env.client_message_id());
    std::vector<v1::AuditEntryRecord> records;
    const absl::Time deadline = absl::Now() + absl::Seconds(10);
    while (records.size() < sent.entries && absl::Now() < deadline) {
      records.clear();
      ASSERT_TRUE(core_->audit()
                      .Query(q,
                             [&](const v1::AuditEntryRecord& r) {
                               records.push_back(r);
                               return true;
                             })
                      .ok());
      if (records.size() < sent.entries) absl::SleepFor(absl::Milliseconds(20));
    }
    ASSERT_EQ(records.size(), sent.entries) << env.client_message_id();
    const std::string payload_sha = Sha256Of(env.tip_off().SerializeAsString());
    for (const v1::AuditEntryRecord& r : records) {
      const v1::AuditEntry& e = r.entry();
      SCOPED_TRACE(absl::StrCat(env.client_message_id(), " entry ", e.index(), " event ",
                                v1::AuditEvent_Name(e.event())));
      EXPECT_EQ(r.entry_bytes(), e.SerializeAsString());
      EXPECT_TRUE(e.has_broker_time());
      EXPECT_EQ(e.has_sender_time(), env.has_observed_time());
      if (env.has_observed_time()) {
        EXPECT_EQ(e.sender_time().SerializeAsString(), env.observed_time().SerializeAsString());
      }
      EXPECT_EQ(e.actor_agency_id(), "zs-police");
      EXPECT_EQ(e.actor_node(), "node1");
      EXPECT_EQ(e.officer_id(), env.officer_id());
      EXPECT_FALSE(e.exchange_id().empty());
      EXPECT_EQ(e.sender_agency_id(), "zs-police");
      EXPECT_EQ(e.kind(), env.kind());
      EXPECT_EQ(e.topic(), env.topic());
      EXPECT_EQ(e.handling_code(), env.handling_code());
      EXPECT_EQ(e.classification(), env.classification());
      EXPECT_TRUE(e.has_grading());
      EXPECT_EQ(e.grading().SerializeAsString(), env.grading().SerializeAsString());
      EXPECT_EQ(e.purpose(), env.purpose());
      EXPECT_EQ(e.case_ref(), env.case_ref());
      EXPECT_EQ(e.payload_sha256(), payload_sha);
      EXPECT_FALSE(e.policy_version().empty());
      switch (e.event()) {
        case v1::AUDIT_EVENT_COLLECTION:
          EXPECT_EQ(e.actor_spiffe_id(), Agency("zs-police").spiffe_id);
          EXPECT_TRUE(e.recipient_agency_id().empty());
          EXPECT_TRUE(e.delivered_sha256().empty());
          EXPECT_EQ(e.rule_ids_size(), 0);
          break;
        case v1::AUDIT_EVENT_DISCLOSURE:
          EXPECT_TRUE(e.actor_spiffe_id().empty());
          EXPECT_FALSE(e.recipient_agency_id().empty());
          EXPECT_EQ(e.delivered_sha256().size(), 32u);
          EXPECT_GT(e.delivery_seq(), 0u);
          EXPECT_GT(e.rule_ids_size(), 0);
          break;
        case v1::AUDIT_EVENT_DENIAL:
          EXPECT_FALSE(e.recipient_agency_id().empty());
          EXPECT_TRUE(e.delivered_sha256().empty());
          EXPECT_EQ(e.delivery_seq(), 0u);
          EXPECT_GT(e.rule_ids_size(), 0);
          break;
        default:
          ADD_FAILURE() << "unexpected event";
      }
    }
  };
  // Everything permitted: unredacted disclosures.
  Sent all{SampleTipOff("shape-all"), 3};
  all.envelope.add_addressees("zs-customs");
  all.envelope.add_addressees("zs-msa");
  all.envelope.set_case_ref("ZS-2025-017");
  Sent bare{SampleTipOff("shape-bare"), 2};  // no sender time, grading or case
  bare.envelope.clear_observed_time();
  bare.envelope.clear_grading();
  bare.envelope.add_addressees("zs-customs");
  // Fields long enough for two-byte lengths; a non-ASCII case ref.
  Sent wide{SampleTipOff("shape-wide"), 2};
  wide.envelope.set_purpose(std::string(200, 'p'));
  wide.envelope.set_officer_id(std::string(128, 'o'));            // the longest allowed
  std::string case_ref = "\xe4\xb8\xad\xe5\xb1\xb1-";             // 中山-
  while (case_ref.size() + 3 <= 128) case_ref += "\xe6\xa1\x88";  // 案
  case_ref.resize(128, '7');
  wide.envelope.set_case_ref(case_ref);
  wide.envelope.add_addressees("zs-customs");
  for (const Sent* s : {&all, &bare, &wide}) ASSERT_TRUE(Submit("zs-police", s->envelope).ok());
  check(all);
  check(bare);
  check(wide);

  // The demo policy: a redacted disclosure (customs never sees the informant),
  // a denial by a forbid rule (H1 stays with law enforcement) and a denial by
  // default (not about smuggling: no rule shares it).
  ReopenWithDemoPolicy();
  Sent demo{SampleTipOff("shape-demo"), 3};
  demo.envelope.add_addressees("zs-customs");
  demo.envelope.add_addressees("zs-msa");
  Sent denied{SampleTipOff("shape-denied", "fisheries.licence"), 2};
  denied.envelope.add_addressees("zs-customs");
  for (const Sent* s : {&demo, &denied}) ASSERT_TRUE(Submit("zs-police", s->envelope).ok());
  check(demo);
  check(denied);
  v1::AuditQuery q;
  q.set_client_message_id("shape-denied");
  q.set_event(v1::AUDIT_EVENT_DENIAL);
  std::vector<v1::AuditEntry> denials = AuditEntries(q, 1);
  ASSERT_EQ(denials.size(), 1u);
  EXPECT_THAT(denials[0].rule_ids(), ElementsAre("default-deny"));
  q.set_client_message_id("shape-demo");
  q.set_event(v1::AUDIT_EVENT_DISCLOSURE);
  std::vector<v1::AuditEntry> redacted = AuditEntries(q, 1);
  ASSERT_EQ(redacted.size(), 1u);
  EXPECT_THAT(redacted[0].redacted_fields(), ElementsAre("tip_off.informant"));
  EXPECT_NE(redacted[0].delivered_sha256(), redacted[0].payload_sha256());
  EXPECT_GT(redacted[0].reasons_size(), 0);
}

TEST_F(ExchangeCoreTest, ADataDirOfAnOlderStoreFormatIsRefused) {
  v1::Envelope e = SampleTipOff("one");
  ASSERT_TRUE(Submit("zs-police", e).ok());
  core_.reset();
  {
    auto store = Store::Open(dir_.path() / "data");
    ASSERT_TRUE(store.ok()) << store.status();
    rocksdb::WriteBatch batch;
    batch.Delete((*store)->cf(Store::kMeta), "store_format");
    ASSERT_TRUE((*store)->Write(&batch, true).ok());
  }
  auto cfg = EmbeddedDefaultConfig();
  ASSERT_TRUE(cfg.ok());
  cfg->data_dir = (dir_.path() / "data").string();
  EXPECT_THAT(ExchangeCore::Open(*cfg, MakePermitAllDecisionPoint()),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("store format 0")));
}

}  // namespace
}  // namespace corridor::broker
