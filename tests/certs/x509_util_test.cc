#include "certs/internal/x509_util.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace corridor::certs::internal {
namespace {

using ::corridor::testing::IsOk;
using ::corridor::testing::StatusIs;

TEST(SerialHexTest, NormalizesCaseSeparatorsPrefixAndLeadingZeros) {
  EXPECT_EQ(NormalizeSerialHex("00AB:cd:EF").value(), "abcdef");
  EXPECT_EQ(NormalizeSerialHex("0x0001f").value(), "1f");
  EXPECT_EQ(NormalizeSerialHex("0X1F").value(), "1f");
  EXPECT_EQ(NormalizeSerialHex("000").value(), "0");
}

TEST(SerialHexTest, RejectsNonHexAndOverlong) {
  EXPECT_THAT(NormalizeSerialHex(""), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(NormalizeSerialHex("0x"), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(NormalizeSerialHex("12g4"), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(NormalizeSerialHex("certs/a.crt"), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(NormalizeSerialHex(std::string(41, 'f')),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(NormalizeSerialHex(std::string(40, 'f')), IsOk());
}

TEST(SerialHexTest, LooksLikeSerialSeparatesSerialsFromPaths) {
  EXPECT_TRUE(LooksLikeSerial("deadbeef"));
  EXPECT_TRUE(LooksLikeSerial("0xDEAD:BEEF"));
  EXPECT_FALSE(LooksLikeSerial("zs-police.crt"));
  EXPECT_FALSE(LooksLikeSerial("./deadbeef"));
  EXPECT_FALSE(LooksLikeSerial(":"));
}

TEST(SerialHexTest, RoundTripsThroughAsn1Integer) {
  absl::StatusOr<Asn1IntegerPtr> serial = SerialFromHex("0ABCDEF0123456789");
  ASSERT_THAT(serial, IsOk());
  EXPECT_EQ(SerialHex(serial->get()), "abcdef0123456789");
}

TEST(RandomSerialTest, IsPositiveNonZeroAndDistinct) {
  absl::StatusOr<Asn1IntegerPtr> a = RandomSerial(128);
  absl::StatusOr<Asn1IntegerPtr> b = RandomSerial(128);
  ASSERT_THAT(a, IsOk());
  ASSERT_THAT(b, IsOk());
  const std::string ha = SerialHex(a->get());
  EXPECT_NE(ha, SerialHex(b->get()));
  EXPECT_NE(ha.front(), '-');
  EXPECT_LE(ha.size(), 32u);
  BignumPtr bn(ASN1_INTEGER_to_BN(a->get(), nullptr));
  EXPECT_FALSE(BN_is_negative(bn.get()));
  EXPECT_FALSE(BN_is_zero(bn.get()));
}

TEST(UtcTimeTest, FormatsAndParses) {
  EXPECT_EQ(FormatUtc(0), "1970-01-01T00:00:00Z");
  EXPECT_EQ(FormatUtc(1700000000), "2023-11-14T22:13:20Z");
  EXPECT_EQ(ParseUtc("2023-11-14T22:13:20Z").value(), 1700000000);
  EXPECT_THAT(ParseUtc("2023-11-14 22:13:20"), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ParseUtc("2023-13-14T22:13:20Z"), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ParseUtc("2023-11-14T22:13:20Zjunk"), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(UtcTimeTest, ReadsAsn1Time) {
  Asn1TimePtr t(ASN1_TIME_set(nullptr, 1700000000));
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(Asn1TimeToUnix(t.get()).value(), 1700000000);
  EXPECT_EQ(FormatAsn1Time(t.get()), "2023-11-14T22:13:20Z");
}

}  // namespace
}  // namespace corridor::certs::internal
