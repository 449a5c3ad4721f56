#include "broker/exchange_core.h"

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <filesystem>
#include <map>
#include <mutex>
#include <set>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "broker/audit/internal/crypto_util.h"
#include "broker/audit_log.h"
#include "broker/committer.h"
#include "broker/delivery_hub.h"
#include "broker/disk_guard.h"
#include "broker/store.h"
#include "broker/validation.h"
#include "common/status_macros.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/util/time_util.h"
#include "google/protobuf/wire_format_lite.h"

namespace corridor::broker {
namespace {

using google::protobuf::util::TimeUtil;

constexpr char kNextExchangeSeq[] = "next_exchange_seq";
constexpr char kExchangesStored[] = "exchanges_stored";
// Store layout version (meta "store_format"). 2: messages keyed by sender +
// client message id (the dedupe record), deliveries without seq in the value.
constexpr uint64_t kStoreFormat = 2;
constexpr char kStoreFormatKey[] = "store_format";
constexpr uint32_t kMaxInFlightLimit = 4096;
constexpr uint32_t kMaxBatchLimit = 512;
constexpr absl::Duration kErasureSweepInterval = absl::Seconds(1);
// The same security event (same actor, same words) again within this window
// is counted, not written: one summary entry when the window ends.
constexpr absl::Duration kSecurityRepeatWindow = absl::Seconds(10);
// The hub subscription through which a peer exchange's agency's queue (its
// outbox) drains into the link. Agencies of a peer never subscribe themselves.
constexpr char kOutboxSubscription[] = "federation";

google::protobuf::Timestamp ToProto(absl::Time t) {
  return TimeUtil::NanosecondsToTimestamp(absl::ToUnixNanos(t));
}

// With a digest fetched once and a context per thread (crypto_util.h): the
// one-shot SHA256() fetches the algorithm on every call in OpenSSL 3.
std::string Sha256(std::string_view bytes) {
  return std::string(audit::internal::AsView(audit::internal::Sha256({bytes})));
}

// Runs of fields every audit entry about an exchange shares (its collection,
// disclosures and denials, serialized once per exchange; and its erasure).
struct EntryParts {
  std::string times_actor;   // fields 3..7: broker and sender time; actor, officer if any
  std::string about;         // fields 10..17: exchange, message, sender, kind … grading
  std::string purpose_case;  // fields 22..23: purpose, case ref
  std::string federation;    // fields 33..34 of an exchange from a peer: its domain, its origin
  size_t size() const {
    return times_actor.size() + about.size() + purpose_case.size() + federation.size();
  }
};

// `actor` is the sending node (with the envelope's officer); none for what the
// broker does on its own (erasure).
EntryParts SharedEntryParts(const v1::Envelope& e, const google::protobuf::Timestamp& broker_time,
                            const PeerIdentity* actor) {
  using E = v1::AuditEntry;
  EntryParts p;
  const EntryWriter a(&p.times_actor);
  a.Message(E::kBrokerTimeFieldNumber, broker_time);
  if (e.has_observed_time()) a.Message(E::kSenderTimeFieldNumber, e.observed_time());
  if (actor != nullptr) {
    a.String(E::kActorAgencyIdFieldNumber, actor->agency_id);
    a.String(E::kActorNodeFieldNumber, actor->node);
    a.String(E::kOfficerIdFieldNumber, e.officer_id());
  }
  const EntryWriter b(&p.about);
  b.String(E::kExchangeIdFieldNumber, e.exchange_id());
  b.String(E::kClientMessageIdFieldNumber, e.client_message_id());
  b.String(E::kSenderAgencyIdFieldNumber, e.sender().agency_id());
  b.Enum(E::kKindFieldNumber, e.kind());
  b.String(E::kTopicFieldNumber, e.topic());
  b.String(E::kHandlingCodeFieldNumber, e.handling_code());
  b.Enum(E::kClassificationFieldNumber, e.classification());
  b.Message(E::kGradingFieldNumber, e.grading());
  const EntryWriter c(&p.purpose_case);
  c.String(E::kPurposeFieldNumber, e.purpose());
  c.String(E::kCaseRefFieldNumber, e.case_ref());
  if (e.has_origin()) {
    const EntryWriter f(&p.federation);
    f.String(E::kPeerDomainFieldNumber, e.origin().domain());
    f.Message(E::kOriginFieldNumber, e.origin());
  }
  return p;
}

}  // namespace

absl::StatusOr<SubscribeParams> ParamsFromOpen(const v1::SubscriptionOpen& open) {
  SubscribeParams p;
  CORRIDOR_RETURN_IF_ERROR(ValidateSubscriptionName(open.name(), "open.name"));
  p.name = open.name();
  if (open.topic_filters_size() > 64) {
    return absl::InvalidArgumentError("open.topic_filters: more than 64 filters");
  }
  for (int i = 0; i < open.topic_filters_size(); ++i) {
    CORRIDOR_RETURN_IF_ERROR(
        ValidateTopicFilter(open.topic_filters(i), absl::StrCat("open.topic_filters[", i, "]")));
    p.topic_filters.push_back(open.topic_filters(i));
  }
  if (!v1::StartPosition_IsValid(open.start())) {
    return absl::InvalidArgumentError("open.start: unknown value");
  }
  p.start = open.start();
  if (p.start == v1::START_POSITION_FROM_SEQ && open.start_seq() == 0) {
    return absl::InvalidArgumentError(
        "open.start_seq: required (>= 1) with START_POSITION_FROM_SEQ");
  }
  p.start_seq = open.start_seq();
  if (open.max_in_flight() > kMaxInFlightLimit) {
    return absl::InvalidArgumentError(
        absl::StrCat("open.max_in_flight: at most ", kMaxInFlightLimit));
  }
  if (open.max_in_flight() != 0) p.max_in_flight = open.max_in_flight();
  if (open.max_batch() > kMaxBatchLimit) {
    return absl::InvalidArgumentError(absl::StrCat("open.max_batch: at most ", kMaxBatchLimit));
  }
  p.max_batch = std::max<uint32_t>(1, open.max_batch());
  if (open.ack_deadline_ms() != 0) {
    if (open.ack_deadline_ms() < 1000) {
      return absl::InvalidArgumentError("open.ack_deadline_ms: at least 1000");
    }
    p.ack_deadline = absl::Milliseconds(open.ack_deadline_ms());
  }
  return p;
}

std::shared_ptr<const DecisionPoint> MakePermitAllDecisionPoint() {
  class PermitAll final : public DecisionPoint {
   public:
    Decision Decide(const v1::Envelope&, const policy::Agency&, const policy::Agency&,
                    absl::Time) const override {
      Decision d;
      d.permit = true;
      d.permit_rules = {"permit-all"};
      d.reasons = {"no policy configured: every registered agency may receive"};
      d.policy_version = version_;
      return d;
    }
    absl::StatusOr<std::string> Redact(std::string_view envelope,
                                       const std::vector<std::string>& paths) const override {
      if (paths.empty()) return std::string(envelope);
      return absl::UnimplementedError("the permit-all decision point never redacts");
    }
    const std::string& version() const override { return version_; }

   private:
    const std::string version_ = "permit-all";
  };
  return std::make_shared<PermitAll>();
}

class ExchangeCore::Impl {
 public:
  // agency -> subscription name -> topic filters
  using Routes = std::map<std::string, std::map<std::string, std::vector<std::string>>>;

