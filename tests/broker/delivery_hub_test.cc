// DeliveryHub on its own: real RocksDB in a temp dir and a real Committer; the
// test plays the exchange core (writes deliveries, advances heads, hands fresh
// deliveries over). A delivery's envelope exchange_id says where the hub got it:
// "tail-N" is only ever handed over as fresh, "store-N" only ever written to the
// deliveries CF, so each test sees which path served what.
#include "broker/delivery_hub.h"

#include <chrono>
#include <condition_variable>
#include <future>
#include <mutex>
#include <optional>
#include <set>

#include "absl/strings/str_cat.h"
#include "broker/committer.h"
#include "broker/store.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/time_util.h"
#include "gtest/gtest.h"
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
using ::testing::ElementsAreArray;

constexpr char kAgency[] = "zs-customs";

PeerIdentity Customs() {
  PeerIdentity p;
  p.role = PeerRole::kAgency;
  p.agency_id = kAgency;
  p.node = "node1";
  p.spiffe_id = "spiffe://zhongshan.corridor/agency/zs-customs/node1";
  return p;
}

// A delivery as the core makes it; `source` ("tail" or "store") goes into its
// exchange_id.
v1::Delivery MakeDelivery(const std::string& source, uint64_t seq,
                          const std::string& topic = "smuggling.frozen_goods",
                          bool addressed = true) {
  v1::Delivery d;
  *d.mutable_envelope() = SampleTipOff(absl::StrCat("m-", seq), topic);
  d.mutable_envelope()->set_exchange_id(absl::StrCat(source, "-", seq));
  d.set_addressed(addressed);
  return d;
}

std::vector<std::string> Ids(const std::vector<v1::Delivery>& got) {
  std::vector<std::string> out;
  for (const auto& d : got) out.push_back(d.envelope().exchange_id());
  return out;
}

class DeliveryHubTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto store = Store::Open(dir_.path() / "data");
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = *std::move(store);
    committer_ = std::make_unique<Committer>(store_.get(), Committer::Hooks{});
    committer_->Start();
  }
  void TearDown() override {
    if (hub_) hub_->Stop();
    committer_->Stop();
  }

  void StartHub(DeliveryHub::Options options = {}) {
    hub_ = std::make_unique<DeliveryHub>(
        store_.get(), committer_.get(),
        [](const std::string&, const std::string&, const std::vector<std::string>&) {},
        [this](std::vector<PreparedEntry>& entries, rocksdb::WriteBatch&) {
          // What the audit log would store (numbered from 1 here).
          std::vector<v1::AuditEntry> group;
          for (const PreparedEntry& p : entries) {
            std::string bytes;
            AppendSerialized(p, group.size() + 1, &bytes);
            v1::AuditEntry& e = group.emplace_back();
            EXPECT_TRUE(e.ParseFromString(bytes));
            EXPECT_EQ(e.SerializeAsString(), bytes);  // protobuf's own serialization
          }
          std::lock_guard<std::mutex> lock(audit_mu_);
          audit_groups_.push_back(std::move(group));
        },
        options);
    ASSERT_TRUE(hub_->Recover({kAgency}).ok());
    hub_->Start();
  }

  // Writes deliveries [from, to] to the store, as "store-N" with seq 0 in the
  // value (the key is the truth).
  void StoreRange(uint64_t from, uint64_t to, const std::string& topic = "smuggling.frozen_goods") {
    for (uint64_t seq = from; seq <= to; ++seq) {
      auto s = store_->db()->Put(rocksdb::WriteOptions(), store_->cf(Store::kDeliveries),
                                 DeliveryKey(kAgency, seq),
                                 MakeDelivery("store", seq, topic).SerializeAsString());
      ASSERT_TRUE(s.ok()) << s.ToString();
    }
  }

  // As the core hands them over: the stored bytes (no seq) and the seq.
  static std::shared_ptr<const QueuedDelivery> Fresh(v1::Delivery d, uint64_t seq) {
    d.clear_seq();
    auto q = MakeQueuedDelivery(seq, d.SerializeAsString());
    EXPECT_TRUE(q.ok()) << q.status();
    return q.ok() ? *std::move(q) : nullptr;
  }

  // Heads move to `head`; `fresh` is handed over with them.
  void Advance(uint64_t head, std::vector<std::shared_ptr<const QueuedDelivery>> fresh = {}) {
    std::vector<DeliveryHub::FreshDelivery> f;
    for (auto& d : fresh) f.push_back({kAgency, std::move(d)});
    hub_->HeadsAdvanced({{kAgency, head}}, std::move(f));
  }
  // Fresh "tail-N" deliveries for [from, to].
  static std::vector<std::shared_ptr<const QueuedDelivery>> TailRun(uint64_t from, uint64_t to) {
    std::vector<std::shared_ptr<const QueuedDelivery>> out;
    for (uint64_t seq = from; seq <= to; ++seq)
      out.push_back(Fresh(MakeDelivery("tail", seq), seq));
    return out;
  }

  struct Attached {
    uint64_t session;
    std::shared_ptr<RecordingSink> sink;
    absl::StatusOr<v1::SubscriptionOpened> opened;
  };
  Attached Attach(SubscribeParams params) {
    Attached a;
    a.sink = std::make_shared<RecordingSink>();
    std::promise<absl::StatusOr<v1::SubscriptionOpened>> p;
    a.session = hub_->Attach(Customs(), std::move(params), a.sink,
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

  // Waits (up to 5 s) until the audit appender saw `entries` entries in all.
  std::vector<std::vector<v1::AuditEntry>> WaitAudit(size_t entries) {
    for (int i = 0; i < 500; ++i) {
      {
        std::lock_guard<std::mutex> lock(audit_mu_);
        size_t n = 0;
        for (const auto& g : audit_groups_) n += g.size();
        if (n >= entries) return audit_groups_;
      }
      absl::SleepFor(absl::Milliseconds(10));
    }
    std::lock_guard<std::mutex> lock(audit_mu_);
    return audit_groups_;
  }

  ::corridor::testing::TempDir dir_;
  std::unique_ptr<corridor::broker::Store> store_;
  std::unique_ptr<Committer> committer_;
  std::unique_ptr<DeliveryHub> hub_;
  std::mutex audit_mu_;
  std::vector<std::vector<v1::AuditEntry>> audit_groups_;
};

TEST_F(DeliveryHubTest, FreshDeliveriesAreServedFromTheTail) {
  StartHub();
  auto a = Attach(Params("ops"));
  ASSERT_TRUE(a.opened.ok()) << a.opened.status();
  Advance(3, TailRun(1, 3));  // never written to the store: only the tail has them
  auto got = a.sink->WaitFor(3);
  EXPECT_THAT(Ids(got), ElementsAre("tail-1", "tail-2", "tail-3"));
  for (size_t i = 0; i < got.size(); ++i) {
    EXPECT_EQ(got[i].seq(), i + 1);
    EXPECT_EQ(got[i].attempt(), 1u);
    EXPECT_EQ(got[i].subscription(), "ops");
  }
}

TEST_F(DeliveryHubTest, WhatTheTailLacksIsReadFromTheStore) {
  StartHub();
  StoreRange(1, 5);
  Advance(3);                 // nothing fresh: 1..3 from the store
  Advance(5, TailRun(4, 5));  // 4..5 from the tail
  auto a = Attach(Params("ops"));
  ASSERT_TRUE(a.opened.ok());
  EXPECT_THAT(Ids(a.sink->WaitFor(5)),
              ElementsAre("store-1", "store-2", "store-3", "tail-4", "tail-5"));
  // The store's values carry seq 0; what is sent carries the key's.
  for (size_t i = 0; i < 5; ++i) EXPECT_EQ(a.sink->got()[i].seq(), i + 1);
}

TEST_F(DeliveryHubTest, AGapRestartsTheTailAndTheStoreFillsIt) {
  StartHub();
  StoreRange(1, 6);
  Advance(2, TailRun(1, 2));
  Advance(4);                 // 3..4 not handed over
  Advance(6, TailRun(5, 6));  // the tail restarts at 5
  auto a = Attach(Params("ops"));
  ASSERT_TRUE(a.opened.ok());
  EXPECT_THAT(Ids(a.sink->WaitFor(6)),
              ElementsAre("store-1", "store-2", "store-3", "store-4", "tail-5", "tail-6"));
}

TEST_F(DeliveryHubTest, TailBoundDropsTheOldestWhichComeFromTheStore) {
  DeliveryHub::Options options;
  options.tail_max_entries = 4;
  StartHub(options);
  StoreRange(1, 10);
  for (uint64_t seq = 1; seq <= 10; ++seq) Advance(seq, TailRun(seq, seq));
  auto a = Attach(Params("ops"));
  ASSERT_TRUE(a.opened.ok());
  EXPECT_THAT(Ids(a.sink->WaitFor(10)),
              ElementsAre("store-1", "store-2", "store-3", "store-4", "store-5", "store-6",
                          "tail-7", "tail-8", "tail-9", "tail-10"));
}

TEST_F(DeliveryHubTest, TailByteBoundIsRespected) {
  const size_t one = Fresh(MakeDelivery("tail", 1), 1)->wire.size();
  DeliveryHub::Options options;
  options.tail_max_bytes = 3 * one + one / 2;  // room for three
  StartHub(options);
  StoreRange(1, 8);
  Advance(8, TailRun(1, 8));
  auto a = Attach(Params("ops"));
  ASSERT_TRUE(a.opened.ok());
  auto ids = Ids(a.sink->WaitFor(8));
  ASSERT_EQ(ids.size(), 8u);
  EXPECT_THAT(ids, ElementsAre("store-1", "store-2", "store-3", "store-4", "store-5", "tail-6",
                               "tail-7", "tail-8"));
}

TEST_F(DeliveryHubTest, OneSharedDeliveryForEverySubscriptionAndAttempt) {
  StartHub();
  auto ops = Attach(Params("ops"));
  auto desk = Attach(Params("desk"));
  ASSERT_TRUE(ops.opened.ok());
  ASSERT_TRUE(desk.opened.ok());
  auto fresh = TailRun(1, 1);
  const QueuedDelivery* original = fresh[0].get();
  Advance(1, std::move(fresh));
  ASSERT_EQ(ops.sink->WaitFor(1).size(), 1u);
  ASSERT_EQ(desk.sink->WaitFor(1).size(), 1u);
  EXPECT_EQ(ops.sink->shared()[0].get(), original);
  EXPECT_EQ(desk.sink->shared()[0].get(), original);
  EXPECT_EQ(ops.sink->got()[0].subscription(), "ops");
  EXPECT_EQ(desk.sink->got()[0].subscription(), "desk");
}

TEST_F(DeliveryHubTest, FiltersApplyToTailDeliveries) {
  StartHub();
  auto a = Attach(Params("fuel", {"smuggling.fuel"}));
  ASSERT_TRUE(a.opened.ok());
  std::vector<std::shared_ptr<const QueuedDelivery>> fresh;
  fresh.push_back(Fresh(MakeDelivery("tail", 1, "smuggling.fuel", false), 1));
  fresh.push_back(Fresh(MakeDelivery("tail", 2, "smuggling.frozen_goods", false), 2));
  fresh.push_back(Fresh(MakeDelivery("tail", 3, "patrol.sighting", true), 3));  // addressed
  fresh.push_back(Fresh(MakeDelivery("tail", 4, "smuggling.fuel", false), 4));
  Advance(4, std::move(fresh));
  EXPECT_THAT(Ids(a.sink->WaitFor(3)), ElementsAre("tail-1", "tail-3", "tail-4"));
  absl::SleepFor(absl::Milliseconds(100));
  EXPECT_EQ(a.sink->got().size(), 3u);
}

TEST_F(DeliveryHubTest, ExpiredTailDeliveriesAreSkipped) {
  StartHub();
  auto a = Attach(Params("ops"));
  ASSERT_TRUE(a.opened.ok());
  v1::Delivery past = MakeDelivery("tail", 1);
  *past.mutable_envelope()->mutable_expires_at() =
      google::protobuf::util::TimeUtil::MillisecondsToTimestamp(
          absl::ToUnixMillis(absl::Now() - absl::Seconds(1)));
  Advance(2, {Fresh(past, 1), Fresh(MakeDelivery("tail", 2), 2)});
  EXPECT_THAT(Ids(a.sink->WaitFor(1)), ElementsAre("tail-2"));
  absl::SleepFor(absl::Milliseconds(100));
  EXPECT_EQ(a.sink->got().size(), 1u);
}

TEST_F(DeliveryHubTest, ExpiredInFlightIsNeverRedelivered) {
  StartHub();
  SubscribeParams p = Params("ops");
  p.ack_deadline = absl::Milliseconds(300);
  auto a = Attach(p);
  ASSERT_TRUE(a.opened.ok());
  v1::Delivery soon = MakeDelivery("tail", 1);
  *soon.mutable_envelope()->mutable_expires_at() =
      google::protobuf::util::TimeUtil::MillisecondsToTimestamp(
          absl::ToUnixMillis(absl::Now() + absl::Milliseconds(150)));
  Advance(2, {Fresh(soon, 1), Fresh(MakeDelivery("tail", 2), 2)});
  ASSERT_EQ(a.sink->WaitFor(2).size(), 2u);
  auto got = a.sink->WaitFor(3);  // seq 2 again, attempt 2; seq 1 expired meanwhile
  absl::SleepFor(absl::Milliseconds(400));
  got = a.sink->got();
  ASSERT_GE(got.size(), 3u);
  for (size_t i = 2; i < got.size(); ++i) {
    EXPECT_EQ(got[i].seq(), 2u);
    EXPECT_GE(got[i].attempt(), 2u);
  }
}

TEST_F(DeliveryHubTest, ReplayFromSeqServesAckedFromTheTailResumeDoesNot) {
  StartHub();
  auto a = Attach(Params("ops"));
  ASSERT_TRUE(a.opened.ok());
  Advance(3, TailRun(1, 3));
  ASSERT_EQ(a.sink->WaitFor(3).size(), 3u);
  hub_->Ack(a.session, {1, 2, 3});
  hub_->Detach(a.session);

  auto resumed = Attach(Params("ops"));
  ASSERT_TRUE(resumed.opened.ok());
  EXPECT_EQ(resumed.opened->ack_floor(), 4u);
  hub_->Detach(resumed.session);

  SubscribeParams replay = Params("ops");
  replay.start = v1::START_POSITION_FROM_SEQ;
  replay.start_seq = 2;
  auto r = Attach(replay);
  ASSERT_TRUE(r.opened.ok());
  EXPECT_THAT(Ids(r.sink->WaitFor(2)), ElementsAre("tail-2", "tail-3"));
  EXPECT_TRUE(resumed.sink->got().empty());
}

// Acks are audited through the committer; while more entries than the bound
// wait for it, no new delivery goes out (memory stays bounded however fast a
// subscriber drains), and sending resumes once they are committed.
TEST_F(DeliveryHubTest, SendingWaitsWhileTooManyAckEntriesAreNotYetDurable) {
  DeliveryHub::Options options;
  options.max_unpersisted_audit = 3;
  StartHub(options);
  auto a = Attach(Params("ops"));  // its record is durable before the committer gets busy
  ASSERT_TRUE(a.opened.ok());
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  committer_->Enqueue(Committer::Task{.prepare =
                                          [released](rocksdb::WriteBatch&) {
                                            released.wait();  // the committer is busy
                                            return absl::OkStatus();
                                          },
                                      .done = [](absl::Status) {},
                                      .sync = false});
  Advance(5, TailRun(1, 5));
  ASSERT_EQ(a.sink->WaitFor(5).size(), 5u);
  hub_->Ack(a.session, {1, 2, 3});  // three entries wait behind the busy committer
  Advance(10, TailRun(6, 10));
  absl::SleepFor(absl::Milliseconds(300));
  EXPECT_EQ(a.sink->got().size(), 5u) << "sent while the bound was reached";
  release.set_value();
  EXPECT_THAT(Ids(a.sink->WaitFor(10)),
              ElementsAre("tail-1", "tail-2", "tail-3", "tail-4", "tail-5", "tail-6", "tail-7",
                          "tail-8", "tail-9", "tail-10"));
}

TEST_F(DeliveryHubTest, UnackedIsRedeliveredWithTheNextAttemptAndAudited) {
  DeliveryHub::Options options;
  options.redelivery_audit_window = absl::Milliseconds(100);
  StartHub(options);
  SubscribeParams p = Params("ops");
  p.ack_deadline = absl::Milliseconds(200);
  auto a = Attach(p);
  ASSERT_TRUE(a.opened.ok());
  Advance(2, TailRun(1, 2));
  ASSERT_EQ(a.sink->WaitFor(2).size(), 2u);
  hub_->Ack(a.session, {2});
  auto got = a.sink->WaitFor(3);
  ASSERT_GE(got.size(), 3u);
  EXPECT_EQ(got[2].seq(), 1u);
  EXPECT_EQ(got[2].attempt(), 2u);
  EXPECT_EQ(got[2].subscription(), "ops");
  EXPECT_EQ(a.sink->shared()[2].get(), a.sink->shared()[0].get());  // the same object again
  hub_->Ack(a.session, {1});
  // Consultation 2, consultation 1, and the window's redelivery summary (when
  // the window ended: after the ack of seq 1, or before it).
  auto groups = WaitAudit(3);
  std::vector<std::pair<v1::AuditEvent, uint64_t>> events;
  std::vector<v1::AuditEntry> summaries;
  for (const auto& g : groups) {
    for (const auto& e : g) {
      if (e.event() == v1::AUDIT_EVENT_REDELIVERY) {
        summaries.push_back(e);
      } else {
        events.emplace_back(e.event(), e.delivery_seq());
      }
    }
  }
  EXPECT_THAT(events, ElementsAre(std::make_pair(v1::AUDIT_EVENT_CONSULTATION, 2u),
                                  std::make_pair(v1::AUDIT_EVENT_CONSULTATION, 1u)));
  ASSERT_EQ(summaries.size(), 1u);
  const v1::AuditEntry& e = summaries[0];
  EXPECT_EQ(e.recipient_agency_id(), kAgency);
  EXPECT_EQ(e.actor_spiffe_id(), Customs().spiffe_id);
  EXPECT_EQ(e.delivery_seq(), 0u);
  EXPECT_EQ(e.redeliveries().subscription(), "ops");
  EXPECT_EQ(e.redeliveries().count(), 1u);
  EXPECT_EQ(e.redeliveries().first_seq(), 1u);
  EXPECT_EQ(e.redeliveries().last_seq(), 1u);
  ASSERT_EQ(e.redeliveries().exchanges_size(), 1);
  const v1::RedeliveredExchange& x = e.redeliveries().exchanges(0);
  EXPECT_EQ(x.exchange_id(), "tail-1");
  EXPECT_EQ(x.client_message_id(), "m-1");
  EXPECT_EQ(x.delivery_seq(), 1u);
  EXPECT_EQ(x.count(), 1u);
  EXPECT_EQ(x.first_attempt(), 2u);
  EXPECT_EQ(x.last_attempt(), 2u);
  absl::SleepFor(absl::Milliseconds(500));
  EXPECT_EQ(a.sink->got().size(), 3u);  // acked: no more
}

// A subscriber that never acks: each delivery comes back after the ack
// deadline, then twice that, four times, ... up to the cap.
TEST_F(DeliveryHubTest, RedeliveriesBackOffExponentiallyUpToTheCap) {
  DeliveryHub::Options options;
  options.redelivery_backoff_max = absl::Milliseconds(800);
  StartHub(options);
  SubscribeParams p = Params("ops");
  p.ack_deadline = absl::Milliseconds(100);
  auto a = Attach(p);
  ASSERT_TRUE(a.opened.ok());
  Advance(1, TailRun(1, 1));
  // Sends at about 0, 0.1, 0.3, 0.7, 1.5, 2.3, 3.1 s (with a fixed deadline
  // there would be 31 by then).
  absl::SleepFor(absl::Milliseconds(3300));
  auto got = a.sink->got();
  auto times = a.sink->times();
  ASSERT_EQ(got.size(), 7u);
  const int64_t want_ms[] = {100, 200, 400, 800, 800, 800};
  for (size_t i = 1; i < got.size(); ++i) {
    SCOPED_TRACE(i);
    EXPECT_EQ(got[i].seq(), 1u);
    EXPECT_EQ(got[i].attempt(), i + 1);
    const int64_t gap_ms = absl::ToInt64Milliseconds(times[i] - times[i - 1]);
    EXPECT_GE(gap_ms, want_ms[i - 1] - 5);
    EXPECT_LE(gap_ms, want_ms[i - 1] + 120);  // the deadline check runs every 50 ms
  }
  hub_->Detach(a.session);
}

// Redeliveries are audited as summaries: per window one entry per 256
// deliveries sent again, however often each was sent. Every redelivery is
// counted in exactly one summary, and every delivery sent again is listed.
TEST_F(DeliveryHubTest, ANeverAckingSubscriberAddsABoundedNumberOfRedeliveryEntries) {
  DeliveryHub::Options options;
  options.redelivery_backoff_max = absl::Milliseconds(400);
  options.redelivery_audit_window = absl::Milliseconds(500);
  StartHub(options);
  SubscribeParams p = Params("ops");
  p.ack_deadline = absl::Milliseconds(100);
  p.max_in_flight = 300;
  auto a = Attach(p);
  ASSERT_TRUE(a.opened.ok());
  Advance(300, TailRun(1, 300));
  absl::SleepFor(absl::Seconds(2));
  hub_->Detach(a.session);
  hub_->Stop();  // records the open window
  auto got = a.sink->got();
  uint64_t redelivered = 0;
  for (const auto& d : got) redelivered += d.attempt() > 1 ? 1 : 0;
  // Backoff: 0.1, 0.3, 0.7, 1.1, 1.5, 1.9 s: about 6 each (a fixed deadline: 20).
  EXPECT_GE(redelivered, 300u * 5);
  EXPECT_LE(redelivered, 300u * 7);
  // Wait until the entries the hub handed the committer are all seen.
  auto summarized = [&] {
    std::lock_guard<std::mutex> lock(audit_mu_);
    uint64_t n = 0;
    for (const auto& g : audit_groups_) {
      for (const auto& e : g) n += e.redeliveries().count();
    }
    return n;
  };
  for (int i = 0; i < 500 && summarized() < redelivered; ++i)
    absl::SleepFor(absl::Milliseconds(10));
  uint64_t entries = 0, counted = 0;
  std::set<uint64_t> listed;
  for (const auto& g : WaitAudit(1)) {
    for (const auto& e : g) {
      ASSERT_EQ(e.event(), v1::AUDIT_EVENT_REDELIVERY);
      ++entries;
      counted += e.redeliveries().count();
      EXPECT_LE(e.redeliveries().exchanges_size(), 256);
      uint64_t per_exchange = 0;
      for (const auto& x : e.redeliveries().exchanges()) {
        listed.insert(x.delivery_seq());
        per_exchange += x.count();
        EXPECT_EQ(x.exchange_id(), absl::StrCat("tail-", x.delivery_seq()));
        EXPECT_GE(x.last_attempt(), x.first_attempt());
      }
      EXPECT_EQ(per_exchange, e.redeliveries().count());
      EXPECT_LE(e.redeliveries().first_attempt().seconds(),
                e.redeliveries().last_attempt().seconds());
    }
  }
  EXPECT_EQ(counted, redelivered);
  EXPECT_EQ(listed.size(), 300u);
  // 2 s in windows of 0.5 s, 300 deliveries (two entries' worth) each: about
  // 10, against ~1800 entries of one per redelivery.
  EXPECT_LE(entries, 14u);
}

TEST_F(DeliveryHubTest, AcksOfOneTickAreOneAuditAppendWithAnEntryEach) {
  StartHub();
  auto a = Attach(Params("ops"));
  ASSERT_TRUE(a.opened.ok());
  Advance(50, TailRun(1, 50));
  ASSERT_EQ(a.sink->WaitFor(50).size(), 50u);
  std::vector<uint64_t> seqs;
  for (uint64_t s = 1; s <= 50; ++s) seqs.push_back(s);
  hub_->Ack(a.session, seqs);
  auto groups = WaitAudit(50);
  ASSERT_EQ(groups.size(), 1u);
  ASSERT_EQ(groups[0].size(), 50u);
  for (size_t i = 0; i < 50; ++i) {
    EXPECT_EQ(groups[0][i].event(), v1::AUDIT_EVENT_CONSULTATION);
    EXPECT_EQ(groups[0][i].delivery_seq(), i + 1);
    EXPECT_EQ(groups[0][i].exchange_id(), absl::StrCat("tail-", i + 1));
    EXPECT_EQ(groups[0][i].recipient_agency_id(), kAgency);
  }
}

TEST_F(DeliveryHubTest, TakeoverResumesUnackedFromTheTail) {
  StartHub();
  auto first = Attach(Params("ops"));
  ASSERT_TRUE(first.opened.ok());
  Advance(3, TailRun(1, 3));
  ASSERT_EQ(first.sink->WaitFor(3).size(), 3u);
  hub_->Ack(first.session, {1});
  auto second = Attach(Params("ops"));
  ASSERT_TRUE(second.opened.ok());
  EXPECT_THAT(first.sink->WaitClosed(), StatusIs(absl::StatusCode::kAborted));
  EXPECT_THAT(Ids(second.sink->WaitFor(2)), ElementsAre("tail-2", "tail-3"));
  for (const auto& d : second.sink->got()) EXPECT_EQ(d.attempt(), 1u);
}

TEST_F(DeliveryHubTest, WindowIsRespectedAcrossTailAndStore) {
  StartHub();
  StoreRange(1, 6);
  Advance(3);
  Advance(6, TailRun(4, 6));
  SubscribeParams p = Params("ops");
  p.max_in_flight = 2;
  auto a = Attach(p);
  ASSERT_TRUE(a.opened.ok());
  ASSERT_EQ(a.sink->WaitFor(2).size(), 2u);
  absl::SleepFor(absl::Milliseconds(100));
  EXPECT_EQ(a.sink->got().size(), 2u);
  hub_->Ack(a.session, {1, 2});
  ASSERT_EQ(a.sink->WaitFor(4).size(), 4u);
  hub_->Ack(a.session, {3, 4});
  EXPECT_THAT(Ids(a.sink->WaitFor(6)),
              ElementsAreArray({"store-1", "store-2", "store-3", "tail-4", "tail-5", "tail-6"}));
}

TEST_F(DeliveryHubTest, StoreIteratorKeptAcrossPumpsSeesWhatBecameDurableLater) {
  StartHub();
  StoreRange(1, 3);
  Advance(3);
  SubscribeParams p = Params("ops");
  p.max_in_flight = 2;
  auto a = Attach(p);
  ASSERT_TRUE(a.opened.ok());
  ASSERT_EQ(a.sink->WaitFor(2).size(), 2u);  // the session's iterator now rests on 3
  StoreRange(4, 6);                          // written after it was made
  Advance(6);
  const absl::Time acked = absl::Now();
  hub_->Ack(a.session, {1, 2});
  ASSERT_EQ(a.sink->WaitFor(4).size(), 4u);
  // At once, not when the old iterator ages out (kStoreIteratorMaxAge, 1 s).
  EXPECT_LT(absl::Now() - acked, absl::Milliseconds(700));
  hub_->Ack(a.session, {3, 4});
  EXPECT_THAT(Ids(a.sink->WaitFor(6)),
              ElementsAreArray({"store-1", "store-2", "store-3", "store-4", "store-5", "store-6"}));
}

}  // namespace
}  // namespace corridor::broker
