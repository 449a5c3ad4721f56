#include "broker/validation.h"

#include <cstdint>
#include <functional>
#include <set>
#include <string>
#include <vector>

#include "broker/config.h"
#include "broker/wire.h"
#include "gmock/gmock.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/timestamp.pb.h"
#include "google/protobuf/util/time_util.h"
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
  void AddZhuhaiAgency() {
    policy::Registry reg = *registry_;
    policy::Agency zh;
    zh.id = "zh-water-police";
    zh.domain = "zhuhai.corridor";
    zh.kind = "police";
    reg.agencies.push_back(zh);
    reg.peer_domains.push_back("zhuhai.corridor");
    reg.Reindex();
    registry_ = std::make_shared<const policy::Registry>(std::move(reg));
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

// A peer domain's agency may be addressed: policy decides whether the
// exchange crosses to it.
TEST_F(ValidationTest, PeerDomainAddresseesAreLeftToPolicy) {
  AddZhuhaiAgency();
  v1::Envelope e = SampleTipOff("t-2");
  e.add_addressees("zs-customs");
  e.add_addressees("zh-water-police");
  EXPECT_THAT(Check(e), IsOk());
}

TEST_F(ValidationTest, AnOriginIsTheBrokersToSet) {
  v1::Envelope e = SampleTipOff("t-2");
  e.mutable_origin()->set_domain("zhuhai.corridor");
  EXPECT_THAT(Check(e), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("envelope.origin")));
}

TEST_F(ValidationTest, ATransferredEnvelopeNeedsTheOriginsStampAndASenderOfThePeer) {
  AddZhuhaiAgency();
  auto check = [&](const v1::Envelope& e) {
    return ValidateTransferredEnvelope(e, "zhuhai.corridor", *registry_, limits_, absl::Now());
  };
  v1::Envelope e = SampleTipOff("t-3");
  e.mutable_sender()->set_agency_id("zh-water-police");
  e.set_exchange_id("zh-broker-7");
  *e.mutable_broker_time() = google::protobuf::util::TimeUtil::GetCurrentTime();
  e.add_addressees("zs-someone-zhuhai-knows");  // the origin's addressees are not checked
  EXPECT_THAT(check(e), IsOk());
  {
    v1::Envelope x = e;
    x.mutable_sender()->set_agency_id("zs-customs");  // this exchange's own agency
    EXPECT_THAT(check(x), StatusIs(absl::StatusCode::kPermissionDenied,
                                   HasSubstr("'zs-customs' is an agency of this exchange")));
  }
  {
    v1::Envelope x = e;
    x.mutable_sender()->set_agency_id("nobody");
    EXPECT_THAT(check(x), StatusIs(absl::StatusCode::kPermissionDenied,
                                   HasSubstr("not an agency of peer domain zhuhai.corridor")));
  }
  {
    v1::Envelope x = e;
    x.clear_exchange_id();
    EXPECT_THAT(check(x), StatusIs(absl::StatusCode::kInvalidArgument,
                                   HasSubstr("envelope.exchange_id: required")));
  }
  {
    v1::Envelope x = e;
    x.clear_broker_time();
    EXPECT_THAT(check(x), StatusIs(absl::StatusCode::kInvalidArgument,
                                   HasSubstr("envelope.broker_time: required")));
  }
  {
    v1::Envelope x = e;
    x.mutable_origin()->set_domain("hongkong.corridor");  // itself transferred before
    EXPECT_THAT(check(x), StatusIs(absl::StatusCode::kPermissionDenied,
                                   HasSubstr("not sent on to a third domain")));
  }
  {
    v1::Envelope x = e;
    x.clear_client_message_id();  // the content checks apply as to a submission
    EXPECT_THAT(check(x), StatusIs(absl::StatusCode::kInvalidArgument,
                                   HasSubstr("envelope.client_message_id: required")));
  }
}

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

// A patrol report with two of each timed element, so a bad time can be put in
// the second and the index checked.
v1::Envelope SamplePatrolReport() {
  v1::Envelope e = ::corridor::testing::SampleTipOff("p-1", "patrol.zs_north");
  e.set_kind(v1::MESSAGE_KIND_PATROL_REPORT);
  v1::PatrolReport* p = e.mutable_patrol_report();  // replaces the tip-off
  p->mutable_unit()->set_id("粤中山海警 31502");
  p->mutable_unit()->set_kind(v1::UNIT_KIND_BOAT);
  p->set_zone("zs-north");
  const google::protobuf::Timestamp now = google::protobuf::util::TimeUtil::GetCurrentTime();
  for (int i = 0; i < 2; ++i) {
    v1::TrackPoint* t = p->add_track();
    *t->mutable_time() = now;
    t->mutable_point()->set_lat(22.2 + i * 0.01);
    t->mutable_point()->set_lon(113.4);
    v1::VesselCheck* c = p->add_vessels_checked();
    c->mutable_vessel()->set_name("粤中山渔12345");
    *c->mutable_time() = now;
    c->set_outcome(v1::CHECK_OUTCOME_CLEARED);
    v1::Incident* n = p->add_incidents();
    *n->mutable_time() = now;
    n->set_description("无灯快艇逃逸");
  }
  return e;
}

