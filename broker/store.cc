#include "broker/store.h"

#include <array>
#include <cstdarg>
#include <cstdio>
#include <fstream>
#include <set>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "broker/disk_guard.h"
#include "common/status_macros.h"
#include "rocksdb/cache.h"
#include "rocksdb/file_system.h"
#include "rocksdb/filter_policy.h"
#include "rocksdb/listener.h"
#include "rocksdb/merge_operator.h"
#include "rocksdb/slice_transform.h"
#include "rocksdb/table.h"
#include "rocksdb/write_buffer_manager.h"

namespace corridor::broker {
namespace {

constexpr size_t kMemtableBudgetBytes = 128 << 20;
constexpr size_t kBlockCacheBytes = 32 << 20;

const char* const kCfNames[Store::kNumCfs] = {"messages",
                                              "deliveries",
                                              "dedupe",
                                              "subscriptions",
                                              "acks",
                                              "meta",
                                              "audit",
                                              "audit_index",
                                              "merkle",
                                              "checkpoints",
                                              "expiry",
                                              "audit_tiles",
                                              "corridor_audit_format_3"};

// Keys of deliveries, acks and audit tiles end in a big-endian sequence number
// under one of a few fixed prefixes (agency, agency + subscription, tile level)
// that interleave within a batch and arrive in order per prefix: the memtable
// keeps an insert hint (the insert position) per prefix, so such an insert
// starts where the last one of its prefix ended instead of searching the
// skiplist from the top.
//
// Families whose keys all grow together (audit, checkpoints, expiry) need no
// hints: the skiplist already starts each insert from the previous one. Nor do
// keys whose prefix is used once (an exchange's or message's posting list, a
// batch's time key): a hint per such prefix would only grow the memtable's
// hint map (an unordered_map that then costs more than the search it spares)
// and make each of them search from the top.
class TrailingSeqPrefix : public rocksdb::SliceTransform {
 public:
  const char* Name() const override { return "corridor.TrailingSeqPrefix"; }
  rocksdb::Slice Transform(const rocksdb::Slice& key) const override {
    return rocksdb::Slice(key.data(), key.size() - 8);
  }
  bool InDomain(const rocksdb::Slice& key) const override { return key.size() >= 8; }
};

// audit_index: only the posting lists of values that recur batch after batch
// (agency 'A', officer 'O', case 'R', exchange bucket 'E') are hinted; exact
// exchange 'X', message 'M' and time 'T' keys are new values nearly every time.
class RecurringPostingPrefix final : public TrailingSeqPrefix {
 public:
  const char* Name() const override { return "corridor.RecurringPostingPrefix"; }
  bool InDomain(const rocksdb::Slice& key) const override {
    return key.size() > 8 && (key[0] == 'A' || key[0] == 'O' || key[0] == 'R' || key[0] == 'E');
  }
};

// audit_tiles: a batch appends the hashes it adds to a tile (a merge operand)
// instead of rewriting the tile; reads and compactions concatenate them.
class AppendOperator final : public rocksdb::AssociativeMergeOperator {
 public:
  const char* Name() const override { return "corridor.Append"; }
  bool Merge(const rocksdb::Slice& key, const rocksdb::Slice* existing_value,
             const rocksdb::Slice& value, std::string* new_value,
             rocksdb::Logger* logger) const override {
    new_value->clear();
    if (existing_value != nullptr) {
      new_value->reserve(existing_value->size() + value.size());
      new_value->assign(existing_value->data(), existing_value->size());
    }
    new_value->append(value.data(), value.size());
    return true;
  }
};

// RocksDB's info log on stderr (journald under systemd), warnings and errors
// only. RocksDB's default is a LOG file in the data dir: on a full disk its
// failed write left the file's writer in an error state, and RocksDB's next
// line to it (logging the very write error) tripped an assertion in
// WritableFileWriter (`sync_without_flush_called_`): an abort.
class StderrLogger final : public rocksdb::Logger {
 public:
  StderrLogger() : rocksdb::Logger(rocksdb::InfoLogLevel::WARN_LEVEL) {}
  using rocksdb::Logger::Logv;
  void Logv(const char* format, va_list ap) override {
    char line[1024];
    int n = std::vsnprintf(line, sizeof(line), format, ap);
    if (n < 0) return;
    std::fprintf(stderr, "corridord: rocksdb: %.*s\n",
                 static_cast<int>(std::min<size_t>(static_cast<size_t>(n), sizeof(line) - 1)),
                 line);
  }
};

// Every file RocksDB writes preallocates at most kMaxPreallocationBytes at a time.
class CappedPreallocationFile final : public rocksdb::FSWritableFileOwnerWrapper {
 public:
  using FSWritableFileOwnerWrapper::FSWritableFileOwnerWrapper;
  void SetPreallocationBlockSize(size_t size) override {
    FSWritableFileOwnerWrapper::SetPreallocationBlockSize(std::min(size, kMaxPreallocationBytes));
  }
};

class CappedPreallocationFs final : public rocksdb::FileSystemWrapper {
 public:
  using FileSystemWrapper::FileSystemWrapper;
  const char* Name() const override { return "corridor.CappedPreallocationFs"; }
  rocksdb::IOStatus NewWritableFile(const std::string& f, const rocksdb::FileOptions& o,
                                    std::unique_ptr<rocksdb::FSWritableFile>* r,
                                    rocksdb::IODebugContext* dbg) override {
    return Wrap(target()->NewWritableFile(f, o, r, dbg), r);
  }
  rocksdb::IOStatus ReopenWritableFile(const std::string& f, const rocksdb::FileOptions& o,
                                       std::unique_ptr<rocksdb::FSWritableFile>* r,
                                       rocksdb::IODebugContext* dbg) override {
    return Wrap(target()->ReopenWritableFile(f, o, r, dbg), r);
  }
  rocksdb::IOStatus ReuseWritableFile(const std::string& f, const std::string& old,
                                      const rocksdb::FileOptions& o,
                                      std::unique_ptr<rocksdb::FSWritableFile>* r,
                                      rocksdb::IODebugContext* dbg) override {
    return Wrap(target()->ReuseWritableFile(f, old, o, r, dbg), r);
  }

