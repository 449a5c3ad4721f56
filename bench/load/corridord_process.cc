#include "bench/load/corridord_process.h"

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "certs/pki.h"

namespace corridor::load {

absl::StatusOr<std::unique_ptr<CorridordProcess>> CorridordProcess::Start(
    const CorridordOptions& o) {
  std::unique_ptr<CorridordProcess> p(new CorridordProcess());
  p->keep_dir_ = o.keep_dir;
  if (o.dir.empty()) {
    std::string tmpl = (std::filesystem::temp_directory_path() / "corridor-load-XXXXXX").string();
    if (mkdtemp(tmpl.data()) == nullptr) return absl::InternalError("mkdtemp failed");
    p->dir_ = tmpl;
    p->own_dir_ = true;
  } else {
    p->dir_ = o.dir;
    std::filesystem::create_directories(p->dir_);
  }
  p->certs_dir_ = p->dir_ + "/certs";
  p->data_dir_ = p->dir_ + "/data";
  p->log_path_ = p->dir_ + "/corridord.log";
  if (absl::Status s = certs::MakeDevSet(p->certs_dir_); !s.ok()) return s;

  // The embedded default config, pointed at our certs and data, port 0.
  std::string cmd = absl::StrCat("'", o.binary, "' --print-default-config");
  FILE* f = popen(cmd.c_str(), "r");
  if (f == nullptr) return absl::FailedPreconditionError("cannot run " + o.binary);
  std::string yaml;
  char buf[4096];
  size_t got;
  while ((got = fread(buf, 1, sizeof(buf), f)) > 0) yaml.append(buf, got);
  if (pclose(f) != 0 || yaml.empty()) {
    return absl::FailedPreconditionError(absl::StrCat(o.binary, " --print-default-config failed"));
  }
  yaml = absl::StrReplaceAll(yaml, {{"listen: 127.0.0.1:7443", "listen: 127.0.0.1:0"},
                                    {"./corridor-data", p->data_dir_},
                                    {"./corridor-certs", p->certs_dir_}});
  if (!o.policy_dir.empty()) {
    yaml = absl::StrReplaceAll(yaml, {{"policy_dir: \"\"", "policy_dir: " + o.policy_dir}});
  }
  const std::string config = p->dir_ + "/corridord.yaml";
  std::ofstream(config) << yaml;
  const std::string port_file = p->dir_ + "/port";
  std::filesystem::remove(port_file);

  p->pid_ = fork();
  if (p->pid_ < 0) return absl::InternalError("fork failed");
  if (p->pid_ == 0) {
    int log = open(p->log_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (log >= 0) {
      dup2(log, 1);
      dup2(log, 2);
    }
    execl(o.binary.c_str(), "corridord", "--config", config.c_str(), "--port-file",
          port_file.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  for (int i = 0; i < 400 && !std::filesystem::exists(port_file); ++i) {
    int status;
    if (waitpid(p->pid_, &status, WNOHANG) == p->pid_) {
      p->pid_ = -1;
      std::ifstream log(p->log_path_);
      std::stringstream ss;
      ss << log.rdbuf();
      return absl::FailedPreconditionError(absl::StrCat("corridord exited: ", ss.str()));
    }
    usleep(50'000);
  }
  std::ifstream(port_file) >> p->port_;
  if (p->port_ <= 0) return absl::DeadlineExceededError("corridord wrote no port in 20 s");
  return p;
}

int CorridordProcess::Stop() {
  if (pid_ <= 0) return -1;
  kill(pid_, SIGTERM);
  int status = 0;
  for (int i = 0; i < 200; ++i) {
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      return status;
    }
    usleep(50'000);
  }
  kill(pid_, SIGKILL);
  waitpid(pid_, &status, 0);
  pid_ = -1;
  return status;
}

CorridordProcess::~CorridordProcess() {
  Stop();
  if (own_dir_ && !keep_dir_) {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
}

}  // namespace corridor::load
