// What the load generator reads about a process from /proc (the broker's, or its
// own), and the fsync counter: perf counting the fsync/fdatasync syscall
// tracepoints of the broker process (counted in the kernel, no per-call cost to
// the broker beyond the tracepoint).
//
// Threading: free functions are thread-safe; SyncCounter is used by one thread.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>

namespace corridor::load {

struct ProcSample {
  bool ok = false;
  uint64_t cpu_us = 0;   // utime + stime of every thread
  uint64_t rss_kib = 0;  // VmRSS
  uint64_t hwm_kib = 0;  // VmHWM (peak RSS since the process started)
  uint64_t threads = 0;
};

ProcSample SampleProcess(pid_t pid);
uint64_t SelfCpuUs();       // this process, user + system
std::string LoadAverage();  // the first three fields of /proc/loadavg

// Counts the fsync and fdatasync calls a process makes between Start and Stop.
class SyncCounter {
 public:
  ~SyncCounter();
  // False (with why()) when perf is missing or may not trace the process.
  bool Start(pid_t pid);
  // Returns the count, or -1 when counting failed (see why()).
  int64_t Stop();
  const std::string& why() const { return why_; }

 private:
  pid_t perf_pid_ = -1;
  std::string out_path_;
  std::string why_;
};

}  // namespace corridor::load
