// End to end over real mTLS: submit, deliver, ack, redeliver, dedupe, stream order.
#include <condition_variable>
#include <mutex>
#include <set>

#include "corridor/v1/exchange.grpc.pb.h"
#include "gmock/gmock.h"
#include "grpcpp/generic/generic_stub.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "tests/integration/broker_fixture.h"
#include "tests/testing/envelopes.h"
#include "tests/testing/inbox.h"
#include "tests/testing/status_matchers.h"

namespace corridor::testing {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::UnorderedElementsAre;

SubscriptionOptions Sub(const std::string& name, std::vector<std::string> filters = {}) {
  SubscriptionOptions o;
  o.open.set_name(name);
  for (auto& f : filters) o.open.add_topic_filters(f);
  o.initial_backoff = absl::Milliseconds(50);
  return o;
}

class ExchangeE2eTest : public BrokerFixture {};

TEST_F(ExchangeE2eTest, SubmitIsDeliveredToEverySubscriber) {
  auto customs = Client("zs-customs");
  auto coastguard = Client("zs-coastguard");
  auto police = Client("zs-police");
  ASSERT_TRUE(customs && coastguard && police);
  Inbox customs_inbox, coastguard_inbox;
  auto s1 = customs->Subscribe(Sub("duty", {"smuggling.*"}), customs_inbox.Handler());
  auto s2 = coastguard->Subscribe(Sub("duty", {"smuggling.*"}), coastguard_inbox.Handler());
  ASSERT_TRUE(s1->WaitOpened(absl::Seconds(5)).ok());
  ASSERT_TRUE(s2->WaitOpened(absl::Seconds(5)).ok());

  auto reply = police->Submit(SampleTipOff("tip-0001"));
  ASSERT_TRUE(reply.ok()) << reply.status();
  EXPECT_THAT(reply->recipients(), UnorderedElementsAre("zs-customs", "zs-coastguard"));
  EXPECT_EQ(reply->withheld(), 0u);

  for (Inbox* inbox : {&customs_inbox, &coastguard_inbox}) {
    auto got = inbox->WaitFor(1);
    ASSERT_EQ(got.size(), 1u);
    const v1::Envelope& e = got[0].envelope();
    EXPECT_EQ(got[0].seq(), 1u);
    EXPECT_EQ(e.exchange_id(), reply->exchange_id());
    EXPECT_EQ(e.sender().agency_id(), "zs-police");  // from the certificate
    EXPECT_EQ(e.sender().node(), "node1");
    EXPECT_EQ(e.tip_off().location().waterway(), "磨刀门水道");
    EXPECT_EQ(e.tip_off().cargo(), "冻品约20吨");
  }
}

TEST_F(ExchangeE2eTest, AckedIsNotRedeliveredAfterReconnect) {
  auto customs = Client("zs-customs");
  auto police = Client("zs-police");
  Inbox first;
  auto s = customs->Subscribe(Sub("duty", {"smuggling.*"}), first.Handler());
  ASSERT_TRUE(s->WaitOpened(absl::Seconds(5)).ok());
  ASSERT_TRUE(police->Submit(SampleTipOff("tip-a")).ok());
  ASSERT_EQ(first.WaitFor(1).size(), 1u);
  // The ack travels on the stream; give it a moment before hanging up.
  absl::SleepFor(absl::Milliseconds(300));
  s->Stop();

  ASSERT_TRUE(police->Submit(SampleTipOff("tip-b")).ok());
  Inbox second;
  auto s2 = customs->Subscribe(Sub("duty"), second.Handler());
  auto opened = s2->WaitOpened(absl::Seconds(5));
  ASSERT_TRUE(opened.ok());
  EXPECT_FALSE(opened->created());
  auto got = second.WaitFor(1);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].envelope().client_message_id(), "tip-b");
  absl::SleepFor(absl::Milliseconds(300));
  EXPECT_EQ(second.Now().size(), 1u);  // tip-a, acked, never came back
}

