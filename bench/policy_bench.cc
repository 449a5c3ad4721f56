// Policy decision benchmark: a synthetic registry (24 agencies in 3 cities)
// and bundles of 10, 200 and 2,000 generated rules (80% permits, 20%
// forbids; scopes by kind/group/city/agency; conditions on topic, handling
// code, classification, zone, age, grading, groups, city; some redactions),
// decided against 512 pregenerated messages and agency pairs.
//
//   BM_Decide         throughput: decisions/s on one core (Decide, as the broker calls it)
//   BM_DecideInto     throughput reusing one Decision (no allocation when warmed)
//   BM_DecideLatency  per-decision latency, each decision timed on its own;
//                     counters p50_us, p99_us, p999_us, max_us
//
//   ./bin/corridor_policy_bench --benchmark_counters_tabular=true
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "benchmark/benchmark.h"
#include "corridor/v1/envelope.pb.h"
#include "policy/bundle.h"
#include "policy/registry.h"

namespace corridor::policy {
namespace {

const char* const kKinds[] = {"police", "customs", "maritime", "coast_guard", "fisheries"};
const char* const kCities[] = {"zhongshan", "zhuhai", "jiangmen"};
const char* const kGroups[] = {"anti-smuggling", "law-enforcement", "maritime-safety",
                               "fisheries-enforcement", "border"};
const char* const kCategories[] = {"smuggling", "patrol", "fisheries", "migration", "drugs",
                                   "fuel",      "vessel", "pollution", "search",    "port"};
constexpr int kTopicsPerCategory = 5;

std::shared_ptr<const Registry> MakeRegistry() {
  auto reg = std::make_shared<Registry>();
  reg->trust_domain = "bench.corridor";
  for (int i = 0; i < 4; ++i) reg->handling_codes.push_back({absl::StrCat("H", i), ""});
  std::mt19937 rng(1);
  for (int i = 0; i < 24; ++i) {
    Agency a;
    a.id = absl::StrCat("agency-", i);
    a.kind = kKinds[i % 5];
    a.city = kCities[i % 3];
    a.zones = {absl::StrCat(a.city, "-z", rng() % 4), absl::StrCat(a.city, "-z", rng() % 4)};
    a.groups = {kGroups[rng() % 5], kGroups[rng() % 5]};
    a.clearance = i % 4 == 0 ? "confidential" : "secret";
    reg->agencies.push_back(std::move(a));
  }
  reg->Reindex();
  return reg;
}

std::string Topic(std::mt19937& rng) {
  return absl::StrCat(kCategories[rng() % 10], ".t", rng() % kTopicsPerCategory);
}

std::string Selector(std::mt19937& rng) {
  switch (rng() % 5) {
    case 0:
      return absl::StrCat("kind:", kKinds[rng() % 5]);
    case 1:
      return absl::StrCat("group:", kGroups[rng() % 5]);
    case 2:
      return absl::StrCat("city:", kCities[rng() % 3]);
    case 3:
      return absl::StrCat("agency:agency-", rng() % 24);
    default:
      return absl::StrCat("[kind:", kKinds[rng() % 5], ", group:", kGroups[rng() % 5], "]");
  }
}

std::string Condition(std::mt19937& rng) {
  switch (rng() % 8) {
    case 0:
      return absl::StrCat("message.handling_code in [H0, H", 1 + rng() % 2, "]");
    case 1:
      return "message.classification <= recipient.clearance";
    case 2:
      return "recipient.zones contains message.defence_zone";
    case 3:
      return absl::StrCat("message.age < ", 1 + rng() % 72, "h");
    case 4:
      return "message.grading.reliability <= C";
    case 5:
      return absl::StrCat("recipient.groups contains \"", kGroups[rng() % 5], "\"");
    case 6:
      return "sender.city == recipient.city";
    default:
      return "!(message.addressees contains recipient.id)";
  }
}

std::string GenerateRules(int n) {
  std::mt19937 rng(42 + n);
  std::string text;
  for (int i = 0; i < n; ++i) {
    const bool forbid = rng() % 5 == 0;
    std::vector<std::string> scope;
    if (rng() % 2) scope.push_back(rng() % 2 ? "on tip_off" : "on [case_record, patrol_report]");
    if (rng() % 2) scope.push_back("from " + Selector(rng));
    if (rng() % 3) scope.push_back("to " + Selector(rng));
    std::vector<std::string> conds;
    switch (rng() % 5) {
      case 0:
      case 1:
        conds.push_back(absl::StrCat("message.topic == \"", Topic(rng), "\""));
        break;
      case 2:
        conds.push_back(absl::StrCat("message.topic like \"", kCategories[rng() % 10], ".*\""));
        break;
      case 3:
        conds.push_back(
            absl::StrCat("message.topic in [\"", Topic(rng), "\", \"", Topic(rng), "\"]"));
        break;
      default:
        break;  // no topic constraint
    }
    const int extra = 1 + rng() % 3;
    for (int k = 0; k < extra; ++k) conds.push_back(Condition(rng));
    std::string rule = absl::StrCat(forbid ? "forbid" : "permit", " r", i);
    if (!scope.empty()) {
      rule += " (";
      for (size_t k = 0; k < scope.size(); ++k) rule += (k ? ", " : "") + scope[k];
      rule += ")";
    }
    rule += " when { ";
    for (size_t k = 0; k < conds.size(); ++k) rule += (k ? " && " : "") + conds[k];
    rule += " }";
    if (rng() % 4 == 0) rule += " unless { message.handling_code == H3 }";
    if (!forbid && rng() % 3 == 0) {
      // A redact path must belong to a kind the rule is on.
      const bool tips = !scope.empty() && scope[0] == "on tip_off";
      const bool cases = !scope.empty() && scope[0].rfind("on [case_record", 0) == 0;
      rule += tips || (!cases && rng() % 2) ? " redact [tip_off.informant, tip_off.narrative]"
                                            : " redact [case_record.suspects.id_number]";
    }
    absl::StrAppend(&text, rule, " because \"generated rule ", i, "\";\n");
  }
  return text;
}

struct Workload {
  std::shared_ptr<const Registry> reg;
  std::shared_ptr<const Bundle> bundle;
  std::vector<corridor::v1::Envelope> msgs;
  std::vector<std::pair<const Agency*, const Agency*>> pairs;
  absl::Time now = absl::FromUnixSeconds(1740794400);
};

const Workload& GetWorkload(int rules) {
  static std::map<int, std::unique_ptr<Workload>> cache;
  auto& w = cache[rules];
  if (w) return *w;
  w = std::make_unique<Workload>();
  w->reg = MakeRegistry();
  auto b = LoadBundleFromSources({{"bench.policy", GenerateRules(rules)}}, w->reg);
  if (!b.ok()) {
    fprintf(stderr, "%s\n", std::string(b.status().message()).c_str());
    abort();
  }
  w->bundle = *b;
  std::mt19937 rng(7);
  for (int i = 0; i < 512; ++i) {
    corridor::v1::Envelope m;
    switch (rng() % 3) {
      case 0:
        m.set_kind(corridor::v1::MESSAGE_KIND_TIP_OFF);
        m.mutable_tip_off()->mutable_informant()->set_name("张三");
        m.mutable_tip_off()->set_narrative("线人称今晚有快艇在磨刀门卸货");
        break;
      case 1:
        m.set_kind(corridor::v1::MESSAGE_KIND_CASE_RECORD);
        m.mutable_case_record()->add_suspects()->set_id_number("440000199001011234");
        break;
      default:
        m.set_kind(corridor::v1::MESSAGE_KIND_PATROL_REPORT);
        break;
    }
    m.set_topic(Topic(rng));
    m.set_handling_code(absl::StrCat("H", rng() % 4));
    m.set_classification(static_cast<corridor::v1::Classification>(1 + rng() % 4));
    const Agency& zone_owner = w->reg->agencies[rng() % 24];
    m.set_defence_zone(zone_owner.zones[0]);
    m.mutable_grading()->set_reliability(
        static_cast<corridor::v1::SourceReliability>(1 + rng() % 6));
    m.mutable_grading()->set_credibility(1 + rng() % 6);
    m.mutable_observed_time()->set_seconds(absl::ToUnixSeconds(w->now) - rng() % (96 * 3600));
    if (rng() % 3 == 0) m.add_addressees(absl::StrCat("agency-", rng() % 24));
    w->msgs.push_back(std::move(m));
    w->pairs.emplace_back(&w->reg->agencies[rng() % 24], &w->reg->agencies[rng() % 24]);
  }
  return *w;
}

void SetCommon(benchmark::State& state, const Workload& w, int64_t permits) {
  state.SetItemsProcessed(state.iterations());
  state.counters["decisions_per_s"] =
      benchmark::Counter(static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
  state.counters["permit_share"] =
      static_cast<double>(permits) / static_cast<double>(std::max<int64_t>(1, state.iterations()));
  state.SetLabel(
      absl::StrCat(w.bundle->stats().permits, " permits, ", w.bundle->stats().forbids, " forbids"));
}

void BM_Decide(benchmark::State& state) {
  const Workload& w = GetWorkload(static_cast<int>(state.range(0)));
  size_t i = 0;
  int64_t permits = 0;
  for (auto _ : state) {
    const size_t k = i++ & 511;
    Decision d = w.bundle->Decide(w.msgs[k], *w.pairs[k].first, *w.pairs[k].second, w.now);
    permits += d.permit;
    benchmark::DoNotOptimize(d);
  }
  SetCommon(state, w, permits);
}

void BM_DecideInto(benchmark::State& state) {
  const Workload& w = GetWorkload(static_cast<int>(state.range(0)));
  size_t i = 0;
  int64_t permits = 0;
  Decision d;
  for (auto _ : state) {
    const size_t k = i++ & 511;
    w.bundle->DecideInto(w.msgs[k], *w.pairs[k].first, *w.pairs[k].second, w.now, &d);
    permits += d.permit;
    benchmark::DoNotOptimize(d);
  }
  SetCommon(state, w, permits);
}

void BM_DecideLatency(benchmark::State& state) {
  const Workload& w = GetWorkload(static_cast<int>(state.range(0)));
  std::vector<int64_t> samples;
  samples.reserve(1 << 20);
  size_t i = 0;
  int64_t permits = 0;
  for (auto _ : state) {
    const size_t k = i++ & 511;
    const auto t0 = std::chrono::steady_clock::now();
    Decision d = w.bundle->Decide(w.msgs[k], *w.pairs[k].first, *w.pairs[k].second, w.now);
    const auto t1 = std::chrono::steady_clock::now();
    benchmark::DoNotOptimize(d);
    permits += d.permit;
    if (samples.size() < samples.capacity()) {
      samples.push_back(std::chrono::duration_cast<std::chrono::nanoseconds>(t1 - t0).count());
    }
  }
  SetCommon(state, w, permits);
  if (samples.empty()) return;
  std::sort(samples.begin(), samples.end());
  auto pct = [&](double p) {
    const size_t idx = std::min(samples.size() - 1, static_cast<size_t>(p * samples.size()));
    return static_cast<double>(samples[idx]) / 1000.0;
  };
  state.counters["p50_us"] = pct(0.50);
  state.counters["p99_us"] = pct(0.99);
  state.counters["p999_us"] = pct(0.999);
  state.counters["max_us"] = static_cast<double>(samples.back()) / 1000.0;
}

BENCHMARK(BM_Decide)->Arg(10)->Arg(200)->Arg(2000);
BENCHMARK(BM_DecideInto)->Arg(10)->Arg(200)->Arg(2000);
BENCHMARK(BM_DecideLatency)->Arg(10)->Arg(200)->Arg(2000);

}  // namespace
}  // namespace corridor::policy

BENCHMARK_MAIN();
