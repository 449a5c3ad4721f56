#include "bench/load/workload.h"

#include "google/protobuf/util/time_util.h"
#include "tests/testing/envelopes.h"

namespace corridor::load {
namespace {

using google::protobuf::util::TimeUtil;

// Phrases of the kind officers write; repeated to pad a message to size.
const char* const kNarrative[] = {
    "02:10 见无名快艇无灯航行，向横门方向高速驶去。",
    "船上约四人，甲板堆放泡沫箱，疑似冻品。",
    "03:05 该船在磨刀门水道与一艘渔船短暂靠帮。",
    "渔船船名被遮挡，船尾可见“粤中山渔”字样。",
    "建议海警在洪湾附近水域设伏，海关缉私同步布控码头。",
    "线人称货主为珠海斗门人员，常在凌晨交货。",
};

void Pad(std::string* field, size_t bytes) {
  size_t i = 0;
  while (bytes > 0) {
    const std::string phrase = kNarrative[i++ % (sizeof(kNarrative) / sizeof(kNarrative[0]))];
    if (phrase.size() <= bytes) {
      field->append(phrase);
      bytes -= phrase.size();
    } else {
      field->append(bytes, '.');
      bytes = 0;
    }
  }
}

void FillTipOff(v1::Envelope& e) {
  e.set_kind(v1::MESSAGE_KIND_TIP_OFF);
  corridor::testing::FillSampleTipOff(e.mutable_tip_off());
  e.mutable_tip_off()->mutable_location()->set_description("横门大桥以南约两海里");
}

void FillPatrol(v1::Envelope& e) {
  e.set_kind(v1::MESSAGE_KIND_PATROL_REPORT);
  v1::PatrolReport* p = e.mutable_patrol_report();
  p->mutable_unit()->set_id("粤中山海警 31502");
  p->mutable_unit()->set_kind(v1::UNIT_KIND_BOAT);
  p->set_zone("zs-north");
  const int64_t now = TimeUtil::TimestampToSeconds(TimeUtil::GetCurrentTime());
  for (int i = 0; i < 6; ++i) {
    v1::TrackPoint* tp = p->add_track();
    *tp->mutable_time() = TimeUtil::SecondsToTimestamp(now - 600 + i * 100);
    tp->mutable_point()->set_lat(22.40 + 0.01 * i);
    tp->mutable_point()->set_lon(113.52 - 0.005 * i);
  }
  v1::VesselCheck* vc = p->add_vessels_checked();
  vc->mutable_vessel()->set_name("粤中山渔 06318");
  vc->mutable_vessel()->set_mmsi("412440318");
  vc->mutable_vessel()->set_type("fishing vessel");
  *vc->mutable_time() = TimeUtil::SecondsToTimestamp(now - 300);
  vc->set_outcome(v1::CHECK_OUTCOME_CLEARED);
  vc->set_notes("证书齐全，船员三人，未见异常。");
  v1::Incident* in = p->add_incidents();
  *in->mutable_time() = TimeUtil::SecondsToTimestamp(now - 200);
  in->mutable_location()->set_waterway("横门水道");
  in->set_description("发现一艘无名快艇向东逃离");
}

std::string* PadField(v1::Envelope& e) {
  if (e.has_tip_off()) return e.mutable_tip_off()->mutable_narrative();
  return e.mutable_patrol_report()->mutable_incidents(0)->mutable_description();
}

}  // namespace

absl::StatusOr<MessageMix> ParseMix(const std::string& s) {
  if (s == "tipoff" || s == "tip_off") return MessageMix::kTipOff;
  if (s == "patrol" || s == "patrol_report") return MessageMix::kPatrol;
  if (s == "mixed") return MessageMix::kMixed;
  return absl::InvalidArgumentError("--kind: tipoff, patrol or mixed");
}

v1::Envelope MakeEnvelope(const WorkloadOptions& w, int variant) {
  v1::Envelope e;
  e.set_client_message_id(std::string(w.id_length, 'x'));
  e.set_topic(w.topic);
  for (const auto& a : w.addressees) e.add_addressees(a);
  e.set_handling_code(w.handling_code);
  e.set_classification(v1::CLASSIFICATION_RESTRICTED);
  e.set_purpose("interdiction");
  e.set_case_ref("ZS-2024-0815");
  e.set_defence_zone("zs-north");
  e.mutable_grading()->set_reliability(v1::SOURCE_RELIABILITY_B);
  e.mutable_grading()->set_credibility(2);
  *e.mutable_observed_time() = TimeUtil::GetCurrentTime();
  e.set_officer_id("police-0417");
  const bool patrol =
      w.kind == MessageMix::kPatrol || (w.kind == MessageMix::kMixed && variant % 2 == 1);
  if (patrol) {
    FillPatrol(e);
  } else {
    FillTipOff(e);
  }
  // Pad in two steps: the field's length prefix may grow by a byte or two.
  for (int round = 0; round < 3; ++round) {
    const size_t now = e.ByteSizeLong();
    if (now >= w.size_bytes) break;
    Pad(PadField(e), w.size_bytes - now);
  }
  e.clear_client_message_id();
  return e;
}

}  // namespace corridor::load
