// The broker's RocksDB store: one DB, column families by purpose, and the key
// encodings every part of the core agrees on.
//
//   messages       agency \0 client_message_id            -> store.v1.StoredMessage (also the
//                                                           dedupe record)
//   deliveries     agency \0 be64(seq)                    -> v1.Delivery (already redacted;
//                                                           its seq is the key's)
//   expiry         be64(unix ms) be64(exchange seq)       -> messages key
//   dedupe         (unused since store format 2)
//   subscriptions  agency \0 name                         -> store.v1.SubscriptionRecord
//   acks           agency \0 name \0 be64(seq)            -> "" (acks above the ack floor)
//   meta           name                                   -> value (counters)
//   audit          be64(index of the first entry)         -> the entries of one batch (format 2:
//                  of one AuditLog::Append; at most 1024, 4096 in format 2), each
//                  varint(length) + v1.AuditEntry bytes (the leaf data)
//   audit_index    kind + key \0 be64(first index)        -> the indices of a batch's entries
//                  indexed under key: the rest as varint deltas after the first. Kinds:
//                  'A' agency (actor, sender, recipient), 'O' officer, 'R' case,
//                  'E' exchange-id bucket ("<prefix>-<n / 64>" of id "<prefix>-<n>"; its
//                  value gives each index's n % 64 as a byte before the delta to the next),
//                  'X' exchange id of another shape (format 2: every exchange id),
//                  'M' client message id (format 3: not on acks and redeliveries)
//                  'T' be64(unix ms) be64(first index)     -> be64(first index of a batch)
//   audit_tiles    tile level(1) be64(tile index)         -> up to 256 32-byte hashes of tree
//                  level 8 * tile level, from 256 * tile index (RFC 9162; level 0 = leaf hashes);
//                  format 3 appends each batch's hashes as a merge operand ("corridor.Append")
//   checkpoints    be64(tree size)                        -> signed checkpoint note
//   meta "audit_format" -> be64(3) (2 is read and continued as 3); data dirs without it but
//                  with audit entries are refused
//   corridor_audit_format_3  (empty; created at open: older builds refuse the DB before
//                  replaying its WAL, whose tile merges they could not apply)
//   merkle         (unused since audit format 2; kept so older data dirs open and are refused)
//
// A full disk is a pause (see broker/README.md, "A full disk"): RocksDB logs to
// stderr, not to a LOG file beside the data; file preallocation is capped at
// kMaxPreallocationBytes; a WAL is replayed at start without a flush; a failed
// write leaves the DB stopped until Resume() succeeds.
//
// Lifetime: owned by ExchangeCore. Thread-safety: RocksDB handles are
// thread-safe; writes go through the Committer so they share synced batches.
#pragma once

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "rocksdb/db.h"

namespace corridor::broker {

// The one place rocksdb::Status becomes absl::Status.
absl::Status FromRocks(const rocksdb::Status& s, std::string_view what);

// Big-endian fixed-width encodings (keys sort numerically).
void AppendBe64(std::string* out, uint64_t v);
uint64_t ReadBe64(std::string_view bytes);  // bytes.size() >= 8

std::string DeliveryKey(std::string_view agency, uint64_t seq);
std::string DeliveryPrefix(std::string_view agency);  // agency \0
std::string SubscriptionKey(std::string_view agency, std::string_view name);
std::string AckKey(std::string_view agency, std::string_view name, uint64_t seq);
std::string AckPrefix(std::string_view agency, std::string_view name);
std::string MessageKey(std::string_view agency, std::string_view client_message_id);
// meta: the highest delivery seq handed out to `agency`, written when erasure
// deletes deliveries (the newest stored key may then be below it).
std::string DeliveryHeadKey(std::string_view agency);

// RocksDB preallocates each WAL and table file in blocks (fallocate on ext4
// and xfs) sized from the write buffer: ~70 MiB for a 64 MiB memtable, taken at
// once from a volume that may not have it. The store caps every block here.
inline constexpr size_t kMaxPreallocationBytes = 1 << 20;

// Free space that opening the store needs beyond a new MANIFEST: the first
// WAL block, the OPTIONS file and the MANIFEST's own growth.
inline constexpr uint64_t kOpenReserveBytes = 4 << 20;

class Store {
 public:
  enum Cf {
    kMessages,
    kDeliveries,
    kDedupe,
    kSubscriptions,
    kAcks,
    kMeta,
    kAudit,
    kAuditIndex,
    kLegacyMerkle,  // audit format 1 only; never read or written
    kCheckpoints,
    kExpiry,
    kAuditTiles,
    // Never written. Its presence makes a build from before audit format 3 fail
    // to open the DB ("Column families not opened") instead of replaying a WAL
    // that holds tile merges it cannot apply: RocksDB would stop the replay at
    // the first merge and drop every later write.
    kFormat3Marker,
    kNumCfs
  };

