#include "broker/validation.h"

#include "broker/config.h"
#include "broker/wire.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/envelopes.h"
#include "tests/testing/status_matchers.h"

namespace corridor::broker {
namespace {

using ::corridor::testing::IsOk;
using ::corridor::testing::SampleTipOff;
using ::corridor::testing::StatusIs;
using ::testing::HasSubstr;

class ValidationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto cfg = EmbeddedDefaultConfig();
    ASSERT_TRUE(cfg.ok());
    registry_ = cfg->registry;
    police_.role = PeerRole::kAgency;
    police_.agency_id = "zs-police";
    police_.node = "node1";
  }
  absl::Status Check(const v1::Envelope& e) {
    return ValidateEnvelope(e, police_, *registry_, limits_, absl::Now());
  }
  std::shared_ptr<const policy::Registry> registry_;
  PeerIdentity police_;
  EnvelopeLimits limits_;
};

TEST_F(ValidationTest, SampleIsValid) { EXPECT_THAT(Check(SampleTipOff("t-1")), IsOk()); }

TEST_F(ValidationTest, SenderMayNameOnlyItself) {
  v1::Envelope e = SampleTipOff("t-1");
  e.mutable_sender()->set_agency_id("zs-police");
  e.mutable_sender()->set_node("node1");
  EXPECT_THAT(Check(e), IsOk());
  e.mutable_sender()->set_agency_id("zs-customs");
  EXPECT_THAT(Check(e), StatusIs(absl::StatusCode::kPermissionDenied,
                                 HasSubstr("envelope.sender.agency_id")));
  e.mutable_sender()->set_agency_id("zs-police");
  e.mutable_sender()->set_node("node9");
  EXPECT_THAT(Check(e),
              StatusIs(absl::StatusCode::kPermissionDenied, HasSubstr("envelope.sender.node")));
}

TEST_F(ValidationTest, FieldErrorsNameTheField) {
  struct Case {
    std::function<void(v1::Envelope&)> mutate;
    std::string field;
  };
  std::vector<Case> cases = {
      {[](v1::Envelope& e) { e.clear_client_message_id(); }, "envelope.client_message_id"},
      {[](v1::Envelope& e) { e.set_client_message_id("has space"); }, "envelope.client_message_id"},
      {[](v1::Envelope& e) { e.set_client_message_id(std::string(129, 'x')); },
       "envelope.client_message_id"},
      {[](v1::Envelope& e) { e.set_kind(v1::MESSAGE_KIND_UNSPECIFIED); }, "envelope.kind"},
      {[](v1::Envelope& e) { e.set_kind(v1::MESSAGE_KIND_CASE_RECORD); }, "envelope.kind"},
      {[](v1::Envelope& e) { e.clear_tip_off(); }, "envelope.payload"},
      {[](v1::Envelope& e) { e.clear_topic(); }, "envelope.topic"},
      {[](v1::Envelope& e) { e.set_topic("Smuggling.X"); }, "envelope.topic"},
      {[](v1::Envelope& e) { e.set_topic("smuggling.*"); }, "envelope.topic"},
      {[](v1::Envelope& e) { e.set_topic("a..b"); }, "envelope.topic"},
      {[](v1::Envelope& e) { e.add_addressees("nobody"); }, "envelope.addressees[0]"},
      {[](v1::Envelope& e) {
         e.add_addressees("zs-msa");
         e.add_addressees("zs-msa");
       },
       "envelope.addressees[1]"},
      {[](v1::Envelope& e) { e.set_handling_code("H9"); }, "envelope.handling_code"},
      {[](v1::Envelope& e) { e.mutable_grading()->set_credibility(7); },
       "envelope.grading.credibility"},
      {[](v1::Envelope& e) { e.mutable_tip_off()->mutable_vessel()->set_mmsi("12345"); },
       "envelope.tip_off.vessel.mmsi"},
      {[](v1::Envelope& e) {
         e.mutable_tip_off()->mutable_location()->mutable_point()->set_lat(91);
       },
       "envelope.tip_off.location.point.lat"},
      {[](v1::Envelope& e) { e.set_exchange_id("forged"); }, "envelope.exchange_id"},
      {[](v1::Envelope& e) { e.mutable_broker_time()->set_seconds(1); }, "envelope.broker_time"},
      {[](v1::Envelope& e) { e.mutable_expires_at()->set_seconds(1000); }, "envelope.expires_at"},
      {[](v1::Envelope& e) {
         e.mutable_observed_time()->set_seconds(absl::ToUnixSeconds(absl::Now()) + 3600);
       },
       "envelope.observed_time"},
  };
  for (const auto& c : cases) {
    v1::Envelope e = SampleTipOff("t-1");
    c.mutate(e);
    EXPECT_THAT(Check(e), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(c.field)))
        << c.field;
  }
}

