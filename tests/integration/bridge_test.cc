// corridor-bridge, the real binary, against the in-process broker: JSON lines
// in (answers in input order, bad lines answered in place), deliveries out as
// files written before the ack.
#include <sys/wait.h>

#include <fstream>
#include <sstream>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/integration/broker_fixture.h"

namespace corridor::testing {
namespace {

using ::testing::HasSubstr;

int RunCommand(const std::string& cmd, std::string* output) {
  FILE* p = popen((cmd + " 2>&1").c_str(), "r");
  char buf[4096];
  output->clear();
  while (size_t n = fread(buf, 1, sizeof(buf), p)) output->append(buf, n);
  int status = pclose(p);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string l; std::getline(in, l);) {
    if (!l.empty() && l[0] == '{') out.push_back(l);
  }
  return out;
}

class BridgeTest : public BrokerFixture {
 protected:
  std::string Bridge(const std::string& as, const std::string& args) {
    return std::string(CORRIDOR_BRIDGE_PATH) + " --broker " + Target() + " --certs-dir " +
           certs_dir_.string() + " --as " + as + " " + args;
  }
};

TEST_F(BridgeTest, SubmitsJsonLinesAndWritesDeliveriesAsFiles) {
  const auto in = dir_.path() / "in.jsonl";
  {
    std::ofstream f(in);
    f << R"({"client_message_id":"b-1","kind":"MESSAGE_KIND_TIP_OFF","topic":"smuggling.fuel",)"
         R"("handling_code":"H0","classification":"CLASSIFICATION_RESTRICTED",)"
         R"("addressees":["zs-customs"],"tip_off":{"vessel":{"name":"粤珠渔1号"},)"
         R"("location":{"waterway":"磨刀门水道"}}})"
      << "\n"
      << "this is not json\n"
      << R"({"client_message_id":"b-3","kind":"MESSAGE_KIND_TIP_OFF","topic":"BAD TOPIC",)"
         R"("handling_code":"H0","tip_off":{}})"
      << "\n";
  }
  std::string out;
  EXPECT_EQ(RunCommand(Bridge("zs-police", "submit --in " + in.string()), &out), 1) << out;
  auto lines = Lines(out);
  ASSERT_EQ(lines.size(), 3u) << out;
  EXPECT_THAT(lines[0], HasSubstr(R"("line":1)"));
  EXPECT_THAT(lines[0], HasSubstr(R"("exchange_id":"zs-broker-1")"));
  EXPECT_THAT(lines[1], HasSubstr(R"("line":2)"));
  EXPECT_THAT(lines[1], HasSubstr("INVALID_ARGUMENT"));
  EXPECT_THAT(lines[2], HasSubstr(R"("line":3)"));
  EXPECT_THAT(lines[2], HasSubstr("envelope.topic"));

  const auto spool = dir_.path() / "spool";
  ASSERT_EQ(RunCommand(Bridge("zs-customs",
                              "receive --subscription ops --count 1 --out-dir " + spool.string()),
                       &out),
            0)
      << out;
  std::ifstream delivered(spool / "1.json");
  ASSERT_TRUE(delivered.good()) << "no spool/1.json";
  std::stringstream ss;
  ss << delivered.rdbuf();
  EXPECT_THAT(ss.str(), HasSubstr("磨刀门水道"));  // UTF-8 kept
  EXPECT_THAT(ss.str(), HasSubstr(R"("client_message_id": "b-1")"));
}

}  // namespace
}  // namespace corridor::testing