  Impl(const BrokerConfig& config, std::unique_ptr<Store> store,
       std::shared_ptr<const DecisionPoint> dp)
      : config_(config),
        store_(std::move(store)),
        decision_point_(std::move(dp)),
        committer_(
            store_.get(),
            Committer::Hooks{
                .before_write = [this](rocksdb::WriteBatch& b) { return BeforeWrite(b); },
                .after_batch = [this](const absl::Status& s,
                                      bool synced) { AfterBatch(s, synced); },
                .on_idle = [this] { OnIdle(); },
                .on_pause_change = [this](const absl::Status& s) { RecordStorageEvent(s); }}),
        disk_guard_(config.data_dir, config.storage.free_space_floor_bytes),
        hub_(
            store_.get(), &committer_,
            [this](const std::string& agency, const std::string& name,
                   const std::vector<std::string>& filters) { SetRoute(agency, name, filters); },
            [this](std::vector<PreparedEntry>& entries, rocksdb::WriteBatch& batch) {
              audit_->Append(entries, batch);
            },
            HubOptions(config.limits)) {}

  static DeliveryHub::Options HubOptions(const LimitSettings& limits) {
    DeliveryHub::Options o;
    o.redelivery_backoff_max = limits.redelivery_backoff_max;
    o.redelivery_audit_window = limits.redelivery_audit_window;
    return o;
  }

  absl::Status Recover() {
    AuditLog::Options audit_options;
    audit_options.origin = absl::StrCat(config_.registry->trust_domain, "/", config_.broker_id);
    audit_options.key_file = config_.audit.key_file.empty()
                                 ? std::filesystem::path(config_.data_dir) / "audit-signing.key"
                                 : std::filesystem::path(config_.audit.key_file);
    audit_options.checkpoint_every = config_.audit.checkpoint_every;
    audit_options.checkpoint_interval = config_.audit.checkpoint_interval;
    CORRIDOR_ASSIGN_OR_RETURN(audit_, AuditLog::Open(store_.get(), audit_options));
    CORRIDOR_ASSIGN_OR_RETURN(uint64_t next, store_->GetCounter(kNextExchangeSeq));
    CORRIDOR_ASSIGN_OR_RETURN(uint64_t format, store_->GetCounter(kStoreFormatKey));
    if (next != 0 && format != kStoreFormat) {
      return absl::FailedPreconditionError(absl::StrCat(
          "data_dir ", config_.data_dir, " holds store format ", format, "; this corridord reads ",
          kStoreFormat, " (written by an older build: start with an empty data_dir)"));
    }
    if (format == 0) {
      std::string v;
      AppendBe64(&v, kStoreFormat);
      rocksdb::WriteBatch batch;
      batch.Put(store_->cf(Store::kMeta), kStoreFormatKey, v);
      CORRIDOR_RETURN_IF_ERROR(store_->Write(&batch, /*sync=*/true));
    }
    next_exchange_seq_.store(next == 0 ? 1 : next);
    CORRIDOR_ASSIGN_OR_RETURN(exchanges_committed_, store_->GetCounter(kExchangesStored));
    exchanges_stored_.store(exchanges_committed_);  // all time, like deliveries
    std::vector<std::string> agencies;
    for (const auto& a : config_.registry->agencies) agencies.push_back(a.id);
    CORRIDOR_RETURN_IF_ERROR(hub_.Recover(agencies));
    for (const auto& a : agencies) heads_[a] = hub_.head(a);
    for (const auto& rec : hub_.subscriptions()) {
      SetRoute(rec.agency_id(), rec.name(),
               {rec.topic_filters().begin(), rec.topic_filters().end()});
    }
    {
      absl::MutexLock lock(&outbox_mu_);
      for (const auto& a : config_.registry->agencies) {
        if (!config_.registry->IsLocal(a))
          outbox_[a.id] = {.domain = a.domain, .head = heads_[a.id]};
      }
      for (const auto& rec : hub_.subscriptions()) {
        auto it = outbox_.find(rec.agency_id());
        if (it != outbox_.end() && rec.name() == kOutboxSubscription && rec.ack_floor() > 0) {
          it->second.answered = rec.ack_floor() - 1;
        }
      }
    }
    started_at_ = absl::Now();
    return absl::OkStatus();
  }

  void Start() {
    disk_guard_.SetChangeHook([this](bool below, uint64_t free_bytes, uint64_t floor_bytes) {
      RecordFloorEvent(below, free_bytes, floor_bytes);
    });
    if (const DiskGuard::State g = disk_guard_.state(); g.below_floor) {
      RecordFloorEvent(true, g.free_bytes, g.floor_bytes);  // started below it
    }
    committer_.Start();
    hub_.Start();
  }

  void Shutdown() {
    std::call_once(shutdown_once_, [this] {
      hub_.Stop();
      FlushSecurityRepeats(absl::InfiniteFuture());  // the counts of windows still open
      committer_.Stop();
    });
  }

  void Submit(const PeerIdentity& peer, v1::Envelope env, SubmitCallback done) {
    if (peer.role != PeerRole::kAgency) {
      RecordSecurityEvent(peer,
                          absl::StrCat("refused by role: ", std::string(PeerRoleName(peer.role)),
                                       " called Exchange.Submit"));
      done(absl::PermissionDeniedError("only agency nodes may submit"));
      return;
    }
    // A full disk is a pause: below the free-space floor nothing new is taken.
    if (absl::Status s = disk_guard_.Admit(); !s.ok()) {
      done(s);
      return;
    }
    const policy::Agency* sender = config_.registry->FindLocal(peer.agency_id);
    if (sender == nullptr) {
      done(absl::UnauthenticatedError(
          absl::StrCat("agency '", peer.agency_id, "' is not registered")));
      return;
    }
    EnvelopeLimits limits;
    limits.max_message_bytes = config_.max_message_bytes;
    if (auto s = ValidateEnvelope(env, peer, *config_.registry, limits, absl::Now()); !s.ok()) {
      if (absl::IsPermissionDenied(s)) {
        RecordSecurityEvent(peer, absl::StrCat("spoof attempt refused: ", s.message()));
      }
      done(s);
      return;
    }
    Source source{.actor = &peer,
                  .sender = sender,
                  .transfer = nullptr,
                  .message_key = MessageKey(peer.agency_id, env.client_message_id())};
    auto staged = Stage(source, std::move(env));
    if (!staged.ok()) {
      done(staged.status());
      return;
    }
    std::shared_ptr<Staged> state = *std::move(staged);
    committer_.Enqueue(Committer::Task{
        .prepare = [this, state](rocksdb::WriteBatch& batch) { return Commit(*state, batch); },
        .done =
            [state, done = std::move(done)](absl::Status s) {
              if (!s.ok()) {
                done(s);
              } else {
                done(std::move(state->response));
              }
            }});
  }

