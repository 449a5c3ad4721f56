#include "broker/audit_log.h"

#include <openssl/sha.h>

#include <algorithm>
#include <fstream>
#include <set>

#include "absl/strings/str_cat.h"
#include "broker/store.h"
#include "common/status_macros.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/io/zero_copy_stream_impl_lite.h"
#include "google/protobuf/util/time_util.h"

namespace corridor::broker {
namespace {

using google::protobuf::util::TimeUtil;

constexpr char kFrontierKey[] = "audit_frontier";
constexpr uint64_t kMaxGroup = 4096;  // entries per index group, at most
constexpr uint32_t kDefaultLimit = 1000;
constexpr uint32_t kMaxLimit = 10000;

std::string SerializeDeterministic(const v1::AuditEntry& e) {
  std::string out;
  {
    google::protobuf::io::StringOutputStream raw(&out);
    google::protobuf::io::CodedOutputStream coded(&raw);
    coded.SetSerializationDeterministic(true);
    e.SerializeToCodedStream(&coded);
  }
  return out;
}

std::string EntryKey(uint64_t index) {
  std::string k;
  AppendBe64(&k, index);
  return k;
}

std::string NodeKey(audit::NodeId id) {
  std::string k(1, static_cast<char>(id.level));
  AppendBe64(&k, id.index);
  return k;
}

std::string GroupPrefix(char kind, std::string_view key) {
  std::string k(1, kind);
  k.append(key);
  k.push_back('\0');
  return k;
}

std::string TimeKey(int64_t unix_ms) {
  std::string k(1, 'T');
  AppendBe64(&k, static_cast<uint64_t>(std::max<int64_t>(0, unix_ms)));
  return k;
}

absl::Time ToTime(const google::protobuf::Timestamp& ts) {
  return absl::FromUnixSeconds(ts.seconds()) + absl::Nanoseconds(ts.nanos());
}

bool Matches(const v1::AuditQuery& q, const v1::AuditEntry& e) {
  if (q.has_from_time() && ToTime(e.broker_time()) < ToTime(q.from_time())) return false;
  if (q.has_to_time() && ToTime(e.broker_time()) >= ToTime(q.to_time())) return false;
  if (!q.agency_id().empty() && e.actor_agency_id() != q.agency_id() &&
      e.sender_agency_id() != q.agency_id() && e.recipient_agency_id() != q.agency_id()) {
    return false;
  }
  if (!q.officer_id().empty() && e.officer_id() != q.officer_id()) return false;
  if (!q.exchange_id().empty() && e.exchange_id() != q.exchange_id()) return false;
  if (!q.client_message_id().empty() && e.client_message_id() != q.client_message_id()) {
    return false;
  }
  if (!q.case_ref().empty() && e.case_ref() != q.case_ref()) return false;
  if (q.event() != v1::AUDIT_EVENT_UNSPECIFIED && e.event() != q.event()) return false;
  return true;
}

std::string HashBytes(const audit::Hash& h) {
  return std::string(reinterpret_cast<const char*>(h.data()), h.size());
}

}  // namespace

// Perfect-subtree hashes from the store; leaves are hashed from their entries.
class AuditLog::Nodes final : public audit::NodeReader {
 public:
  explicit Nodes(const Store* store) : store_(store) {}
  absl::StatusOr<audit::Hash> GetNode(audit::NodeId id) const override {
    if (id.level == 0) {
      CORRIDOR_ASSIGN_OR_RETURN(std::string bytes, store_->Get(Store::kAudit, EntryKey(id.index)));
      return audit::LeafHash(bytes);
    }
    CORRIDOR_ASSIGN_OR_RETURN(std::string v, store_->Get(Store::kMerkle, NodeKey(id)));
    if (v.size() != 32) return absl::DataLossError("merkle node of the wrong size");
    audit::Hash h;
    std::copy(v.begin(), v.end(), h.begin());
    return h;
  }

