#include "broker/audit_log.h"

#include <openssl/sha.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <optional>
#include <utility>

#include "absl/strings/str_cat.h"
#include "broker/store.h"
#include "common/status_macros.h"
#include "common/utf8.h"
#include "common/utf8_fields.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/io/zero_copy_stream_impl_lite.h"
#include "google/protobuf/util/time_util.h"

namespace corridor::broker {
namespace {

using google::protobuf::util::TimeUtil;

constexpr char kFrontierKey[] = "audit_frontier";
constexpr char kFormatKey[] = "audit_format";
// Format 3: exchange ids indexed by bucket, client message ids not on acks and
// redeliveries, tiles appended by merges, one audit value per batch. Format 2
// (exact exchange-id lists, every entry's client id, whole tiles) is read alike
// and continued as format 3.
constexpr uint64_t kFormat = 3;
constexpr uint64_t kOldestReadableFormat = 2;
// An audit value holds a batch's entries up to these bounds (a reader of one
// entry reads its whole value).
constexpr size_t kMaxEntriesPerValue = 1024;
constexpr size_t kMaxValueBytes = 32 << 10;
constexpr uint64_t kExchangesPerBucket = 64;
constexpr size_t kHashSize = sizeof(audit::Hash);
constexpr uint32_t kDefaultLimit = 1000;
constexpr uint32_t kMaxLimit = 10000;

void AppendVarint(std::string* out, uint64_t v);

// Appends varint(size) and the deterministic serialization of `e` to `out`,
// and returns a view of the serialization (valid until `out` changes).
std::string_view AppendDeterministic(const v1::AuditEntry& e, std::string* out) {
  const size_t size = e.ByteSizeLong();
  AppendVarint(out, size);
  const size_t at = out->size();
  out->resize(at + size);
  google::protobuf::io::ArrayOutputStream raw(out->data() + at, static_cast<int>(size));
  {
    google::protobuf::io::CodedOutputStream coded(&raw);
    coded.SetSerializationDeterministic(true);
    e.SerializeWithCachedSizes(&coded);
    if (coded.HadError() || static_cast<size_t>(coded.ByteCount()) != size) {
      // The entry changed between sizing and writing: nothing else touches it.
      std::fprintf(stderr, "audit entry %llu: serialization does not match its size\n",
                   static_cast<unsigned long long>(e.index()));
      std::abort();
    }
  }
  return std::string_view(out->data() + at, size);
}

void AppendVarint(std::string* out, uint64_t v) {
  while (v >= 0x80) {
    out->push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out->push_back(static_cast<char>(v));
}

// Reads one varint from the front of `in` and drops it. False when truncated or
// longer than 10 bytes.
bool ReadVarint(std::string_view* in, uint64_t* v) {
  uint64_t result = 0;
  for (int shift = 0; shift < 64 && !in->empty(); shift += 7) {
    const uint8_t b = static_cast<uint8_t>(in->front());
    in->remove_prefix(1);
    result |= static_cast<uint64_t>(b & 0x7f) << shift;
    if ((b & 0x80) == 0) {
      *v = result;
      return true;
    }
  }
  return false;
}

std::string EntryKey(uint64_t index) {
  std::string k;
  AppendBe64(&k, index);
  return k;
}

std::string TileKey(uint32_t tile_level, uint64_t tile_index) {
  std::string k(1, static_cast<char>(tile_level));
  AppendBe64(&k, tile_index);
  return k;
}

std::string GroupPrefix(char kind, std::string_view key) {
  std::string k(1, kind);
  k.append(key);
  k.push_back('\0');
  return k;
}

// The exchange-id bucket that `exchange_id` is indexed under: the broker's
// "<prefix>-<n>" becomes "<prefix>-<n / 64>", so the exchanges of a batch (and
// the acks that follow them) share one posting list, in which each index
// carries n % 64 (`slot`) so that a query skips the other exchanges' entries
// without reading them. False for an id of another shape, which is indexed
// exactly ('X').
bool ExchangeBucket(std::string_view exchange_id, std::string* bucket, uint8_t* slot) {
  const size_t dash = exchange_id.rfind('-');
  if (dash == std::string_view::npos) return false;
  const std::string_view digits = exchange_id.substr(dash + 1);
  if (digits.empty() || digits.size() > 19) return false;
  uint64_t n = 0;
  for (char c : digits) {
    if (c < '0' || c > '9') return false;
    n = n * 10 + static_cast<uint64_t>(c - '0');
  }
  bucket->assign(exchange_id.substr(0, dash + 1));
  absl::StrAppend(bucket, n / kExchangesPerBucket);
  *slot = static_cast<uint8_t>(n % kExchangesPerBucket);
  return true;
}

// Entries indexed under the client message id: all but the acks (consultation
// by a recipient) and redeliveries of an exchange, whose client id is found
// through the exchange's other entries (its collection and disclosures carry
// the same one).
bool IndexesClientId(const EntryFacts& e) {
  return e.exchange_id.empty() ||
         (e.event != v1::AUDIT_EVENT_CONSULTATION && e.event != v1::AUDIT_EVENT_REDELIVERY);
}

std::string TimeKey(int64_t unix_ms) {
  std::string k(1, 'T');
  AppendBe64(&k, static_cast<uint64_t>(std::max<int64_t>(0, unix_ms)));
  return k;
}

absl::Time ToTime(const google::protobuf::Timestamp& ts) {
  return absl::FromUnixSeconds(ts.seconds()) + absl::Nanoseconds(ts.nanos());
}

// True when a redelivery summary in `e` lists an exchange for which `pred` holds.
template <typename Pred>
bool AnyRedelivered(const v1::AuditEntry& e, Pred pred) {
  if (!e.has_redeliveries()) return false;
  for (const v1::RedeliveredExchange& x : e.redeliveries().exchanges()) {
    if (pred(x)) return true;
  }
  return false;
}

bool Matches(const v1::AuditQuery& q, const v1::AuditEntry& e) {
  if (q.has_from_time() && ToTime(e.broker_time()) < ToTime(q.from_time())) return false;
  if (q.has_to_time() && ToTime(e.broker_time()) >= ToTime(q.to_time())) return false;
  if (!q.agency_id().empty() && e.actor_agency_id() != q.agency_id() &&
      e.sender_agency_id() != q.agency_id() && e.recipient_agency_id() != q.agency_id() &&
      !AnyRedelivered(e, [&](const auto& x) { return x.sender_agency_id() == q.agency_id(); })) {
    return false;
  }
  if (!q.officer_id().empty() && e.officer_id() != q.officer_id()) return false;
  if (!q.exchange_id().empty() && e.exchange_id() != q.exchange_id() &&
      !AnyRedelivered(e, [&](const auto& x) { return x.exchange_id() == q.exchange_id(); })) {
    return false;
  }
  if (!q.client_message_id().empty() && e.client_message_id() != q.client_message_id() &&
      !AnyRedelivered(
          e, [&](const auto& x) { return x.client_message_id() == q.client_message_id(); })) {
    return false;
  }
  if (!q.case_ref().empty() && e.case_ref() != q.case_ref()) return false;
  if (q.event() != v1::AUDIT_EVENT_UNSPECIFIED && e.event() != q.event()) return false;
  return true;
}

std::string HashBytes(const audit::Hash& h) {
  return std::string(reinterpret_cast<const char*>(h.data()), h.size());
}

// Reads entries by index from the per-batch values (per Append in format 2),
// keeping the last value read so that neighbouring indices cost no further seek.
// Sees the DB as it was when constructed. One thread; lives for one call.
class EntryCursor {
 public:
  explicit EntryCursor(const Store* store)
      : it_(store->db()->NewIterator(rocksdb::ReadOptions(), store->cf(Store::kAudit))) {}

  // The bytes of entry `index`, valid until the next call. NOT_FOUND when it is
  // not stored, DATA_LOSS for a malformed value.
  absl::StatusOr<std::string_view> Get(uint64_t index) {
    if (index < first_ || index - first_ >= entries_.size()) {
      CORRIDOR_RETURN_IF_ERROR(Load(index));
    }
    return entries_[index - first_];
  }

 private:
  absl::Status Load(uint64_t index) {
    entries_.clear();
    first_ = 0;
    it_->SeekForPrev(EntryKey(index));
    CORRIDOR_RETURN_IF_ERROR(FromRocks(it_->status(), "audit"));
    if (!it_->Valid() || it_->key().size() != 8) {
      return absl::NotFoundError(absl::StrCat("audit entry ", index, " is not stored"));
    }
    const uint64_t first = ReadBe64(std::string_view(it_->key().data(), 8));
    std::vector<std::string_view> entries;
    // Views into the iterator's value: valid until it moves (the next Load).
    std::string_view rest(it_->value().data(), it_->value().size());
    while (!rest.empty()) {
      uint64_t length = 0;
      if (!ReadVarint(&rest, &length) || length > rest.size()) {
        return absl::DataLossError(absl::StrCat("audit value at ", first, " is malformed"));
      }
      entries.push_back(rest.substr(0, length));
      rest.remove_prefix(length);
    }
    if (index - first >= entries.size()) {
      return absl::NotFoundError(absl::StrCat("audit entry ", index, " is not stored"));
    }
    first_ = first;
    entries_ = std::move(entries);
    return absl::OkStatus();
  }

  std::unique_ptr<rocksdb::Iterator> it_;
  uint64_t first_ = 0;
  std::vector<std::string_view> entries_;  // into it_'s value
};

// The record of entry `index`. Bytes that do not parse as an AuditEntry (a
// string that is not UTF-8, written before such text was refused where it
// enters) still make a record: `unreadable` says why, naming the field, the
// entry holds only its index, and entry_bytes are the stored bytes, whose leaf
// hash is the tree's. One bad entry never stops a query, a proof or an export.
v1::AuditEntryRecord RecordOf(uint64_t index, std::string_view bytes) {
  v1::AuditEntryRecord r;
  if (!r.mutable_entry()->ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
    r.Clear();
    r.mutable_entry()->set_index(index);
    std::optional<std::string> field = FindInvalidUtf8Field(*v1::AuditEntry::descriptor(), bytes);
    r.set_unreadable(field ? absl::StrCat(*field, ": not valid UTF-8")
                           : std::string("not a corridor.v1.AuditEntry"));
  }
  r.set_entry_bytes(bytes.data(), bytes.size());
  return r;
}

}  // namespace

// Node hashes from the tiles: node (level l, index i) folds hashes
// [i * 2^(l % 8), (i + 1) * 2^(l % 8)) of tree level 8 * (l / 8), which lie in
// one tile. Tiles read are kept for the object's life (one proof or check).
// Not thread-safe; one call's use.
class AuditLog::Nodes final : public audit::NodeReader {
 public:
  explicit Nodes(const Store* store) : store_(store) {}
  absl::StatusOr<audit::Hash> GetNode(audit::NodeId id) const override {
    const uint32_t tile_level = id.level / kTileHeight;
    const uint64_t width = uint64_t{1} << (id.level % kTileHeight);
    const uint64_t row_begin = id.index * width;  // < 2^64: index < 2^(64 - level)
    const uint64_t tile_index = row_begin / kTileWidth;
    const uint64_t offset = row_begin % kTileWidth;
    auto [it, inserted] = tiles_.try_emplace({tile_level, tile_index});
    if (inserted) {
      auto tile = store_->Get(Store::kAuditTiles, TileKey(tile_level, tile_index));
      if (!tile.ok()) {
        tiles_.erase(it);
        return tile.status();
      }
      it->second = *std::move(tile);
    }
    const std::string& tile = it->second;
    if (tile.size() % kHashSize != 0 || tile.size() > kTileWidth * kHashSize ||
        tile.size() < (offset + width) * kHashSize) {
      return absl::DataLossError(absl::StrCat("audit tile (", tile_level, ", ", tile_index,
                                              ") holds ", tile.size(), " bytes"));
    }
    std::array<audit::Hash, kTileWidth / 2> row;
    for (uint64_t i = 0; i < width; ++i) {
      std::copy_n(tile.data() + (offset + i) * kHashSize, kHashSize, row[i].begin());
    }
    for (uint64_t w = width; w > 1; w /= 2) {
      for (uint64_t i = 0; i < w / 2; ++i) row[i] = audit::NodeHash(row[2 * i], row[2 * i + 1]);
    }
    return row[0];
  }