 private:
  static rocksdb::IOStatus Wrap(rocksdb::IOStatus s, std::unique_ptr<rocksdb::FSWritableFile>* r) {
    if (s.ok() && *r) *r = std::make_unique<CappedPreallocationFile>(std::move(*r));
    return s;
  }
};

// RocksDB would retry a write error on its own thread (polling the free space
// every few seconds); the committer resumes it instead (Store::Resume), so
// that one owner knows when writes go on.
class ManualRecovery final : public rocksdb::EventListener {
 public:
  const char* Name() const override { return "corridor.ManualRecovery"; }
  void OnErrorRecoveryBegin(rocksdb::BackgroundErrorReason, rocksdb::Status,
                            bool* auto_recovery) override {
    *auto_recovery = false;
  }
};

std::set<std::string> FileNames(const std::filesystem::path& dir) {
  std::set<std::string> out;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(dir, ec)) {
    out.insert(e.path().filename().string());
  }
  return out;
}

// The MANIFEST that CURRENT names ("" when none).
std::string CurrentManifest(const std::filesystem::path& dir) {
  std::ifstream in(dir / "CURRENT");
  std::string name;
  std::getline(in, name);
  return name;
}

// After an open that failed: removes what it created and nothing refers to
// (OPTIONS, a MANIFEST that CURRENT does not name, a new WAL, temp files).
// Never CURRENT, LOCK, a table file or anything that was there before.
void RemoveFilesOfFailedOpen(const std::filesystem::path& dir,
                             const std::set<std::string>& before) {
  const std::string current = CurrentManifest(dir);
  for (const std::string& name : FileNames(dir)) {
    if (before.count(name) > 0 || name == current) continue;
    const bool ours = absl::StartsWith(name, "OPTIONS-") || absl::StartsWith(name, "MANIFEST-") ||
                      absl::EndsWith(name, ".log") || absl::EndsWith(name, ".dbtmp");
    if (!ours) continue;
    std::error_code ec;
    std::filesystem::remove(dir / name, ec);
  }
}

}  // namespace

