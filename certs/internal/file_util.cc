#include "certs/internal/file_util.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <random>
#include <string>
#include <system_error>

namespace corridor::certs::internal {
namespace {

std::string TempName(const std::filesystem::path& path) {
  static std::atomic<unsigned> counter{0};
  std::random_device rd;
  const unsigned long long r = (static_cast<unsigned long long>(rd()) << 32) ^ rd();
  return "." + path.filename().string() + ".tmp-" + std::to_string(getpid()) + "-" +
         std::to_string(counter.fetch_add(1)) + "-" + std::to_string(r % 1000000007ULL);
}

// Closes fd on scope exit unless released.
class FdCloser {
 public:
  explicit FdCloser(int fd) : fd_(fd) {}
  ~FdCloser() {
    if (fd_ >= 0) ::close(fd_);
  }
  FdCloser(const FdCloser&) = delete;
  FdCloser& operator=(const FdCloser&) = delete;
  // Closes now and reports close()'s errno (0 on success).
  int Close() {
    const int fd = fd_;
    fd_ = -1;
    return ::close(fd) == 0 ? 0 : errno;
  }

 private:
  int fd_;
};

absl::Status FsyncDir(const std::filesystem::path& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return ErrnoStatus(errno, "cannot open directory", dir);
  FdCloser closer(fd);
  if (::fsync(fd) != 0 && errno != EINVAL) return ErrnoStatus(errno, "cannot fsync", dir);
  return absl::OkStatus();
}

}  // namespace

absl::Status ErrnoStatus(int error_number, std::string_view what,
                         const std::filesystem::path& path) {
  return absl::Status(absl::ErrnoToStatusCode(error_number),
                      std::string(what) + " " + path.string() + ": " + std::strerror(error_number));
}

absl::StatusOr<std::string> ReadFile(const std::filesystem::path& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoStatus(errno, "cannot open", path);
  FdCloser closer(fd);
  struct stat st;
  if (::fstat(fd, &st) != 0) return ErrnoStatus(errno, "cannot stat", path);
  if (S_ISDIR(st.st_mode)) return ErrnoStatus(EISDIR, "cannot read", path);
  std::string out;
  char buf[8192];
  while (true) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus(errno, "cannot read", path);
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

absl::Status WriteFileAtomic(const std::filesystem::path& path, std::string_view content,
                             mode_t mode) {
  const std::filesystem::path dir =
      path.has_parent_path() ? path.parent_path() : std::filesystem::path(".");
  std::filesystem::path tmp;
  int fd = -1;
  for (int attempt = 0; attempt < 8 && fd < 0; ++attempt) {
    tmp = dir / TempName(path);
    fd = ::open(tmp.c_str(), O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC | O_NOFOLLOW, mode);
    if (fd < 0 && errno != EEXIST) return ErrnoStatus(errno, "cannot create", tmp);
  }
  if (fd < 0) return ErrnoStatus(EEXIST, "cannot create a temp file for", path);
  FdCloser closer(fd);
  auto fail = [&](int err, std::string_view what) {
    ::unlink(tmp.c_str());
    return ErrnoStatus(err, what, tmp);
  };
  if (::fchmod(fd, mode) != 0) return fail(errno, "cannot chmod");
  size_t done = 0;
  while (done < content.size()) {
    const ssize_t n = ::write(fd, content.data() + done, content.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return fail(errno, "cannot write");
    }
    done += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0) return fail(errno, "cannot fsync");
  if (const int err = closer.Close(); err != 0) return fail(err, "cannot close");
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    return ErrnoStatus(err, "cannot rename a temp file onto", path);
  }
  return FsyncDir(dir);
}

absl::Status MakeDir(const std::filesystem::path& dir_in, mode_t mode, bool enforce_mode) {
  if (dir_in.empty()) return absl::InvalidArgumentError("directory path is empty");
  std::filesystem::path dir = dir_in.lexically_normal();
  if (!dir.has_filename() && dir.has_parent_path()) dir = dir.parent_path();  // "a/b/" -> "a/b"
  if (dir.has_parent_path() && dir.parent_path() != dir) {
    std::error_code ec;
    std::filesystem::create_directories(dir.parent_path(), ec);
    if (ec) return ErrnoStatus(ec.value(), "cannot create directory", dir.parent_path());
  }
  if (::mkdir(dir.c_str(), mode) != 0 && errno != EEXIST) {
    return ErrnoStatus(errno, "cannot create directory", dir);
  }
  struct stat st;
  if (::stat(dir.c_str(), &st) != 0) return ErrnoStatus(errno, "cannot stat", dir);
  if (!S_ISDIR(st.st_mode)) {
    return absl::FailedPreconditionError(dir.string() + " exists and is not a directory");
  }
  if (enforce_mode && (st.st_mode & 07777) != mode && ::chmod(dir.c_str(), mode) != 0) {
    return ErrnoStatus(errno, "cannot chmod", dir);
  }
  return absl::OkStatus();
}

bool PathExists(const std::filesystem::path& path) {
  struct stat st;
  return ::lstat(path.c_str(), &st) == 0 || errno != ENOENT;
}

}  // namespace corridor::certs::internal