TEST_F(ExchangeE2eTest, UnackedIsRedeliveredAfterReconnect) {
  auto customs = Client("zs-customs");
  auto police = Client("zs-police");
  Inbox no_ack(/*ack=*/false);
  auto s = customs->Subscribe(Sub("duty", {"smuggling.*"}), no_ack.Handler());
  ASSERT_TRUE(s->WaitOpened(absl::Seconds(5)).ok());
  ASSERT_TRUE(police->Submit(SampleTipOff("tip-unacked")).ok());
  ASSERT_EQ(no_ack.WaitFor(1).size(), 1u);
  s->Stop();

  Inbox again;
  auto s2 = customs->Subscribe(Sub("duty"), again.Handler());
  auto got = again.WaitFor(1);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].envelope().client_message_id(), "tip-unacked");
  EXPECT_EQ(got[0].seq(), 1u);
}

TEST_F(ExchangeE2eTest, UnackedIsRedeliveredAfterAckDeadline) {
  auto customs = Client("zs-customs");
  auto police = Client("zs-police");
  SubscriptionOptions o = Sub("duty", {"smuggling.*"});
  o.open.set_ack_deadline_ms(1000);  // the minimum
  Inbox no_ack(/*ack=*/false);
  auto s = customs->Subscribe(o, no_ack.Handler());
  ASSERT_TRUE(s->WaitOpened(absl::Seconds(5)).ok());
  ASSERT_TRUE(police->Submit(SampleTipOff("tip-slow")).ok());
  auto got = no_ack.WaitFor(2);
  ASSERT_GE(got.size(), 2u);
  EXPECT_EQ(got[1].seq(), got[0].seq());
  EXPECT_EQ(got[1].attempt(), 2u);
}

TEST_F(ExchangeE2eTest, OfflineAgencyGetsItsBacklogOnConnect) {
  auto police = Client("zs-police");
  // Nobody from MSA is connected; it is addressed explicitly.
  for (int i = 0; i < 5; ++i) {
    v1::Envelope e = SampleTipOff(absl::StrCat("for-msa-", i));
    e.add_addressees("zs-msa");
    auto r = police->Submit(e);
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_THAT(r->recipients(), ElementsAre("zs-msa"));
  }
  auto msa = Client("zs-msa");
  Inbox inbox;
  auto s = msa->Subscribe(Sub("desk"), inbox.Handler());
  auto got = inbox.WaitFor(5);
  ASSERT_EQ(got.size(), 5u);
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(got[i].seq(), static_cast<uint64_t>(i + 1));  // in order
    EXPECT_EQ(got[i].envelope().client_message_id(), absl::StrCat("for-msa-", i));
    EXPECT_TRUE(got[i].addressed());
  }
}

TEST_F(ExchangeE2eTest, ResubmittedIdIsStoredOnce) {
  auto police = Client("zs-police");
  auto customs = Client("zs-customs");
  Inbox inbox;
  auto s = customs->Subscribe(Sub("duty", {"smuggling.*"}), inbox.Handler());
  ASSERT_TRUE(s->WaitOpened(absl::Seconds(5)).ok());
  auto a = police->Submit(SampleTipOff("dup-1"));
  auto b = police->Submit(SampleTipOff("dup-1"));
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->exchange_id(), b->exchange_id());
  EXPECT_FALSE(a->duplicate());
  EXPECT_TRUE(b->duplicate());
  ASSERT_EQ(inbox.WaitFor(1).size(), 1u);
  absl::SleepFor(absl::Milliseconds(300));
  EXPECT_EQ(inbox.Now().size(), 1u);
  auto status = Client("admin")->Status();
  ASSERT_TRUE(status.ok());
  EXPECT_EQ(status->exchanges_stored(), 1u);
  EXPECT_EQ(police->Status()->exchanges_stored(), 0u);  // broker-wide figures: admins only
}

TEST_F(ExchangeE2eTest, PayloadCannotSpoofAnotherAgency) {
  auto police = Client("zs-police");
  v1::Envelope e = SampleTipOff("spoof-1");
  e.mutable_sender()->set_agency_id("zs-customs");
  auto r = police->Submit(e);
  EXPECT_THAT(r.status(), StatusIs(absl::StatusCode::kPermissionDenied,
                                   HasSubstr("envelope.sender.agency_id")));
  e.mutable_sender()->set_agency_id("zs-police");
  e.mutable_sender()->set_node("node7");
  EXPECT_THAT(police->Submit(e).status(),
              StatusIs(absl::StatusCode::kPermissionDenied, HasSubstr("envelope.sender.node")));
}