absl::Status FromRocks(const rocksdb::Status& s, std::string_view what) {
  if (s.ok()) return absl::OkStatus();
  std::string msg = absl::StrCat(absl::string_view(what.data(), what.size()), ": ", s.ToString());
  if (s.IsNotFound()) return absl::NotFoundError(msg);
  if (s.IsBusy() || s.IsTryAgain() || s.IsTimedOut()) return absl::UnavailableError(msg);
  if (s.IsIOError() && s.ToString().find("lock") != std::string::npos) {
    return absl::FailedPreconditionError(msg);
  }
  if (s.IsInvalidArgument()) return absl::InvalidArgumentError(msg);
  return absl::InternalError(msg);
}

void AppendBe64(std::string* out, uint64_t v) {
  for (int i = 7; i >= 0; --i) out->push_back(static_cast<char>((v >> (i * 8)) & 0xff));
}

uint64_t ReadBe64(std::string_view b) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | static_cast<uint8_t>(b[i]);
  return v;
}

std::string DeliveryPrefix(std::string_view agency) {
  std::string k(agency);
  k.push_back('\0');
  return k;
}

std::string DeliveryKey(std::string_view agency, uint64_t seq) {
  std::string k = DeliveryPrefix(agency);
  AppendBe64(&k, seq);
  return k;
}

namespace {
std::string JoinKey(std::string_view agency, std::string_view name) {
  std::string k(agency);
  k.push_back('\0');
  k.append(name);
  return k;
}
}  // namespace

std::string MessageKey(std::string_view agency, std::string_view client_message_id) {
  return JoinKey(agency, client_message_id);
}

std::string DeliveryHeadKey(std::string_view agency) {
  return absl::StrCat("delivery_head/", absl::string_view(agency.data(), agency.size()));
}

std::string SubscriptionKey(std::string_view agency, std::string_view name) {
  return JoinKey(agency, name);
}

std::string AckPrefix(std::string_view agency, std::string_view name) {
  std::string k = SubscriptionKey(agency, name);
  k.push_back('\0');
  return k;
}

std::string AckKey(std::string_view agency, std::string_view name, uint64_t seq) {
  std::string k = AckPrefix(agency, name);
  AppendBe64(&k, seq);
  return k;
}