  void SubmitTransfer(const PeerIdentity& peer, v1::Transfer t, TransferCallback done) {
    v1::TransferResult result;
    result.set_recipient_agency_id(t.recipient_agency_id().substr(0, 64));
    result.set_seq(t.seq());
    auto refuse = [&](const absl::Status& s) {
      if (absl::IsPermissionDenied(s)) {
        RecordSecurityEvent(peer, absl::StrCat("transfer refused: ", s.message()));
      }
      result.set_code(static_cast<int32_t>(s.code()));
      result.set_error_message(std::string(s.message().substr(0, 1024)));
      done(TransferOutcome{.result = std::move(result)});
    };
    const std::string& own = config_.registry->trust_domain;
    if (peer.role != PeerRole::kBroker ||
        config_.federation.FindPeer(peer.trust_domain) == nullptr) {
      refuse(absl::PermissionDeniedError("only listed peer exchanges may transfer"));
      return;
    }
    // A full disk is a pause for peers too (the sender keeps it queued).
    if (absl::Status s = disk_guard_.Admit(); !s.ok()) {
      refuse(s);
      return;
    }
    // The path first: a loop is named as one whatever else is wrong.
    if (t.hops().empty()) {
      refuse(absl::InvalidArgumentError("transfer.hops: required (the origin domain first)"));
      return;
    }
    for (int i = 0; i < t.hops_size(); ++i) {
      if (t.hops(i) == own) {
        refuse(absl::PermissionDeniedError(absl::StrCat(
            "transfer.hops[", i, "]: loop: the exchange was already stored in ", own)));
        return;
      }
    }
    if (static_cast<uint32_t>(t.hops_size()) > config_.federation.max_hops) {
      refuse(absl::PermissionDeniedError(
          absl::StrCat("transfer.hops: ", t.hops_size(), " domains crossed, more than ",
                       "federation.max_hops ", config_.federation.max_hops)));
      return;
    }
    if (t.hops(t.hops_size() - 1) != peer.trust_domain) {
      refuse(absl::PermissionDeniedError(absl::StrCat(
          "transfer.hops: the last hop must be the sending peer ", peer.trust_domain)));
      return;
    }
    if (t.hops_size() > 1) {
      refuse(absl::PermissionDeniedError(absl::StrCat(
          "transfer.hops: the exchange comes from ", t.hops(0), " through ", peer.trust_domain,
          "; a transferred exchange is not sent on to a third domain")));
      return;
    }
    const policy::Agency* recipient = config_.registry->Find(t.recipient_agency_id());
    if (recipient == nullptr) {
      refuse(
          absl::InvalidArgumentError(absl::StrCat("transfer.recipient_agency_id: unknown agency '",
                                                  t.recipient_agency_id().substr(0, 64), "'")));
      return;
    }
    if (!config_.registry->IsLocal(*recipient)) {
      refuse(absl::PermissionDeniedError(absl::StrCat(
          "transfer.recipient_agency_id: '", recipient->id, "' is an agency of ", recipient->domain,
          ", not of this exchange; a transfer is not sent on to a third domain")));
      return;
    }
    EnvelopeLimits limits;
    limits.max_message_bytes = config_.max_message_bytes;
    if (auto s = ValidateTransferredEnvelope(t.envelope(), peer.trust_domain, *config_.registry,
                                             limits, absl::Now());
        !s.ok()) {
      refuse(s);
      return;
    }
    const policy::Agency* sender = config_.registry->Find(t.envelope().sender().agency_id());
    // Its own key space in the messages CF (agency ids never start with 0x01).
    std::string key = "\x01" + peer.trust_domain;
    key.push_back('\0');
    key += t.envelope().exchange_id();
    key.push_back('\0');
    key += recipient->id;
    Source source{.actor = &peer, .sender = sender, .transfer = &t, .message_key = std::move(key)};
    v1::Envelope env = std::move(*t.mutable_envelope());
    auto staged = Stage(source, std::move(env));
    if (!staged.ok()) {
      refuse(staged.status());
      return;
    }
    std::shared_ptr<Staged> state = *std::move(staged);
    committer_.Enqueue(Committer::Task{
        .prepare = [this, state](rocksdb::WriteBatch& batch) { return Commit(*state, batch); },
        .done =
            [state, result = std::move(result), done = std::move(done)](absl::Status s) mutable {
              TransferOutcome out;
              if (!s.ok()) {
                result.set_code(static_cast<int32_t>(s.code()));
                result.set_error_message(std::string(s.message().substr(0, 1024)));
              } else {
                result.set_exchange_id(state->response.exchange_id());
                result.set_duplicate(state->response.duplicate());
                result.set_delivered(state->response.recipients_size() > 0);
                out.stored = true;
                out.collection_index = state->collection_index;
              }
              out.result = std::move(result);
              done(std::move(out));
            }});
  }

  uint64_t AttachOutbox(const PeerConfig& peer, const std::string& agency_id,
                        std::shared_ptr<DeliverySink> sink, OpenCallback opened) {
    const policy::Agency* a = config_.registry->Find(agency_id);
    if (a == nullptr || a->domain != peer.domain) {
      opened(absl::InvalidArgumentError(
          absl::StrCat("'", agency_id, "' is not an agency of ", peer.domain)));
      return 0;
    }
    PeerIdentity link;
    link.role = PeerRole::kBroker;
    link.trust_domain = peer.domain;
    link.spiffe_id = absl::StrCat("spiffe://", peer.domain, "/broker/", peer.broker);
    link.agency_id = agency_id;
    link.node = peer.broker;
    SubscribeParams params;
    params.name = kOutboxSubscription;
    params.max_in_flight = 1024;
    params.ack_deadline = absl::Seconds(60);
    return hub_.Attach(link, std::move(params), std::move(sink), std::move(opened));
  }

  void OutboxAnswered(const std::string& agency_id, uint64_t seq) {
    absl::MutexLock lock(&outbox_mu_);
    auto it = outbox_.find(agency_id);
    if (it != outbox_.end()) it->second.answered = std::max(it->second.answered, seq);
  }

  OutboxState Outbox(const std::string& domain) const {
    OutboxState out;
    std::vector<std::pair<std::string, uint64_t>> next;  // agency, first unanswered seq
    {
      absl::MutexLock lock(&outbox_mu_);
      for (const auto& [agency, o] : outbox_) {
        if (o.domain != domain || o.head <= o.answered) continue;
        out.backlog += o.head - o.answered;
        next.emplace_back(agency, o.answered + 1);
      }
    }
    for (const auto& [agency, seq] : next) {
      // Expired deliveries are erased: the first one still stored is the oldest.
      std::unique_ptr<rocksdb::Iterator> it(
          store_->db()->NewIterator(rocksdb::ReadOptions(), store_->cf(Store::kDeliveries)));
      const std::string prefix =
          DeliveryKey(agency, 0).substr(0, DeliveryKey(agency, 0).size() - 8);
      it->Seek(DeliveryKey(agency, seq));
      if (!it->Valid() || !it->key().starts_with(prefix)) continue;
      v1::Delivery d;
      if (!d.ParseFromArray(it->value().data(), static_cast<int>(it->value().size()))) continue;
      const absl::Time t =
          absl::FromUnixNanos(TimeUtil::TimestampToNanoseconds(d.envelope().broker_time()));
      if (out.oldest == absl::InfinitePast() || t < out.oldest) out.oldest = t;
    }
    return out;
  }

  void RecordReceipt(const PeerConfig& peer, const std::string& exchange_id,
                     const std::string& recipient, v1::TransferReceipt receipt,
                     std::function<void(absl::Status)> done) {
    v1::AuditEntry e;
    e.set_event(v1::AUDIT_EVENT_RECEIPT);
    *e.mutable_broker_time() = ToProto(absl::Now());
    e.set_actor_spiffe_id(absl::StrCat("spiffe://", peer.domain, "/broker/", peer.broker));
    e.set_recipient_agency_id(recipient);
    e.set_exchange_id(exchange_id);
    e.set_peer_domain(peer.domain);
    *e.mutable_receipt() = std::move(receipt);
    RecordEntry(std::move(e), std::move(done));
  }

  uint64_t Attach(const PeerIdentity& peer, SubscribeParams params,
                  std::shared_ptr<DeliverySink> sink, OpenCallback opened) {
    if (peer.role != PeerRole::kAgency || config_.registry->FindLocal(peer.agency_id) == nullptr) {
      opened(absl::PermissionDeniedError("only registered agency nodes may subscribe"));
      return 0;
    }
    return hub_.Attach(peer, std::move(params), std::move(sink), std::move(opened));
  }

  void Ack(uint64_t session, std::vector<uint64_t> seqs) { hub_.Ack(session, std::move(seqs)); }
  void CloseStreams() { hub_.CloseStreams(); }
  void Detach(uint64_t session) { hub_.Detach(session); }

  void Status(const PeerIdentity& caller, StatusCallback done) {
    v1::StatusResponse base;
    base.set_broker_id(config_.broker_id);
    base.set_trust_domain(config_.registry->trust_domain);
    base.set_version(CORRIDOR_VERSION);
    *base.mutable_started_at() = ToProto(started_at_);
    base.set_caller(caller.spiffe_id);
    base.set_policy_version(decision_point()->version());
    // Broker-wide traffic figures tell one agency about the others: admins only.
    if (caller.role == PeerRole::kAdmin) {
      base.set_exchanges_stored(exchanges_stored_.load(std::memory_order_relaxed));
      base.set_synced_writes(store_->synced_writes());
      base.set_keys_written(store_->keys_written());
      base.set_bytes_written(store_->bytes_written());
      base.set_audit_entries(audit_->durable_size());
    }
    FillStorageStatus(caller.role == PeerRole::kAdmin, base);
    hub_.FillStatus(caller, std::move(base), std::move(done));
  }

