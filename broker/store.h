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
  static absl::StatusOr<std::unique_ptr<Store>> Open(const std::filesystem::path& dir);
  ~Store();

  rocksdb::DB* db() const { return db_.get(); }
  rocksdb::ColumnFamilyHandle* cf(Cf which) const { return handles_[which]; }

  // Point read. NOT_FOUND when absent. Thread-safe.
  absl::StatusOr<std::string> Get(Cf which, std::string_view key) const;

  // Writes a batch, synced (fsync before returning) or not. Thread-safe (the
  // Committer is the usual caller).
  absl::Status Write(rocksdb::WriteBatch* batch, bool sync);

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
  std::unique_ptr<rocksdb::DB> db_;
  std::vector<rocksdb::ColumnFamilyHandle*> handles_;
  std::atomic<uint64_t> synced_writes_{0};
  std::atomic<uint64_t> keys_written_{0};
  std::atomic<uint64_t> bytes_written_{0};
};

}  // namespace corridor::broker
