// AuditLog: the tamper-evident exchange log inside the broker core. Entries are
// appended by the committer thread into the same WriteBatch as the change they
// record; each is a leaf of an RFC 9162 Merkle tree whose hashes are stored
// beside it as tiles (levels 0, 8, 16, … in rows of 256, as in C2SP
// tlog-tiles); checkpoints (C2SP signed notes, Ed25519) are signed every
// `checkpoint_every` entries or `checkpoint_interval`, whichever comes first.
//
// Storage (audit format 3, see store.h): one value per batch holding its
// entries, each tile's new hashes appended to it (a RocksDB merge) once per
// batch, one posting list per indexed value per batch; exchange ids are indexed
// by bucket (64 consecutive exchanges of one broker share a list) and client
// message ids on the entries written with the exchange, not on its acks. So a
// batch writes a few keys in all, not one per entry and node and indexed value,
// and no more than the bytes it adds. Format 2 data (exact exchange-id lists,
// tiles rewritten whole) reads the same and continues in format 3.
//
//   // committer thread, inside a task's prepare:
//   v1::AuditEntry e = ...;
//   log->Append(entries, batch);        // each entry's index() is set
//   // committer thread, once per batch, before the write:
//   log->BeforeWrite(batch, now);
//   // after the write succeeded:
//   log->AfterWrite(synced);
//   // any thread:
//   log->Query(query, [](const v1::AuditEntryRecord& r) { ...; return true; });
//
// Threading: Append/BeforeWrite/AfterWrite/CheckpointDue on the committer thread
// only. Readers (Query, proofs, checkpoints) are thread-safe and see only durable
// entries (index <= durable_size()).
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <deque>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "broker/audit/checkpoint.h"
#include "broker/audit/merkle.h"
#include "broker/audit_entry_wire.h"
#include "corridor/v1/audit.pb.h"
#include "rocksdb/write_batch.h"

namespace corridor::broker {

class Store;

class AuditLog {
 public:
  struct Options {
    std::string origin;              // checkpoint origin line, e.g. "zhongshan.corridor/zs-broker"
    std::filesystem::path key_file;  // Ed25519 PEM, created 0600 when missing
    uint64_t checkpoint_every = 1000;  // entries
    absl::Duration checkpoint_interval = absl::Seconds(1);
  };

  // Loads the frontier, the partial tiles and the signing key (creating the key
  // when missing), and checks that the stored tree matches the latest checkpoint
  // and the frontier (DATA_LOSS otherwise). FAILED_PRECONDITION for a data dir
  // written by an older Corridor with a different audit layout.
  static absl::StatusOr<std::unique_ptr<AuditLog>> Open(Store* store, Options options);

  // Committer thread. Numbers `entries` (0, 1, … in log order), serializes each
  // deterministically, and adds them with their Merkle nodes to the batch's
  // audit value and tiles, which BeforeWrite stages into `batch`. Each entry is
  // indexed by the fields a query filters on (actor, sender and recipient
  // agency, officer, exchange, client message id, case). A query by client
  // message id reaches an exchange's acks and redeliveries (CONSULTATION and
  // REDELIVERY entries with an exchange id, not listed under the client id)
  // through its other entries: such an entry must carry the exchange id and
  // client id of an exchange whose collection was appended (the broker's copy
  // both from the stored envelope). A redelivery summary is indexed under
  // each exchange it lists (exactly, 'X') and each of their senders, so those
  // queries find it too.
  void Append(std::vector<v1::AuditEntry>& entries, rocksdb::WriteBatch& batch);
  // The same for entries built in wire form (an exchange's, the hub's acks):
  // each is stored as `bytes` with index and delivery_seq written in their
  // places, which is exactly protobuf's serialization of the entry.
  void Append(const std::vector<PreparedEntry>& entries, rocksdb::WriteBatch& batch);
  // Committer thread, once per batch before the write (required after any
  // Append): stages the batch's entries, tiles, posting lists, the frontier
  // and, when due, a signed checkpoint of the tree as it will be after this
  // batch. Returns true when it staged a checkpoint (the batch must then be
  // synced).
  bool BeforeWrite(rocksdb::WriteBatch& batch, absl::Time now);
  // Committer thread, after the batch was written: readers see the new size
  // once a synced write made it durable.
  void AfterWrite(bool synced);
  // Committer thread, after the batch's write failed: forgets what Append and
  // BeforeWrite did since the last written batch (entries, tree, checkpoint),
  // so the next batch goes on from the stored tree.
  void AbortBatch();
  // Committer thread: true when entries wait for a checkpoint past the interval.
  bool CheckpointDue(absl::Time now) const;

  // Committer thread: the index the next appended entry gets.
  uint64_t next_index() const { return frontier_.size(); }
  uint64_t durable_size() const { return durable_size_.load(std::memory_order_acquire); }
  std::string verifier_key() const { return signer_.VerifierKey(); }
  const std::string& origin() const { return options_.origin; }

  // Entries matching `query` with index in [start_index, durable_size), in index
  // order, at most limit; `emit` returns false to stop. Returns the index to pass
  // as start_index to continue, or nullopt when the range is exhausted.
  // INVALID_ARGUMENT naming the field for a bad query.
  absl::StatusOr<std::optional<uint64_t>> Query(
      const v1::AuditQuery& query,
      const std::function<bool(const v1::AuditEntryRecord&)>& emit) const;

