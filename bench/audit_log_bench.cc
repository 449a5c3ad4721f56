// The audit log inside the broker, on real RocksDB: appends per second as the
// committer stages them (grouped like exchanges: collection + 2 disclosures),
// and query latency for one agency-day among 1M entries.
//
//   build/bin/corridor_audit_log_bench [--benchmark_filter=...]
#include <filesystem>
#include <random>

#include "benchmark/benchmark.h"
#include "broker/audit_log.h"
#include "broker/store.h"
#include "google/protobuf/util/time_util.h"

namespace corridor::broker {
namespace {

using google::protobuf::util::TimeUtil;

const char* const kAgencies[] = {"zs-police", "zs-customs", "zs-msa", "zs-coastguard",
                                 "zh-police", "zh-customs", "zh-msa", "zh-coastguard"};
constexpr int kAgencyCount = 8;
constexpr int64_t kDay = 86400;
constexpr int64_t kStart = 1795910400;  // 2026-11-16T00:00:00Z

struct Fixture {
  std::filesystem::path dir;
  std::unique_ptr<Store> store;
  std::unique_ptr<AuditLog> log;
  uint64_t exchanges = 0;
  uint64_t keys_written = 0;  // RocksDB keys (puts and deletes) in the batches committed

  explicit Fixture(const std::string& name) {
    dir = std::filesystem::temp_directory_path() / ("corridor-audit-bench-" + name);
    std::filesystem::remove_all(dir);
    store = *Store::Open(dir);
    AuditLog::Options o;
    o.origin = "bench/zs-broker";
    o.key_file = dir / "key.pem";
    log = *AuditLog::Open(store.get(), o);
  }
  ~Fixture() {
    log.reset();
    store.reset();
    std::filesystem::remove_all(dir);
  }

  // One exchange's entries (collection + two disclosures) at unix second `t`.
  void StageExchange(int64_t t, std::mt19937& rng, rocksdb::WriteBatch& batch) {
    const std::string sender = kAgencies[rng() % kAgencyCount];
    std::vector<v1::AuditEntry> entries(3);
    const std::string exchange_id = "zs-broker-" + std::to_string(++exchanges);
    const std::string client_message_id = "m-" + std::to_string(exchanges);
    for (int i = 0; i < 3; ++i) {
      v1::AuditEntry& e = entries[i];
      e.set_event(i == 0 ? v1::AUDIT_EVENT_COLLECTION : v1::AUDIT_EVENT_DISCLOSURE);
      *e.mutable_broker_time() = TimeUtil::SecondsToTimestamp(t);
      e.set_actor_agency_id(sender);
      e.set_sender_agency_id(sender);
      e.set_exchange_id(exchange_id);
      e.set_client_message_id(client_message_id);
      e.set_topic("smuggling.frozen_goods");
      e.set_handling_code("H1");
      e.set_payload_sha256(std::string(32, 'p'));
      if (i > 0) {
        const std::string r = kAgencies[rng() % kAgencyCount];
        e.set_recipient_agency_id(r);
        e.set_delivered_sha256(std::string(32, 'd'));
        e.add_rule_ids("smuggling-tipoffs-to-partners");
      }
    }
    log->Append(entries, batch);
  }

  void Commit(rocksdb::WriteBatch& batch, bool sync) {
    (void)log->BeforeWrite(batch, absl::Now());
    keys_written += batch.Count();
    rocksdb::WriteOptions wo;
    wo.sync = sync;
    store->db()->Write(wo, &batch);
    log->AfterWrite(sync);
    batch.Clear();
  }
};

// Entries staged and committed per second, 256 exchanges (768 entries) per synced batch,
// and the RocksDB keys those batches carry per entry.
void BM_AppendInCommitPath(benchmark::State& state) {
  Fixture f("append");
  std::mt19937 rng(1);
  rocksdb::WriteBatch batch;
  int64_t t = kStart;
  for (auto _ : state) {
    for (int i = 0; i < 256; ++i) f.StageExchange(t++, rng, batch);
    f.Commit(batch, /*sync=*/true);
  }
  state.counters["entries/s"] =
      benchmark::Counter(3.0 * 256 * state.iterations(), benchmark::Counter::kIsRate);
  state.counters["exchanges/s"] =
      benchmark::Counter(256.0 * state.iterations(), benchmark::Counter::kIsRate);
  state.counters["keys/entry"] =
      static_cast<double>(f.keys_written) / static_cast<double>(f.log->durable_size());
}
BENCHMARK(BM_AppendInCommitPath)->Unit(benchmark::kMillisecond)->UseRealTime();

// One agency-day among 1M entries: 333,334 exchanges spread over 14 days.
void BM_QueryAgencyDay(benchmark::State& state) {
  static Fixture* f = [] {
    auto* fx = new Fixture("query");
    std::mt19937 rng(2);
    rocksdb::WriteBatch batch;
    const int64_t total = 1000000 / 3 + 1;
    for (int64_t i = 0; i < total; ++i) {
      fx->StageExchange(kStart + i * (14 * kDay) / total, rng, batch);
      if (i % 1000 == 999) fx->Commit(batch, /*sync=*/false);
    }
    fx->Commit(batch, /*sync=*/true);
    fx->store->db()->Flush(rocksdb::FlushOptions());
    return fx;
  }();
  const int day = static_cast<int>(state.range(0));
  v1::AuditQuery q;
  q.set_agency_id("zs-msa");
  *q.mutable_from_time() = TimeUtil::SecondsToTimestamp(kStart + day * kDay);
  *q.mutable_to_time() = TimeUtil::SecondsToTimestamp(kStart + (day + 1) * kDay);
  q.set_limit(10000);
  uint64_t results = 0;
  for (auto _ : state) {
    results = 0;
    uint64_t start = 0;
    for (;;) {
      q.set_start_index(start);
      auto next = f->log->Query(q, [&](const v1::AuditEntryRecord&) {
        ++results;
        return true;
      });
      if (!next.ok() || !next->has_value()) break;
      start = **next;
    }
  }
  state.counters["log_entries"] = static_cast<double>(f->log->durable_size());
  state.counters["results"] = static_cast<double>(results);
  state.counters["us/result"] =
      benchmark::Counter(static_cast<double>(results) * state.iterations(),
                         benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}
BENCHMARK(BM_QueryAgencyDay)->Arg(3)->Arg(10)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace
}  // namespace corridor::broker

BENCHMARK_MAIN();