  void SetDecisionPoint(std::shared_ptr<const DecisionPoint> dp, const std::string& who) {
    std::string old_version = decision_point()->version();
    std::string new_version = dp->version();
    std::atomic_store(&decision_point_, std::move(dp));
    v1::AuditEntry e;
    e.set_event(v1::AUDIT_EVENT_POLICY_CHANGE);
    *e.mutable_broker_time() = ToProto(absl::Now());
    e.set_actor_spiffe_id(who);
    e.set_old_policy_version(old_version);
    e.set_new_policy_version(new_version);
    e.set_policy_version(new_version);
    RecordEntry(std::move(e), [](absl::Status) {});
  }

  // The first occurrence of an (actor, detail) pair in a window is written at
  // once; repeats within kSecurityRepeatWindow are counted into one summary
  // entry written when the window ends (FlushSecurityRepeats), so a client
  // repeating a refused call cannot grow the log without bound.
  void RecordSecurityEvent(const PeerIdentity& peer, const std::string& detail) {
    const absl::Time now = absl::Now();
    std::vector<v1::AuditEntry> out;
    {
      absl::MutexLock lock(&security_mu_);
      CollectSecurityRepeats(now, &out);
      auto [it, fresh] = security_repeats_.try_emplace(absl::StrCat(peer.spiffe_id, "\n", detail));
      SecurityRepeat& w = it->second;
      if (fresh) {
        w.start = now;
        w.peer = peer;
        w.detail = detail;
        out.push_back(SecurityEntry(peer, detail, now));
      } else {
        if (w.more++ == 0) w.first_more = now;
        w.last_more = now;
      }
    }
    for (v1::AuditEntry& e : out) RecordEntry(std::move(e), [](absl::Status) {});
  }

  // Writes the summaries of repeat windows that ended by `now`.
  void FlushSecurityRepeats(absl::Time now) {
    std::vector<v1::AuditEntry> out;
    {
      absl::MutexLock lock(&security_mu_);
      CollectSecurityRepeats(now, &out);
    }
    for (v1::AuditEntry& e : out) RecordEntry(std::move(e), [](absl::Status) {});
  }

  void RecordConsultation(const PeerIdentity& auditor, const std::string& query, uint64_t count,
                          std::function<void(absl::Status)> done) {
    v1::AuditEntry e;
    e.set_event(v1::AUDIT_EVENT_CONSULTATION);
    *e.mutable_broker_time() = ToProto(absl::Now());
    e.set_actor_spiffe_id(auditor.spiffe_id);
    e.set_actor_node(auditor.node);
    e.set_query(query);
    e.set_result_count(count);
    RecordEntry(std::move(e), std::move(done));
  }

  struct SecurityRepeat {
    absl::Time start;
    PeerIdentity peer;
    std::string detail;
    uint64_t more = 0;  // occurrences after the first
    absl::Time first_more, last_more;
  };

  static v1::AuditEntry SecurityEntry(const PeerIdentity& peer, const std::string& detail,
                                      absl::Time when) {
    v1::AuditEntry e;
    e.set_event(v1::AUDIT_EVENT_SECURITY);
    *e.mutable_broker_time() = ToProto(when);
    e.set_actor_spiffe_id(peer.spiffe_id);
    e.set_actor_agency_id(peer.agency_id);
    e.set_actor_node(peer.node);
    e.set_detail(detail);
    return e;
  }

  // Ends the windows that are over by `now`: a summary entry for each that
  // saw repeats.
  void CollectSecurityRepeats(absl::Time now, std::vector<v1::AuditEntry>* out)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(security_mu_) {
    for (auto it = security_repeats_.begin(); it != security_repeats_.end();) {
      const SecurityRepeat& w = it->second;
      if (now - w.start < kSecurityRepeatWindow) {
        ++it;
        continue;
      }
      if (w.more > 0) {
        out->push_back(SecurityEntry(
            w.peer,
            absl::StrCat(
                w.detail, " (repeated ", w.more, " more times between ",
                absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", w.first_more, absl::UTCTimeZone()), " and ",
                absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", w.last_more, absl::UTCTimeZone()), ")"),
            w.last_more));
      }
      security_repeats_.erase(it++);
    }
  }

  // Status: the storage pause (free space below the floor, or a failed write
  // not yet resumed).
  void FillStorageStatus(bool admin, v1::StatusResponse& out) {
    const DiskGuard::State g = disk_guard_.state();
    const absl::Status write = committer_.pause_status();
    if (!write.ok()) {
      out.set_storage_paused(true);
      out.set_storage_pause_reason(std::string(write.message()));
    } else if (g.below_floor) {
      out.set_storage_paused(true);
      out.set_storage_pause_reason(std::string(
          CheckFreeSpaceFloor(g.free_bytes, g.floor_bytes,
                              std::filesystem::path(config_.data_dir).filename().string())
              .message()));
    }
    if (!admin) return;
    out.set_storage_free_bytes(g.free_bytes);
    out.set_storage_floor_bytes(g.floor_bytes);
    *out.mutable_storage_alarm_since() = ToProto(g.since);
    out.set_storage_refused_submissions(g.refused);
  }

  // Audit and log: the free space crossed the floor (any thread).
  void RecordFloorEvent(bool below, uint64_t free_bytes, uint64_t floor_bytes) {
    std::string detail =
        below ? absl::StrCat("storage: free space ", free_bytes, " bytes (", HumanBytes(free_bytes),
                             ") fell below the floor of ", floor_bytes, " bytes (",
                             HumanBytes(floor_bytes), "): new submissions are refused")
              : absl::StrCat("storage: free space ", free_bytes, " bytes (", HumanBytes(free_bytes),
                             ") is back above the floor of ", floor_bytes, " bytes (",
                             HumanBytes(floor_bytes), "): submissions are accepted again");
    std::fprintf(stderr, "corridord: %s\n", detail.c_str());
    RecordEntry(BrokerSecurityEntry(std::move(detail)), [](absl::Status) {});
  }

  // Audit: the committer paused on a failed write or resumed (committer
  // thread). The pause itself cannot be written (the disk refused the write):
  // the entry at resumption tells both.
  void RecordStorageEvent(const absl::Status& s) {
    if (!s.ok()) {
      storage_paused_at_ = absl::Now();
      storage_pause_cause_ = std::string(s.message());
      return;
    }
    RecordEntry(BrokerSecurityEntry(absl::StrCat(
                    "storage: writes failed from ",
                    absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", storage_paused_at_, absl::UTCTimeZone()),
                    " (", storage_pause_cause_, ") and resumed at ",
                    absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", absl::Now(), absl::UTCTimeZone()),
                    "; the submissions of the failed writes were refused, none acknowledged")),
                [](absl::Status) {});
  }

  v1::AuditEntry BrokerSecurityEntry(std::string detail) const {
    PeerIdentity self;
    self.spiffe_id =
        absl::StrCat("spiffe://", config_.registry->trust_domain, "/broker/", config_.broker_id);
    return SecurityEntry(self, detail, absl::Now());
  }

  // One entry in its own group, durable when `done` runs.
  void RecordEntry(v1::AuditEntry entry, std::function<void(absl::Status)> done) {
    auto state = std::make_shared<v1::AuditEntry>(std::move(entry));
    committer_.Enqueue(Committer::Task{.prepare =
                                           [this, state](rocksdb::WriteBatch& batch) {
                                             std::vector<v1::AuditEntry> entries{*state};
                                             audit_->Append(entries, batch);
                                             return absl::OkStatus();
                                           },
                                       .done = std::move(done)});
  }

