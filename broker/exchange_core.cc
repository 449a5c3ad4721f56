#include "broker/exchange_core.h"

#include <atomic>
#include <map>
#include <mutex>
#include <set>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "broker/audit_log.h"
#include "broker/committer.h"
#include "broker/delivery_hub.h"
#include "broker/store.h"
#include "broker/validation.h"
#include "common/status_macros.h"
#include "google/protobuf/util/time_util.h"
#include "openssl/sha.h"

namespace corridor::broker {
namespace {

using google::protobuf::util::TimeUtil;

constexpr char kNextExchangeSeq[] = "next_exchange_seq";
constexpr uint32_t kMaxInFlightLimit = 4096;
constexpr absl::Duration kErasureSweepInterval = absl::Seconds(1);

google::protobuf::Timestamp ToProto(absl::Time t) {
  return TimeUtil::NanosecondsToTimestamp(absl::ToUnixNanos(t));
}

// SHA-256 of the envelope's payload (the oneof message), as serialized.
std::string PayloadSha256(const v1::Envelope& e) {
  std::string bytes;
  switch (e.payload_case()) {
    case v1::Envelope::kTipOff:
      bytes = e.tip_off().SerializeAsString();
      break;
    case v1::Envelope::kCaseRecord:
      bytes = e.case_record().SerializeAsString();
      break;
    case v1::Envelope::kPatrolReport:
      bytes = e.patrol_report().SerializeAsString();
      break;
    default:
      break;
  }
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size(), digest);
  return std::string(reinterpret_cast<const char*>(digest), sizeof(digest));
}

// The "what" and "why" of an envelope, common to its collection, disclosure and
// denial entries.
v1::AuditEntry EntryAbout(const v1::Envelope& e, v1::AuditEvent event) {
  v1::AuditEntry a;
  a.set_event(event);
  *a.mutable_broker_time() = e.broker_time();
  if (e.has_observed_time()) *a.mutable_sender_time() = e.observed_time();
  a.set_exchange_id(e.exchange_id());
  a.set_client_message_id(e.client_message_id());
  a.set_sender_agency_id(e.sender().agency_id());
  a.set_kind(e.kind());
  a.set_topic(e.topic());
  a.set_handling_code(e.handling_code());
  a.set_classification(e.classification());
  *a.mutable_grading() = e.grading();
  a.set_purpose(e.purpose());
  a.set_case_ref(e.case_ref());
  return a;
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
    absl::Status Redact(v1::Envelope*, const std::vector<std::string>& paths) const override {
      if (paths.empty()) return absl::OkStatus();
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
  Impl(const BrokerConfig& config, std::unique_ptr<Store> store,
       std::shared_ptr<const DecisionPoint> dp)
      : config_(config),
        store_(std::move(store)),
        decision_point_(std::move(dp)),
        committer_(store_.get(),
                   Committer::Hooks{
                       .before_write = [this](rocksdb::WriteBatch& b) { return BeforeWrite(b); },
                       .after_batch = [this](const absl::Status& s,
                                             bool synced) { AfterBatch(s, synced); },
                       .on_idle = [this] { OnIdle(); }}),
        hub_(
            store_.get(), &committer_,
            [this](const std::string& agency, const std::string& name,
                   const std::vector<std::string>& filters) { routes_[agency][name] = filters; },
            [this](std::vector<v1::AuditEntry>& entries, rocksdb::WriteBatch& batch) {
              audit_->Append(entries, batch);
            }) {}

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
    next_exchange_seq_ = next == 0 ? 1 : next;
    exchanges_stored_.store(next_exchange_seq_ - 1);  // all time, like deliveries
    std::vector<std::string> agencies;
    for (const auto& a : config_.registry->agencies) agencies.push_back(a.id);
    CORRIDOR_RETURN_IF_ERROR(hub_.Recover(agencies));
    for (const auto& a : agencies) heads_[a] = hub_.head(a);
    for (const auto& rec : hub_.subscriptions()) {
      routes_[rec.agency_id()][rec.name()] = {rec.topic_filters().begin(),
                                              rec.topic_filters().end()};
    }
    started_at_ = absl::Now();
    return absl::OkStatus();
  }

  void Start() {
    committer_.Start();
    hub_.Start();
  }

  void Shutdown() {
    std::call_once(shutdown_once_, [this] {
      hub_.Stop();
      committer_.Stop();
    });
  }

  void Submit(const PeerIdentity& peer, v1::Envelope env, SubmitCallback done) {
    if (peer.role != PeerRole::kAgency) {
      done(absl::PermissionDeniedError("only agency nodes may submit"));
      return;
    }
    const policy::Agency* sender = config_.registry->Find(peer.agency_id);
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
    auto state = std::make_shared<SubmitState>();
    state->peer = peer;
    state->sender = sender;
    state->env = std::move(env);
    committer_.Enqueue(Committer::Task{
        .prepare = [this, state](rocksdb::WriteBatch& batch) { return Prepare(*state, batch); },
        .done =
            [state, done = std::move(done)](absl::Status s) {
              if (!s.ok()) {
                done(s);
              } else {
                done(std::move(state->response));
              }
            }});
  }

  uint64_t Attach(const PeerIdentity& peer, SubscribeParams params,
                  std::shared_ptr<DeliverySink> sink, OpenCallback opened) {
    if (peer.role != PeerRole::kAgency || config_.registry->Find(peer.agency_id) == nullptr) {
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
      base.set_audit_entries(audit_->durable_size());
    }
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

  void RecordSecurityEvent(const PeerIdentity& peer, const std::string& detail) {
    v1::AuditEntry e;
    e.set_event(v1::AUDIT_EVENT_SECURITY);
    *e.mutable_broker_time() = ToProto(absl::Now());
    e.set_actor_spiffe_id(peer.spiffe_id);
    e.set_actor_agency_id(peer.agency_id);
    e.set_actor_node(peer.node);
    e.set_detail(detail);
    RecordEntry(std::move(e), [](absl::Status) {});
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

  const AuditLog* audit() const { return audit_.get(); }
  std::shared_ptr<const DecisionPoint> decision_point() const {
    return std::atomic_load(&decision_point_);
  }
  uint64_t synced_writes() const { return store_->synced_writes(); }

 private:
  struct SubmitState {
    PeerIdentity peer;
    const policy::Agency* sender = nullptr;
    v1::Envelope env;
    v1::SubmitResponse response;
  };

  // Committer thread. Everything fallible happens before in-memory state changes.
  absl::Status Prepare(SubmitState& st, rocksdb::WriteBatch& batch) {
    const std::string dedupe_key = DedupeKey(st.peer.agency_id, st.env.client_message_id());
    st.response.set_client_message_id(st.env.client_message_id());
    if (auto it = pending_dedupe_.find(dedupe_key); it != pending_dedupe_.end()) {
      FillDuplicate(it->second, st.response);
      return absl::OkStatus();
    }
    auto stored = store_->Get(Store::kDedupe, dedupe_key);
    if (stored.ok()) {
      store::v1::DedupeRecord rec;
      if (!rec.ParseFromString(*stored)) return absl::DataLossError("dedupe record unreadable");
      FillDuplicate(rec, st.response);
      return absl::OkStatus();
    }
    if (!absl::IsNotFound(stored.status())) return stored.status();

    const absl::Time now = absl::Now();
    const uint64_t exchange_seq = next_exchange_seq_;
    v1::Envelope& env = st.env;
    env.mutable_sender()->set_agency_id(st.peer.agency_id);
    env.mutable_sender()->set_node(st.peer.node);
    env.set_exchange_id(absl::StrCat(config_.broker_id, "-", exchange_seq));
    *env.mutable_broker_time() = ToProto(now);

    // Route: explicit addressees first (in the sender's order), then topic subscribers.
    std::vector<std::pair<std::string, bool>> candidates;  // agency, addressed
    std::set<std::string> seen{st.peer.agency_id};         // never back to the sender
    for (const std::string& a : env.addressees()) {
      if (seen.insert(a).second) candidates.emplace_back(a, true);
    }
    for (const auto& [agency, subs] : routes_) {
      if (seen.count(agency)) continue;
      bool match = false;
      for (const auto& [name, filters] : subs) {
        for (const auto& f : filters) match = match || TopicMatches(f, env.topic());
      }
      if (match && seen.insert(agency).second) candidates.emplace_back(agency, false);
    }

    // Decide and stage the deliveries.
    std::shared_ptr<const DecisionPoint> dp = decision_point();
    store::v1::StoredMessage message;
    message.set_policy_version(dp->version());
    std::vector<std::pair<std::string, uint64_t>> allocated;
    std::vector<DeliveryHub::FreshDelivery> fresh;
    absl::flat_hash_map<std::string, uint64_t> next_heads;
    std::vector<v1::AuditEntry> entries;
    {
      v1::AuditEntry c = EntryAbout(env, v1::AUDIT_EVENT_COLLECTION);
      c.set_actor_agency_id(st.peer.agency_id);
      c.set_actor_node(st.peer.node);
      c.set_actor_spiffe_id(st.peer.spiffe_id);
      c.set_officer_id(env.officer_id());
      c.set_payload_sha256(PayloadSha256(env));
      c.set_policy_version(dp->version());
      entries.push_back(std::move(c));
    }
    for (const auto& [agency_id, addressed] : candidates) {
      const policy::Agency* recipient = config_.registry->Find(agency_id);
      if (recipient == nullptr) continue;  // a stale subscription of a removed agency
      Decision d = dp->Decide(env, *st.sender, *recipient, now);
      v1::AuditEntry a =
          EntryAbout(env, d.permit ? v1::AUDIT_EVENT_DISCLOSURE : v1::AUDIT_EVENT_DENIAL);
      a.set_actor_agency_id(st.peer.agency_id);
      a.set_actor_node(st.peer.node);
      a.set_officer_id(env.officer_id());
      a.set_recipient_agency_id(agency_id);
      a.set_payload_sha256(entries.front().payload_sha256());
      a.set_policy_version(d.policy_version);
      for (const auto& r : d.reasons) a.add_reasons(r);
      if (!d.permit) {
        for (const auto& r : d.forbid_rules) a.add_rule_ids(r);
        if (d.forbid_rules.empty()) a.add_rule_ids("default-deny");
        entries.push_back(std::move(a));
        message.set_withheld(message.withheld() + 1);
        continue;
      }
      for (const auto& r : d.permit_rules) a.add_rule_ids(r);
      v1::Delivery delivery;
      *delivery.mutable_envelope() = env;
      if (!d.redact.empty()) {
        CORRIDOR_RETURN_IF_ERROR(dp->Redact(delivery.mutable_envelope(), d.redact));
        for (const auto& f : d.redact) delivery.add_redacted_fields(f);
      }
      delivery.set_addressed(addressed);
      const uint64_t seq = heads_[agency_id] + 1 + next_heads.count(agency_id);
      next_heads[agency_id] = seq;
      delivery.set_seq(seq);
      // Unredacted, the delivered payload is the submitted one: no second hash.
      a.set_delivered_sha256(d.redact.empty() ? entries.front().payload_sha256()
                                              : PayloadSha256(delivery.envelope()));
      for (const auto& f : d.redact) a.add_redacted_fields(f);
      a.set_delivery_seq(seq);
      entries.push_back(std::move(a));
      rocksdb::Status s = batch.Put(store_->cf(Store::kDeliveries), DeliveryKey(agency_id, seq),
                                    delivery.SerializeAsString());
      if (!s.ok()) return FromRocks(s, "deliveries");
      // Handed to the hub once durable, so it need not read it back.
      fresh.push_back({agency_id, std::make_shared<const v1::Delivery>(std::move(delivery))});
      auto* r = message.add_recipients();
      r->set_agency_id(agency_id);
      r->set_seq(seq);
      for (const auto& f : d.redact) r->add_redacted_fields(f);
      for (const auto& p : d.permit_rules) r->add_permit_rules(p);
      allocated.emplace_back(agency_id, seq);
    }
    *message.mutable_envelope() = env;
    store::v1::DedupeRecord dedupe;
    dedupe.set_exchange_id(env.exchange_id());
    *dedupe.mutable_broker_time() = env.broker_time();
    for (const auto& r : message.recipients()) dedupe.add_recipients(r.agency_id());
    dedupe.set_withheld(message.withheld());

    rocksdb::Status s = batch.Put(store_->cf(Store::kMessages), MessageKey(exchange_seq),
                                  message.SerializeAsString());
    if (s.ok() && env.has_expires_at()) {
      std::string expiry_key;
      AppendBe64(&expiry_key,
                 static_cast<uint64_t>(TimeUtil::TimestampToMilliseconds(env.expires_at())));
      AppendBe64(&expiry_key, exchange_seq);
      s = batch.Put(store_->cf(Store::kExpiry), expiry_key, "");
    }
    if (s.ok()) {
      s = batch.Put(store_->cf(Store::kDedupe), dedupe_key, dedupe.SerializeAsString());
    }
    if (!s.ok()) return FromRocks(s, "messages");

    // Commit point for in-memory state (the batch is rolled back on any error above).
    audit_->Append(entries, batch);
    ++next_exchange_seq_;
    for (const auto& [agency, seq] : allocated) {
      heads_[agency] = seq;
      dirty_heads_.insert(agency);
    }
    for (auto& f : fresh) batch_fresh_.push_back(std::move(f));
    batch_exchanges_++;
    FillDuplicate(dedupe, st.response);
    st.response.set_duplicate(false);
    pending_dedupe_.emplace(dedupe_key, std::move(dedupe));
    return absl::OkStatus();
  }

  static void FillDuplicate(const store::v1::DedupeRecord& rec, v1::SubmitResponse& out) {
    out.set_exchange_id(rec.exchange_id());
    *out.mutable_broker_time() = rec.broker_time();
    *out.mutable_recipients() = rec.recipients();
    out.set_withheld(rec.withheld());
    out.set_duplicate(true);
  }

  // Returns true when the batch must be synced whatever its tasks said: a
  // checkpoint is never published for entries a crash could still take back.
  bool BeforeWrite(rocksdb::WriteBatch& batch) {
    const absl::Time now = absl::Now();
    EraseExpired(batch, now);
    const bool checkpoint = audit_->BeforeWrite(batch, now);
    if (batch_exchanges_ == 0) return checkpoint;
    std::string v;
    AppendBe64(&v, next_exchange_seq_);
    batch.Put(store_->cf(Store::kMeta), kNextExchangeSeq, v);
    return true;
  }

  // Committer thread, when no task came for a while: a checkpoint that is due
  // gets its own (otherwise empty) batch.
  void OnIdle() {
    const absl::Time now = absl::Now();
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
    for (it->SeekToFirst(); it->Valid() && it->key().compare(upper) < 0 && erased < 1000;
         it->Next(), ++erased) {
      if (it->key().size() != 16) continue;
      const uint64_t seq = ReadBe64(std::string_view(it->key().data() + 8, 8));
      batch.Delete(store_->cf(Store::kExpiry), it->key());
      auto stored = store_->Get(Store::kMessages, MessageKey(seq));
      store::v1::StoredMessage message;
      if (!stored.ok() || !message.ParseFromString(*stored)) continue;
      batch.Delete(store_->cf(Store::kMessages), MessageKey(seq));
      const v1::Envelope& env = message.envelope();
      v1::AuditEntry e = EntryAbout(env, v1::AUDIT_EVENT_ERASURE);
      *e.mutable_broker_time() = ToProto(now);
      std::vector<std::string> recipients;
      for (const auto& r : message.recipients()) {
        batch.Delete(store_->cf(Store::kDeliveries), DeliveryKey(r.agency_id(), r.seq()));
        recipients.push_back(absl::StrCat(r.agency_id(), "#", r.seq()));
      }
      e.set_detail(absl::StrCat("expired at ", TimeUtil::ToString(env.expires_at()),
                                "; erased message and deliveries ",
                                absl::StrJoin(recipients, ", ")));
      std::vector<v1::AuditEntry> entries{std::move(e)};
      audit_->Append(entries, batch);
    }
  }

  void AfterBatch(const absl::Status& s, bool synced) {
    if (s.ok()) audit_->AfterWrite(synced);
    pending_dedupe_.clear();
    if (s.ok()) exchanges_stored_.fetch_add(batch_exchanges_, std::memory_order_relaxed);
    batch_exchanges_ = 0;
    std::vector<DeliveryHub::FreshDelivery> fresh;
    fresh.swap(batch_fresh_);
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
  DeliveryHub hub_;
  std::once_flag shutdown_once_;
  absl::Time started_at_;
  std::atomic<uint64_t> exchanges_stored_{0};

  // Committer thread only (and Recover before Start).
  uint64_t next_exchange_seq_ = 1;
  absl::flat_hash_map<std::string, uint64_t> heads_;
  std::set<std::string> dirty_heads_;
  std::vector<DeliveryHub::FreshDelivery> batch_fresh_;  // this batch's deliveries
  uint64_t batch_exchanges_ = 0;
  absl::Time last_erasure_sweep_ = absl::InfinitePast();
  absl::flat_hash_map<std::string, store::v1::DedupeRecord> pending_dedupe_;
  std::map<std::string, std::map<std::string, std::vector<std::string>>> routes_;
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
