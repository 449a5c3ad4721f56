#include "agency_adapters/bridge/bridge_input.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace corridor::bridge {
namespace {

using ::corridor::testing::StatusIs;
using ::testing::HasSubstr;
using ::testing::StartsWith;

TEST(ParseEnvelopeLineTest, BlankLinesAreSkipped) {
  for (const std::string line : {"", " ", "\t \r"}) {
    auto env = ParseEnvelopeLine(line);
    ASSERT_TRUE(env.ok()) << env.status();
    EXPECT_FALSE(env->has_value());
  }
}

TEST(ParseEnvelopeLineTest, ParsesAnEnvelope) {
  auto env = ParseEnvelopeLine(
      R"({"clientMessageId":"t-1","kind":"MESSAGE_KIND_TIP_OFF","topic":"smuggling.fuel",)"
      R"("tipOff":{"vessel":{"name":"无名快艇","unregistered":true}}})");
  ASSERT_TRUE(env.ok()) << env.status();
  ASSERT_TRUE(env->has_value());
  EXPECT_EQ((*env)->client_message_id(), "t-1");
  EXPECT_EQ((*env)->tip_off().vessel().name(), "无名快艇");
}

TEST(ParseEnvelopeLineTest, RefusesWhatIsNotAnEnvelope) {
  EXPECT_THAT(ParseEnvelopeLine("not json"),
              StatusIs(absl::StatusCode::kInvalidArgument, StartsWith("JSON: ")));
  EXPECT_THAT(ParseEnvelopeLine(R"({"kind":"MESSAGE_KIND_TIP_OFF","nope":1})"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("nope")));
}

}  // namespace
}  // namespace corridor::bridge