  // Routing interest of a subscription; Stage reads snapshots.
  void SetRoute(const std::string& agency, const std::string& name,
                const std::vector<std::string>& filters) {
    std::lock_guard<std::mutex> lock(routes_mu_);
    auto next = std::make_shared<Routes>(*routes_);
    (*next)[agency][name] = filters;
    routes_ = std::move(next);
  }
  std::shared_ptr<const Routes> routes_snapshot() const {
    std::lock_guard<std::mutex> lock(routes_mu_);
    return routes_;
  }

  const AuditLog* audit() const { return audit_.get(); }
  std::shared_ptr<const DecisionPoint> decision_point() const {
    return std::atomic_load(&decision_point_);
  }
  uint64_t synced_writes() const { return store_->synced_writes(); }

 private:
  // Who a staged exchange comes from.
  struct Source {
    const PeerIdentity* actor = nullptr;     // the agency node, or the peer broker
    const policy::Agency* sender = nullptr;  // the submitting agency (of the peer's domain)
    const v1::Transfer* transfer = nullptr;  // set for a transfer from a peer exchange
    std::string message_key;                 // the dedupe key
  };

  // RESOURCE_EXHAUSTED when the outbox to `domain` is at federation.outbox_max.
  absl::Status CheckOutboxRoom(const std::string& domain) const {
    uint64_t backlog = 0;
    {
      absl::MutexLock lock(&outbox_mu_);
      for (const auto& [agency, o] : outbox_) {
        if (o.domain == domain && o.head > o.answered) backlog += o.head - o.answered;
      }
    }
    if (backlog < config_.federation.outbox_max) return absl::OkStatus();
    return absl::ResourceExhaustedError(
        absl::StrCat("the outbox to peer exchange ", domain, " holds ", backlog,
                     " transfers (federation.outbox_max ", config_.federation.outbox_max,
                     "): the peer is not taking them; try again later"));
  }

  // One submission, decided and serialized on the submitting thread; the
  // committer only dedupes, numbers and stages it.
  struct Staged {
    std::string message_key;   // sender agency \0 client_message_id; the dedupe key
    std::string message_head;  // StoredMessage bytes without recipients
    std::string expiry_key;    // empty without expires_at
    struct Recipient {
      std::string agency_id;
      // Its wire is the stored value (no seq); seq set at commit.
      std::shared_ptr<QueuedDelivery> delivery;
      size_t entry = 0;                   // its disclosure entry
      store::v1::RecipientRecord record;  // seq set at commit
      std::string peer_domain;            // set for a peer exchange's agency (a transfer)
    };
    std::vector<Recipient> recipients;  // permitted ones
    std::vector<PreparedEntry> entries;
    v1::SubmitResponse response;    // the reply if this is the first submission
    bool inbound = false;           // a transfer from a peer exchange
    uint64_t collection_index = 0;  // inbound: its collection entry's index (set at commit)
  };