absl::StatusOr<std::unique_ptr<Store>> Store::Open(const std::filesystem::path& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) {
    return absl::FailedPreconditionError(
        absl::StrCat("data_dir ", dir.string(), ": ", ec.message()));
  }
  std::filesystem::permissions(dir, std::filesystem::perms::owner_all,
                               std::filesystem::perm_options::replace, ec);

  // Opening writes a new MANIFEST (as large as the current one), an OPTIONS
  // file and the first block of a new WAL: refuse before writing anything when
  // that does not fit, instead of failing half way.
  {
    uint64_t manifest_bytes = 0;
    if (const std::string m = CurrentManifest(dir); !m.empty()) {
      manifest_bytes = std::filesystem::file_size(dir / m, ec);
      if (ec) manifest_bytes = 0;
    }
    const uint64_t need = manifest_bytes + kOpenReserveBytes;
    CORRIDOR_ASSIGN_OR_RETURN(uint64_t free_bytes, FreeBytes(dir));
    if (free_bytes < need) {
      return absl::ResourceExhaustedError(absl::StrCat(
          "data_dir ", dir.string(), ": ", free_bytes, " bytes free (", HumanBytes(free_bytes),
          "); opening the store needs at least ", need, " bytes (", HumanBytes(need),
          "): free space on its file system and start again (nothing was written)"));
    }
  }

  rocksdb::DBOptions db_opts;
  db_opts.create_if_missing = true;
  db_opts.create_missing_column_families = true;
  db_opts.IncreaseParallelism(2);
  db_opts.max_background_jobs = 2;
  // A full disk (see store.h): the info log on stderr, every file's
  // preallocation capped, and a WAL replayed into the memtables at start
  // without writing table files (a start needs next to no free space; the WAL
  // stays until the memtables are flushed as usual).
  std::unique_ptr<Store> store(new Store());
  store->dir_ = dir;
  store->logger_ = std::make_shared<StderrLogger>();
  db_opts.info_log = store->logger_;
  store->env_ = rocksdb::NewCompositeEnv(
      std::make_shared<CappedPreallocationFs>(rocksdb::FileSystem::Default()));
  db_opts.env = store->env_.get();
  db_opts.avoid_flush_during_recovery = true;
  db_opts.listeners.push_back(std::make_shared<ManualRecovery>());

  rocksdb::BlockBasedTableOptions table;
  // Index and filter blocks live in one bounded block cache instead of on the
  // heap per open table file, so memory stops growing with the number of SST
  // files while a backlog builds; L0's stay pinned (they are read the most).
  table.block_cache = rocksdb::NewLRUCache(kBlockCacheBytes);
  table.cache_index_and_filter_blocks = true;
  table.pin_l0_filter_and_index_blocks_in_cache = true;
  table.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
  // One memory budget for every column family's memtables, so RSS stays flat
  // while a backlog builds (each CF would otherwise grow its own 64 MiB).
  db_opts.write_buffer_manager =
      std::make_shared<rocksdb::WriteBufferManager>(kMemtableBudgetBytes);

  rocksdb::ColumnFamilyOptions cf_opts;
  cf_opts.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));
  cf_opts.compression = rocksdb::kLZ4Compression;
  cf_opts.write_buffer_size = 64 << 20;

  // One writer (the committer): memtable inserts need no concurrency control,
  // and only then are the insert hints below used.
  db_opts.allow_concurrent_memtable_write = false;
  rocksdb::ColumnFamilyOptions seq_cf_opts = cf_opts;
  seq_cf_opts.memtable_insert_with_hint_prefix_extractor = std::make_shared<TrailingSeqPrefix>();
  rocksdb::ColumnFamilyOptions tiles_cf_opts = seq_cf_opts;
  tiles_cf_opts.merge_operator = std::make_shared<AppendOperator>();
  rocksdb::ColumnFamilyOptions audit_index_cf_opts = cf_opts;
  audit_index_cf_opts.memtable_insert_with_hint_prefix_extractor =
      std::make_shared<RecurringPostingPrefix>();

  // Every submission looks its (sender, client message id) up in messages and
  // nearly always misses: a memtable Bloom filter answers most misses at once.
  rocksdb::ColumnFamilyOptions messages_cf_opts = cf_opts;
  messages_cf_opts.memtable_prefix_bloom_size_ratio = 0.02;
  messages_cf_opts.memtable_whole_key_filtering = true;

  std::vector<rocksdb::ColumnFamilyDescriptor> cfs;
  cfs.emplace_back(rocksdb::kDefaultColumnFamilyName, cf_opts);
  for (int i = 0; i < kNumCfs; ++i) {
    const bool hinted = i == kDeliveries || i == kAcks;
    cfs.emplace_back(kCfNames[i], i == kMessages     ? messages_cf_opts
                                  : i == kAuditIndex ? audit_index_cf_opts
                                  : i == kAuditTiles ? tiles_cf_opts
                                  : hinted           ? seq_cf_opts
                                                     : cf_opts);
  }

  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* raw = nullptr;
  const std::set<std::string> before = FileNames(dir);
  rocksdb::Status s = rocksdb::DB::Open(db_opts, dir.string(), cfs, &handles, &raw);
  if (!s.ok()) {
    if (s.IsNoSpace()) {
      RemoveFilesOfFailedOpen(dir, before);
      const uint64_t free_bytes = FreeBytes(dir).value_or(0);
      return absl::ResourceExhaustedError(absl::StrCat(
          "data_dir ", dir.string(), ": the file system ran out of space while opening the store (",
          free_bytes, " bytes free now, ", HumanBytes(free_bytes), "); free at least ",
          HumanBytes(kOpenReserveBytes), " more and start again (", s.ToString(), ")"));
    }
    return FromRocks(s, absl::StrCat("open ", dir.string()));
  }
  store->db_.reset(raw);
  // handles[0] is the default CF, kept so it is destroyed with the others.
  store->handles_.assign(handles.begin() + 1, handles.end());
  store->handles_.push_back(handles[0]);
  return store;
}

