// corridor-load in the default suite: the latency histogram's error bound, and a
// few seconds of real load (1 sender, 2 subscribing agencies, open loop at a
// modest rate) through a real corridord over mTLS, asserting that every
// acknowledged message reached each subscriber and that the summary parses.
#include <stdio.h>
#include <sys/wait.h>

#include <fstream>
#include <random>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "bench/load/histogram.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"
#include "tests/testing/temp_dir.h"

namespace corridor::load {
namespace {

TEST(HistogramTest, PercentilesStayWithinTheRelativeErrorBound) {
  Histogram h;
  std::mt19937_64 rng(7);
  std::vector<uint64_t> values;
  for (int i = 0; i < 100000; ++i) {
    // Log-uniform from 1 ns to ~10 s.
    uint64_t v = static_cast<uint64_t>(std::exp(std::uniform_real_distribution<>(0, 23)(rng)));
    values.push_back(v);
    h.Record(v);
  }
  std::sort(values.begin(), values.end());
  for (double p : {50.0, 90.0, 99.0, 99.9, 100.0}) {
    size_t rank = static_cast<size_t>(std::ceil(p / 100 * values.size()));
    uint64_t exact = values[rank - 1];
    uint64_t got = h.Percentile(p);
    EXPECT_GE(got, exact) << p;
    EXPECT_LE(static_cast<double>(got), exact * (1 + 1.0 / 256) + 1) << p;
  }
  EXPECT_EQ(h.count(), values.size());
  EXPECT_EQ(h.max(), values.back());
}

TEST(HistogramTest, BucketsAreContiguousAndBounded) {
  for (size_t i = 1; i < Histogram::kBuckets - 1; ++i) {
    ASSERT_EQ(Histogram::LowerBound(i), Histogram::UpperBound(i - 1) + 1) << i;
    ASSERT_EQ(Histogram::IndexOf(Histogram::LowerBound(i)), i);
    ASSERT_EQ(Histogram::IndexOf(Histogram::UpperBound(i)), i);
    // The largest error: reporting the upper bound for a value at the lower bound.
    const double error = Histogram::UpperBound(i) - Histogram::LowerBound(i);
    ASSERT_LE(error / Histogram::LowerBound(i), 1.0 / 256) << i;
  }
  EXPECT_EQ(Histogram::IndexOf(UINT64_MAX), Histogram::kBuckets - 1);
}

double Number(const google::protobuf::Struct& s, const std::string& path) {
  const google::protobuf::Struct* at = &s;
  std::stringstream ss(path);
  std::string part;
  std::vector<std::string> parts;
  while (std::getline(ss, part, '.')) parts.push_back(part);
  for (size_t i = 0; i + 1 < parts.size(); ++i) {
    auto it = at->fields().find(parts[i]);
    if (it == at->fields().end()) ADD_FAILURE() << "no " << path;
    if (it == at->fields().end()) return -1;
    at = &it->second.struct_value();
  }
  auto it = at->fields().find(parts.back());
  if (it == at->fields().end()) {
    ADD_FAILURE() << "no " << path;
    return -1;
  }
  if (it->second.has_bool_value()) return it->second.bool_value() ? 1 : 0;
  return it->second.number_value();
}

TEST(LoadSmokeTest, EveryAckedMessageIsDeliveredToEachSubscriberOnce) {
  testing::TempDir dir;
  const std::string json = (dir.path() / "summary.json").string();
  const std::string log = (dir.path() / "load.log").string();
  const std::string cmd =
      absl::StrCat(CORRIDOR_LOAD_PATH, " --corridord ", CORRIDORD_PATH, " --corridord-dir ",
                   (dir.path() / "broker").string(),
                   " --senders 1 --subscribers 2 --rate 300 --window 64 --duration 3 --warmup 0.5"
                   " --progress 1 --settle 20 --json ",
                   json, " > ", log, " 2>&1");
  const int rc = std::system(cmd.c_str());
  std::stringstream out;
  out << std::ifstream(log).rdbuf();
  ASSERT_TRUE(WIFEXITED(rc)) << out.str();
  EXPECT_EQ(WEXITSTATUS(rc), 0) << out.str();

  std::stringstream text;
  text << std::ifstream(json).rdbuf();
  google::protobuf::Struct summary;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(text.str(), &summary).ok()) << text.str();
  EXPECT_EQ(summary.fields().at("system").string_value(), "corridor");
  // ~3.5 s at 300/s: the load really ran, in the open loop asked for.
  EXPECT_GT(Number(summary, "delivery_check.acked"), 600);
  EXPECT_EQ(Number(summary, "delivery_check.failed"), 0);
  EXPECT_EQ(Number(summary, "delivery_check.unanswered"), 0);
  // Two subscribing agencies, each must receive every acknowledged message.
  EXPECT_EQ(Number(summary, "delivery_check.expected"),
            2 * Number(summary, "delivery_check.acked"));
  EXPECT_EQ(Number(summary, "delivery_check.missing"), 0);
  EXPECT_EQ(Number(summary, "delivery_check.delivered"),
            Number(summary, "delivery_check.expected"));
  EXPECT_EQ(Number(summary, "delivery_check.unexpected"), 0);
  EXPECT_GT(Number(summary, "throughput.exchanges_per_s"), 200);
  EXPECT_GT(Number(summary, "submit_to_ack.count"), 500);
  EXPECT_GT(Number(summary, "submit_to_ack.p99_us"), 0);
  EXPECT_GE(Number(summary, "submit_to_delivery.p50_us"),
            Number(summary, "submit_to_ack.p50_us") * 0);
  EXPECT_GT(Number(summary, "server.cpu_us_per_exchange"), 0);
  EXPECT_GT(Number(summary, "server.peak_rss_kib"), 1000);
  // The progress line was printed while it ran.
  EXPECT_NE(out.str().find("measure"), std::string::npos) << out.str();
}

}  // namespace
}  // namespace corridor::load
