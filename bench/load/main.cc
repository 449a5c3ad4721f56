// corridor-load: drives a messaging system with N sending agencies and M
// subscribing agencies over real mTLS, and reports throughput, latency
// percentiles, server CPU per exchange, server memory, fsyncs against acks and
// whether every message reached every permitted recipient exactly once.
//
//   corridor-load --corridord build/bin/corridord --senders 1 --subscribers 1
//       --window 256 --duration 10 --warmup 2 --json out.json
//   corridor-load --system nats --broker localhost:4222 --certs-dir certs
//       --server-pid $(cat nats.pid) --window 256
// (each example is one command line)
//
// See bench/README.md for every flag and the JSON summary.
#include <signal.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <random>
#include <thread>

#include "CLI/CLI.hpp"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "bench/load/backend.h"
#include "bench/load/corridord_process.h"
#include "bench/load/json.h"
#include "bench/load/proc_stats.h"
#include "bench/load/tracker.h"
#include "bench/load/workload.h"
#include "common/long_running.h"

namespace corridor::load {
namespace {

struct Flags {
  std::string system = "corridor";
  std::string broker;
  std::string certs_dir;
  std::string corridord;
  std::string corridord_dir;
  std::string policy_dir;
  int server_pid = 0;
  int senders = 1;
  int subscribers = 1;
  int fanout = -1;
  std::string sender_agency = "zs-police";
  std::string subscriber_agencies = "zs-customs,zs-coastguard,zs-msa,zh-police";
  std::string mode = "stream";
  uint64_t window = 256;
  double rate = 0;
  size_t size = 1024;
  std::string kind = "tipoff";
  double duration = 10;
  double warmup = 2;
  uint64_t backlog = 0;
  uint32_t sub_window = 1024;
  std::string json_path;
  double progress = 1;
  std::string label;
  double settle = 60;
  std::string count_syncs = "auto";
  bool keep = false;
};

std::string FindCorridord(const char* argv0) {
  std::filesystem::path self = std::filesystem::canonical("/proc/self/exe");
  for (auto p :
       {self.parent_path() / "corridord", self.parent_path().parent_path() / "bin" / "corridord",
        self.parent_path().parent_path().parent_path() / "bin" / "corridord"}) {
    if (std::filesystem::exists(p)) return p.string();
  }
  return "corridord";
}

Json LatencyJson(const Histogram& h) {
  Json j;
  j.Set("count", h.count());
  auto us = [](uint64_t ns) { return static_cast<double>(ns) / 1000.0; };
  j.Set("p50_us", us(h.Percentile(50)))
      .Set("p90_us", us(h.Percentile(90)))
      .Set("p99_us", us(h.Percentile(99)))
      .Set("p999_us", us(h.Percentile(99.9)))
      .Set("max_us", us(h.max()))
      .Set("mean_us", h.mean() / 1000.0);
  return j;
}

std::string Fmt(double us) {
  if (us >= 1000) return absl::StrFormat("%.2fms", us / 1000);
  return absl::StrFormat("%.0fus", us);
}

// Max RSS seen by the sampler (the peak while the run lasted, not since start).
struct RssSampler {
  pid_t pid = 0;
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> max_kib{0};
  std::mutex mu;
  std::vector<std::pair<double, uint64_t>> series;  // (seconds since t0, kib), 4 per second
  std::thread th;
  void Start(int64_t t0) {
    if (pid <= 0) return;
    th = std::thread([this, t0] {
      int i = 0;
      while (!stop.load()) {
        ProcSample s = SampleProcess(pid);
        if (s.ok) {
          uint64_t m = max_kib.load();
          while (s.rss_kib > m && !max_kib.compare_exchange_weak(m, s.rss_kib)) {
          }
          if (i++ % 5 == 0) {
            std::lock_guard<std::mutex> lock(mu);
            series.emplace_back((NowNs() - t0) / 1e9, s.rss_kib);
          }
        }
        usleep(50'000);
      }
    });
  }
  void Stop() {
    stop.store(true);
    if (th.joinable()) th.join();
  }
};

int Run(const Flags& f) {
  const bool corridor = f.system == "corridor";
  if (!corridor && f.system != "nats" && f.system != "rabbitmq") {
    std::cerr << "--system: corridor, nats or rabbitmq\n";
    return 2;
  }
  auto mix = ParseMix(f.kind);
  if (!mix.ok()) {
    std::cerr << mix.status().message() << "\n";
    return 2;
  }
  std::vector<std::string> sub_pool = absl::StrSplit(f.subscriber_agencies, ',');
  if (f.subscribers < 0 || f.subscribers > std::min<int>(kMaxSubscribers, sub_pool.size())) {
    std::cerr << "--subscribers: 0.." << std::min<int>(kMaxSubscribers, sub_pool.size()) << "\n";
    return 2;
  }
  const int fanout = f.fanout < 0 ? f.subscribers : f.fanout;
  if (fanout > f.subscribers) {
    std::cerr << "--fanout: at most --subscribers\n";
    return 2;
  }
  if (f.senders < 1 || f.window < 1) {
    std::cerr << "--senders and --window: at least 1\n";
    return 2;
  }

  // The broker: ours, or one that is already running.
  std::unique_ptr<CorridordProcess> own;
  BackendOptions bo;
  pid_t server_pid = f.server_pid;
  if (corridor && f.broker.empty()) {
    CorridordOptions co;
    co.binary = f.corridord.empty() ? FindCorridord(nullptr) : f.corridord;
    co.dir = f.corridord_dir;
    co.policy_dir = f.policy_dir;
    co.keep_dir = f.keep;
    auto p = CorridordProcess::Start(co);
    if (!p.ok()) {
      std::cerr << "cannot start corridord: " << p.status().message() << "\n";
      return 1;
    }
    own = *std::move(p);
    bo.target = own->target();
    bo.certs_dir = own->certs_dir();
    server_pid = own->pid();
  } else {
    if (f.broker.empty() || f.certs_dir.empty()) {
      std::cerr << "--broker and --certs-dir are needed for " << f.system << "\n";
      return 2;
    }
    bo.target = f.broker;
    bo.certs_dir = f.certs_dir;
  }

  std::mt19937_64 rng(std::random_device{}());
  const std::string run_tag = absl::StrFormat("l%08x", static_cast<uint32_t>(rng()));
  for (int i = 0; i < f.senders; ++i) bo.sender_names.push_back(f.sender_agency);
  for (int i = 0; i < f.subscribers; ++i) bo.subscriber_names.push_back(sub_pool[i]);
  bo.fanout = fanout;
  bo.run_tag = run_tag;
  bo.unary = f.mode == "unary";
  bo.sub_window = f.sub_window;

  WorkloadOptions wo;
  wo.kind = *mix;
  wo.size_bytes = f.size;
  wo.id_length = run_tag.size() + 8;
  for (int i = 0; i < fanout; ++i) wo.addressees.push_back(bo.subscriber_names[i]);
  v1::Envelope envelope = MakeEnvelope(wo, 0);
  bo.payload = envelope.SerializeAsString();
  const size_t message_bytes = bo.payload.size() + wo.id_length + 2;

  Tracker tracker(f.senders, f.subscribers, run_tag);
  std::unique_ptr<Backend> backend;
  if (corridor) backend = MakeCorridorBackend(bo, &tracker);
  if (f.system == "nats") backend = MakeNatsBackend(bo, &tracker);
  if (f.system == "rabbitmq") backend = MakeRabbitBackend(bo, &tracker);
  if (backend == nullptr) {
    std::cerr << "this corridor-load was built without the " << f.system << " client library\n";
    return 2;
  }
  if (absl::Status s = backend->Prepare(); !s.ok()) {
    std::cerr << "prepare: " << s.message() << "\n";
    return 1;
  }

  const bool backlog = f.backlog > 0;
  std::vector<std::unique_ptr<SubscriberConn>> subs;
  auto start_subscribers = [&]() -> bool {
    for (int i = 0; i < f.subscribers; ++i) {
      auto s = backend->StartSubscriber(i);
      if (!s.ok()) {
        std::cerr << "subscriber " << bo.subscriber_names[i] << ": " << s.status().message()
                  << "\n";
        return false;
      }
      subs.push_back(*std::move(s));
    }
    return true;
  };
  if (!backlog && !start_subscribers()) return 1;

  std::vector<std::unique_ptr<SenderConn>> senders;
  for (int i = 0; i < f.senders; ++i) {
    auto c = backend->ConnectSender(i);
    if (!c.ok()) {
      std::cerr << "sender " << i << ": " << c.status().message() << "\n";
      return 1;
    }
    senders.push_back(*std::move(c));
  }

  const std::string load_before = LoadAverage();
  const int64_t t0 = NowNs();
  const int64_t warm_end = backlog ? t0 : t0 + static_cast<int64_t>(f.warmup * 1e9);
  const int64_t end = backlog ? INT64_MAX : warm_end + static_cast<int64_t>(f.duration * 1e9);
  tracker.SetWindow(warm_end, end);
  std::atomic<bool> stop{false};
  const bool open_loop = f.rate > 0 && !backlog;

  RssSampler rss;
  rss.pid = server_pid;
  rss.Start(t0);

  std::vector<std::thread> threads;
  for (int i = 0; i < f.senders; ++i) {
    threads.emplace_back([&, i] {
      SenderConn* c = senders[i].get();
      const int64_t interval = open_loop ? static_cast<int64_t>(1e9 * f.senders / f.rate) : 0;
      int64_t next = t0 + (open_loop ? interval * i / f.senders : 0);
      // Backlog: an even split of f.backlog; otherwise until the window ends.
      const uint64_t limit =
          backlog ? f.backlog / f.senders + (static_cast<uint64_t>(i) < f.backlog % f.senders)
                  : UINT64_MAX;
      for (uint64_t n = 0; n < limit; ++n) {
        if (open_loop) {
          if (next >= end) break;
          if (NowNs() < next) c->IdleUntil(next);
        }
        while (!stop.load(std::memory_order_relaxed) && tracker.in_flight(i) >= f.window) {
          c->Poll(0, f.window);
        }
        const int64_t now = NowNs();
        if (stop.load(std::memory_order_relaxed) || now >= end) break;
        tracker.MarkSent(i, n, open_loop ? next : now);
        c->Send(n);
        next += interval;
      }
      // Collect the answers still due (rabbitmq-c reads them only on this thread).
      const int64_t deadline = NowNs() + static_cast<int64_t>(f.settle * 1e9);
      while (tracker.in_flight(i) > 0 && NowNs() < deadline) c->Poll(deadline, 1);
    });
  }

  // Measurement window: snapshots at its start and end.
  ProcSample srv0, srv1;
  uint64_t cli0 = 0, cli1 = 0, acked0 = 0, acked1 = 0, deliv0 = 0, deliv1 = 0;
  int64_t w0 = 0, w1 = 0;
  SyncCounter syncs;
  bool syncs_on = false;
  std::string syncs_why;
  absl::StatusOr<Backend::Counters> counters0 = absl::UnknownError("not read"),
                                    counters1 = counters0;
  auto begin_window = [&] {
    counters0 = backend->BrokerCounters();
    if (server_pid > 0 && f.count_syncs != "off") {
      syncs_on = syncs.Start(server_pid);
      if (!syncs_on) syncs_why = syncs.why();
    } else {
      syncs_why = server_pid > 0 ? "--count-syncs off" : "no server pid";
    }
    w0 = NowNs();
    if (server_pid > 0) srv0 = SampleProcess(server_pid);
    cli0 = SelfCpuUs();
    acked0 = tracker.total_acked();
    deliv0 = tracker.total_deliveries();
  };
  auto end_window = [&] {
    w1 = NowNs();
    if (counters0.ok()) counters1 = backend->BrokerCounters();
    if (server_pid > 0) srv1 = SampleProcess(server_pid);
    cli1 = SelfCpuUs();
    acked1 = tracker.total_acked();
    deliv1 = tracker.total_deliveries();
  };

  auto progress = [&](const char* phase) {
    static uint64_t last_acked = 0, last_deliv = 0;
    static int64_t last_t = t0;
    const int64_t now = NowNs();
    const uint64_t a = tracker.total_acked(), d = tracker.total_deliveries();
    const double dt = std::max(1e-9, (now - last_t) / 1e9);
    ProcSample s = server_pid > 0 ? SampleProcess(server_pid) : ProcSample{};
    Histogram h = tracker.AckLatency();
    std::cerr << absl::StrFormat(
        "[%6.1fs %-7s] %s sent %llu acked %llu (%.0f/s) delivered %llu (%.0f/s) failed %llu "
        "ack p99 %s srv rss %.0f MiB\n",
        (now - t0) / 1e9, phase, f.system, tracker.total_sent(), a, (a - last_acked) / dt, d,
        (d - last_deliv) / dt, tracker.total_failed(), Fmt(h.Percentile(99) / 1000.0),
        s.rss_kib / 1024.0);
    last_acked = a;
    last_deliv = d;
    last_t = now;
  };

  Json backlog_json;
  int64_t next_progress = t0 + static_cast<int64_t>(f.progress * 1e9);
  auto tick = [&](const char* phase) {
    if (f.progress > 0 && NowNs() >= next_progress) {
      progress(phase);
      next_progress += static_cast<int64_t>(f.progress * 1e9);
    }
  };

  if (!backlog) {
    bool in_window = false;
    while (NowNs() < end) {
      if (!in_window && NowNs() >= warm_end) {
        begin_window();
        in_window = true;
      }
      tick(in_window ? "measure" : "warmup");
      usleep(20'000);
    }
    end_window();
    stop.store(true);
    for (auto& t : threads) t.join();
  } else {
    // Build: subscribers offline, f.backlog messages as fast as the window allows.
    begin_window();
    const uint64_t rss_before = srv0.rss_kib;
    const int64_t build_deadline = NowNs() + static_cast<int64_t>(f.settle * 1e9);
    for (;;) {
      bool all_answered = tracker.total_acked() + tracker.total_failed() >= f.backlog;
      if (all_answered || NowNs() >= build_deadline) break;
      tick("build");
      usleep(20'000);
    }
    for (auto& t : threads) t.join();
    end_window();
    const uint64_t rss_after_build = srv1.rss_kib;
    const uint64_t rss_max_build = rss.max_kib.load();
    // Drain: the agencies reconnect.
    const int64_t d0 = NowNs();
    const ProcSample drain_srv0 = server_pid > 0 ? SampleProcess(server_pid) : ProcSample{};
    rss.max_kib.store(0);
    if (!start_subscribers()) return 1;
    const int64_t drain_deadline = d0 + static_cast<int64_t>(f.settle * 1e9);
    uint64_t expected = 0;
    {
      DeliveryCheck c = tracker.Check();
      expected = c.expected;
    }
    while (NowNs() < drain_deadline) {
      if (tracker.total_deliveries() >= expected) break;
      tick("drain");
      usleep(5'000);
    }
    const int64_t d1 = NowNs();
    const ProcSample drain_srv1 = server_pid > 0 ? SampleProcess(server_pid) : ProcSample{};
    const uint64_t drained = tracker.total_deliveries();
    const double drain_s = (d1 - d0) / 1e9;
    backlog_json.Set("messages", f.backlog)
        .Set("build_s", (w1 - w0) / 1e9)
        .Set("build_rate_per_s", (acked1 - acked0) / ((w1 - w0) / 1e9))
        .Set("drain_deliveries", drained)
        .Set("drain_s", drain_s)
        .Set("drain_rate_per_s", drained / drain_s)
        .Set("rss_before_kib", rss_before)
        .Set("rss_after_build_kib", rss_after_build)
        .Set("rss_max_build_kib", rss_max_build)
        .Set("rss_max_drain_kib", rss.max_kib.load())
        .Set("rss_after_drain_kib", drain_srv1.rss_kib);
    if (drain_srv0.ok && drain_srv1.ok && drained > 0) {
      backlog_json.Set("server_cpu_us_per_delivery",
                       static_cast<double>(drain_srv1.cpu_us - drain_srv0.cpu_us) / drained);
    }
  }
  const int64_t syncs_count = syncs_on ? syncs.Stop() : -1;
  if (syncs_on && syncs_count < 0) syncs_why = syncs.why();

  // Settle: every answer, every expected delivery (bounded).
  const int64_t settle_deadline = NowNs() + static_cast<int64_t>(f.settle * 1e9);
  for (auto& s : senders) s->Close(settle_deadline);
  const bool settled = tracker.WaitSettled(settle_deadline);
  // A little longer, so late duplicates (redeliveries) are counted too.
  usleep(200'000);
  rss.Stop();
  for (auto& s : subs) s->Stop();
  DeliveryCheck check = tracker.Check();
  const ProcSample srv_end = server_pid > 0 ? SampleProcess(server_pid) : ProcSample{};
  const std::string load_after = LoadAverage();

  // The summary.
  const double window_s = (w1 - w0) / 1e9;
  const uint64_t exchanges = acked1 - acked0;
  Json config;
  config.Set("senders", f.senders)
      .Set("subscribers", f.subscribers)
      .Set("fanout", fanout)
      .Set("mode", f.mode)
      .Set("loop", open_loop ? "open" : "closed")
      .Set("rate", f.rate)
      .Set("window", f.window)
      .Set("message_bytes", static_cast<uint64_t>(message_bytes))
      .Set("kind", f.kind)
      .Set("duration_s", backlog ? window_s : f.duration)
      .Set("warmup_s", backlog ? 0.0 : f.warmup)
      .Set("backlog", f.backlog)
      .Set("subscriber_window", f.sub_window)
      .Set("run_tag", run_tag);
  Json facts;
  for (const auto& [k, v] : backend->Facts()) facts.Set(k, v);
  Json server;
  if (srv0.ok && srv1.ok) {
    const double cpu_us = static_cast<double>(srv1.cpu_us - srv0.cpu_us);
    server.Set("pid", static_cast<int>(server_pid))
        .Set("cpu_us", cpu_us)
        .Set("cpu_cores", cpu_us / 1e6 / window_s)
        .Set("cpu_us_per_exchange", exchanges ? cpu_us / exchanges : 0.0)
        .Set("peak_rss_kib", srv_end.hwm_kib)
        .Set("max_sampled_rss_kib", rss.max_kib.load())
        .Set("rss_end_kib", srv_end.rss_kib)
        .Set("threads", srv_end.threads);
  }
  Json durability;
  if (syncs_count >= 0) {
    durability.Set("fsync_calls", syncs_count)
        .Set("acks", exchanges)
        .Set("acks_per_fsync", syncs_count ? static_cast<double>(exchanges) / syncs_count : 0.0)
        .Set("source",
             "perf stat -e syscalls:sys_enter_fsync,syscalls:sys_enter_fdatasync -p "
             "<server pid>, over the measurement window");
  } else {
    durability.SetNull("fsync_calls").Set("acks", exchanges).Set("why", syncs_why);
  }
  if (counters0.ok() && counters1.ok()) {
    const uint64_t synced = counters1->synced_writes - counters0->synced_writes;
    const uint64_t keys = counters1->keys_written - counters0->keys_written;
    const uint64_t bytes = counters1->bytes_written - counters0->bytes_written;
    const uint64_t audit = counters1->audit_entries - counters0->audit_entries;
    const double ex = static_cast<double>(exchanges ? exchanges : 1);
    durability.Set("broker_synced_writes", synced)
        .Set("broker_keys_written", keys)
        .Set("broker_audit_entries", audit)
        .Set("acks_per_synced_write", synced ? exchanges / static_cast<double>(synced) : 0.0)
        .Set("keys_per_exchange", keys / ex)
        .Set("broker_bytes_written", bytes)
        .Set("bytes_per_exchange", bytes / ex)
        .Set("audit_entries_per_exchange", audit / ex)
        .Set("broker_counters_source", "Admin.Status (admin certificate), over the window");
  } else {
    durability.Set("broker_counters", std::string(counters0.ok() ? counters1.status().message()
                                                                 : counters0.status().message()));
  }
  Json deliveries;
  deliveries.Set("acked", check.acked)
      .Set("failed", check.failed)
      .Set("unanswered", check.unanswered)
      .Set("expected", check.expected)
      .Set("delivered", check.delivered)
      .Set("missing", check.missing)
      .Set("duplicates", check.duplicates)
      .Set("unexpected", check.unexpected)
      .Set("foreign", check.foreign)
      .Set("exactly_once", check.exactly_once())
      .Set("settled", settled);
  Json j;
  j.Set("system", f.system)
      .Set("label", f.label)
      .Set("config", config)
      .Set("facts", facts)
      .Set("window_s", window_s)
      .Set("sent", tracker.total_sent())
      .Set("throughput", Json()
                             .Set("exchanges_per_s", exchanges / window_s)
                             .Set("deliveries_per_s", (deliv1 - deliv0) / window_s))
      .Set("submit_to_ack", LatencyJson(tracker.AckLatency()))
      .Set("submit_to_delivery", LatencyJson(tracker.DeliveryLatency()))
      .Set("server", server)
      .Set("client", Json().Set("cpu_us_per_exchange",
                                exchanges ? static_cast<double>(cli1 - cli0) / exchanges : 0.0))
      .Set("durability", durability)
      .Set("delivery_check", deliveries)
      .Set("load_average", Json().Set("before", load_before).Set("after", load_after))
      .Set("first_error", tracker.first_error());
  if (backlog) j.Set("backlog", backlog_json);
  {
    std::lock_guard<std::mutex> lock(rss.mu);
    std::vector<double> secs, kib;
    for (const auto& [t, k] : rss.series) {
      secs.push_back(t);
      kib.push_back(static_cast<double>(k));
    }
    if (backlog) j.SetNumbers("rss_series_s", secs).SetNumbers("rss_series_kib", kib);
  }
  const std::string text = j.Dump();
  if (f.json_path == "-") {
    std::cout << text << std::endl;
  } else if (!f.json_path.empty()) {
    std::ofstream(f.json_path) << text << "\n";
  }

  Histogram ack = tracker.AckLatency(), del = tracker.DeliveryLatency();
  std::cerr << absl::StrFormat(
      "%s %s: %.0f exchanges/s, %.0f deliveries/s; submit->ack p50 %s p99 %s p99.9 %s; "
      "submit->delivery p50 %s p99 %s; server %.1f us/exchange, peak rss %.0f MiB; fsyncs %s; "
      "delivered %llu/%llu missing %llu duplicates %llu unexpected %llu%s\n",
      f.system, f.label, exchanges / window_s, (deliv1 - deliv0) / window_s,
      Fmt(ack.Percentile(50) / 1e3), Fmt(ack.Percentile(99) / 1e3), Fmt(ack.Percentile(99.9) / 1e3),
      Fmt(del.Percentile(50) / 1e3), Fmt(del.Percentile(99) / 1e3),
      exchanges && srv0.ok ? static_cast<double>(srv1.cpu_us - srv0.cpu_us) / exchanges : 0.0,
      srv_end.hwm_kib / 1024.0,
      syncs_count >= 0 ? absl::StrCat(syncs_count) : absl::StrCat("n/a (", syncs_why, ")"),
      check.delivered, check.expected, check.missing, check.duplicates, check.unexpected,
      tracker.first_error().empty() ? "" : absl::StrCat("; first error: ", tracker.first_error()));

  senders.clear();
  subs.clear();
  backend->Cleanup();
  backend.reset();
  if (own) own->Stop();
  return check.missing == 0 && check.failed == 0 && check.unanswered == 0 ? 0 : 3;
}

}  // namespace
}  // namespace corridor::load

int main(int argc, char** argv) {
  corridor::UseReleaseMutexes();
  signal(SIGPIPE, SIG_IGN);
  corridor::load::Flags f;
  CLI::App app{"corridor-load — load generator for Corridor and its peers"};
  app.add_option("--system", f.system, "corridor, nats or rabbitmq");
  app.add_option("--broker", f.broker,
                 "host:port of a running broker (corridor: default starts one)");
  app.add_option("--certs-dir", f.certs_dir, "ca.crt and <agency>.crt/.key (with --broker)");
  app.add_option("--corridord", f.corridord,
                 "corridord binary to start (default: next to this one)");
  app.add_option("--corridord-dir", f.corridord_dir, "working dir for the started corridord");
  app.add_option("--policy-dir", f.policy_dir, "broker.policy_dir for the started corridord");
  app.add_option("--server-pid", f.server_pid, "pid of the broker process (for /proc and perf)");
  app.add_option("--senders", f.senders, "sending connections (agency nodes)");
  app.add_option("--subscribers", f.subscribers, "subscribing agencies");
  app.add_option("--fanout", f.fanout, "recipients per message (default: --subscribers)");
  app.add_option("--sender-agency", f.sender_agency, "certificate the senders use");
  app.add_option("--subscriber-agencies", f.subscriber_agencies, "pool of subscribing agencies");
  app.add_option("--mode", f.mode, "stream (pipelined) or unary (one RPC / sync publish each)");
  app.add_option("--window", f.window, "max submissions in flight per sender");
  app.add_option("--rate", f.rate, "open loop: total messages/s (0 = closed loop)");
  app.add_option("--size", f.size, "serialized message bytes");
  app.add_option("--kind", f.kind, "tipoff, patrol or mixed");
  app.add_option("--duration", f.duration, "measured seconds");
  app.add_option("--warmup", f.warmup, "seconds before measuring");
  app.add_option("--backlog", f.backlog, "offline-agency scenario: messages to queue, then drain");
  app.add_option("--subscriber-window", f.sub_window, "deliveries in flight per subscriber");
  app.add_option("--json", f.json_path, "write the summary here ('-' = stdout)");
  app.add_option("--progress", f.progress, "seconds between progress lines (0 = none)");
  app.add_option("--label", f.label, "scenario name for the summary");
  app.add_option("--settle", f.settle, "max seconds to wait for answers and deliveries");
  app.add_option("--count-syncs", f.count_syncs, "auto or off (perf tracepoints)");
  app.add_flag("--keep", f.keep, "keep the started corridord's directory");
  CLI11_PARSE(app, argc, argv);
  return corridor::load::Run(f);
}
