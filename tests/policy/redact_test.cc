// Redaction by payload field path with protobuf reflection.
#include "policy/redact.h"

#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "gmock/gmock.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/message.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace corridor::policy {
namespace {

using ::corridor::testing::IsOk;
using ::corridor::testing::StatusIs;
using ::testing::HasSubstr;

corridor::v1::Envelope TipOff() {
  corridor::v1::Envelope m;
  m.set_kind(corridor::v1::MESSAGE_KIND_TIP_OFF);
  m.set_topic("smuggling.frozen_goods");
  m.set_case_ref("中公水缉〔2025〕17号");
  auto* t = m.mutable_tip_off();
  t->mutable_vessel()->set_name("粤中山渔12345");
  t->mutable_vessel()->set_mmsi("412345678");
  t->mutable_location()->set_waterway("磨刀门水道");
  t->set_cargo("冻品约20吨");
  t->set_narrative("线人称今晚有快艇在磨刀门卸货");
  t->mutable_informant()->set_name("张三");
  t->mutable_informant()->set_contact("13800000000");
  return m;
}

corridor::v1::Envelope CaseRecord() {
  corridor::v1::Envelope m;
  m.set_kind(corridor::v1::MESSAGE_KIND_CASE_RECORD);
  auto* c = m.mutable_case_record();
  c->set_title("磨刀门冻品走私案");
  for (const auto& [name, id] : {std::pair{"陈某", "440000199001011234"},
                                 std::pair{"林某", "440000198505051234"}, std::pair{"王某", ""}}) {
    auto* s = c->add_suspects();
    s->set_name(name);
    s->set_id_number(id);
  }
  c->add_vessels()->set_name("粤中山渔12345");
  return m;
}

TEST(PolicyRedactTest, ClearsANestedMessage) {
  auto m = TipOff();
  ASSERT_THAT(Redact(&m, {"tip_off.informant"}), IsOk());
  EXPECT_FALSE(m.tip_off().has_informant());
  EXPECT_EQ(m.tip_off().vessel().name(), "粤中山渔12345");
}

TEST(PolicyRedactTest, ClearsANestedScalar) {
  auto m = TipOff();
  ASSERT_THAT(Redact(&m, {"tip_off.informant.name", "tip_off.vessel.mmsi"}), IsOk());
  EXPECT_EQ(m.tip_off().informant().name(), "");
  EXPECT_EQ(m.tip_off().informant().contact(), "13800000000");
  EXPECT_EQ(m.tip_off().vessel().mmsi(), "");
  EXPECT_EQ(m.tip_off().vessel().name(), "粤中山渔12345");
}

TEST(PolicyRedactTest, APathThroughARepeatedFieldAppliesToEveryElement) {
  auto m = CaseRecord();
  ASSERT_THAT(Redact(&m, {"case_record.suspects.id_number"}), IsOk());
  ASSERT_EQ(m.case_record().suspects_size(), 3);
  for (const auto& s : m.case_record().suspects()) EXPECT_EQ(s.id_number(), "");
  EXPECT_EQ(m.case_record().suspects(0).name(), "陈某");
  EXPECT_EQ(m.case_record().suspects(1).name(), "林某");
  ASSERT_THAT(Redact(&m, {"case_record.suspects"}), IsOk());
  EXPECT_EQ(m.case_record().suspects_size(), 0);
  EXPECT_EQ(m.case_record().vessels(0).name(), "粤中山渔12345");
}

TEST(PolicyRedactTest, ChineseTextIsIntactAfterRedaction) {
  auto m = TipOff();
  const auto before = m;
  ASSERT_THAT(Redact(&m, {"tip_off.informant", "tip_off.vessel.mmsi"}), IsOk());
  EXPECT_EQ(m.case_ref(), "中公水缉〔2025〕17号");
  EXPECT_EQ(m.tip_off().location().waterway(), "磨刀门水道");
  EXPECT_EQ(m.tip_off().cargo(), "冻品约20吨");
  EXPECT_EQ(m.tip_off().narrative(), before.tip_off().narrative());
  // The redacted copy still serializes and parses to the same text.
  corridor::v1::Envelope round;
  ASSERT_TRUE(round.ParseFromString(m.SerializeAsString()));
  EXPECT_EQ(round.tip_off().narrative(), "线人称今晚有快艇在磨刀门卸货");
  EXPECT_EQ(round.tip_off().vessel().name(), "粤中山渔12345");
}

TEST(PolicyRedactTest, APayloadThatIsNotSetIsLeftAlone) {
  auto m = TipOff();
  const std::string before = m.SerializeAsString();
  ASSERT_THAT(Redact(&m, {"case_record.suspects.name", "patrol_report.track"}), IsOk());
  EXPECT_TRUE(m.has_tip_off());
  EXPECT_FALSE(m.has_case_record());
  EXPECT_EQ(m.SerializeAsString(), before);
  // An absent intermediate message is not created either.
  m.mutable_tip_off()->clear_informant();
  ASSERT_THAT(Redact(&m, {"tip_off.informant.name"}), IsOk());
  EXPECT_FALSE(m.tip_off().has_informant());
}

TEST(PolicyRedactTest, TheWholePayloadCanBeWithheld) {
  auto m = TipOff();
  ASSERT_THAT(Redact(&m, {"tip_off"}), IsOk());
  EXPECT_EQ(m.payload_case(), corridor::v1::Envelope::PAYLOAD_NOT_SET);
  EXPECT_EQ(m.topic(), "smuggling.frozen_goods");
}

TEST(PolicyRedactTest, AnUnknownPathIsInvalidAndChangesNothing) {
  auto m = TipOff();
  const std::string before = m.SerializeAsString();
  EXPECT_THAT(Redact(&m, {"tip_off.informant", "tip_off.informer"}),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("unknown payload field path 'tip_off.informer'")));
  EXPECT_EQ(m.SerializeAsString(), before);
}

