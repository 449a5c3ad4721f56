// CorridordProcess: a corridord of the load generator's own — dev certificates
// from certs::MakeDevSet, a temp data dir, the embedded default config with
// port 0 — so /proc/<pid> is the broker's alone.
//
//   auto broker = CorridordProcess::Start({.binary = "/work/build-bench/bin/corridord"});
//   broker->target();   // "localhost:<port>"
//   broker->pid();
//
// Lifetime: the process is stopped (SIGTERM, then SIGKILL after 10 s) and its
// directory removed (unless keep_dir) when the object dies. Not thread-safe.
#pragma once

#include <sys/types.h>

#include <memory>
#include <string>

#include "absl/status/statusor.h"

namespace corridor::load {

struct CorridordOptions {
  std::string binary;      // corridord
  std::string dir;         // working dir (certs/, data/, log); empty: a new one under TMPDIR
  std::string policy_dir;  // broker.policy_dir; empty: the embedded default (permit-all)
  bool keep_dir = false;
};

class CorridordProcess {
 public:
  static absl::StatusOr<std::unique_ptr<CorridordProcess>> Start(const CorridordOptions& o);
  ~CorridordProcess();

  pid_t pid() const { return pid_; }
  std::string target() const { return "localhost:" + std::to_string(port_); }
  const std::string& certs_dir() const { return certs_dir_; }
  const std::string& data_dir() const { return data_dir_; }
  const std::string& log_path() const { return log_path_; }
  // SIGTERM and wait; the exit status (or -1).
  int Stop();

 private:
  CorridordProcess() = default;
  pid_t pid_ = -1;
  int port_ = 0;
  bool keep_dir_ = false;
  bool own_dir_ = false;
  std::string dir_, certs_dir_, data_dir_, log_path_;
};

}  // namespace corridor::load