  // Caller's thread: stamp, route, decide, redact, serialize, build the audit
  // entries. Nothing here touches committer state.
  absl::StatusOr<std::shared_ptr<Staged>> Stage(const Source& source, v1::Envelope env) {
    const PeerIdentity& peer = *source.actor;
    const policy::Agency& sender = *source.sender;
    const v1::Transfer* transfer = source.transfer;
    auto st = std::make_shared<Staged>();
    const absl::Time now = absl::Now();
    const uint64_t exchange_seq = next_exchange_seq_.fetch_add(1, std::memory_order_relaxed);
    if (transfer == nullptr) {
      env.mutable_sender()->set_agency_id(peer.agency_id);
      env.mutable_sender()->set_node(peer.node);
    } else {
      // From a peer exchange: the origin's stamp moves into `origin`; the
      // sender stays the originating agency.
      v1::Origin* origin = env.mutable_origin();
      origin->set_domain(peer.trust_domain);
      origin->set_exchange_id(env.exchange_id());
      origin->set_agency_id(env.sender().agency_id());
      *origin->mutable_broker_time() = env.broker_time();
      for (const std::string& hop : transfer->hops()) origin->add_hops(hop);
      origin->add_hops(config_.registry->trust_domain);
      st->inbound = true;
    }
    env.set_exchange_id(absl::StrCat(config_.broker_id, "-", exchange_seq));
    *env.mutable_broker_time() = ToProto(now);
    st->message_key = source.message_key;
    if (env.has_expires_at()) {
      AppendBe64(&st->expiry_key,
                 static_cast<uint64_t>(TimeUtil::TimestampToMilliseconds(env.expires_at())));
      AppendBe64(&st->expiry_key, exchange_seq);
    }

    // Route: explicit addressees first (in the sender's order), then topic
    // subscribers. A transfer from a peer goes to the one recipient it names.
    std::vector<std::pair<std::string, bool>> candidates;  // agency, addressed
    if (transfer != nullptr) {
      candidates.emplace_back(transfer->recipient_agency_id(), transfer->addressed());
    } else {
      std::set<std::string> seen{peer.agency_id};  // never back to the sender
      for (const std::string& a : env.addressees()) {
        if (seen.insert(a).second) candidates.emplace_back(a, true);
      }
      std::shared_ptr<const Routes> routes = routes_snapshot();
      for (const auto& [agency, subs] : *routes) {
        if (seen.count(agency)) continue;
        bool match = false;
        for (const auto& [name, filters] : subs) {
          for (const auto& f : filters) match = match || TopicMatches(f, env.topic());
        }
        if (match && seen.insert(agency).second) candidates.emplace_back(agency, false);
      }
    }

    // Decide every candidate first: the payload's holder is the first permitted
    // recipient without redactions.
    std::shared_ptr<const DecisionPoint> dp = decision_point();
    struct Decided {
      std::string agency_id;
      bool addressed;
      Decision decision;
      std::string peer_domain;  // a peer exchange's agency: a transfer
    };
    std::vector<Decided> decided;
    for (const auto& [agency_id, addressed] : candidates) {
      const policy::Agency* recipient = config_.registry->Find(agency_id);
      if (recipient == nullptr) continue;  // a stale subscription of a removed agency
      Decided& d = decided.emplace_back(
          Decided{agency_id, addressed, dp->Decide(env, sender, *recipient, now), ""});
      if (!config_.registry->IsLocal(*recipient)) {
        d.peer_domain = recipient->domain;
        if (transfer != nullptr) {
          // Only the receiving side's own recipients (ValidateTransfer).
          return absl::InternalError("a transfer routed to another domain");
        }
        if (config_.federation.FindPeer(recipient->domain) == nullptr) {
          return absl::FailedPreconditionError(
              absl::StrCat("'", agency_id, "' is an agency of ", recipient->domain,
                           ", which is not in federation.peers: no link carries exchanges there"));
        }
        if (d.decision.permit) {
          CORRIDOR_RETURN_IF_ERROR(CheckOutboxRoom(recipient->domain));
        }
      }
      if (transfer != nullptr && d.decision.permit) {
        // The sending side's redactions stay (listed first); this side's add to them.
        std::vector<std::string> all(transfer->redacted_fields().begin(),
                                     transfer->redacted_fields().end());
        for (std::string& f : d.decision.redact) {
          if (std::find(all.begin(), all.end(), f) == all.end()) all.push_back(std::move(f));
        }
        d.decision.redact = std::move(all);
      }
    }

    // The envelope is serialized once: its bytes go into the message record and
    // into every unredacted delivery as wire-format fields, and the payload hash
    // is taken over the payload's slice of them.
    const std::string env_bytes = env.SerializeAsString();
    CORRIDOR_ASSIGN_OR_RETURN(const FieldSpan payload, FindPayload(env_bytes));
    const std::string payload_sha256 = Sha256(payload.contents);
    // The audit entries are built in wire form (audit_entry_wire.h): the runs
    // of fields the collection, disclosure and denial entries share are
    // serialized once here.
    const EntryParts parts = SharedEntryParts(env, env.broker_time(), &peer);

    store::v1::StoredMessage head;
    head.set_policy_version(dp->version());
    st->response.set_client_message_id(env.client_message_id());
    st->response.set_exchange_id(env.exchange_id());
    *st->response.mutable_broker_time() = env.broker_time();
    // The message record is built by concatenating wire-format parts (a valid
    // protobuf message): the envelope here, withheld + policy version below,
    // the recipients with their seqs at commit. The payload is stored once:
    // when some recipient gets it unredacted, that delivery holds it and the
    // message record's envelope goes without.
    size_t holder = decided.size();
    for (size_t i = 0; i < decided.size() && holder == decided.size(); ++i) {
      if (decided[i].decision.permit && decided[i].decision.redact.empty()) holder = i;
    }
    if (holder < decided.size() && !payload.field.empty()) {
      // The envelope field, its contents written around the payload.
      const size_t cut = static_cast<size_t>(payload.field.data() - env_bytes.data());
      const size_t without = env_bytes.size() - payload.field.size();
      st->message_head.reserve(16 + without + 64);
      AppendVarint(&st->message_head,
                   (uint64_t{store::v1::StoredMessage::kEnvelopeFieldNumber} << 3) | 2);
      AppendVarint(&st->message_head, without);
      st->message_head.append(env_bytes, 0, cut);
      st->message_head.append(env_bytes, cut + payload.field.size());
    } else {
      holder = decided.size();
      AppendLengthDelimited(&st->message_head, store::v1::StoredMessage::kEnvelopeFieldNumber,
                            env_bytes);
    }
    st->entries.reserve(1 + decided.size());
    st->recipients.reserve(decided.size());
    {
      PreparedEntry& collection = st->entries.emplace_back();
      std::string& b = collection.bytes;
      b.reserve(parts.size() + peer.spiffe_id.size() + dp->version().size() + 64);
      EntryWriter w(&b);
      w.Enum(v1::AuditEntry::kEventFieldNumber, v1::AUDIT_EVENT_COLLECTION);
      b += parts.times_actor;
      w.String(v1::AuditEntry::kActorSpiffeIdFieldNumber, peer.spiffe_id);
      if (transfer != nullptr) {
        w.String(v1::AuditEntry::kRecipientAgencyIdFieldNumber, transfer->recipient_agency_id());
      }
      b += parts.about;
      w.String(v1::AuditEntry::kPayloadSha256FieldNumber, payload_sha256);
      collection.seq_at = b.size();
      b += parts.purpose_case;
      w.String(v1::AuditEntry::kPolicyVersionFieldNumber, dp->version());
      b += parts.federation;
    }
    uint32_t withheld = 0;
    for (size_t i = 0; i < decided.size(); ++i) {
      const Decision& d = decided[i].decision;
      // A disclosure or denial entry: fields 2..20 now (delivered_sha256 and
      // redacted_fields once the delivery is made), the rest after.
      PreparedEntry a;
      a.bytes.reserve(parts.size() + 256);
      EntryWriter w(&a.bytes);
      w.Enum(v1::AuditEntry::kEventFieldNumber,
             d.permit ? v1::AUDIT_EVENT_DISCLOSURE : v1::AUDIT_EVENT_DENIAL);
      a.bytes += parts.times_actor;
      w.String(v1::AuditEntry::kRecipientAgencyIdFieldNumber, decided[i].agency_id);
      a.bytes += parts.about;
      w.String(v1::AuditEntry::kPayloadSha256FieldNumber, payload_sha256);
      auto finish = [&](const std::vector<std::string>& rule_ids) {
        a.seq_at = a.bytes.size();
        a.bytes += parts.purpose_case;
        w.Repeated(v1::AuditEntry::kRuleIdsFieldNumber, rule_ids);
        w.Repeated(v1::AuditEntry::kReasonsFieldNumber, d.reasons);
        w.String(v1::AuditEntry::kPolicyVersionFieldNumber, d.policy_version);
        if (!decided[i].peer_domain.empty()) {
          w.String(v1::AuditEntry::kPeerDomainFieldNumber, decided[i].peer_domain);
        } else {
          a.bytes += parts.federation;
        }
      };
      if (!d.permit) {
        static const std::vector<std::string> kDefaultDeny = {"default-deny"};
        finish(d.forbid_rules.empty() ? kDefaultDeny : d.forbid_rules);
        st->entries.push_back(std::move(a));
        ++withheld;
        continue;
      }
      Staged::Recipient rcpt;
      rcpt.agency_id = decided[i].agency_id;
      // The stored (and sent) delivery: the envelope's bytes, as they are or with
      // the withheld paths cut out, then redacted_fields and addressed.
      std::string redacted;
      std::string_view delivered_envelope = env_bytes;
      // What this side cuts: a transfer arrives with the sending side's
      // redactions already made (they are only listed again).
      std::vector<std::string> to_cut;
      for (const std::string& f : d.redact) {
        if (transfer == nullptr ||
            std::find(transfer->redacted_fields().begin(), transfer->redacted_fields().end(), f) ==
                transfer->redacted_fields().end()) {
          to_cut.push_back(f);
        }
      }
      if (!to_cut.empty()) {
        CORRIDOR_ASSIGN_OR_RETURN(redacted, dp->Redact(env_bytes, to_cut));
        CORRIDOR_ASSIGN_OR_RETURN(FieldSpan delivered, FindPayload(redacted));
        w.String(v1::AuditEntry::kDeliveredSha256FieldNumber, Sha256(delivered.contents));
        delivered_envelope = redacted;
      } else {
        // Unredacted, the delivered payload is the submitted one: no second hash.
        w.String(v1::AuditEntry::kDeliveredSha256FieldNumber, payload_sha256);
      }
      v1::Delivery rest;
      for (const auto& f : d.redact) rest.add_redacted_fields(f);
      rest.set_addressed(decided[i].addressed);
      const std::string rest_bytes = rest.SerializeAsString();
      std::string bytes;  // sized exactly: the hub's tail holds it (and counts its size)
      bytes.reserve(delivered_envelope.size() + 16 + rest_bytes.size());
      AppendLengthDelimited(&bytes, v1::Delivery::kEnvelopeFieldNumber, delivered_envelope);
      bytes += rest_bytes;
      CORRIDOR_ASSIGN_OR_RETURN(rcpt.delivery, MakeQueuedDelivery(0, std::move(bytes)));
      w.Repeated(v1::AuditEntry::kRedactedFieldsFieldNumber, d.redact);
      finish(d.permit_rules);
      rcpt.record.set_agency_id(rcpt.agency_id);
      rcpt.record.set_holds_payload(i == holder);
      for (const auto& f : d.redact) rcpt.record.add_redacted_fields(f);
      for (const auto& r : d.permit_rules) rcpt.record.add_permit_rules(r);
      rcpt.entry = st->entries.size();
      st->entries.push_back(std::move(a));
      st->response.add_recipients(rcpt.agency_id);
      rcpt.peer_domain = decided[i].peer_domain;
      st->recipients.push_back(std::move(rcpt));
    }
    head.set_withheld(withheld);
    st->message_head += head.SerializeAsString();
    st->response.set_withheld(withheld);
    return st;
  }