TEST(PolicyRedactTest, ValidatePayloadPath) {
  EXPECT_THAT(ValidatePayloadPath("tip_off.informant"), IsOk());
  EXPECT_THAT(ValidatePayloadPath("case_record.suspects.id_number"), IsOk());
  EXPECT_THAT(ValidatePayloadPath("patrol_report.track.point.lat"), IsOk());
  EXPECT_THAT(ValidatePayloadPath("tip_off.expected_time.seconds"), IsOk());
  EXPECT_THAT(ValidatePayloadPath(""), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ValidatePayloadPath("tip_off..name"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("empty segment")));
  EXPECT_THAT(ValidatePayloadPath("topic"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("is not a payload")));
  EXPECT_THAT(ValidatePayloadPath("sender.agency_id"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("is not a payload")));
  EXPECT_THAT(
      ValidatePayloadPath("case_record.offences.x"),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("'offences' is not a message")));
  EXPECT_THAT(ValidatePayloadPath("tip_off.vessel.imo"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("corridor.v1.Vessel has no field 'imo'")));
}

// Every field of `m` set (two elements of each repeated field), recursively:
// strings Chinese and ASCII, numbers non-zero, enums their last value.
void FillAll(google::protobuf::Message* m, int depth) {
  using google::protobuf::FieldDescriptor;
  const auto* r = m->GetReflection();
  const auto* d = m->GetDescriptor();
  for (int i = 0; i < d->field_count(); ++i) {
    const FieldDescriptor* f = d->field(i);
    if (f->containing_oneof() != nullptr && depth == 0) continue;  // the payload: chosen by caller
    const int n = f->is_repeated() ? 2 : 1;
    for (int j = 0; j < n; ++j) {
      const std::string text = absl::StrCat("值", f->name(), "-", j);
      switch (f->cpp_type()) {
        case FieldDescriptor::CPPTYPE_STRING:
          f->is_repeated() ? r->AddString(m, f, text) : r->SetString(m, f, text);
          break;
        case FieldDescriptor::CPPTYPE_INT32:
          f->is_repeated() ? r->AddInt32(m, f, -7 - j) : r->SetInt32(m, f, -7);
          break;
        case FieldDescriptor::CPPTYPE_INT64:
          f->is_repeated() ? r->AddInt64(m, f, 1700000000 + j) : r->SetInt64(m, f, 1700000000);
          break;
        case FieldDescriptor::CPPTYPE_UINT32:
          f->is_repeated() ? r->AddUInt32(m, f, 300 + j) : r->SetUInt32(m, f, 300);
          break;
        case FieldDescriptor::CPPTYPE_UINT64:
          f->is_repeated() ? r->AddUInt64(m, f, 70000 + j) : r->SetUInt64(m, f, 70000);
          break;
        case FieldDescriptor::CPPTYPE_DOUBLE:
          f->is_repeated() ? r->AddDouble(m, f, 22.1 + j) : r->SetDouble(m, f, 22.1);
          break;
        case FieldDescriptor::CPPTYPE_FLOAT:
          f->is_repeated() ? r->AddFloat(m, f, 1.5f + j) : r->SetFloat(m, f, 1.5f);
          break;
        case FieldDescriptor::CPPTYPE_BOOL:
          f->is_repeated() ? r->AddBool(m, f, true) : r->SetBool(m, f, true);
          break;
        case FieldDescriptor::CPPTYPE_ENUM: {
          const auto* e = f->enum_type()->value(f->enum_type()->value_count() - 1);
          f->is_repeated() ? r->AddEnum(m, f, e) : r->SetEnum(m, f, e);
          break;
        }
        case FieldDescriptor::CPPTYPE_MESSAGE:
          if (depth < 4) {
            FillAll(f->is_repeated() ? r->AddMessage(m, f) : r->MutableMessage(m, f), depth + 1);
          }
          break;
      }
    }
  }
}

