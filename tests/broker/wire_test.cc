// The delivery path's wire helpers: what the hub reads from stored bytes must
// equal what protobuf parses from them, and what a transport writes must parse
// as the whole v1::Delivery a client expects.
#include "broker/wire.h"

#include <string>

#include "absl/status/status.h"
#include "corridor/v1/exchange.pb.h"
#include "gtest/gtest.h"
#include "tests/testing/envelopes.h"

namespace corridor::broker {
namespace {

using ::corridor::testing::SampleTipOff;

v1::Delivery Stored() {
  v1::Delivery d;
  *d.mutable_envelope() = SampleTipOff("m-7", "smuggling.frozen_goods");
  v1::Envelope& e = *d.mutable_envelope();
  e.set_exchange_id("corridor-42");
  e.mutable_sender()->set_agency_id("gz-police");
  e.mutable_sender()->set_node("water-desk");
  e.set_handling_code("H1");
  e.set_case_ref("案-2026-118");
  e.mutable_expires_at()->set_seconds(1'900'000'000);
  e.mutable_expires_at()->set_nanos(250'000'000);
  d.add_redacted_fields("tip_off.informant");
  d.set_addressed(true);
  return d;
}

std::string Written(const QueuedDelivery& q, uint32_t attempt, const std::string& subscription) {
  std::string out(DeliverySize(q, attempt, subscription), '\0');
  uint8_t* begin = reinterpret_cast<uint8_t*>(out.data());
  uint8_t* end = WriteDelivery(q, attempt, subscription, begin);
  EXPECT_EQ(end, begin + out.size()) << "DeliverySize and WriteDelivery disagree";
  return out;
}

TEST(WireTest, FactsReadFromStoredBytesEqualTheParsedEnvelope) {
  const v1::Delivery d = Stored();
  auto q = MakeQueuedDelivery(9, d.SerializeAsString());
  ASSERT_TRUE(q.ok()) << q.status();
  const QueuedDelivery& got = **q;
  EXPECT_EQ(got.seq, 9u);
  EXPECT_EQ(got.wire, d.SerializeAsString());
  EXPECT_TRUE(got.addressed);
  EXPECT_EQ(got.exchange_id, "corridor-42");
  EXPECT_EQ(got.client_message_id, "m-7");
  EXPECT_EQ(got.sender_agency_id, "gz-police");
  EXPECT_EQ(got.kind, d.envelope().kind());
  EXPECT_EQ(got.topic, "smuggling.frozen_goods");
  EXPECT_EQ(got.handling_code, "H1");
  EXPECT_EQ(got.case_ref, "案-2026-118");
  EXPECT_EQ(got.expires, absl::FromUnixSeconds(1'900'000'000) + absl::Milliseconds(250));
}

TEST(WireTest, WithoutExpiryOrAddressingTheDefaultsHold) {
  v1::Delivery d = Stored();
  d.mutable_envelope()->clear_expires_at();
  d.set_addressed(false);
  auto q = MakeQueuedDelivery(1, d.SerializeAsString());
  ASSERT_TRUE(q.ok()) << q.status();
  EXPECT_EQ((*q)->expires, absl::InfiniteFuture());
  EXPECT_FALSE((*q)->addressed);
}

TEST(WireTest, RepeatedFieldsReadAsProtobufParsesThem) {
  // Bytes a later writer appended to: the last scalar wins and the sender
  // occurrences merge, exactly as protobuf reads them.
  v1::Delivery first = Stored();
  v1::Delivery later;
  later.mutable_envelope()->set_topic("smuggling.fuel");
  later.mutable_envelope()->mutable_sender()->set_node("other-node");
  const std::string bytes = first.SerializeAsString() + later.SerializeAsString();
  v1::Delivery parsed;
  ASSERT_TRUE(parsed.ParseFromString(bytes));
  auto q = MakeQueuedDelivery(3, bytes);
  ASSERT_TRUE(q.ok()) << q.status();
  EXPECT_EQ((*q)->topic, parsed.envelope().topic());
  EXPECT_EQ((*q)->topic, "smuggling.fuel");
  EXPECT_EQ((*q)->sender_agency_id, parsed.envelope().sender().agency_id());
  EXPECT_EQ((*q)->exchange_id, parsed.envelope().exchange_id());
}

TEST(WireTest, MalformedBytesAreDataLossNamingTheSeq) {
  std::string bytes = Stored().SerializeAsString();
  bytes.resize(bytes.size() / 2);  // cut inside the envelope
  auto q = MakeQueuedDelivery(12, bytes);
  ASSERT_FALSE(q.ok());
  EXPECT_EQ(q.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_NE(q.status().message().find("delivery 12"), std::string::npos) << q.status();
}

TEST(WireTest, WrittenDeliveryParsesAsTheWholeDelivery) {
  const v1::Delivery stored = Stored();
  auto q = MakeQueuedDelivery(300, stored.SerializeAsString());
  ASSERT_TRUE(q.ok()) << q.status();
  for (uint32_t attempt : {1u, 2u, 200u}) {
    v1::Delivery got;
    ASSERT_TRUE(got.ParseFromString(Written(**q, attempt, "ops-desk")));
    v1::Delivery want = stored;
    want.set_seq(300);
    want.set_attempt(attempt);
    want.set_subscription("ops-desk");
    EXPECT_EQ(got.SerializeAsString(), want.SerializeAsString()) << "attempt " << attempt;
  }
}

TEST(WireTest, EmptySubscriptionAndZeroAttemptAreLeftOut) {
  auto q = MakeQueuedDelivery(5, Stored().SerializeAsString());
  ASSERT_TRUE(q.ok()) << q.status();
  v1::Delivery got;
  ASSERT_TRUE(got.ParseFromString(Written(**q, 0, "")));
  EXPECT_EQ(got.seq(), 5u);
  EXPECT_EQ(got.attempt(), 0u);
  EXPECT_EQ(got.subscription(), "");
}

TEST(WireTest, FindPayloadSlicesTheSubmessageAsSerializedAlone) {
  const v1::Envelope e = Stored().envelope();
  const std::string bytes = e.SerializeAsString();
  auto span = FindPayload(bytes);
  ASSERT_TRUE(span.ok()) << span.status();
  EXPECT_EQ(std::string(span->contents), e.tip_off().SerializeAsString());
  std::string rebuilt;
  AppendLengthDelimited(&rebuilt, v1::Envelope::kTipOffFieldNumber, span->contents);
  EXPECT_EQ(rebuilt, std::string(span->field));
}

}  // namespace
}  // namespace corridor::broker
