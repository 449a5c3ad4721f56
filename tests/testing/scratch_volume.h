// A small, real file system of its own for disk-full tests: tmpfs, or ext4 in
// a loop image, mounted on a fresh directory and unmounted (image removed)
// when the object dies. Mounting needs root (CAP_SYS_ADMIN) and, for ext4,
// mkfs.ext4 and a free loop device: Mount says why it could not, for
// GTEST_SKIP.
//
//   auto vol = ScratchVolume::Mount(ScratchVolume::kExt4, 48 << 20);
//   if (!vol.ok()) GTEST_SKIP() << vol.status().message();
//   (*vol)->FillLeaving(2 << 20);   // a filler file leaves 2 MiB free
//   (*vol)->RemoveFiller();
#pragma once

#include <fcntl.h>
#include <sys/mount.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "tests/testing/temp_dir.h"

namespace corridor::testing {

class ScratchVolume {
 public:
  enum Kind { kTmpfs, kExt4 };

  static const char* KindName(Kind kind) { return kind == kTmpfs ? "tmpfs" : "ext4"; }

  // Mounts a new, empty file system of about `bytes` (ext4: no blocks
  // reserved for root, so what statvfs calls free is what a root writer gets).
  // FAILED_PRECONDITION saying what was missing when it cannot.
  static absl::StatusOr<std::unique_ptr<ScratchVolume>> Mount(Kind kind, uint64_t bytes) {
    std::unique_ptr<ScratchVolume> v(new ScratchVolume());
    v->mount_point_ = v->dir_.path() / "mnt";
    std::filesystem::create_directories(v->mount_point_);
    std::string why;
    if (kind == kTmpfs) {
      const std::string opts = absl::StrCat("size=", bytes);
      if (::mount("tmpfs", v->mount_point_.c_str(), "tmpfs", 0, opts.c_str()) != 0) {
        why = absl::StrCat("mount -t tmpfs: ", std::strerror(errno));
      }
    } else {
      v->image_ = v->dir_.path() / "volume.img";
      const std::string mkfs = absl::StrCat(
          "truncate -s ", bytes, " '", v->image_.string(), "' && mkfs.ext4 -q -F -m 0 '",
          v->image_.string(), "' >/dev/null 2>&1 && mount -o loop '", v->image_.string(), "' '",
          v->mount_point_.string(), "' 2>/dev/null");
      if (std::system(mkfs.c_str()) != 0) {
        why = "mkfs.ext4 + mount -o loop failed (needs root, mkfs.ext4 and a loop device)";
      }
    }
    if (!why.empty()) {
      return absl::FailedPreconditionError(
          absl::StrCat("cannot mount a scratch ", KindName(kind), " volume: ", why));
    }
    v->mounted_ = true;
    return v;
  }

  ~ScratchVolume() {
    if (!mounted_) return;
    RemoveFiller();
    if (::umount(mount_point_.c_str()) != 0) ::umount2(mount_point_.c_str(), MNT_DETACH);
    // The loop device goes with the mount (mount -o loop sets autoclear).
  }
  ScratchVolume(const ScratchVolume&) = delete;
  ScratchVolume& operator=(const ScratchVolume&) = delete;

  const std::filesystem::path& path() const { return mount_point_; }

  uint64_t FreeBytes() const {
    struct statvfs st {};
    if (statvfs(mount_point_.c_str(), &st) != 0) return 0;
    return static_cast<uint64_t>(st.f_bavail) * st.f_frsize;
  }

  // Grows (or shrinks) the filler file so that about `leave` bytes stay free.
  // The filler's blocks are allocated (fallocate), not a sparse hole.
  absl::Status FillLeaving(uint64_t leave) {
    const std::filesystem::path filler = mount_point_ / "filler";
    std::error_code ec;
    uint64_t have =
        std::filesystem::exists(filler, ec) ? std::filesystem::file_size(filler, ec) : 0;
    const uint64_t free_now = FreeBytes();
    uint64_t want = have + (free_now > leave ? free_now - leave : 0);
    if (free_now < leave) want = have > (leave - free_now) ? have - (leave - free_now) : 0;
    if (want < have) {
      std::filesystem::resize_file(filler, want, ec);
      if (ec) return absl::InternalError(absl::StrCat("shrink filler: ", ec.message()));
      return absl::OkStatus();
    }
    const int fd = ::open(filler.c_str(), O_WRONLY | O_CREAT, 0600);
    if (fd < 0) return absl::InternalError(absl::StrCat("open filler: ", std::strerror(errno)));
    int err = 0;
    if (want > have)
      err = ::posix_fallocate(fd, static_cast<off_t>(have), static_cast<off_t>(want - have));
    ::fsync(fd);
    ::close(fd);
    if (err != 0)
      return absl::InternalError(absl::StrCat("fallocate filler: ", std::strerror(err)));
    return absl::OkStatus();
  }

  void RemoveFiller() {
    std::error_code ec;
    std::filesystem::remove(mount_point_ / "filler", ec);
  }

 private:
  ScratchVolume() = default;
  TempDir dir_;  // holds the mount point and the image; removed after unmounting
  std::filesystem::path mount_point_;
  std::filesystem::path image_;
  bool mounted_ = false;
};

}  // namespace corridor::testing
