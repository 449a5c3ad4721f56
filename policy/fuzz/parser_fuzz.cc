// libFuzzer target for the policy loader: lexer, parser, type checker,
// compiler and `assert never` enumeration, then a few decisions and an
// explanation when the input loads. Build and run (policy/README.md):
//
//   cmake --preset fuzz && ninja -C build-fuzz policy_parser_fuzz
//   build-fuzz/bin/policy_parser_fuzz -dict=policy/fuzz/policy.dict \
//       -max_len=4096 -max_total_time=60 /tmp/policy-corpus policy/fuzz/corpus
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/time/time.h"
#include "corridor/v1/envelope.pb.h"
#include "policy/bundle.h"
#include "policy/registry.h"

namespace {

std::shared_ptr<const corridor::policy::Registry> FuzzRegistry() {
  using corridor::policy::Agency;
  auto reg = std::make_shared<corridor::policy::Registry>();
  reg->trust_domain = "fuzz.corridor";
  reg->handling_codes = {{"H0", ""}, {"H1", ""}, {"H2", ""}, {"H3", "originator only"}};
  auto add = [&](const char* id, const char* kind, const char* city, std::vector<std::string> zones,
                 std::vector<std::string> groups, const char* clearance) {
    Agency a;
    a.id = id;
    a.kind = kind;
    a.city = city;
    a.zones = std::move(zones);
    a.groups = std::move(groups);
    a.clearance = clearance;
    reg->agencies.push_back(std::move(a));
  };
  add("zs-police", "police", "zhongshan", {"zs-north", "zs-south"},
      {"anti-smuggling", "law-enforcement"}, "secret");
  add("zs-customs", "customs", "zhongshan", {"zs-north"}, {"anti-smuggling", "law-enforcement"},
      "secret");
  add("zs-msa", "maritime", "zhongshan", {"zs-south"}, {"maritime-safety"}, "confidential");
  add("zs-coastguard", "coast_guard", "zhongshan", {"zs-north", "zs-south", "pearl-estuary"},
      {"anti-smuggling", "law-enforcement"}, "secret");
  add("zh-police", "police", "zhuhai", {"zh-west"}, {"anti-smuggling", "law-enforcement"},
      "secret");
  reg->Reindex();
  return reg;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const auto* const reg =
      new std::shared_ptr<const corridor::policy::Registry>(FuzzRegistry());
  const std::string text(reinterpret_cast<const char*>(data), size);
  auto bundle = corridor::policy::LoadBundleFromSources({{"fuzz.policy", text}}, *reg);
  if (!bundle.ok()) return 0;
  corridor::v1::Envelope m;
  m.set_kind(corridor::v1::MESSAGE_KIND_TIP_OFF);
  m.set_topic("smuggling.frozen_goods");
  m.set_handling_code(size % 2 ? "H1" : "H3");
  m.set_classification(corridor::v1::CLASSIFICATION_RESTRICTED);
  m.set_defence_zone("zs-north");
  m.add_addressees("zs-customs");
  m.mutable_tip_off()->mutable_informant()->set_name("张三");
  const absl::Time now = absl::FromUnixSeconds(1740794400);
  for (const auto& s : (*reg)->agencies) {
    for (const auto& r : (*reg)->agencies) {
      corridor::policy::Decision d = (*bundle)->Decide(m, s, r, now);
      if (d.permit && d.policy_version.empty()) __builtin_trap();
    }
  }
  const auto e = (*bundle)->Explain(m, (*reg)->agencies[0], (*reg)->agencies[2], now);
  (void)e.Text();
  (void)e.Json();
  return 0;
}