  // Opens (creating if missing) the DB in `dir`. FAILED_PRECONDITION when another
  // process holds it (RocksDB's LOCK), INTERNAL for corruption or I/O errors.
  // RESOURCE_EXHAUSTED, before anything is written, when the file system has
  // less free space than opening needs (naming both amounts); an open that
  // still runs out of space removes the files it created, so a failed start
  // never leaves the disk fuller than it found it.
  static absl::StatusOr<std::unique_ptr<Store>> Open(const std::filesystem::path& dir);
  ~Store();

  rocksdb::DB* db() const { return db_.get(); }
  rocksdb::ColumnFamilyHandle* cf(Cf which) const { return handles_[which]; }

  // Point read. NOT_FOUND when absent. Thread-safe.
  absl::StatusOr<std::string> Get(Cf which, std::string_view key) const;

  // Writes a batch, synced (fsync before returning) or not. Thread-safe (the
  // Committer is the usual caller). On failure nothing of the batch is visible
  // and RocksDB refuses every later write until Resume(): RESOURCE_EXHAUSTED
  // when the disk is full, UNAVAILABLE for other I/O errors. The message names
  // the data dir, never a file in it (RocksDB's own text goes to stderr).
  absl::Status Write(rocksdb::WriteBatch* batch, bool sync);

  // Clears a write error once its cause is gone: RocksDB flushes the memtables
  // and starts a new WAL (the failed write's bytes in the old one are never
  // replayed). OK when there was nothing to clear. Fails (the same way as
  // Write) while the disk is still full; UNAVAILABLE while RocksDB's own
  // recovery is running. Thread-safe.
  absl::Status Resume();

  // The highest seq stored for `agency` in deliveries, 0 when none.
  absl::StatusOr<uint64_t> LastDeliverySeq(std::string_view agency) const;

  // Reads a big-endian counter from meta; 0 when absent.
  absl::StatusOr<uint64_t> GetCounter(std::string_view name) const;

  // Total synced writes issued (for the load generator's fsync-vs-ack check).
  uint64_t synced_writes() const { return synced_writes_.load(std::memory_order_relaxed); }
  // Total keys (puts and deletes) carried by those writes.
  uint64_t keys_written() const { return keys_written_.load(std::memory_order_relaxed); }
  // Total bytes of those writes' batches (what went into the WAL, before its
  // framing and checksums).
  uint64_t bytes_written() const { return bytes_written_.load(std::memory_order_relaxed); }

 private:
  Store() = default;
  // The write error in the form callers see (see Write).
  absl::Status WriteError(const rocksdb::Status& s, std::string_view what) const;

  std::filesystem::path dir_;
  std::unique_ptr<rocksdb::Env> env_;        // the capped-preallocation file system; outlives db_
  std::shared_ptr<rocksdb::Logger> logger_;  // RocksDB's info log: stderr
  std::unique_ptr<rocksdb::DB> db_;
  std::vector<rocksdb::ColumnFamilyHandle*> handles_;
  std::atomic<uint64_t> synced_writes_{0};
  std::atomic<uint64_t> keys_written_{0};
  std::atomic<uint64_t> bytes_written_{0};
};

}  // namespace corridor::broker