TEST_F(ExchangeE2eTest, BadInputGetsInvalidArgumentNamingTheField) {
  auto police = Client("zs-police");
  v1::Envelope big = SampleTipOff("big-1");
  big.mutable_tip_off()->set_narrative(std::string(config_.max_message_bytes + 1, 'x'));
  EXPECT_THAT(police->Submit(big).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("envelope: ")));
  EXPECT_THAT(police->Submit(big).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("max_message_bytes")));
  v1::Envelope bad = SampleTipOff("bad-1");
  bad.mutable_tip_off()->mutable_vessel()->set_mmsi("41234");
  EXPECT_THAT(police->Submit(bad).status(), StatusIs(absl::StatusCode::kInvalidArgument,
                                                     HasSubstr("envelope.tip_off.vessel.mmsi")));
  v1::Envelope no_topic = SampleTipOff("bad-2");
  no_topic.clear_topic();
  EXPECT_THAT(police->Submit(no_topic).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("envelope.topic")));
  // A Subscribe whose first message is not an open is refused, naming it.
  Inbox inbox;
  SubscriptionOptions o = Sub("Bad Name");
  auto s = police->Subscribe(o, inbox.Handler());
  EXPECT_THAT(s->WaitOpened(absl::Seconds(5)).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("open.name")));
}

TEST_F(ExchangeE2eTest, SubmitStreamRepliesInOrderWithPerRequestErrors) {
  auto police = Client("zs-police");
  std::vector<v1::Envelope> batch;
  for (int i = 0; i < 300; ++i) {
    v1::Envelope e = SampleTipOff(absl::StrCat("s-", i));
    if (i % 50 == 7) e.clear_topic();  // a bad one now and then
    batch.push_back(e);
  }
  auto results = police->SubmitAll(batch, 64);
  ASSERT_EQ(results.size(), batch.size());
  std::set<std::string> ids;
  for (int i = 0; i < 300; ++i) {
    if (i % 50 == 7) {
      EXPECT_THAT(results[i].status(),
                  StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("envelope.topic")))
          << i;
    } else {
      ASSERT_TRUE(results[i].ok()) << i << ": " << results[i].status();
      EXPECT_EQ(results[i]->client_message_id(), absl::StrCat("s-", i));
      ids.insert(results[i]->exchange_id());
    }
  }
  EXPECT_EQ(ids.size(), 294u);
}

// The wire contract under the client library: without batch_replies every
// envelope gets a message of its own; with it, a message may answer a run, and
// every envelope of a request's `more` is answered in order either way.
TEST_F(ExchangeE2eTest, SubmitStreamBatchesOnlyWhenTheClientAsks) {
  auto channel = MakeChannel(OptionsFor("zs-police"));
  ASSERT_TRUE(channel.ok()) << channel.status();
  auto stub = v1::Exchange::NewStub(*channel);
  for (bool batch : {false, true}) {
    grpc::ClientContext ctx;
    auto stream = stub->SubmitStream(&ctx);
    v1::SubmitRequest request;
    request.set_batch_replies(batch);
    *request.mutable_envelope() = SampleTipOff(absl::StrCat("w-", batch, "-0"));
    for (int i = 1; i < 40; ++i) {
      v1::Envelope e = SampleTipOff(absl::StrCat("w-", batch, "-", i));
      if (i == 13) e.clear_topic();
      *request.add_more() = e;
    }
    ASSERT_TRUE(stream->Write(request));
    stream->WritesDone();
    std::vector<v1::SubmitStreamResponse> replies;
    size_t messages = 0;
    v1::SubmitStreamResponse r;
    while (stream->Read(&r)) {
      ++messages;
      if (!batch) {
        EXPECT_EQ(r.more_size(), 0);
      }
      for (const auto& more : r.more()) EXPECT_EQ(more.more_size(), 0);
      replies.push_back(r);
      for (const auto& more : r.more()) replies.push_back(more);
    }
    ASSERT_TRUE(stream->Finish().ok());
    ASSERT_EQ(replies.size(), 40u) << "batch=" << batch;
    for (int i = 0; i < 40; ++i) {
      EXPECT_EQ(replies[i].client_message_id(), absl::StrCat("w-", batch, "-", i));
      EXPECT_EQ(replies[i].code(), i == 13 ? grpc::StatusCode::INVALID_ARGUMENT : 0) << i;
    }
    if (!batch) {
      EXPECT_EQ(messages, 40u);
    }
  }
  // Unary Submit takes one envelope only.
  grpc::ClientContext ctx;
  v1::SubmitRequest request;
  *request.mutable_envelope() = SampleTipOff("unary");
  *request.add_more() = SampleTipOff("unary-2");
  v1::SubmitResponse response;
  grpc::Status st = stub->Submit(&ctx, request, &response);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(st.error_message(), HasSubstr("more"));
}

