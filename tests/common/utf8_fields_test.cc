// Naming the string field that is not UTF-8 in bytes a strict parse refused,
// and the helpers that quote untrusted text in messages.
#include "common/utf8_fields.h"

#include "common/utf8.h"
#include "corridor/v1/audit.pb.h"
#include "corridor/v1/exchange.pb.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace corridor {
namespace {

const char kGbk[] = "\xD6\xD0\xC9\xBD";  // "中山" in GBK

TEST(Utf8FieldsTest, NamesTheFirstInvalidStringByPathWithRepeatedIndices) {
  v1::SubmitRequest r;
  r.mutable_envelope()->set_client_message_id("m-1");
  r.mutable_envelope()->mutable_tip_off()->mutable_vessel()->set_name("粤中山渔运12345");
  r.add_more()->set_client_message_id("m-2");
  r.add_more()->mutable_tip_off()->mutable_vessel()->set_flag(kGbk);  // proto3 still serializes it
  const std::string bytes = r.SerializeAsString();
  v1::SubmitRequest strict;
  ASSERT_FALSE(strict.ParseFromString(bytes));
  EXPECT_EQ(FindInvalidUtf8Field(*v1::SubmitRequest::descriptor(), bytes),
            "more[1].tip_off.vessel.flag");
  EXPECT_EQ(FindInvalidUtf8Field(*v1::SubmitRequest::descriptor(), bytes, "request"),
            "request.more[1].tip_off.vessel.flag");

  v1::AuditEntry e;
  e.add_reasons("fine");
  e.add_reasons(kGbk);
  EXPECT_EQ(FindInvalidUtf8Field(*v1::AuditEntry::descriptor(), e.SerializeAsString()),
            "reasons[1]");
}

TEST(Utf8FieldsTest, NothingToNameForValidTextOrBytesThatAreNotAMessage) {
  v1::SubmitRequest r;
  r.mutable_envelope()->mutable_tip_off()->set_narrative("磨刀门水道");
  EXPECT_EQ(FindInvalidUtf8Field(*v1::SubmitRequest::descriptor(), r.SerializeAsString()),
            std::nullopt);
  EXPECT_EQ(FindInvalidUtf8Field(*v1::SubmitRequest::descriptor(),
                                 std::string("\x0a\xff\xff\xff\xff\x0f not a message")),
            std::nullopt);
}

TEST(Utf8FieldsTest, ReadsTopLevelFieldsWithoutCheckingStrings) {
  v1::AuditEntry e;
  e.set_index(42);
  e.set_exchange_id("x-1");
  e.add_reasons(kGbk);
  const std::string bytes = e.SerializeAsString();
  EXPECT_EQ(ReadTopLevelVarint(bytes, v1::AuditEntry::kIndexFieldNumber), 42u);
  EXPECT_EQ(ReadTopLevelBytes(bytes, v1::AuditEntry::kExchangeIdFieldNumber), "x-1");
  EXPECT_EQ(ReadTopLevelVarint(bytes, v1::AuditEntry::kDeliverySeqFieldNumber), std::nullopt);
}

TEST(Utf8FieldsTest, ScrubsInvalidStringsOfAMessage) {
  v1::AuditEntry e;
  e.set_detail(std::string("a") + kGbk);
  e.add_reasons("ok");
  EXPECT_EQ(ScrubInvalidUtf8Strings(&e), 1);
  EXPECT_TRUE(IsValidUtf8(e.detail()));
  EXPECT_EQ(e.detail(), "a\xEF\xBF\xBD\xEF\xBF\xBD\xC9\xBD");  // C9 BD is U+027D
  EXPECT_EQ(e.reasons(0), "ok");
}

TEST(Utf8Test, TruncatesOnACharacterBoundary) {
  const std::string text = "中山海事局";  // 3 bytes each
  EXPECT_EQ(Utf8Prefix(text, 4), "中");
  EXPECT_EQ(Utf8Prefix(text, 6), "中山");
  EXPECT_EQ(Utf8Truncated(text, 8), "中\xE2\x80\xA6");
  EXPECT_EQ(Utf8Truncated(text, 100), text);
  EXPECT_EQ(FirstInvalidUtf8("ok " + std::string(kGbk)), 3u);
  EXPECT_EQ(FirstInvalidUtf8(text), std::nullopt);
}

}  // namespace
}  // namespace corridor