// Every path Redact accepts, from the payload oneof down.
void AllPaths(const google::protobuf::Descriptor* d, const std::string& prefix, int depth,
              std::vector<std::string>* out) {
  for (int i = 0; i < d->field_count(); ++i) {
    const auto* f = d->field(i);
    if (depth == 0 &&
        (f->containing_oneof() == nullptr || f->containing_oneof()->name() != "payload")) {
      continue;
    }
    const std::string path = prefix.empty() ? f->name() : absl::StrCat(prefix, ".", f->name());
    out->push_back(path);
    if (f->message_type() != nullptr && depth < 4)
      AllPaths(f->message_type(), path, depth + 1, out);
  }
}

// The wire-level redaction equals serializing the reflection-redacted message,
// for every path alone and for every pair, on each kind of payload.
TEST(PolicyRedactTest, RedactSerializedEqualsRedactForEveryPath) {
  std::vector<std::string> paths;
  AllPaths(corridor::v1::Envelope::descriptor(), "", 0, &paths);
  ASSERT_GT(paths.size(), 30u);
  size_t compared = 0;
  for (const char* payload : {"tip_off", "case_record", "patrol_report"}) {
    corridor::v1::Envelope e;
    FillAll(&e, 0);
    const auto* f = corridor::v1::Envelope::descriptor()->FindFieldByName(payload);
    FillAll(e.GetReflection()->MutableMessage(&e, f), 1);
    const std::string bytes = e.SerializeAsString();
    auto check = [&](const std::vector<std::string>& redact) {
      corridor::v1::Envelope want = e;
      ASSERT_THAT(Redact(&want, redact), IsOk());
      auto got = RedactSerialized(bytes, redact);
      ASSERT_TRUE(got.ok()) << got.status();
      EXPECT_EQ(*got, want.SerializeAsString()) << payload << ": " << absl::StrJoin(redact, ",");
      ++compared;
    };
    for (size_t i = 0; i < paths.size(); ++i) {
      check({paths[i]});
      for (size_t j = i + 1; j < paths.size(); ++j) check({paths[i], paths[j]});
    }
    check({});
    check(paths);
  }
  EXPECT_GT(compared, 1000u);
}

// Each thread resolves paths into a cache of its own; the first call on a
// fresh thread resolves several at once while that cache grows (a pointer into
// it once outlived the growth: the informant leaked, or the broker crashed).
TEST(PolicyRedactTest, RedactSerializedOnFreshThreadsWithSeveralNewPaths) {
  const std::vector<std::string> paths = {"tip_off.informant", "tip_off.vessel.name",
                                          "tip_off.cargo", "tip_off.location.waterway",
                                          "tip_off.narrative"};
  for (int t = 0; t < 8; ++t) {
    std::thread([&, t] {
      for (int len = 1; len < 40; ++len) {
        corridor::v1::Envelope e = TipOff();
        e.set_topic(std::string(static_cast<size_t>(len + t), 'a'));
        corridor::v1::Envelope want = e;
        ASSERT_THAT(Redact(&want, paths), IsOk());
        auto got = RedactSerialized(e.SerializeAsString(), paths);
        ASSERT_TRUE(got.ok()) << got.status();
        EXPECT_EQ(*got, want.SerializeAsString()) << "thread " << t << ", topic length " << len;
        EXPECT_EQ(got->find("张三"), std::string::npos) << "the informant leaked";
      }
    }).join();
  }
}

TEST(PolicyRedactTest, RedactSerializedRefusesWhatRedactRefuses) {
  const std::string bytes = TipOff().SerializeAsString();
  EXPECT_THAT(RedactSerialized(bytes, {"tip_off.informer"}).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("has no field 'informer'")));
  EXPECT_THAT(RedactSerialized(bytes.substr(0, bytes.size() - 3), {"tip_off.informant"}).status(),
              StatusIs(absl::StatusCode::kDataLoss));
}

}  // namespace
}  // namespace corridor::policy