// Deliveries come one per message unless the open asks for batches; a batch
// keeps seq order and every delivery in it is acked like any other.
TEST_F(ExchangeE2eTest, SubscribeBatchesOnlyWhenTheOpenAsks) {
  auto police = Client("zs-police");
  std::vector<v1::Envelope> queued;
  for (int i = 0; i < 40; ++i) {
    v1::Envelope e = SampleTipOff(absl::StrCat("b-", i));
    e.add_addressees("zs-customs");
    queued.push_back(e);
  }
  for (const auto& r : police->SubmitAll(queued, 64)) ASSERT_TRUE(r.ok()) << r.status();
  auto channel = MakeChannel(OptionsFor("zs-customs"));
  ASSERT_TRUE(channel.ok()) << channel.status();
  auto stub = v1::Exchange::NewStub(*channel);
  for (uint32_t max_batch : {0u, 16u}) {
    grpc::ClientContext ctx;
    auto stream = stub->Subscribe(&ctx);
    v1::SubscribeRequest open;
    open.mutable_open()->set_name(absl::StrCat("wire-", max_batch));
    open.mutable_open()->set_max_batch(max_batch);
    ASSERT_TRUE(stream->Write(open));
    v1::SubscribeResponse r;
    ASSERT_TRUE(stream->Read(&r));
    ASSERT_TRUE(r.has_opened());
    std::vector<uint64_t> seqs;
    size_t batches = 0;
    while (seqs.size() < 40 && stream->Read(&r)) {
      v1::SubscribeRequest ack;
      if (r.has_delivery()) {
        seqs.push_back(r.delivery().seq());
        ack.mutable_ack()->add_seqs(r.delivery().seq());
      }
      if (r.has_batch()) {
        ++batches;
        EXPECT_LE(r.batch().deliveries_size(), 16);
        for (const auto& d : r.batch().deliveries()) {
          seqs.push_back(d.seq());
          ack.mutable_ack()->add_seqs(d.seq());
          EXPECT_EQ(d.attempt(), 1u);
          EXPECT_EQ(d.subscription(), absl::StrCat("wire-", max_batch));
          EXPECT_TRUE(d.envelope().has_tip_off());
        }
      }
      ASSERT_TRUE(stream->Write(ack));
    }
    ASSERT_EQ(seqs.size(), 40u);
    for (size_t i = 0; i < seqs.size(); ++i) EXPECT_EQ(seqs[i], i + 1);
    if (max_batch == 0) {
      EXPECT_EQ(batches, 0u);
    } else {
      EXPECT_GT(batches, 0u);  // 40 were queued before the open: they leave in batches
    }
    ctx.TryCancel();
    stream->Finish();
  }
  // max_batch beyond the limit is refused, naming the field.
  grpc::ClientContext ctx;
  auto stream = stub->Subscribe(&ctx);
  v1::SubscribeRequest open;
  open.mutable_open()->set_name("too-big");
  open.mutable_open()->set_max_batch(100000);
  ASSERT_TRUE(stream->Write(open));
  v1::SubscribeResponse r;
  while (stream->Read(&r)) {
  }
  grpc::Status st = stream->Finish();
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(st.error_message(), HasSubstr("open.max_batch"));
}

