// The free-space floor: the check itself, and DiskGuard on a real directory.
#include "broker/disk_guard.h"

#include <atomic>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/temp_dir.h"

namespace corridor::broker {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

TEST(CheckFreeSpaceFloorTest, AtOrAboveTheFloorIsOk) {
  EXPECT_TRUE(CheckFreeSpaceFloor(256 << 20, 256 << 20, "data").ok());
  EXPECT_TRUE(CheckFreeSpaceFloor(uint64_t{1} << 40, 256 << 20, "data").ok());
}

TEST(CheckFreeSpaceFloorTest, ZeroSwitchesTheCheckOff) {
  EXPECT_TRUE(CheckFreeSpaceFloor(0, 0, "data").ok());
}

TEST(CheckFreeSpaceFloorTest, BelowTheFloorNamesFreeBytesFloorAndDir) {
  const absl::Status s = CheckFreeSpaceFloor(3 << 20, 8 << 20, "corridor-data");
  EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted);
  const std::string m(s.message());
  EXPECT_THAT(m, HasSubstr("3145728 bytes free (3.0 MiB)"));
  EXPECT_THAT(m, HasSubstr("floor of 8388608 bytes (8.0 MiB"));
  EXPECT_THAT(m, HasSubstr("'corridor-data'"));
  EXPECT_THAT(m, HasSubstr("broker.storage.free_space_floor_mib"));
  EXPECT_THAT(m, Not(HasSubstr("/")));
}

TEST(HumanBytesTest, PicksTheLargestWholeUnit) {
  EXPECT_EQ(HumanBytes(512), "512 bytes");
  EXPECT_EQ(HumanBytes(1536), "1.5 KiB");
  EXPECT_EQ(HumanBytes(uint64_t{5} << 30), "5.0 GiB");
}

TEST(DiskGuardTest, AFloorAboveTheFreeSpaceRefusesAndCounts) {
  testing::TempDir dir;
  auto free_bytes = FreeBytes(dir.path());
  ASSERT_TRUE(free_bytes.ok()) << free_bytes.status();
  std::atomic<int> changes{0};
  DiskGuard guard(dir.path() / "", *free_bytes + (uint64_t{1} << 40));  // never that much free
  guard.SetChangeHook([&](bool, uint64_t, uint64_t) { ++changes; });
  const absl::Status s = guard.Admit();
  EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted) << s;
  EXPECT_THAT(std::string(s.message()), HasSubstr("'" + dir.path().filename().string() + "'"));
  const DiskGuard::State st = guard.state();
  EXPECT_TRUE(st.below_floor);
  EXPECT_EQ(st.refused, 1u);
  EXPECT_GT(st.free_bytes, 0u);
  EXPECT_EQ(changes.load(), 0);  // below from the first reading: no change yet
}

TEST(DiskGuardTest, AFloorBelowTheFreeSpaceAdmits) {
  testing::TempDir dir;
  DiskGuard guard(dir.path(), 1);
  EXPECT_TRUE(guard.Admit().ok());
  EXPECT_FALSE(guard.state().below_floor);
  DiskGuard off(dir.path(), 0);
  EXPECT_TRUE(off.Admit().ok());
}

TEST(DiskGuardTest, AMissingDirIsAnError) {
  EXPECT_EQ(FreeBytes("/nonexistent/corridor").status().code(), absl::StatusCode::kInternal);
}

}  // namespace
}  // namespace corridor::broker
