// DiskGuard: the free-space floor of the data dir. A full disk is a pause, not
// a crash: below the floor new submissions are refused with RESOURCE_EXHAUSTED
// (free bytes, the floor and the data dir's name), while acks, deliveries,
// audit queries and status go on writing into the space the floor keeps.
//
//   DiskGuard guard("/var/lib/corridor", 256 << 20);
//   if (absl::Status s = guard.Admit(); !s.ok()) return s;  // RESOURCE_EXHAUSTED below the floor
//
// The free space is read with statvfs (what an unprivileged writer may use,
// f_bavail) at most every `refresh` interval: Admit is an atomic load between
// reads. The change hook runs when the guard goes below the floor or back
// above it, on the thread whose call made the reading.
//
// Lifetime: owned by ExchangeCore, outlives every caller. Thread-safe.
#pragma once

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <string_view>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace corridor::broker {

// The free bytes of the file system holding `dir` that the broker may use
// (statvfs f_bavail * f_frsize). INTERNAL naming the dir when statvfs fails.
absl::StatusOr<uint64_t> FreeBytes(const std::filesystem::path& dir);

// "3.2 MiB" style: bytes in the largest binary unit that keeps a whole part.
std::string HumanBytes(uint64_t bytes);

// The floor check itself: OK at or above the floor (or when floor_bytes is 0,
// the check switched off), else RESOURCE_EXHAUSTED naming the free bytes, the
// floor and `dir_name` (the data dir's last path component, never a file in it).
absl::Status CheckFreeSpaceFloor(uint64_t free_bytes, uint64_t floor_bytes,
                                 std::string_view dir_name);

class DiskGuard {
 public:
  // Called with (below_floor, free_bytes, floor_bytes) on each change of side.
  using ChangeHook = std::function<void(bool, uint64_t, uint64_t)>;

  struct State {
    bool below_floor = false;
    uint64_t free_bytes = 0;
    uint64_t floor_bytes = 0;
    absl::Time since = absl::InfinitePast();  // when below_floor last changed (or start)
    uint64_t refused = 0;                     // submissions refused below the floor, all time
  };

  // Reads the free space once now. `floor_bytes` 0 switches the check off
  // (the free space is still read and reported).
  DiskGuard(std::filesystem::path dir, uint64_t floor_bytes,
            absl::Duration refresh = absl::Milliseconds(200));

  // Set once, before any other thread calls Admit or Refresh.
  void SetChangeHook(ChangeHook hook) { hook_ = std::move(hook); }

  // OK when the last reading (at most `refresh` old; read again if older) is at
  // or above the floor; else RESOURCE_EXHAUSTED (see CheckFreeSpaceFloor) and
  // the refusal is counted. Thread-safe; never blocks on anything but statvfs.
  absl::Status Admit();

  // Reads the free space now (a statvfs failure keeps the last reading).
  void Refresh();

  State state() const;
  uint64_t floor_bytes() const { return floor_bytes_; }
  const std::filesystem::path& dir() const { return dir_; }

 private:
  void MaybeRefresh();

  const std::filesystem::path dir_;
  const std::string dir_name_;
  const uint64_t floor_bytes_;
  const absl::Duration refresh_;
  ChangeHook hook_;
  std::atomic<int64_t> next_read_ns_{0};  // steady clock: when the reading goes stale
  std::atomic<uint64_t> free_bytes_{0};
  std::atomic<bool> below_{false};
  std::atomic<uint64_t> refused_{0};
  mutable absl::Mutex mu_;  // serializes readings and side changes
  absl::Time since_ ABSL_GUARDED_BY(mu_) = absl::Now();
};

}  // namespace corridor::broker