// The Exchange methods read raw bytes and parse them themselves: bytes that
// are not their request message are answered with INVALID_ARGUMENT.
TEST_F(ExchangeE2eTest, StreamRequestsThatAreNotTheirMessageAreRefused) {
  auto channel = MakeChannel(OptionsFor("zs-police"));
  ASSERT_TRUE(channel.ok()) << channel.status();
  grpc::GenericStub stub(*channel);
  for (const char* method :
       {"/corridor.v1.Exchange/SubmitStream", "/corridor.v1.Exchange/Subscribe"}) {
    grpc::CompletionQueue cq;
    grpc::ClientContext ctx;
    void* tag = nullptr;
    bool ok = false;
    auto call = stub.PrepareCall(&ctx, method, &cq);
    call->StartCall(reinterpret_cast<void*>(1));
    ASSERT_TRUE(cq.Next(&tag, &ok) && ok) << method;
    const std::string garbage = "\x0a\xff\xff\xff\xff\x0f not a message";  // length past the end
    grpc::Slice slice(garbage);
    grpc::ByteBuffer buffer(&slice, 1);
    call->Write(buffer, reinterpret_cast<void*>(2));
    ASSERT_TRUE(cq.Next(&tag, &ok)) << method;
    call->WritesDone(reinterpret_cast<void*>(3));
    ASSERT_TRUE(cq.Next(&tag, &ok)) << method;
    grpc::Status status;
    call->Finish(&status, reinterpret_cast<void*>(4));
    while (cq.Next(&tag, &ok) && tag != reinterpret_cast<void*>(4)) {
    }
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << method;
    EXPECT_THAT(status.error_message(), HasSubstr("request: not a corridor.v1.")) << method;
    cq.Shutdown();
    while (cq.Next(&tag, &ok)) {
    }
  }
  // Unary Submit the same (a typed handler answered a bare UNIMPLEMENTED).
  grpc::CompletionQueue cq;
  grpc::ClientContext ctx;
  const std::string garbage = "\x0a\xff\xff\xff\xff\x0f not a message";
  grpc::Slice slice(garbage);
  grpc::ByteBuffer request(&slice, 1);
  grpc::ByteBuffer response;
  grpc::Status status;
  auto call = stub.PrepareUnaryCall(&ctx, "/corridor.v1.Exchange/Submit", request, &cq);
  call->StartCall();
  call->Finish(&response, &status, reinterpret_cast<void*>(9));
  void* tag = nullptr;
  bool ok = false;
  ASSERT_TRUE(cq.Next(&tag, &ok));
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(), HasSubstr("request: not a corridor.v1.SubmitRequest"));
  cq.Shutdown();
  while (cq.Next(&tag, &ok)) {
  }
}

// Text that is not UTF-8 (GBK from an older agency system) in an envelope's
// string field gets INVALID_ARGUMENT naming the field — it got "request: not
// a corridor.v1.SubmitRequest", like random bytes — and on SubmitStream only
// that envelope is refused: the stream goes on, and the envelopes around it,
// in the same request's `more` or in later requests, are answered and stored.
TEST_F(ExchangeE2eTest, TextThatIsNotUtf8IsRefusedPerEnvelopeNamingTheField) {
  const std::string kGbk = "\xD4\xC1\xD6\xD0\xC9\xBD";  // "粤中山" in GBK
  auto police = Client("zs-police");
  v1::Envelope bad_name = SampleTipOff("gbk-unary");
  bad_name.mutable_tip_off()->mutable_vessel()->set_name(kGbk);
  EXPECT_THAT(police->Submit(bad_name).status(),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "envelope.tip_off.vessel.name: not valid UTF-8"));

  auto channel = MakeChannel(OptionsFor("zs-police"));
  ASSERT_TRUE(channel.ok()) << channel.status();
  auto stub = v1::Exchange::NewStub(*channel);
  grpc::ClientContext ctx;
  auto stream = stub->SubmitStream(&ctx);
  auto request = [](std::vector<v1::Envelope> envs) {
    v1::SubmitRequest r;
    *r.mutable_envelope() = envs[0];
    for (size_t i = 1; i < envs.size(); ++i) *r.add_more() = envs[i];
    return r;
  };
  v1::Envelope bad_stream = SampleTipOff("s-2");
  bad_stream.mutable_tip_off()->mutable_vessel()->set_name(kGbk);
  v1::Envelope bad_more = SampleTipOff("s-4");
  bad_more.mutable_tip_off()->set_narrative("\xC3\xDC\xD5\xEC " + kGbk);
  ASSERT_TRUE(stream->Write(request({SampleTipOff("s-1")})));
  ASSERT_TRUE(stream->Write(request({bad_stream})));
  ASSERT_TRUE(stream->Write(request({SampleTipOff("s-3"), bad_more, SampleTipOff("s-5")})));
  ASSERT_TRUE(stream->Write(request({SampleTipOff("s-6")})));
  stream->WritesDone();
  std::vector<v1::SubmitStreamResponse> replies;
  for (v1::SubmitStreamResponse r; stream->Read(&r);) replies.push_back(r);
  grpc::Status finished = stream->Finish();
  EXPECT_TRUE(finished.ok()) << finished.error_message();
  ASSERT_EQ(replies.size(), 6u);
  for (int i = 0; i < 6; ++i) {
    const v1::SubmitStreamResponse& r = replies[static_cast<size_t>(i)];
    EXPECT_EQ(r.client_message_id(), absl::StrCat("s-", i + 1)) << i;
    if (i == 1 || i == 3) {
      EXPECT_EQ(r.code(), static_cast<int>(grpc::StatusCode::INVALID_ARGUMENT)) << i;
      EXPECT_EQ(r.error_message(), i == 1 ? "envelope.tip_off.vessel.name: not valid UTF-8"
                                          : "envelope.tip_off.narrative: not valid UTF-8");
    } else {
      EXPECT_EQ(r.code(), 0) << i << ": " << r.error_message();
      EXPECT_FALSE(r.result().exchange_id().empty()) << i;
    }
  }
  // The others were stored: submitting them again answers as duplicates.
  for (const char* id : {"s-1", "s-3", "s-5", "s-6"}) {
    auto again = police->Submit(SampleTipOff(id));
    ASSERT_TRUE(again.ok()) << id << ": " << again.status();
    EXPECT_TRUE(again->duplicate()) << id;
  }
  // Not stored, so the same id with valid text is a new exchange.
  auto fixed = police->Submit(SampleTipOff("s-2"));
  ASSERT_TRUE(fixed.ok()) << fixed.status();
  EXPECT_FALSE(fixed->duplicate());
}

