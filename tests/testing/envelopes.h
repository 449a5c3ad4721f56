// Realistic envelopes for tests: a night-time frozen-goods sighting on the
// Pearl River, with Chinese names that must survive every hop.
#pragma once

#include <string>

#include "corridor/v1/envelope.pb.h"
#include "google/protobuf/util/time_util.h"

namespace corridor::testing {

// The payload of the sample: an unregistered speedboat with frozen goods on
// 磨刀门水道, and an informant (the part policy withholds). Shared with the load
// generator, so tests and benchmarks send the same realistic content.
inline void FillSampleTipOff(v1::TipOff* t) {
  t->mutable_vessel()->set_name("粤中山渔运12345");
  t->mutable_vessel()->set_mmsi("412345678");
  t->mutable_vessel()->set_type("speedboat");
  t->mutable_vessel()->set_unregistered(true);
  t->mutable_location()->mutable_point()->set_lat(22.205);
  t->mutable_location()->mutable_point()->set_lon(113.421);
  t->mutable_location()->set_waterway("磨刀门水道");
  t->set_suspected_offence(v1::OFFENCE_FROZEN_GOODS_SMUGGLING);
  t->set_cargo("冻品约20吨");
  t->set_narrative("02:10 见无名快艇无灯航行，向横门方向");
  t->mutable_informant()->set_name("线人甲");
  t->mutable_informant()->set_contact("138-0000-0000");
  t->mutable_informant()->set_reliability(v1::SOURCE_RELIABILITY_B);
}

inline v1::Envelope SampleTipOff(const std::string& client_message_id,
                                 const std::string& topic = "smuggling.frozen_goods") {
  v1::Envelope e;
  e.set_client_message_id(client_message_id);
  e.set_kind(v1::MESSAGE_KIND_TIP_OFF);
  e.set_topic(topic);
  e.set_handling_code("H1");
  e.set_classification(v1::CLASSIFICATION_RESTRICTED);
  e.set_purpose("interdiction");
  e.set_defence_zone("zs-north");
  e.mutable_grading()->set_reliability(v1::SOURCE_RELIABILITY_B);
  e.mutable_grading()->set_credibility(2);
  *e.mutable_observed_time() = google::protobuf::util::TimeUtil::GetCurrentTime();
  e.set_officer_id("police-0417");
  FillSampleTipOff(e.mutable_tip_off());
  return e;
}

}  // namespace corridor::testing