  // The latest signed checkpoint (size 0), or the one of exactly `size`.
  // NOT_FOUND when there is none.
  absl::StatusOr<v1::SignedCheckpoint> GetCheckpoint(uint64_t size) const;
  absl::StatusOr<v1::InclusionProofResponse> GetInclusionProof(uint64_t index,
                                                               uint64_t tree_size) const;
  absl::StatusOr<v1::ConsistencyProofResponse> GetConsistencyProof(uint64_t old_size,
                                                                   uint64_t new_size) const;
  absl::StatusOr<v1::AuditEntryRecord> GetEntry(uint64_t index) const;

 private:
  AuditLog(Store* store, Options options, audit::Ed25519Signer signer,
           audit::MerkleFrontier frontier);
  class Nodes;
  // A posting list of this batch: the indices of its entries indexed under one value.
  struct Posting {
    std::string prefix;             // kind, value, NUL: the key before be64(first index)
    std::vector<uint64_t> indices;  // ascending, without repeats
    std::vector<uint8_t> slots;     // 'E' lists: each index's exchange within the bucket
  };
  static constexpr size_t kIndexedFields = 8;
  // Tree levels per tile level, and hashes per tile.
  static constexpr uint32_t kTileHeight = 8;
  static constexpr uint64_t kTileWidth = 256;
  static constexpr uint32_t kTileLevels = 64 / kTileHeight;

  // Frontier callback: appends a completed node on a tiled level (0, 8, 16, …)
  // to the hashes this batch adds to its tile, staging them into `batch` when
  // the tile becomes full.
  void AddNode(audit::NodeId id, const audit::Hash& hash, rocksdb::WriteBatch& batch);
  // Stages the batch's open audit value into `batch`, if it holds entries.
  void StageValue(rocksdb::WriteBatch& batch);
  // Opens a new audit value when the open one is full; returns the next index.
  uint64_t NextIndex(rocksdb::WriteBatch& batch);
  // Adds the entry serialized as value_[at, end) (after its length) with index `index`: its leaf
  // to the tree, its values to the posting lists, its time to the batch's.
  void Added(size_t at, uint64_t index, rocksdb::WriteBatch& batch);
  // Adds `index` to the batch's posting list of each value `e` is indexed under.
  void IndexEntry(const EntryFacts& e, uint64_t index);
  // The batch's posting list of (kind, value), `field` being the indexed field
  // (0 … kIndexedFields - 1) it comes from.
  Posting& PostingFor(size_t field, char kind, std::string_view value);
  // Stages the batch's posting lists into `batch`, in key order, and empties them.
  void StagePostings(rocksdb::WriteBatch& batch);
  // `size`, or the latest checkpoint's size when 0; OUT_OF_RANGE (naming `field`)
  // beyond the durable log.
  absl::StatusOr<uint64_t> SizeOrLatest(uint64_t size, std::string_view field) const;

  Store* const store_;
  const Options options_;
  const audit::Ed25519Signer signer_;
  // Committer thread only.
  audit::MerkleFrontier frontier_;
  uint64_t stored_format_ = 0;  // the data dir's audit_format; 0 before any entry
  // Per tile level, the hashes (32 bytes each) this batch adds to the level's
  // current tile; merged (appended) into the stored tile by BeforeWrite, or by
  // AddNode when they complete it.
  std::array<std::string, kTileLevels> tile_adds_;
  // This batch's posting lists. The lists (and their buffers) are kept from
  // batch to batch; the first num_postings_ are this batch's. posting_ids_
  // finds a list by its key prefix (a view of the list's own prefix, which the
  // deque never moves); recent_postings_ holds, per indexed field, the list the
  // previous entry's value went to (an exchange's entries share most values).
  std::deque<Posting> postings_;
  size_t num_postings_ = 0;
  absl::flat_hash_map<absl::string_view, uint32_t> posting_ids_;
  std::array<uint32_t, kIndexedFields> recent_postings_{};  // ids + 1; 0 = none
  // Scratch buffers of Append and BeforeWrite, kept for their capacity.
  std::string prefix_scratch_;
  std::string value_;  // the batch's open audit value: entries from value_first_
  uint64_t value_first_ = 0;
  size_t value_entries_ = 0;
  std::string bucket_scratch_;  // an exchange id's bucket (IndexEntry)
  std::string key_scratch_;     // a posting list's key (BeforeWrite)
  std::string deltas_scratch_;  // and its value
  std::vector<uint32_t> order_scratch_;
  bool batch_has_entries_ = false;
  uint64_t batch_first_index_ = 0;
  absl::Time batch_min_time_;
  uint64_t last_checkpoint_size_ = 0;
  absl::Time last_checkpoint_time_ = absl::InfinitePast();
  // What was written as of the last batch (AbortBatch goes back to it).
  struct Written {
    audit::MerkleFrontier frontier;
    uint64_t stored_format = 0;
    uint64_t last_checkpoint_size = 0;
    absl::Time last_checkpoint_time = absl::InfinitePast();
  };
  Written written_;
  void MarkWritten();
  std::atomic<uint64_t> durable_size_{0};
};

}  // namespace corridor::broker