// Fields the broker's schema lacks would pass policy unseen (and reach every
// recipient, even one that gets a redacted copy): refused, named by path.
TEST_F(ValidationTest, UnknownFieldsAreRefusedNamingWhere) {
  std::string extra;
  AppendLengthDelimited(&extra, 99, "informant: 陈某, 138-0000-0000");
  {
    v1::Envelope e = SampleTipOff("t-1");
    ASSERT_TRUE(e.MergeFromString(extra));
    EXPECT_THAT(Check(e), StatusIs(absl::StatusCode::kInvalidArgument,
                                   HasSubstr("envelope: unknown field number 99")));
  }
  {
    v1::Envelope e = SampleTipOff("t-1");
    ASSERT_TRUE(e.mutable_tip_off()->MergeFromString(extra));
    EXPECT_THAT(Check(e), StatusIs(absl::StatusCode::kInvalidArgument,
                                   HasSubstr("envelope.tip_off: unknown field number 99")));
  }
  {
    v1::Envelope e = SampleTipOff("t-1");
    ASSERT_TRUE(e.mutable_tip_off()->mutable_vessel()->MergeFromString(extra));
    EXPECT_THAT(Check(e), StatusIs(absl::StatusCode::kInvalidArgument,
                                   HasSubstr("envelope.tip_off.vessel: unknown field number 99")));
  }
}

// An enum value the schema does not name is kept by proto3 as a bare number:
// refused anywhere in the envelope, named by path and value.
TEST_F(ValidationTest, UnknownEnumValuesAreRefusedNamingWhere) {
  {
    v1::Envelope e = SampleTipOff("t-1");
    e.mutable_tip_off()->set_suspected_offence(static_cast<v1::Offence>(99));
    EXPECT_THAT(Check(e),
                StatusIs(absl::StatusCode::kInvalidArgument,
                         HasSubstr("envelope.tip_off.suspected_offence: unknown value 99")));
  }
  {
    v1::Envelope e = SampleTipOff("t-1");
    e.mutable_tip_off()->mutable_informant()->set_reliability(
        static_cast<v1::SourceReliability>(-1));
    EXPECT_THAT(Check(e),
                StatusIs(absl::StatusCode::kInvalidArgument,
                         HasSubstr("envelope.tip_off.informant.reliability: unknown value -1")));
  }
  {
    v1::Envelope e = SampleTipOff("t-1");  // checked before kind and payload agree
    e.mutable_case_record()->add_offences(v1::OFFENCE_FROZEN_GOODS_SMUGGLING);
    e.mutable_case_record()->add_offences(static_cast<v1::Offence>(77));
    EXPECT_THAT(Check(e),
                StatusIs(absl::StatusCode::kInvalidArgument,
                         HasSubstr("envelope.case_record.offences[1]: unknown value 77")));
  }
  {
    v1::Envelope e = SampleTipOff("t-1");
    e.set_kind(static_cast<v1::MessageKind>(42));
    EXPECT_THAT(Check(e), StatusIs(absl::StatusCode::kInvalidArgument,
                                   HasSubstr("envelope.kind: unknown value")));
  }
}

TEST_F(ValidationTest, OversizedNamesTheLimit) {
  v1::Envelope e = SampleTipOff("t-1");
  e.mutable_tip_off()->set_narrative(std::string(limits_.max_message_bytes, 'x'));
  EXPECT_THAT(Check(e),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("exceeds max_message_bytes")));
}

TEST(TopicTest, Matching) {
  EXPECT_TRUE(TopicMatches("*", "anything.at.all"));
  EXPECT_TRUE(TopicMatches("smuggling.*", "smuggling.fuel"));
  EXPECT_TRUE(TopicMatches("smuggling.*", "smuggling.fuel.diesel"));
  EXPECT_FALSE(TopicMatches("smuggling.*", "smuggling"));
  EXPECT_FALSE(TopicMatches("smuggling.*", "smugglingx.fuel"));
  EXPECT_TRUE(TopicMatches("patrol.zs_north", "patrol.zs_north"));
  EXPECT_FALSE(TopicMatches("patrol.zs_north", "patrol.zs_north.extra"));
}

TEST(TopicTest, FilterValidation) {
  EXPECT_THAT(ValidateTopicFilter("*", "f"), IsOk());
  EXPECT_THAT(ValidateTopicFilter("smuggling.*", "f"), IsOk());
  EXPECT_THAT(ValidateTopicFilter("smuggling.fuel", "f"), IsOk());
  EXPECT_THAT(ValidateTopicFilter("smu*", "f"), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ValidateTopicFilter("*.fuel", "f"), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ValidateTopicFilter("", "open.topic_filters[0]"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("open.topic_filters[0]")));
}

TEST(SubscriptionNameTest, Validation) {
  EXPECT_THAT(ValidateSubscriptionName("ops-room.1", "open.name"), IsOk());
  EXPECT_THAT(ValidateSubscriptionName("", "open.name"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("open.name")));
  EXPECT_THAT(ValidateSubscriptionName("Ops", "open.name"),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

}  // namespace
}  // namespace corridor::broker
