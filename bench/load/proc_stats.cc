#include "bench/load/proc_stats.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <sstream>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

extern char** environ;

namespace corridor::load {

ProcSample SampleProcess(pid_t pid) {
  ProcSample s;
  std::ifstream stat(absl::StrCat("/proc/", pid, "/stat"));
  std::string line;
  if (!std::getline(stat, line)) return s;
  // The command name (field 2) may hold spaces: fields after ')' are fixed.
  size_t close = line.rfind(')');
  if (close == std::string::npos) return s;
  std::vector<std::string> f = absl::StrSplit(line.substr(close + 2), ' ');
  // After ')': field 3 (state) is f[0]; utime = field 14 -> f[11]; stime -> f[12].
  if (f.size() < 13) return s;
  uint64_t ut = 0, st = 0;
  if (!absl::SimpleAtoi(f[11], &ut) || !absl::SimpleAtoi(f[12], &st)) return s;
  const long hz = sysconf(_SC_CLK_TCK);
  s.cpu_us = (ut + st) * 1'000'000 / static_cast<uint64_t>(hz);
  std::ifstream status(absl::StrCat("/proc/", pid, "/status"));
  while (std::getline(status, line)) {
    auto value = [&](const char* key, uint64_t* out) {
      if (line.rfind(key, 0) != 0) return;
      std::string v = line.substr(strlen(key));
      std::vector<std::string> parts = absl::StrSplit(v, ' ', absl::SkipWhitespace());
      if (!parts.empty()) absl::SimpleAtoi(parts[0], out);
    };
    value("VmRSS:", &s.rss_kib);
    value("VmHWM:", &s.hwm_kib);
    value("Threads:", &s.threads);
  }
  s.ok = true;
  return s;
}

uint64_t SelfCpuUs() {
  rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  auto us = [](const timeval& t) {
    return static_cast<uint64_t>(t.tv_sec) * 1'000'000 + static_cast<uint64_t>(t.tv_usec);
  };
  return us(ru.ru_utime) + us(ru.ru_stime);
}

std::string LoadAverage() {
  std::ifstream f("/proc/loadavg");
  std::string a, b, c;
  f >> a >> b >> c;
  return absl::StrCat(a, " ", b, " ", c);
}

SyncCounter::~SyncCounter() {
  if (perf_pid_ > 0) Stop();
}

bool SyncCounter::Start(pid_t pid) {
  char tmpl[] = "/tmp/corridor-load-perf-XXXXXX";
  int fd = mkstemp(tmpl);
  if (fd < 0) {
    why_ = "mkstemp failed";
    return false;
  }
  close(fd);
  out_path_ = tmpl;
  std::string pid_s = std::to_string(pid);
  std::vector<std::string> args = {
      "perf", "stat",    "-x", ",",
      "-o",   out_path_, "-e", "syscalls:sys_enter_fsync,syscalls:sys_enter_fdatasync",
      "-p",   pid_s};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
  int rc = posix_spawnp(&perf_pid_, "perf", &fa, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) {
    perf_pid_ = -1;
    why_ = "perf not found (apt-get install linux-perf)";
    return false;
  }
  usleep(300'000);  // perf opens one event per thread of the target
  int status = 0;
  if (waitpid(perf_pid_, &status, WNOHANG) == perf_pid_) {
    perf_pid_ = -1;
    why_ = "perf exited at once (tracepoints not permitted? see perf_event_paranoid)";
    return false;
  }
  return true;
}

int64_t SyncCounter::Stop() {
  if (perf_pid_ <= 0) return -1;
  kill(perf_pid_, SIGINT);
  int status = 0;
  waitpid(perf_pid_, &status, 0);
  perf_pid_ = -1;
  std::ifstream f(out_path_);
  std::string line;
  int64_t total = 0;
  int found = 0;
  while (std::getline(f, line)) {
    if (line.empty() || line[0] == '#') continue;
    std::vector<std::string> cols = absl::StrSplit(line, ',');
    if (cols.size() < 3 || cols[2].find("syscalls:sys_enter_") == std::string::npos) continue;
    int64_t v = 0;
    if (!absl::SimpleAtoi(cols[0], &v)) {
      why_ = absl::StrCat("perf could not count: ", line);
      unlink(out_path_.c_str());
      return -1;
    }
    total += v;
    ++found;
  }
  unlink(out_path_.c_str());
  if (found != 2) {
    why_ = "perf wrote no counts";
    return -1;
  }
  return total;
}

}  // namespace corridor::load
