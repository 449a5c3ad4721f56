// Small POSIX file helpers for certs/: whole-file reads, atomic writes with an
// exact mode, and errno -> absl::Status. Private to certs/.
//
// Thread-compatible: concurrent writes to the same path race (last rename wins).
#pragma once

#include <sys/types.h>

#include <filesystem>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace corridor::certs::internal {

// An absl::Status for errno `error_number` with the code absl maps it to
// (ENOENT -> NOT_FOUND, EACCES -> PERMISSION_DENIED, ...), saying
// "<what> <path>: <strerror>".
absl::Status ErrnoStatus(int error_number, std::string_view what,
                         const std::filesystem::path& path);

// The whole content of `path`. NOT_FOUND if it is missing, etc.
absl::StatusOr<std::string> ReadFile(const std::filesystem::path& path);

// Writes `content` to `path` atomically: creates a temp file next to it with
// open(O_CREAT|O_EXCL|O_WRONLY, mode), sets exactly `mode` (fchmod, so the
// umask cannot widen or narrow it), writes, fsyncs, renames over `path` and
// fsyncs the directory. The temp file is removed on failure. The file is never
// more permissive than `mode` at any moment.
absl::Status WriteFileAtomic(const std::filesystem::path& path, std::string_view content,
                             mode_t mode);

// Creates `dir` (and its parents) if missing and sets its mode to exactly `mode`
// if `enforce_mode`, or creates it with `mode` (subject to the umask) otherwise.
// FAILED_PRECONDITION if it exists and is not a directory.
absl::Status MakeDir(const std::filesystem::path& dir, mode_t mode, bool enforce_mode);

// True if `path` exists (any type). Errors other than ENOENT count as existing.
bool PathExists(const std::filesystem::path& path);

}  // namespace corridor::certs::internal