TEST_F(ExchangeE2eTest, NewerStreamTakesOverTheSubscription) {
  auto customs = Client("zs-customs");
  Inbox a, b;
  std::mutex mu;
  std::vector<absl::Status> ends;
  auto s1 = customs->Subscribe(Sub("duty"), a.Handler(), [&](const absl::Status& s) {
    std::lock_guard<std::mutex> lock(mu);
    ends.push_back(s);
  });
  ASSERT_TRUE(s1->WaitOpened(absl::Seconds(5)).ok());
  auto customs2 = Client("zs-customs");
  auto s2 = customs2->Subscribe(Sub("duty"), b.Handler());
  ASSERT_TRUE(s2->WaitOpened(absl::Seconds(5)).ok());
  for (int i = 0; i < 50; ++i) {
    {
      std::lock_guard<std::mutex> lock(mu);
      if (!ends.empty()) break;
    }
    absl::SleepFor(absl::Milliseconds(100));
  }
  std::lock_guard<std::mutex> lock(mu);
  ASSERT_FALSE(ends.empty());
  EXPECT_THAT(ends[0], StatusIs(absl::StatusCode::kAborted, HasSubstr("taken over")));
  s1->Stop();  // it would otherwise keep taking it back
}

TEST_F(ExchangeE2eTest, StatusShowsOwnSubscriptionsAdminSeesAll) {
  auto customs = Client("zs-customs");
  auto msa = Client("zs-msa");
  Inbox a, b;
  auto s1 = customs->Subscribe(Sub("duty", {"smuggling.*"}), a.Handler());
  auto s2 = msa->Subscribe(Sub("desk"), b.Handler());
  ASSERT_TRUE(s1->WaitOpened(absl::Seconds(5)).ok() && s2->WaitOpened(absl::Seconds(5)).ok());
  auto mine = customs->Status();
  ASSERT_TRUE(mine.ok()) << mine.status();
  ASSERT_EQ(mine->subscriptions_size(), 1);
  EXPECT_EQ(mine->subscriptions(0).agency_id(), "zs-customs");
  EXPECT_TRUE(mine->subscriptions(0).connected());
  EXPECT_EQ(mine->caller(), "spiffe://zhongshan.corridor/agency/zs-customs/node1");
  EXPECT_EQ(mine->synced_writes(), 0u);  // storage figures are for admins
  EXPECT_EQ(mine->bytes_written(), 0u);
  auto admin = Client("admin");
  auto all = admin->Status();
  ASSERT_TRUE(all.ok()) << all.status();
  EXPECT_EQ(all->subscriptions_size(), 2);
  EXPECT_GE(all->synced_writes(), 1u);  // the subscriptions were stored synced (maybe in one batch)
  EXPECT_GE(all->keys_written(), all->synced_writes());
  EXPECT_GT(all->bytes_written(), all->keys_written());  // every key has bytes
}

}  // namespace
}  // namespace corridor::testing
