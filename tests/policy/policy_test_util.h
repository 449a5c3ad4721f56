// Helpers for the policy tests: the demo registry, one-file bundles and a
// small Envelope builder.
#pragma once

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "corridor/v1/envelope.pb.h"
#include "gtest/gtest.h"
#include "policy/bundle.h"
#include "policy/registry.h"
#include "yaml-cpp/yaml.h"

namespace corridor::policy::testing {

inline std::filesystem::path SourceDir() { return CORRIDOR_SOURCE_DIR; }

// The registry of deploy/corridord.yaml (zs-police, zs-customs, zs-msa,
// zs-coastguard in zhongshan; zh-police in zhuhai; H0–H3).
inline std::shared_ptr<const Registry> DemoRegistry() {
  static const std::shared_ptr<const Registry> reg = [] {
    auto parsed = ParseRegistry(YAML::LoadFile((SourceDir() / "deploy/corridord.yaml").string()));
    EXPECT_TRUE(parsed.ok()) << parsed.status();
    return std::make_shared<const Registry>(*parsed);
  }();
  return reg;
}

inline const Agency& A(const std::string& id) {
  const Agency* a = DemoRegistry()->Find(id);
  EXPECT_NE(a, nullptr) << id;
  return *a;
}

inline absl::StatusOr<std::shared_ptr<const Bundle>> LoadText(const std::string& text) {
  return LoadBundleFromSources({{"test.policy", text}}, DemoRegistry());
}

// 2025-03-01T10:00:00+08:00.
inline absl::Time Now() { return absl::FromUnixSeconds(1740794400); }

inline google::protobuf::Timestamp Ts(absl::Time t) {
  google::protobuf::Timestamp ts;
  ts.set_seconds(absl::ToUnixSeconds(t));
  return ts;
}

// Envelope builder: Msg().TipOff().Topic("smuggling.x").Code("H1").Build().
class Msg {
 public:
  Msg() { e_.set_classification(corridor::v1::CLASSIFICATION_RESTRICTED); }
  Msg& TipOff() {
    e_.set_kind(corridor::v1::MESSAGE_KIND_TIP_OFF);
    e_.mutable_tip_off()->mutable_vessel()->set_name("粤中山渔12345");
    e_.mutable_tip_off()->mutable_informant()->set_name("张三");
    return *this;
  }
  Msg& CaseRecord() {
    e_.set_kind(corridor::v1::MESSAGE_KIND_CASE_RECORD);
    e_.mutable_case_record()->set_title("磨刀门冻品走私案");
    return *this;
  }
  Msg& Patrol() {
    e_.set_kind(corridor::v1::MESSAGE_KIND_PATROL_REPORT);
    e_.mutable_patrol_report()->set_zone("zs-north");
    return *this;
  }
  Msg& Topic(const std::string& t) {
    e_.set_topic(t);
    return *this;
  }
  Msg& Code(const std::string& c) {
    e_.set_handling_code(c);
    return *this;
  }
  Msg& Class(corridor::v1::Classification c) {
    e_.set_classification(c);
    return *this;
  }
  Msg& Zone(const std::string& z) {
    e_.set_defence_zone(z);
    return *this;
  }
  Msg& CaseRef(const std::string& r) {
    e_.set_case_ref(r);
    return *this;
  }
  Msg& Purpose(const std::string& p) {
    e_.set_purpose(p);
    return *this;
  }
  Msg& Observed(absl::Duration ago) {
    *e_.mutable_observed_time() = Ts(Now() - ago);
    return *this;
  }
  Msg& Grading(corridor::v1::SourceReliability r, uint32_t credibility) {
    e_.mutable_grading()->set_reliability(r);
    e_.mutable_grading()->set_credibility(credibility);
    return *this;
  }
  Msg& To(const std::string& addressee) {
    e_.add_addressees(addressee);
    return *this;
  }
  corridor::v1::Envelope Build() const { return e_; }
  operator corridor::v1::Envelope() const { return e_; }  // NOLINT

 private:
  corridor::v1::Envelope e_;
};

}  // namespace corridor::policy::testing