// Each Timestamp field inside a payload: an envelope carrying it, and where.
struct PayloadTimestamp {
  std::string path;
  std::function<v1::Envelope()> sample;
  std::function<google::protobuf::Timestamp*(v1::Envelope&)> field;
};

std::vector<PayloadTimestamp> PayloadTimestamps() {
  return {
      {"envelope.tip_off.expected_time", [] { return SampleTipOff("t-1"); },
       [](v1::Envelope& e) { return e.mutable_tip_off()->mutable_expected_time(); }},
      {"envelope.patrol_report.track[1].time", SamplePatrolReport,
       [](v1::Envelope& e) { return e.mutable_patrol_report()->mutable_track(1)->mutable_time(); }},
      {"envelope.patrol_report.vessels_checked[1].time", SamplePatrolReport,
       [](v1::Envelope& e) {
         return e.mutable_patrol_report()->mutable_vessels_checked(1)->mutable_time();
       }},
      {"envelope.patrol_report.incidents[1].time", SamplePatrolReport,
       [](v1::Envelope& e) {
         return e.mutable_patrol_report()->mutable_incidents(1)->mutable_time();
       }},
  };
}

TEST_F(ValidationTest, SamplePatrolReportIsValid) {
  EXPECT_THAT(Check(SamplePatrolReport()), IsOk());
}

// A Timestamp protobuf's JSON printer refuses (nanos outside [0, 999999999],
// seconds outside 0001-01-01 … 9999-12-31) would be stored and delivered to a
// recipient that cannot print it: refused wherever it is, named by path.
TEST_F(ValidationTest, PayloadTimestampsAreRangeChecked) {
  const int64_t now = absl::ToUnixSeconds(absl::Now());
  struct Value {
    int64_t seconds;
    int32_t nanos;
  };
  // ValidateTimestamp's lower bound is 1970-01-01 (seconds >= 0), stricter than
  // protobuf's 0001-01-01; the upper one is protobuf's, 9999-12-31T23:59:59Z.
  const std::vector<Value> bad = {
      {now, -1}, {now, 1000000000}, {-1, 0}, {-62135596801, 0}, {253402300800, 0}};
  const std::vector<Value> good = {{now, 0}, {now, 999999999}, {0, 0}, {253402300799, 999999999}};
  for (const PayloadTimestamp& f : PayloadTimestamps()) {
    for (const Value& v : bad) {
      v1::Envelope e = f.sample();
      f.field(e)->set_seconds(v.seconds);
      f.field(e)->set_nanos(v.nanos);
      EXPECT_THAT(Check(e),
                  StatusIs(absl::StatusCode::kInvalidArgument, f.path + ": not a valid timestamp"))
          << f.path << " seconds=" << v.seconds << " nanos=" << v.nanos;
    }
    for (const Value& v : good) {
      v1::Envelope e = f.sample();
      f.field(e)->set_seconds(v.seconds);
      f.field(e)->set_nanos(v.nanos);
      EXPECT_THAT(Check(e), IsOk()) << f.path << " seconds=" << v.seconds << " nanos=" << v.nanos;
    }
  }
}

void ListTimestampPaths(const google::protobuf::Descriptor* d, const std::string& path, int depth,
                        std::set<std::string>* out) {
  ASSERT_LT(depth, 16) << path << ": a recursive schema; list its Timestamps another way";
  for (int i = 0; i < d->field_count(); ++i) {
    const google::protobuf::FieldDescriptor* f = d->field(i);
    if (f->message_type() == nullptr) continue;
    const std::string name = path + "." + f->name() + (f->is_repeated() ? "[1]" : "");
    if (f->message_type() == google::protobuf::Timestamp::descriptor()) {
      out->insert(name);
    } else {
      ListTimestampPaths(f->message_type(), name, depth + 1, out);
    }
  }
}

// The validation walks the schema, so a Timestamp field added to it is checked
// without a change there; this makes the test above cover it too.
TEST(PayloadTimestampListTest, CoversEveryTimestampInTheSchema) {
  std::set<std::string> in_schema;
  ListTimestampPaths(v1::Envelope::descriptor(), "envelope", 0, &in_schema);
  std::set<std::string> tested = {
      "envelope.observed_time", "envelope.expires_at",  // own checks and tests
      "envelope.broker_time",                           // must be unset
      "envelope.origin.broker_time",                    // the origin must be unset
  };
  for (const PayloadTimestamp& f : PayloadTimestamps()) tested.insert(f.path);
  EXPECT_EQ(in_schema, tested) << "add the new Timestamp field to PayloadTimestamps()";
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