 private:
  const Store* store_;
  mutable std::map<std::pair<uint32_t, uint64_t>, std::string> tiles_;
};

AuditLog::AuditLog(Store* store, Options options, audit::Ed25519Signer signer,
                   audit::MerkleFrontier frontier)
    : store_(store),
      options_(std::move(options)),
      signer_(std::move(signer)),
      frontier_(std::move(frontier)) {
  durable_size_.store(frontier_.size());
}

absl::StatusOr<std::unique_ptr<AuditLog>> AuditLog::Open(Store* store, Options options) {
  // The layout: the format is written with the first entries; audit data
  // without it was written by an older Corridor (format 1: one key per entry
  // and per node).
  uint64_t stored_format = 0;
  auto format = store->Get(Store::kMeta, kFormatKey);
  if (format.ok()) {
    if (format->size() == 8) stored_format = ReadBe64(*format);
    if (stored_format < kOldestReadableFormat || stored_format > kFormat) {
      return absl::FailedPreconditionError(
          "audit log: the data dir has an audit layout this Corridor does not know");
    }
  } else if (absl::IsNotFound(format.status())) {
    std::unique_ptr<rocksdb::Iterator> it(
        store->db()->NewIterator(rocksdb::ReadOptions(), store->cf(Store::kAudit)));
    it->SeekToFirst();
    CORRIDOR_RETURN_IF_ERROR(FromRocks(it->status(), "audit"));
    if (it->Valid()) {
      return absl::FailedPreconditionError(
          "audit log: the data dir was written by an older Corridor with a different audit "
          "layout; start this version with a fresh data dir");
    }
  } else {
    return format.status();
  }
  CORRIDOR_ASSIGN_OR_RETURN(audit::Ed25519Signer signer,
                            audit::Ed25519Signer::LoadOrCreate(options.key_file, options.origin));
  audit::MerkleFrontier frontier;
  auto stored = store->Get(Store::kMeta, kFrontierKey);
  if (stored.ok()) {
    CORRIDOR_ASSIGN_OR_RETURN(frontier, audit::MerkleFrontier::Parse(*stored));
  } else if (!absl::IsNotFound(stored.status())) {
    return stored.status();
  }
  // The verifier key beside the private key, for operators to hand to auditors.
  {
    std::filesystem::path vkey = options.key_file;
    vkey += ".vkey";
    std::ofstream(vkey) << signer.VerifierKey() << "\n";
  }
  std::unique_ptr<AuditLog> log(
      new AuditLog(store, std::move(options), std::move(signer), std::move(frontier)));
  log->stored_format_ = stored_format;
  // The partial tile of each level ends where the frontier ends; it was
  // written in the same batch as the frontier.
  const uint64_t size = log->frontier_.size();
  for (uint32_t level = 0; level < kTileLevels; ++level) {
    const uint64_t row = size >> (level * kTileHeight);
    if (row % kTileWidth == 0) continue;
    auto tile = store->Get(Store::kAuditTiles, TileKey(level, row / kTileWidth));
    if (!tile.ok()) {
      return absl::Status(tile.status().code(), absl::StrCat("audit log: partial tile of level ",
                                                             level, ": ", tile.status().message()));
    }
    if (tile->size() != (row % kTileWidth) * kHashSize) {
      return absl::DataLossError(absl::StrCat("audit log: the partial tile of level ", level,
                                              " does not match the frontier"));
    }
  }
  // The tree must continue exactly: the latest checkpoint's root is recomputed
  // from the stored tiles, and the frontier must agree with them.
  auto latest = log->GetCheckpoint(0);
  if (latest.ok()) {
    Nodes nodes(store);
    CORRIDOR_ASSIGN_OR_RETURN(audit::Hash root, audit::RootAt(latest->size(), nodes));
    if (HashBytes(root) != latest->root()) {
      return absl::DataLossError(
          absl::StrCat("audit log: the stored tree does not match "
                       "checkpoint ",
                       latest->size()));
    }
    CORRIDOR_ASSIGN_OR_RETURN(audit::Hash now_root, audit::RootAt(log->frontier_.size(), nodes));
    if (now_root != log->frontier_.Root()) {
      return absl::DataLossError("audit log: the frontier does not match the stored tree");
    }
    log->last_checkpoint_size_ = latest->size();
  } else if (!absl::IsNotFound(latest.status())) {
    return latest.status();
  }
  log->MarkWritten();
  return log;
}

void AuditLog::AddNode(audit::NodeId id, const audit::Hash& hash, rocksdb::WriteBatch& batch) {
  if (id.level % kTileHeight != 0) return;
  const uint32_t level = id.level / kTileHeight;
  std::string& adds = tile_adds_[level];
  adds.append(reinterpret_cast<const char*>(hash.data()), hash.size());
  if (id.index % kTileWidth == kTileWidth - 1) {
    // The tile is full: its last hashes go to it now (the next ones start the next tile).
    batch.Merge(store_->cf(Store::kAuditTiles), TileKey(level, id.index / kTileWidth), adds);
    adds.clear();
  }
}

void AuditLog::StageValue(rocksdb::WriteBatch& batch) {
  if (value_entries_ == 0) return;
  batch.Put(store_->cf(Store::kAudit), EntryKey(value_first_), value_);
  value_.clear();
  value_entries_ = 0;
}

AuditLog::Posting& AuditLog::PostingFor(size_t field, char kind, std::string_view value) {
  // Most often the previous entry's list for this field (same exchange).
  if (const uint32_t recent = recent_postings_[field]; recent != 0) {
    Posting& p = postings_[recent - 1];
    if (p.prefix.size() == value.size() + 2 && p.prefix[0] == kind &&
        p.prefix.compare(1, value.size(), value) == 0) {
      return p;
    }
  }
  prefix_scratch_.assign(1, kind);
  prefix_scratch_.append(value);
  prefix_scratch_.push_back('\0');
  uint32_t id;
  if (auto it = posting_ids_.find(absl::string_view(prefix_scratch_)); it != posting_ids_.end()) {
    id = it->second;
  } else {
    if (num_postings_ == postings_.size()) postings_.emplace_back();
    id = static_cast<uint32_t>(num_postings_++);
    Posting& p = postings_[id];
    p.prefix.assign(prefix_scratch_);  // reuses the capacity of an earlier batch's list
    p.indices.clear();
    p.slots.clear();
    posting_ids_.emplace(absl::string_view(p.prefix), id);
  }
  recent_postings_[field] = id + 1;
  return postings_[id];
}

void AuditLog::IndexEntry(const EntryFacts& e, uint64_t index) {
  size_t field = 0;
  auto add = [&](char kind, std::string_view value) {
    const size_t f = field++;
    if (value.empty()) return;
    std::vector<uint64_t>& list = PostingFor(f, kind, value).indices;
    if (list.empty() || list.back() != index) list.push_back(index);
  };
  add('A', e.actor_agency_id);
  add('A', e.sender_agency_id);
  add('A', e.recipient_agency_id);
  add('O', e.officer_id);
  uint8_t slot = 0;
  if (ExchangeBucket(e.exchange_id, &bucket_scratch_, &slot)) {
    Posting& p = PostingFor(field++, 'E', bucket_scratch_);
    p.indices.push_back(index);  // one exchange id per entry: never a repeat
    p.slots.push_back(slot);
  } else {
    add('X', e.exchange_id);
  }
  add('M', IndexesClientId(e) ? e.client_message_id : std::string_view());
  add('R', e.case_ref);
  if (!e.redeliveries.empty()) {
    // A summary (rare: one per subscription and window) lists up to 256
    // deliveries: each exchange is indexed exactly, with its sender. The
    // client ids are found through the exchanges, as for an ack.
    v1::RedeliverySummary summary;
    if (summary.ParseFromArray(e.redeliveries.data(), static_cast<int>(e.redeliveries.size()))) {
      for (const v1::RedeliveredExchange& x : summary.exchanges()) {
        for (const auto& [kind, value] :
             {std::pair<char, const std::string*>{'X', &x.exchange_id()},
              {'A', &x.sender_agency_id()}}) {
          if (value->empty()) continue;
          std::vector<uint64_t>& list = PostingFor(field, kind, *value).indices;
          if (list.empty() || list.back() != index) list.push_back(index);
        }
      }
    }
  }
}

void AuditLog::StagePostings(rocksdb::WriteBatch& batch) {
  // In key order (as a sorted map gave them before): consecutive exchanges'
  // lists then sit side by side in the memtable.
  order_scratch_.resize(num_postings_);
  for (size_t i = 0; i < num_postings_; ++i) order_scratch_[i] = static_cast<uint32_t>(i);
  std::sort(order_scratch_.begin(), order_scratch_.end(),
            [&](uint32_t a, uint32_t b) { return postings_[a].prefix < postings_[b].prefix; });
  // One posting list per indexed value: the first index in the key, the rest
  // as deltas; in an exchange bucket's list each index's slot (one byte)
  // comes first, then the delta to the next index.
  for (uint32_t id : order_scratch_) {
    const Posting& p = postings_[id];
    key_scratch_.assign(p.prefix);
    AppendBe64(&key_scratch_, p.indices.front());
    deltas_scratch_.clear();
    const bool slotted = p.prefix[0] == 'E';
    for (size_t i = 0; i < p.indices.size(); ++i) {
      if (slotted) deltas_scratch_.push_back(static_cast<char>(p.slots[i]));
      if (i + 1 < p.indices.size()) {
        AppendVarint(&deltas_scratch_, p.indices[i + 1] - p.indices[i]);
      }
    }
    batch.Put(store_->cf(Store::kAuditIndex), key_scratch_, deltas_scratch_);
  }
  num_postings_ = 0;
  posting_ids_.clear();
  recent_postings_.fill(0);
}

uint64_t AuditLog::NextIndex(rocksdb::WriteBatch& batch) {
  const uint64_t index = frontier_.size();
  if (value_entries_ == kMaxEntriesPerValue || value_.size() >= kMaxValueBytes) {
    StageValue(batch);
  }
  if (value_entries_ == 0) value_first_ = index;
  return index;
}

void AuditLog::Added(size_t at, uint64_t index, rocksdb::WriteBatch& batch) {
  // The leaf hash is of the bytes as stored.
  const std::string_view bytes = std::string_view(value_).substr(at);
  EntryFacts facts;
  if (!ReadEntryFacts(bytes, &facts)) {
    std::fprintf(stderr, "audit entry %llu: its serialization does not read back in field order\n",
                 static_cast<unsigned long long>(index));
    std::abort();
  }
  frontier_.Append(audit::LeafHash(bytes),
                   [&](audit::NodeId id, const audit::Hash& h) { AddNode(id, h, batch); });
  ++value_entries_;
  IndexEntry(facts, index);
  if (!batch_has_entries_) {
    batch_has_entries_ = true;
    batch_first_index_ = index;
    batch_min_time_ = facts.broker_time;
  }
  batch_min_time_ = std::min(batch_min_time_, facts.broker_time);
}

void AuditLog::Append(std::vector<v1::AuditEntry>& entries, rocksdb::WriteBatch& batch) {
  for (v1::AuditEntry& e : entries) {
    const uint64_t index = NextIndex(batch);
    e.set_index(index);
    // Text is validated where it enters the broker; an entry that would still
    // hold invalid UTF-8 (a refused peer's certificate text, say) must not be
    // stored unparseable: its bad bytes become U+FFFD.
    ScrubInvalidUtf8Strings(&e);
    // Serialized straight into the batch's value.
    const std::string_view bytes = AppendDeterministic(e, &value_);
    Added(static_cast<size_t>(bytes.data() - value_.data()), index, batch);
  }
}

void AuditLog::Append(const std::vector<PreparedEntry>& entries, rocksdb::WriteBatch& batch) {
  for (const PreparedEntry& e : entries) {
    const uint64_t index = NextIndex(batch);
    AppendVarint(&value_, SerializedSize(e, index));
    const size_t at = value_.size();
    AppendSerialized(e, index, &value_);
    Added(at, index, batch);
  }
}

bool AuditLog::CheckpointDue(absl::Time now) const {
  return frontier_.size() > last_checkpoint_size_ &&
         now - last_checkpoint_time_ >= options_.checkpoint_interval;
}

bool AuditLog::BeforeWrite(rocksdb::WriteBatch& batch, absl::Time now) {
  if (batch_has_entries_) {
    if (stored_format_ != kFormat) {
      std::string format;
      AppendBe64(&format, kFormat);
      batch.Put(store_->cf(Store::kMeta), kFormatKey, format);
      stored_format_ = kFormat;
    }
    StageValue(batch);
    batch.Put(store_->cf(Store::kMeta), kFrontierKey, frontier_.Serialize());
    std::string first;
    AppendBe64(&first, batch_first_index_);
    // One key per batch (the first index makes it unique even when two batches
    // share a millisecond).
    std::string time_key = TimeKey(absl::ToUnixMillis(batch_min_time_));
    AppendBe64(&time_key, batch_first_index_);
    batch.Put(store_->cf(Store::kAuditIndex), time_key, first);
    StagePostings(batch);
    // What this batch added to the tiles that are still partial (the ones it
    // completed were staged by AddNode).
    for (uint32_t level = 0; level < kTileLevels; ++level) {
      if (tile_adds_[level].empty()) continue;
      const uint64_t row = frontier_.size() >> (level * kTileHeight);
      batch.Merge(store_->cf(Store::kAuditTiles), TileKey(level, row / kTileWidth),
                  tile_adds_[level]);
      tile_adds_[level].clear();
    }
  }
  const uint64_t size = frontier_.size();
  if (size > last_checkpoint_size_ &&
      (size - last_checkpoint_size_ >= options_.checkpoint_every || CheckpointDue(now))) {
    audit::Checkpoint cp;
    cp.origin = options_.origin;
    cp.size = size;
    cp.root = frontier_.Root();
    batch.Put(store_->cf(Store::kCheckpoints), EntryKey(size),
              signer_.SignNote(audit::CheckpointBody(cp)));
    last_checkpoint_size_ = size;
    last_checkpoint_time_ = now;
    return true;
  }
  return false;
}

void AuditLog::AfterWrite(bool synced) {
  batch_has_entries_ = false;
  if (synced) durable_size_.store(frontier_.size(), std::memory_order_release);
  MarkWritten();
}

void AuditLog::MarkWritten() {
  written_.frontier = frontier_;
  written_.stored_format = stored_format_;
  written_.last_checkpoint_size = last_checkpoint_size_;
  written_.last_checkpoint_time = last_checkpoint_time_;
}

void AuditLog::AbortBatch() {
  frontier_ = written_.frontier;
  stored_format_ = written_.stored_format;
  last_checkpoint_size_ = written_.last_checkpoint_size;
  last_checkpoint_time_ = written_.last_checkpoint_time;
  for (std::string& adds : tile_adds_) adds.clear();
  value_.clear();
  value_entries_ = 0;
  num_postings_ = 0;
  posting_ids_.clear();
  recent_postings_.fill(0);
  batch_has_entries_ = false;
}

absl::StatusOr<v1::AuditEntryRecord> AuditLog::GetEntry(uint64_t index) const {
  if (index >= durable_size()) {
    return absl::OutOfRangeError(
        absl::StrCat("index: ", index, " is beyond the log's size ", durable_size()));
  }
  EntryCursor entries(store_);
  CORRIDOR_ASSIGN_OR_RETURN(std::string_view bytes, entries.Get(index));
  return RecordOf(index, bytes);
}

absl::StatusOr<std::optional<uint64_t>> AuditLog::Query(
    const v1::AuditQuery& q, const std::function<bool(const v1::AuditEntryRecord&)>& emit) const {
  if (q.limit() > kMaxLimit) {
    return absl::InvalidArgumentError(absl::StrCat("query.limit: at most ", kMaxLimit));
  }
  if (!v1::AuditEvent_IsValid(q.event())) {
    return absl::InvalidArgumentError("query.event: unknown value");
  }
  for (const auto& [name, value] :
       {std::pair<const char*, const std::string*>{"agency_id", &q.agency_id()},
        {"officer_id", &q.officer_id()},
        {"exchange_id", &q.exchange_id()},
        {"client_message_id", &q.client_message_id()},
        {"case_ref", &q.case_ref()}}) {
    if (!IsValidUtf8(*value)) {
      return absl::InvalidArgumentError(absl::StrCat("query.", name, ": not valid UTF-8"));
    }
  }
  if (q.has_from_time() && q.has_to_time() && ToTime(q.from_time()) >= ToTime(q.to_time())) {
    return absl::InvalidArgumentError("query.to_time: must be after from_time");
  }
  const uint32_t limit = q.limit() == 0 ? kDefaultLimit : q.limit();
  // Read before any iterator is made, so the iterators see every entry below it.
  const uint64_t size = durable_size();
  uint64_t lo = q.start_index();
  uint64_t hi = size;  // exclusive
  auto* db = store_->db();
  // Time bounds -> index bounds, from the per-batch time keys. Entries are
  // stamped when the event happens and written a little later (acks wait up to
  // a persist tick), so the bounds are widened by a margin and every entry's
  // own time is checked below.
  if (q.has_from_time() || q.has_to_time()) {
    constexpr int64_t kMarginMs = 60 * 1000;
    std::unique_ptr<rocksdb::Iterator> it(
        db->NewIterator(rocksdb::ReadOptions(), store_->cf(Store::kAuditIndex)));
    if (q.has_from_time()) {
      std::string key = TimeKey(absl::ToUnixMillis(ToTime(q.from_time())) - kMarginMs);
      key.append(8, '\0');
      it->SeekForPrev(key);
      if (it->Valid() && it->key().starts_with("T") && it->value().size() == 8) {
        lo = std::max(lo, ReadBe64(std::string_view(it->value().data(), 8)));
      }
    }
    if (q.has_to_time()) {
      it->Seek(TimeKey(absl::ToUnixMillis(ToTime(q.to_time())) + kMarginMs));
      if (it->Valid() && it->key().starts_with("T") && it->value().size() == 8) {
        hi = std::min(hi, ReadBe64(std::string_view(it->value().data(), 8)));
      }
    }
    CORRIDOR_RETURN_IF_ERROR(FromRocks(it->status(), "audit_index"));
  }
  EntryCursor entries(store_);
  uint32_t emitted = 0;
  std::optional<uint64_t> next;
  bool stop = false;
  auto visit = [&](uint64_t index) -> absl::Status {
    CORRIDOR_ASSIGN_OR_RETURN(std::string_view bytes, entries.Get(index));
    v1::AuditEntryRecord rec = RecordOf(index, bytes);
    // An unreadable entry's fields cannot be matched: it is reported, never hidden.
    if (rec.unreadable().empty() && !Matches(q, rec.entry())) return absl::OkStatus();
    if (emitted == limit) {
      next = index;
      stop = true;
      return absl::OkStatus();
    }
    ++emitted;
    if (!emit(rec)) stop = true;
    return absl::OkStatus();
  };
  if (lo >= hi) return next;
  // Calls on_index for each index in [from, hi) of the posting lists under
  // `prefix`, in ascending order, while it returns true; in an exchange
  // bucket's lists ('E'), only for the indices of slot `slot`.
  auto scan = [&](const std::string& prefix, uint64_t from,
                  const std::function<absl::StatusOr<bool>(uint64_t)>& on_index,
                  int slot = -1) -> absl::Status {
    const bool slotted = prefix[0] == 'E';
    // A posting list's key is prefix + be64(its first index); a longer key with
    // the same prefix belongs to another value that extends this one after a NUL.
    auto is_list = [&](const rocksdb::Slice& k) {
      return k.starts_with(prefix) && k.size() == prefix.size() + 8;
    };
    std::unique_ptr<rocksdb::Iterator> it(
        db->NewIterator(rocksdb::ReadOptions(), store_->cf(Store::kAuditIndex)));
    std::string start = prefix;
    AppendBe64(&start, from);
    // The last list that starts at or before `from` may hold it; later lists
    // hold only larger indices (each batch's indices follow the previous batch's).
    it->SeekForPrev(start);
    while (it->Valid() && it->key().starts_with(prefix) && !is_list(it->key())) it->Prev();
    if (!it->Valid() || !is_list(it->key())) it->Seek(start);
    for (; it->Valid(); it->Next()) {
      const rocksdb::Slice k = it->key();
      if (!k.starts_with(prefix)) break;
      if (!is_list(k)) continue;
      uint64_t index = ReadBe64(std::string_view(k.data() + prefix.size(), 8));
      std::string_view deltas(it->value().data(), it->value().size());
      for (;;) {
        if (index >= hi) return absl::OkStatus();
        int index_slot = -1;
        if (slotted) {
          if (deltas.empty()) return absl::DataLossError("audit_index: malformed bucket list");
          index_slot = static_cast<uint8_t>(deltas.front());
          deltas.remove_prefix(1);
        }
        if (index >= from && index_slot == slot) {
          CORRIDOR_ASSIGN_OR_RETURN(bool more, on_index(index));
          if (!more) return absl::OkStatus();
        }
        if (deltas.empty()) break;
        uint64_t delta = 0;
        if (!ReadVarint(&deltas, &delta) || delta == 0) {
          return absl::DataLossError("audit_index: malformed posting list");
        }
        index += delta;
      }
    }
    return FromRocks(it->status(), "audit_index");
  };
  auto visit_while = [&](uint64_t index) -> absl::StatusOr<bool> {
    CORRIDOR_RETURN_IF_ERROR(visit(index));
    return !stop;
  };
  if (!q.exchange_id().empty() || !q.client_message_id().empty()) {
    // An exchange's entries are listed under its id's bucket (or exactly, in
    // format 2 and for an id of another shape); a client message id is listed
    // on the exchange's own entries but not on its acks and redeliveries, which
    // are found through the exchanges those entries name. The candidates are
    // few (a bucket list's slot tags leave only the named exchanges' entries),
    // so they are gathered, then visited in order.
    std::vector<uint64_t> candidates;
    std::vector<std::string> exchanges;
    if (!q.exchange_id().empty()) {
      exchanges.push_back(q.exchange_id());
    } else {
      EntryCursor named(store_);
      CORRIDOR_RETURN_IF_ERROR(
          scan(GroupPrefix('M', q.client_message_id()), 0, [&](uint64_t i) -> absl::StatusOr<bool> {
            if (i >= lo) candidates.push_back(i);
            CORRIDOR_ASSIGN_OR_RETURN(std::string_view bytes, named.Get(i));
            const v1::AuditEntryRecord rec = RecordOf(i, bytes);
            const std::string& x = rec.entry().exchange_id();
            if (rec.entry().client_message_id() == q.client_message_id() && !x.empty() &&
                std::find(exchanges.begin(), exchanges.end(), x) == exchanges.end()) {
              exchanges.push_back(x);
            }
            return true;
          }));
    }
    std::vector<std::pair<std::string, int>> prefixes;  // and the slot, in a bucket
    std::string bucket;
    uint8_t slot = 0;
    for (const std::string& x : exchanges) {
      if (ExchangeBucket(x, &bucket, &slot)) prefixes.emplace_back(GroupPrefix('E', bucket), slot);
      prefixes.emplace_back(GroupPrefix('X', x), -1);
    }
    std::sort(prefixes.begin(), prefixes.end());
    prefixes.erase(std::unique(prefixes.begin(), prefixes.end()), prefixes.end());
    for (const auto& [prefix, in_slot] : prefixes) {
      CORRIDOR_RETURN_IF_ERROR(scan(
          prefix, lo,
          [&](uint64_t i) -> absl::StatusOr<bool> {
            candidates.push_back(i);
            return true;
          },
          in_slot));
    }
    std::sort(candidates.begin(), candidates.end());
    candidates.erase(std::unique(candidates.begin(), candidates.end()), candidates.end());
    for (size_t i = 0; i < candidates.size() && !stop; ++i) {
      CORRIDOR_RETURN_IF_ERROR(visit(candidates[i]));
    }
    return next;
  }
  // Otherwise the most selective index drives; every filter is applied to each entry.
  std::string prefix;
  if (!q.case_ref().empty()) {
    prefix = GroupPrefix('R', q.case_ref());
  } else if (!q.officer_id().empty()) {
    prefix = GroupPrefix('O', q.officer_id());
  } else if (!q.agency_id().empty()) {
    prefix = GroupPrefix('A', q.agency_id());
  }
  if (!prefix.empty()) {
    CORRIDOR_RETURN_IF_ERROR(scan(prefix, lo, visit_while));
    return next;
  }
  for (uint64_t idx = lo; idx < hi && !stop; ++idx) CORRIDOR_RETURN_IF_ERROR(visit(idx));
  return next;
}

absl::StatusOr<v1::SignedCheckpoint> AuditLog::GetCheckpoint(uint64_t size) const {
  std::unique_ptr<rocksdb::Iterator> it(
      store_->db()->NewIterator(rocksdb::ReadOptions(), store_->cf(Store::kCheckpoints)));
  if (size == 0) {
    it->SeekToLast();
  } else {
    it->Seek(EntryKey(size));
  }
  CORRIDOR_RETURN_IF_ERROR(FromRocks(it->status(), "checkpoints"));
  if (!it->Valid() || it->key().size() != 8 ||
      (size != 0 && ReadBe64(std::string_view(it->key().data(), 8)) != size)) {
    return absl::NotFoundError(size == 0 ? std::string("no checkpoint yet")
                                         : absl::StrCat("no checkpoint of size ", size));
  }
  std::string note = it->value().ToString();
  CORRIDOR_ASSIGN_OR_RETURN(audit::Checkpoint cp,
                            audit::VerifyCheckpointNote(note, signer_.VerifierKey()));
  v1::SignedCheckpoint out;
  out.set_note(note);
  out.set_size(cp.size);
  out.set_root(HashBytes(cp.root));
  out.set_verifier_key(signer_.VerifierKey());
  return out;
}

absl::StatusOr<uint64_t> AuditLog::SizeOrLatest(uint64_t size, std::string_view field) const {
  if (size == 0) {
    CORRIDOR_ASSIGN_OR_RETURN(v1::SignedCheckpoint cp, GetCheckpoint(0));
    size = cp.size();
  }
  if (size > durable_size()) {
    return absl::OutOfRangeError(absl::StrCat(absl::string_view(field.data(), field.size()), ": ",
                                              size, " is beyond the log's size ", durable_size()));
  }
  return size;
}

absl::StatusOr<v1::InclusionProofResponse> AuditLog::GetInclusionProof(uint64_t index,
                                                                       uint64_t tree_size) const {
  CORRIDOR_ASSIGN_OR_RETURN(tree_size, SizeOrLatest(tree_size, "tree_size"));
  if (index >= tree_size) {
    return absl::InvalidArgumentError(
        absl::StrCat("index: ", index, " is not below tree_size ", tree_size));
  }
  Nodes nodes(store_);
  CORRIDOR_ASSIGN_OR_RETURN(std::vector<audit::Hash> proof,
                            audit::InclusionProof(index, tree_size, nodes));
  v1::InclusionProofResponse r;
  r.set_index(index);
  r.set_tree_size(tree_size);
  for (const auto& h : proof) r.add_hashes(HashBytes(h));
  CORRIDOR_ASSIGN_OR_RETURN(*r.mutable_record(), GetEntry(index));
  auto cp = GetCheckpoint(tree_size);
  if (cp.ok()) *r.mutable_checkpoint() = *std::move(cp);
  return r;
}

absl::StatusOr<v1::ConsistencyProofResponse> AuditLog::GetConsistencyProof(
    uint64_t old_size, uint64_t new_size) const {
  CORRIDOR_ASSIGN_OR_RETURN(new_size, SizeOrLatest(new_size, "new_size"));
  if (old_size == 0 || old_size > new_size) {
    return absl::InvalidArgumentError(
        absl::StrCat("old_size: must be 1..new_size (", new_size, "), got ", old_size));
  }
  Nodes nodes(store_);
  CORRIDOR_ASSIGN_OR_RETURN(std::vector<audit::Hash> proof,
                            audit::ConsistencyProof(old_size, new_size, nodes));
  v1::ConsistencyProofResponse r;
  r.set_old_size(old_size);
  r.set_new_size(new_size);
  for (const auto& h : proof) r.add_hashes(HashBytes(h));
  return r;
}

}  // namespace corridor::broker