  // Committer thread. Everything fallible happens before in-memory state changes.
  absl::Status Commit(Staged& st, rocksdb::WriteBatch& batch) {
    if (auto it = pending_dedupe_.find(st.message_key); it != pending_dedupe_.end()) {
      st.response = it->second->response;
      st.response.set_duplicate(true);
      return absl::OkStatus();
    }
    auto stored = store_->Get(Store::kMessages, st.message_key);
    if (stored.ok()) {
      store::v1::StoredMessage first;
      if (!first.ParseFromString(*stored)) return absl::DataLossError("message record unreadable");
      FillDuplicate(first, st.response);
      st.collection_index = first.collection_index();
      return absl::OkStatus();
    }
    if (!absl::IsNotFound(stored.status())) return stored.status();

    // Number the deliveries in commit order: each agency's queue has no gaps.
    store::v1::StoredMessage tail;
    if (st.inbound) {
      // Its entries are appended below, the collection first.
      st.collection_index = audit_->next_index();
      tail.set_collection_index(st.collection_index);
    }
    for (size_t i = 0; i < st.recipients.size(); ++i) {
      Staged::Recipient& r = st.recipients[i];
      uint64_t seq = heads_[r.agency_id] + 1;
      for (size_t j = 0; j < i; ++j) seq += st.recipients[j].agency_id == r.agency_id;
      r.delivery->seq = seq;
      r.record.set_seq(seq);
      st.entries[r.entry].delivery_seq = seq;
      *tail.add_recipients() = r.record;
      rocksdb::Status s = batch.Put(store_->cf(Store::kDeliveries), DeliveryKey(r.agency_id, seq),
                                    r.delivery->wire);
      if (!s.ok()) return FromRocks(s, "deliveries");
    }
    // The record is the staged head, then the recipients (no concatenated copy).
    const std::string tail_bytes = tail.SerializeAsString();
    const rocksdb::Slice key(st.message_key);
    const rocksdb::Slice value[] = {st.message_head, tail_bytes};
    rocksdb::Status s = batch.Put(store_->cf(Store::kMessages), rocksdb::SliceParts(&key, 1),
                                  rocksdb::SliceParts(value, 2));
    if (s.ok() && !st.expiry_key.empty()) {
      s = batch.Put(store_->cf(Store::kExpiry), st.expiry_key, st.message_key);
    }
    if (!s.ok()) return FromRocks(s, "messages");

    // Commit point for in-memory state (the batch is rolled back on any error above).
    audit_->Append(st.entries, batch);
    for (Staged::Recipient& r : st.recipients) {
      heads_written_.try_emplace(r.agency_id, heads_[r.agency_id]);  // for a failed write
      heads_[r.agency_id] = r.delivery->seq;
      dirty_heads_.insert(r.agency_id);
      if (!r.peer_domain.empty()) outbox_heads_.emplace_back(r.agency_id, r.delivery->seq);
      fresh_.push_back({r.agency_id, std::move(r.delivery)});
    }
    batch_exchanges_++;
    st.response.set_duplicate(false);
    pending_dedupe_.emplace(st.message_key, &st);
    return absl::OkStatus();
  }

  static void FillDuplicate(const store::v1::StoredMessage& first, v1::SubmitResponse& out) {
    out.set_exchange_id(first.envelope().exchange_id());
    *out.mutable_broker_time() = first.envelope().broker_time();
    out.clear_recipients();
    for (const auto& r : first.recipients()) out.add_recipients(r.agency_id());
    out.set_withheld(first.withheld());
    out.set_duplicate(true);
  }

  // Returns true when the batch must be synced whatever its tasks said: a
  // checkpoint is never published for entries a crash could still take back.
  bool BeforeWrite(rocksdb::WriteBatch& batch) {
    const absl::Time now = absl::Now();
    EraseExpired(batch, now);
    const bool checkpoint = audit_->BeforeWrite(batch, now);
    if (batch_exchanges_ == 0) return checkpoint;
    // Every seq handed out so far stays unused after a restart (ids may have
    // gaps: duplicates and failed submissions consume one too).
    std::string next, stored;
    AppendBe64(&next, next_exchange_seq_.load(std::memory_order_relaxed));
    AppendBe64(&stored, exchanges_committed_ + batch_exchanges_);
    batch.Put(store_->cf(Store::kMeta), kNextExchangeSeq, next);
    batch.Put(store_->cf(Store::kMeta), kExchangesStored, stored);
    return true;
  }

  // Committer thread, when no task came for a while: a checkpoint that is due
  // gets its own (otherwise empty) batch.
  void OnIdle() {
    const absl::Time now = absl::Now();
    FlushSecurityRepeats(now);
    if (audit_->CheckpointDue(now) || now - last_erasure_sweep_ >= kErasureSweepInterval) {
      committer_.Enqueue(Committer::Task{.prepare = nullptr, .done = [](absl::Status) {}});
    }
  }

  // Committer thread, at most once per kErasureSweepInterval: expired messages
  // and their undelivered or unacked deliveries are deleted, each with an
  // erasure entry, in the batch being written.
  void EraseExpired(rocksdb::WriteBatch& batch, absl::Time now) {
    if (now - last_erasure_sweep_ < kErasureSweepInterval) return;
    last_erasure_sweep_ = now;
    std::string upper;
    AppendBe64(&upper, static_cast<uint64_t>(absl::ToUnixMillis(now)) + 1);
    std::unique_ptr<rocksdb::Iterator> it(
        store_->db()->NewIterator(rocksdb::ReadOptions(), store_->cf(Store::kExpiry)));
    int erased = 0;
    absl::flat_hash_set<std::string> agencies;  // whose deliveries this sweep deletes
    for (it->SeekToFirst(); it->Valid() && it->key().compare(upper) < 0 && erased < 1000;
         it->Next(), ++erased) {
      if (it->key().size() != 16) continue;
      batch.Delete(store_->cf(Store::kExpiry), it->key());
      const std::string message_key = it->value().ToString();
      auto stored = store_->Get(Store::kMessages, message_key);
      store::v1::StoredMessage message;
      if (!stored.ok() || !message.ParseFromString(*stored) || message.erased()) continue;
      // The record stays as the dedupe answer, stripped to its stamp.
      store::v1::StoredMessage stub;
      stub.set_erased(true);
      {
        const v1::Envelope& full = message.envelope();
        v1::Envelope* e = stub.mutable_envelope();
        e->set_exchange_id(full.exchange_id());
        *e->mutable_broker_time() = full.broker_time();
        *e->mutable_sender() = full.sender();
        e->set_client_message_id(full.client_message_id());
        *e->mutable_expires_at() = full.expires_at();
      }
      *stub.mutable_recipients() = message.recipients();
      stub.set_withheld(message.withheld());
      stub.set_policy_version(message.policy_version());
      batch.Put(store_->cf(Store::kMessages), message_key, stub.SerializeAsString());
      const v1::Envelope& env = message.envelope();
      const EntryParts parts = SharedEntryParts(env, ToProto(now), nullptr);
      PreparedEntry e;
      const EntryWriter w(&e.bytes);
      w.Enum(v1::AuditEntry::kEventFieldNumber, v1::AUDIT_EVENT_ERASURE);
      e.bytes += parts.times_actor;
      e.bytes += parts.about;
      e.seq_at = e.bytes.size();
      e.bytes += parts.purpose_case;
      std::vector<std::string> recipients;
      for (const auto& r : message.recipients()) {
        batch.Delete(store_->cf(Store::kDeliveries), DeliveryKey(r.agency_id(), r.seq()));
        recipients.push_back(absl::StrCat(r.agency_id(), "#", r.seq()));
        agencies.insert(r.agency_id());
      }
      w.String(v1::AuditEntry::kDetailFieldNumber,
               absl::StrCat("expired at ", TimeUtil::ToString(env.expires_at()),
                            "; erased message and deliveries ", absl::StrJoin(recipients, ", ")));
      const std::vector<PreparedEntry> entries{std::move(e)};
      audit_->Append(entries, batch);
    }
    // The newest stored delivery may be gone now: its seq must not be handed
    // out again after a restart (it may be at or below a subscription's ack
    // floor, and would then never be delivered).
    for (const std::string& agency : agencies) {
      std::string head;
      AppendBe64(&head, heads_[agency]);
      batch.Put(store_->cf(Store::kMeta), DeliveryHeadKey(agency), head);
    }
  }