 private:
  const Store* store_;
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
  // The tree must continue exactly: the latest checkpoint's root is recomputed
  // from the stored nodes, and the frontier must agree with them.
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
  return log;
}

void AuditLog::Append(std::vector<v1::AuditEntry>& entries, rocksdb::WriteBatch& batch) {
  if (entries.empty()) return;
  const uint64_t first = frontier_.size();
  for (v1::AuditEntry& e : entries) {
    const uint64_t index = frontier_.size();
    e.set_index(index);
    std::string bytes = SerializeDeterministic(e);
    frontier_.Append(audit::LeafHash(bytes), [&](audit::NodeId id, const audit::Hash& h) {
      if (id.level >= 1) batch.Put(store_->cf(Store::kMerkle), NodeKey(id), HashBytes(h));
    });
    batch.Put(store_->cf(Store::kAudit), EntryKey(index), bytes);
    absl::Time t = ToTime(e.broker_time());
    if (!batch_has_entries_) {
      batch_has_entries_ = true;
      batch_first_index_ = index;
      batch_min_time_ = t;
    }
    batch_min_time_ = std::min(batch_min_time_, t);
  }
  std::string count;
  const uint32_t n = static_cast<uint32_t>(entries.size());
  for (int i = 3; i >= 0; --i) count.push_back(static_cast<char>((n >> (i * 8)) & 0xff));
  auto put = [&](char kind, const std::string& key) {
    if (key.empty()) return;
    std::string k = GroupPrefix(kind, key);
    AppendBe64(&k, first);
    batch.Put(store_->cf(Store::kAuditIndex), k, count);
  };
  std::set<std::string> agencies, officers, exchanges, messages, cases;
  for (const v1::AuditEntry& e : entries) {
    agencies.insert(e.actor_agency_id());
    agencies.insert(e.sender_agency_id());
    agencies.insert(e.recipient_agency_id());
    officers.insert(e.officer_id());
    exchanges.insert(e.exchange_id());
    messages.insert(e.client_message_id());
    cases.insert(e.case_ref());
  }
  for (const auto& a : agencies) put('A', a);
  for (const auto& o : officers) put('O', o);
  for (const auto& x : exchanges) put('X', x);
  for (const auto& m : messages) put('M', m);
  for (const auto& r : cases) put('R', r);
}

bool AuditLog::CheckpointDue(absl::Time now) const {
  return frontier_.size() > last_checkpoint_size_ &&
         now - last_checkpoint_time_ >= options_.checkpoint_interval;
}

bool AuditLog::BeforeWrite(rocksdb::WriteBatch& batch, absl::Time now) {
  if (batch_has_entries_) {
    batch.Put(store_->cf(Store::kMeta), kFrontierKey, frontier_.Serialize());
    std::string first;
    AppendBe64(&first, batch_first_index_);
    // One key per batch (the first index makes it unique even when two batches
    // share a millisecond).
    std::string time_key = TimeKey(absl::ToUnixMillis(batch_min_time_));
    AppendBe64(&time_key, batch_first_index_);
    batch.Put(store_->cf(Store::kAuditIndex), time_key, first);
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
}

absl::StatusOr<v1::AuditEntryRecord> AuditLog::GetEntry(uint64_t index) const {
  if (index >= durable_size()) {
    return absl::OutOfRangeError(
        absl::StrCat("index: ", index, " is beyond the log's size ", durable_size()));
  }
  CORRIDOR_ASSIGN_OR_RETURN(std::string bytes, store_->Get(Store::kAudit, EntryKey(index)));
  v1::AuditEntryRecord r;
  if (!r.mutable_entry()->ParseFromString(bytes)) {
    return absl::DataLossError(absl::StrCat("audit entry ", index, " is unreadable"));
  }
  r.set_entry_bytes(std::move(bytes));
  return r;
}

absl::StatusOr<std::optional<uint64_t>> AuditLog::Query(
    const v1::AuditQuery& q, const std::function<bool(const v1::AuditEntryRecord&)>& emit) const {
  if (q.limit() > kMaxLimit) {
    return absl::InvalidArgumentError(absl::StrCat("query.limit: at most ", kMaxLimit));
  }
  if (!v1::AuditEvent_IsValid(q.event())) {
    return absl::InvalidArgumentError("query.event: unknown value");
  }
  if (q.has_from_time() && q.has_to_time() && ToTime(q.from_time()) >= ToTime(q.to_time())) {
    return absl::InvalidArgumentError("query.to_time: must be after from_time");
  }
  const uint32_t limit = q.limit() == 0 ? kDefaultLimit : q.limit();
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
  uint32_t emitted = 0;
  std::optional<uint64_t> next;
  bool stop = false;
  auto visit = [&](uint64_t index) -> absl::Status {
    auto rec = GetEntry(index);
    if (!rec.ok()) return rec.status();
    if (!Matches(q, rec->entry())) return absl::OkStatus();
    if (emitted == limit) {
      next = index;
      stop = true;
      return absl::OkStatus();
    }
    ++emitted;
    if (!emit(*rec)) stop = true;
    return absl::OkStatus();
  };
  // The most selective index drives; every filter is applied to each entry.
  std::string prefix;
  if (!q.exchange_id().empty()) {
    prefix = GroupPrefix('X', q.exchange_id());
  } else if (!q.client_message_id().empty()) {
    prefix = GroupPrefix('M', q.client_message_id());
  } else if (!q.case_ref().empty()) {
    prefix = GroupPrefix('R', q.case_ref());
  } else if (!q.officer_id().empty()) {
    prefix = GroupPrefix('O', q.officer_id());
  } else if (!q.agency_id().empty()) {
    prefix = GroupPrefix('A', q.agency_id());
  }
  if (lo >= hi) return next;
  if (!prefix.empty()) {
    std::unique_ptr<rocksdb::Iterator> it(
        db->NewIterator(rocksdb::ReadOptions(), store_->cf(Store::kAuditIndex)));
    std::string start = prefix;
    AppendBe64(&start, lo > kMaxGroup ? lo - kMaxGroup : 0);
    for (it->Seek(start); it->Valid() && !stop; it->Next()) {
      rocksdb::Slice k = it->key();
      if (!k.starts_with(prefix) || k.size() != prefix.size() + 8) break;
      uint64_t first = ReadBe64(std::string_view(k.data() + prefix.size(), 8));
      if (first >= hi) break;
      rocksdb::Slice v = it->value();
      if (v.size() != 4) return absl::DataLossError("audit_index: malformed group");
      uint32_t count = 0;
      for (int i = 0; i < 4; ++i) count = (count << 8) | static_cast<uint8_t>(v[i]);
      for (uint64_t idx = std::max(first, lo); idx < std::min(first + count, hi) && !stop; ++idx) {
        CORRIDOR_RETURN_IF_ERROR(visit(idx));
      }
    }
    CORRIDOR_RETURN_IF_ERROR(FromRocks(it->status(), "audit_index"));
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
