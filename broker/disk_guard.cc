#include "broker/disk_guard.h"

#include <sys/statvfs.h>

#include <cerrno>
#include <chrono>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"

namespace corridor::broker {
namespace {

int64_t SteadyNanos() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

std::string DirName(const std::filesystem::path& dir) {
  std::filesystem::path p = dir.lexically_normal();
  if (!p.has_filename()) p = p.parent_path();  // "data/" -> "data"
  std::string name = p.filename().string();
  return name.empty() ? dir.string() : name;
}

}  // namespace

absl::StatusOr<uint64_t> FreeBytes(const std::filesystem::path& dir) {
  struct statvfs st {};
  if (statvfs(dir.c_str(), &st) != 0) {
    const int err = errno;
    return absl::InternalError(
        absl::StrCat("data_dir ", dir.string(), ": statvfs: ", std::strerror(err)));
  }
  return static_cast<uint64_t>(st.f_bavail) * static_cast<uint64_t>(st.f_frsize);
}

std::string HumanBytes(uint64_t bytes) {
  static constexpr const char* kUnits[] = {"bytes", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(bytes);
  int unit = 0;
  while (v >= 1024 && unit < 4) {
    v /= 1024;
    ++unit;
  }
  if (unit == 0) return absl::StrCat(bytes, " bytes");
  return absl::StrFormat("%.1f %s", v, kUnits[unit]);
}

absl::Status CheckFreeSpaceFloor(uint64_t free_bytes, uint64_t floor_bytes,
                                 std::string_view dir_name) {
  if (floor_bytes == 0 || free_bytes >= floor_bytes) return absl::OkStatus();
  return absl::ResourceExhaustedError(absl::StrCat(
      "broker storage is paused: data dir '", absl::string_view(dir_name.data(), dir_name.size()),
      "' has ", free_bytes, " bytes free (", HumanBytes(free_bytes), "), below its floor of ",
      floor_bytes, " bytes (", HumanBytes(floor_bytes),
      ", broker.storage.free_space_floor_mib); new submissions are refused until space is "
      "freed; nothing was stored: retry later"));
}

DiskGuard::DiskGuard(std::filesystem::path dir, uint64_t floor_bytes, absl::Duration refresh)
    : dir_(std::move(dir)), dir_name_(DirName(dir_)), floor_bytes_(floor_bytes), refresh_(refresh) {
  Refresh();
}

absl::Status DiskGuard::Admit() {
  MaybeRefresh();
  if (!below_.load(std::memory_order_acquire)) return absl::OkStatus();
  const uint64_t free_bytes = free_bytes_.load(std::memory_order_relaxed);
  absl::Status s = CheckFreeSpaceFloor(free_bytes, floor_bytes_, dir_name_);
  if (!s.ok()) refused_.fetch_add(1, std::memory_order_relaxed);
  return s;
}

void DiskGuard::MaybeRefresh() {
  const int64_t now = SteadyNanos();
  int64_t next = next_read_ns_.load(std::memory_order_relaxed);
  if (now < next) return;
  // One caller reads; the others go on with the reading they have.
  if (!next_read_ns_.compare_exchange_strong(next, now + absl::ToInt64Nanoseconds(refresh_),
                                             std::memory_order_relaxed)) {
    return;
  }
  Refresh();
}

void DiskGuard::Refresh() {
  bool changed = false;
  bool below = false;
  uint64_t free_bytes = 0;
  {
    absl::MutexLock lock(&mu_);
    next_read_ns_.store(SteadyNanos() + absl::ToInt64Nanoseconds(refresh_),
                        std::memory_order_relaxed);
    absl::StatusOr<uint64_t> f = FreeBytes(dir_);
    if (!f.ok()) return;  // keep the last reading
    free_bytes = *f;
    below = floor_bytes_ != 0 && free_bytes < floor_bytes_;
    free_bytes_.store(free_bytes, std::memory_order_relaxed);
    if (below != below_.load(std::memory_order_relaxed)) {
      below_.store(below, std::memory_order_release);
      since_ = absl::Now();
      changed = true;
    }
  }
  if (changed && hook_) hook_(below, free_bytes, floor_bytes_);
}

DiskGuard::State DiskGuard::state() const {
  State s;
  s.below_floor = below_.load(std::memory_order_acquire);
  s.free_bytes = free_bytes_.load(std::memory_order_relaxed);
  s.floor_bytes = floor_bytes_;
  s.refused = refused_.load(std::memory_order_relaxed);
  absl::MutexLock lock(&mu_);
  s.since = since_;
  return s;
}

}  // namespace corridor::broker