  void AfterBatch(const absl::Status& s, bool synced) {
    if (s.ok()) {
      audit_->AfterWrite(synced);
      if (!outbox_heads_.empty()) {
        absl::MutexLock lock(&outbox_mu_);
        for (const auto& [agency, seq] : outbox_heads_) {
          Outboxed& o = outbox_[agency];
          o.head = std::max(o.head, seq);
        }
      }
    } else {
      // Nothing of the batch was stored: memory goes back to what was (the
      // committer is paused until storage resumes; then the next batch goes
      // on from here). Exchange ids handed out stay unused (ids may have gaps).
      audit_->AbortBatch();
      for (const auto& [agency, head] : heads_written_) heads_[agency] = head;
    }
    heads_written_.clear();
    outbox_heads_.clear();
    pending_dedupe_.clear();
    if (s.ok()) {
      exchanges_committed_ += batch_exchanges_;
      exchanges_stored_.store(exchanges_committed_, std::memory_order_relaxed);
    }
    batch_exchanges_ = 0;
    std::vector<DeliveryHub::FreshDelivery> fresh;
    fresh.swap(fresh_);
    if (!s.ok() || dirty_heads_.empty()) {
      dirty_heads_.clear();
      return;
    }
    std::vector<std::pair<std::string, uint64_t>> heads;
    heads.reserve(dirty_heads_.size());
    for (const auto& a : dirty_heads_) heads.emplace_back(a, heads_[a]);
    dirty_heads_.clear();
    hub_.HeadsAdvanced(std::move(heads), std::move(fresh));
  }

  const BrokerConfig config_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<AuditLog> audit_;  // opened in Recover, before the threads start
  std::shared_ptr<const DecisionPoint> decision_point_;  // atomic_load/atomic_store
  Committer committer_;
  DiskGuard disk_guard_;
  DeliveryHub hub_;
  std::once_flag shutdown_once_;
  absl::Mutex security_mu_;
  absl::flat_hash_map<std::string, SecurityRepeat> security_repeats_ ABSL_GUARDED_BY(security_mu_);
  absl::Time started_at_;
  std::atomic<uint64_t> exchanges_stored_{0};
  // Per agency of a peer exchange: its outbox queue's head and the highest
  // seq the peer has answered (stored or refused for good).
  struct Outboxed {
    std::string domain;
    uint64_t head = 0;
    uint64_t answered = 0;
  };
  mutable absl::Mutex outbox_mu_;
  absl::flat_hash_map<std::string, Outboxed> outbox_ ABSL_GUARDED_BY(outbox_mu_);

  std::atomic<uint64_t> next_exchange_seq_{1};  // handed out by Stage on callers' threads
  mutable std::mutex routes_mu_;
  std::shared_ptr<const Routes> routes_ = std::make_shared<Routes>();  // guarded by routes_mu_

  // Committer thread only (and Recover before Start).
  uint64_t exchanges_committed_ = 0;
  std::vector<DeliveryHub::FreshDelivery> fresh_;
  absl::flat_hash_map<std::string, uint64_t> heads_;
  std::set<std::string> dirty_heads_;
  std::vector<std::pair<std::string, uint64_t>> outbox_heads_;  // this batch's transfers
  // Agencies whose head this batch moved, with their head before it.
  absl::flat_hash_map<std::string, uint64_t> heads_written_;
  absl::Time storage_paused_at_;     // the committer's last pause
  std::string storage_pause_cause_;  // and why
  uint64_t batch_exchanges_ = 0;
  absl::Time last_erasure_sweep_ = absl::InfinitePast();
  // This batch's first submissions, by message key (views of their own keys:
  // every task of the batch, and so its Staged, lives until after AfterBatch).
  absl::flat_hash_map<std::string_view, const Staged*> pending_dedupe_;
};

ExchangeCore::ExchangeCore(BrokerConfig config, std::unique_ptr<Impl> impl)
    : config_(std::move(config)), impl_(std::move(impl)) {}

ExchangeCore::~ExchangeCore() { Shutdown(); }

absl::StatusOr<std::unique_ptr<ExchangeCore>> ExchangeCore::Open(
    const BrokerConfig& config, std::shared_ptr<const DecisionPoint> decision_point) {
  if (config.registry == nullptr) return absl::InvalidArgumentError("config: no registry");
  CORRIDOR_ASSIGN_OR_RETURN(std::unique_ptr<Store> store, Store::Open(config.data_dir));
  auto impl = std::make_unique<Impl>(config, std::move(store), std::move(decision_point));
  CORRIDOR_RETURN_IF_ERROR(impl->Recover());
  impl->Start();
  return std::unique_ptr<ExchangeCore>(new ExchangeCore(config, std::move(impl)));
}

void ExchangeCore::Submit(const PeerIdentity& peer, v1::Envelope envelope, SubmitCallback done) {
  impl_->Submit(peer, std::move(envelope), std::move(done));
}
void ExchangeCore::SubmitTransfer(const PeerIdentity& peer, v1::Transfer transfer,
                                  TransferCallback done) {
  impl_->SubmitTransfer(peer, std::move(transfer), std::move(done));
}
uint64_t ExchangeCore::AttachOutbox(const PeerConfig& peer, const std::string& agency_id,
                                    std::shared_ptr<DeliverySink> sink, OpenCallback opened) {
  return impl_->AttachOutbox(peer, agency_id, std::move(sink), std::move(opened));
}
void ExchangeCore::OutboxAnswered(const std::string& agency_id, uint64_t seq) {
  impl_->OutboxAnswered(agency_id, seq);
}
ExchangeCore::OutboxState ExchangeCore::Outbox(const std::string& peer_domain) const {
  return impl_->Outbox(peer_domain);
}
void ExchangeCore::RecordReceipt(const PeerConfig& peer, const std::string& exchange_id,
                                 const std::string& recipient_agency_id,
                                 v1::TransferReceipt receipt,
                                 std::function<void(absl::Status)> done) {
  impl_->RecordReceipt(peer, exchange_id, recipient_agency_id, std::move(receipt), std::move(done));
}
uint64_t ExchangeCore::Attach(const PeerIdentity& peer, SubscribeParams params,
                              std::shared_ptr<DeliverySink> sink, OpenCallback opened) {
  return impl_->Attach(peer, std::move(params), std::move(sink), std::move(opened));
}
void ExchangeCore::Ack(uint64_t session, std::vector<uint64_t> seqs) {
  impl_->Ack(session, std::move(seqs));
}
void ExchangeCore::Detach(uint64_t session) { impl_->Detach(session); }
void ExchangeCore::Status(const PeerIdentity& caller, StatusCallback done) {
  impl_->Status(caller, std::move(done));
}
void ExchangeCore::SetDecisionPoint(std::shared_ptr<const DecisionPoint> dp,
                                    const std::string& who) {
  impl_->SetDecisionPoint(std::move(dp), who);
}
void ExchangeCore::RecordSecurityEvent(const PeerIdentity& peer, const std::string& detail) {
  impl_->RecordSecurityEvent(peer, detail);
}
void ExchangeCore::RecordConsultation(const PeerIdentity& auditor, const std::string& query,
                                      uint64_t result_count,
                                      std::function<void(absl::Status)> done) {
  impl_->RecordConsultation(auditor, query, result_count, std::move(done));
}
const AuditLog& ExchangeCore::audit() const { return *impl_->audit(); }
std::shared_ptr<const DecisionPoint> ExchangeCore::decision_point() const {
  return impl_->decision_point();
}
uint64_t ExchangeCore::synced_writes() const { return impl_->synced_writes(); }
void ExchangeCore::CloseStreams() { impl_->CloseStreams(); }
void ExchangeCore::Shutdown() { impl_->Shutdown(); }

}  // namespace corridor::broker