Store::~Store() {
  if (db_) {
    for (auto* h : handles_) db_->DestroyColumnFamilyHandle(h);
    db_->Close();
  }
}

absl::StatusOr<std::string> Store::Get(Cf which, std::string_view key) const {
  std::string value;
  rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), handles_[which],
                               rocksdb::Slice(key.data(), key.size()), &value);
  if (s.IsNotFound() && s.subcode() == rocksdb::Status::kNone && s.getState() == nullptr) {
    // The usual answer of the committer's dedupe lookup: the same status every
    // time, made once per column family instead of formatted per call.
    static const std::array<absl::Status, kNumCfs> kNotFound = [] {
      std::array<absl::Status, kNumCfs> out;
      for (int i = 0; i < kNumCfs; ++i)
        out[i] = FromRocks(rocksdb::Status::NotFound(), kCfNames[i]);
      return out;
    }();
    return kNotFound[which];
  }
  if (!s.ok()) return FromRocks(s, kCfNames[which]);
  return value;
}

absl::Status Store::Write(rocksdb::WriteBatch* batch, bool sync) {
  rocksdb::WriteOptions opts;
  opts.sync = sync;
  if (sync) synced_writes_.fetch_add(1, std::memory_order_relaxed);
  keys_written_.fetch_add(batch->Count(), std::memory_order_relaxed);
  bytes_written_.fetch_add(batch->GetDataSize(), std::memory_order_relaxed);
  const rocksdb::Status s = db_->Write(opts, batch);
  if (s.ok()) return absl::OkStatus();
  return WriteError(s, sync ? "synced write" : "write");
}

absl::Status Store::WriteError(const rocksdb::Status& s, std::string_view what) const {
  // RocksDB's text names its files: for the operator's log only.
  std::fprintf(stderr, "corridord: store %s in %s failed: %s\n", std::string(what).c_str(),
               dir_.c_str(), s.ToString().c_str());
  std::string name = dir_.lexically_normal().filename().string();
  if (name.empty()) name = dir_.lexically_normal().parent_path().filename().string();
  if (s.IsNoSpace()) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "broker storage is paused: data dir '", name,
        "' is full (no space left on device); this write was not stored, nothing in it was "
        "acknowledged; storage resumes once space is freed"));
  }
  return absl::UnavailableError(absl::StrCat("broker storage write failed in data dir '", name,
                                             "' (I/O error; details in the broker's log)"));
}

absl::Status Store::Resume() {
  const rocksdb::Status s = db_->Resume();
  if (s.ok()) return absl::OkStatus();
  if (s.IsBusy()) return absl::UnavailableError("storage recovery is already running");
  return WriteError(s, "resume");
}

absl::StatusOr<uint64_t> Store::LastDeliverySeq(std::string_view agency) const {
  std::string upper = DeliveryPrefix(agency);
  upper.append(8, '\xff');
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), cf(kDeliveries)));
  it->SeekForPrev(upper);
  if (!it->status().ok()) return FromRocks(it->status(), "deliveries");
  if (!it->Valid()) return 0;
  std::string prefix = DeliveryPrefix(agency);
  rocksdb::Slice key = it->key();
  if (key.size() != prefix.size() + 8 || !key.starts_with(prefix)) return 0;
  return ReadBe64(std::string_view(key.data() + prefix.size(), 8));
}

absl::StatusOr<uint64_t> Store::GetCounter(std::string_view name) const {
  auto v = Get(kMeta, name);
  if (absl::IsNotFound(v.status())) return 0;
  if (!v.ok()) return v.status();
  if (v->size() != 8)
    return absl::DataLossError(absl::StrCat("meta counter has ", v->size(), " bytes"));
  return ReadBe64(*v);
}

}  // namespace corridor::broker
