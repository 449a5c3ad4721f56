#include "broker/delivery_hub.h"

#include <pthread.h>

#include <algorithm>
#include <optional>
#include <utility>

#include "absl/strings/str_cat.h"
#include "broker/committer.h"
#include "broker/store.h"
#include "broker/validation.h"
#include "google/protobuf/util/time_util.h"

namespace corridor::broker {
namespace {

bool Expired(const QueuedDelivery& d, absl::Time now) { return d.expires <= now; }

bool Matches(const store::v1::SubscriptionRecord& rec, const QueuedDelivery& d) {
  // No filters: everything queued for the agency. Filters also add routing
  // interest (exchange_core.cc); an empty list adds none.
  if (d.addressed || rec.topic_filters().empty()) return true;
  for (const std::string& f : rec.topic_filters()) {
    if (TopicMatches(f, d.topic)) return true;
  }
  return false;
}

constexpr absl::Duration kDeadlineTick = absl::Milliseconds(50);
constexpr absl::Duration kPersistTick = absl::Milliseconds(20);
// A session's deadline queue is compacted (acked entries dropped) when it holds
// more than twice its in-flight entries plus this.
constexpr size_t kDueSlack = 1024;
// A session's store iterator is made again after this (it pins the memtables and
// files it was made on).
constexpr absl::Duration kStoreIteratorMaxAge = absl::Seconds(1);

}  // namespace

DeliveryHub::DeliveryHub(Store* store, Committer* committer, FiltersChanged on_filters_changed,
                         AuditAppender audit_append, Options options)
    : store_(store),
      committer_(committer),
      on_filters_changed_(std::move(on_filters_changed)),
      audit_append_(std::move(audit_append)),
      options_(options) {}

DeliveryHub::~DeliveryHub() { Stop(); }

absl::Status DeliveryHub::Recover(const std::vector<std::string>& agencies) {
  for (const std::string& a : agencies) {
    auto head = store_->LastDeliverySeq(a);
    if (!head.ok()) return head.status();
    // Erasure may have deleted the newest deliveries: their seqs stay used.
    auto erased_head = store_->GetCounter(DeliveryHeadKey(a));
    if (!erased_head.ok()) return erased_head.status();
    heads_[a] = std::max(*head, *erased_head);
  }
  std::unique_ptr<rocksdb::Iterator> it(
      store_->db()->NewIterator(rocksdb::ReadOptions(), store_->cf(Store::kSubscriptions)));
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    auto sub = std::make_unique<Sub>();
    if (!sub->record.ParseFromArray(it->value().data(), static_cast<int>(it->value().size()))) {
      return absl::DataLossError("subscriptions: unreadable record");
    }
    std::string prefix = AckPrefix(sub->record.agency_id(), sub->record.name());
    std::unique_ptr<rocksdb::Iterator> acks(
        store_->db()->NewIterator(rocksdb::ReadOptions(), store_->cf(Store::kAcks)));
    for (acks->Seek(prefix); acks->Valid() && acks->key().starts_with(prefix); acks->Next()) {
      if (acks->key().size() != prefix.size() + 8) continue;
      uint64_t seq = ReadBe64(std::string_view(acks->key().data() + prefix.size(), 8));
      if (seq >= sub->record.ack_floor()) sub->acked.insert(seq);
      sub->persisted_acks.insert(seq);
    }
    if (!acks->status().ok()) return FromRocks(acks->status(), "acks");
    sub->persisted_floor = sub->record.ack_floor();
    auto key = std::make_pair(sub->record.agency_id(), sub->record.name());
    subs_[key] = std::move(sub);
  }
  return FromRocks(it->status(), "subscriptions");
}

std::vector<store::v1::SubscriptionRecord> DeliveryHub::subscriptions() const {
  std::vector<store::v1::SubscriptionRecord> out;
  for (const auto& [key, sub] : subs_) out.push_back(sub->record);
  return out;
}

uint64_t DeliveryHub::head(const std::string& agency) const {
  auto it = heads_.find(agency);
  return it == heads_.end() ? 0 : it->second;
}

void DeliveryHub::Start() {
  thread_ = std::thread([this] {
    pthread_setname_np(pthread_self(), "delivery-hub");  // shows in top -H, perf, gdb
    Run();
  });
}

void DeliveryHub::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

bool DeliveryHub::Post(std::function<void()> fn) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) return false;
    queue_.push_back(std::move(fn));
  }
  cv_.notify_one();
  return true;
}

void DeliveryHub::CloseStreams() {
  Post([this] {
    std::vector<uint64_t> ids;
    for (const auto& [id, s] : sessions_) ids.push_back(id);
    for (uint64_t id : ids) {
      if (Session* s = FindSession(id)) {
        DropSession(s, absl::UnavailableError("broker is shutting down"), /*close_sink=*/true);
      }
    }
  });
}

void DeliveryHub::HeadsAdvanced(std::vector<std::pair<std::string, uint64_t>> heads,
                                std::vector<FreshDelivery> fresh) {
  Post([this, heads = std::move(heads), fresh = std::move(fresh)]() mutable {
    for (const auto& [agency, head] : heads) {
      uint64_t& h = heads_[agency];
      h = std::max(h, head);
    }
    for (FreshDelivery& f : fresh) {
      if (f.delivery != nullptr) AddToTail(f.agency_id, std::move(f.delivery));
    }
  });
}

void DeliveryHub::AddToTail(const std::string& agency, std::shared_ptr<const QueuedDelivery> d) {
  const uint64_t seq = d->seq;
  if (seq == 0) return;  // not numbered: nothing to serve it as
  Tail& t = tails_[agency];
  if (!t.entries.empty()) {
    const uint64_t next = t.first_seq + t.entries.size();
    if (seq < next) return;  // already held
    if (seq > next) {
      // A gap (some deliveries were not handed over): the tail must stay a run,
      // so it restarts here; the ones before are read from the store.
      for (const TailEntry& e : t.entries) tail_bytes_ -= e.bytes;
      tail_entries_ -= t.entries.size();
      t.entries.clear();
    }
  }
  if (t.entries.empty()) t.first_seq = seq;
  const size_t bytes = d->wire.size();
  t.entries.push_back(TailEntry{std::move(d), bytes, ++tail_arrivals_});
  tail_bytes_ += bytes;
  ++tail_entries_;
  while (tail_bytes_ > options_.tail_max_bytes || tail_entries_ > options_.tail_max_entries) {
    // Drop the oldest arrival. Agencies are few (the registry), so a scan is fine.
    Tail* oldest = nullptr;
    for (auto& [a, other] : tails_) {
      if (other.entries.empty()) continue;
      if (oldest == nullptr || other.entries.front().arrival < oldest->entries.front().arrival) {
        oldest = &other;
      }
    }
    if (oldest == nullptr) break;
    tail_bytes_ -= oldest->entries.front().bytes;
    --tail_entries_;
    oldest->entries.pop_front();
    ++oldest->first_seq;
  }
}

uint64_t DeliveryHub::Attach(const PeerIdentity& peer, SubscribeParams params,
                             std::shared_ptr<DeliverySink> sink,
                             ExchangeCore::OpenCallback opened) {
  uint64_t id = next_session_.fetch_add(1);
  bool posted = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!stopping_) {
      posted = true;
      queue_.push_back([this, id, peer, params = std::move(params), sink = std::move(sink),
                        opened = std::move(opened)]() mutable {
        DoAttach(id, std::move(peer), std::move(params), std::move(sink), std::move(opened));
      });
    }
  }
  if (posted) {
    cv_.notify_one();
  } else {
    opened(absl::UnavailableError("broker is shutting down"));
  }
  return id;
}

void DeliveryHub::Ack(uint64_t session, std::vector<uint64_t> seqs) {
  Post([this, session, seqs = std::move(seqs)] {
    Session* s = FindSession(session);
    if (s == nullptr || !s->ready) return;
    Sub* sub = s->sub;
    for (uint64_t seq : seqs) {
      auto inflight = s->inflight.find(seq);
      if (inflight == s->inflight.end()) continue;  // unknown, repeated or not ours
      Audit(s, *inflight->second.delivery, inflight->second.attempt, v1::AUDIT_EVENT_CONSULTATION);
      EraseInflight(s, inflight);
      if (seq >= sub->record.ack_floor() && sub->acked.insert(seq).second) {
        sub->new_acks.push_back(seq);
        MarkDirty(sub);
      }
    }
    UpdateFloor(sub);
  });
}

void DeliveryHub::Detach(uint64_t session) {
  Post([this, session] {
    if (Session* s = FindSession(session)) DropSession(s, absl::OkStatus(), /*close_sink=*/false);
  });
}

void DeliveryHub::FillStatus(const PeerIdentity& caller, v1::StatusResponse base,
                             ExchangeCore::StatusCallback done) {
  auto done_shared = std::make_shared<ExchangeCore::StatusCallback>(std::move(done));
  auto base_shared = std::make_shared<v1::StatusResponse>(std::move(base));
  bool posted = Post([this, caller, base_shared, done_shared] {
    v1::StatusResponse& base = *base_shared;
    if (caller.role == PeerRole::kAdmin) {  // broker-wide figures: admins only
      uint64_t deliveries = 0;
      for (const auto& [agency, head] : heads_) deliveries += head;
      base.set_deliveries_stored(deliveries);
      base.set_connected_streams(static_cast<uint32_t>(sessions_.size()));
      (*base.mutable_limits_hit())["redelivery_backoff_max"] = backoff_capped_;
    }
    for (const auto& [key, sub] : subs_) {
      if (caller.role != PeerRole::kAdmin && key.first != caller.agency_id) continue;
      auto* st = base.add_subscriptions();
      st->set_agency_id(key.first);
      st->set_name(key.second);
      *st->mutable_topic_filters() = sub->record.topic_filters();
      st->set_ack_floor(sub->record.ack_floor());
      uint64_t head = heads_.count(key.first) ? heads_[key.first] : 0;
      st->set_queue_head(head);
      uint64_t floor = sub->record.ack_floor();
      uint64_t pending = head + 1 > floor ? head + 1 - floor : 0;
      pending -= std::min<uint64_t>(pending, sub->acked.size());
      st->set_pending(pending);
      st->set_connected(sub->session != nullptr);
    }
    (*done_shared)(std::move(base));
  });
  if (!posted) (*done_shared)(std::move(*base_shared));
}

DeliveryHub::Session* DeliveryHub::FindSession(uint64_t id) {
  auto it = sessions_.find(id);
  return it == sessions_.end() ? nullptr : it->second.get();
}

void DeliveryHub::DropSession(Session* s, const absl::Status& why, bool close_sink) {
  if (close_sink && s->sink) s->sink->Close(why);
  inflight_total_ -= s->inflight.size();
  if (s->sub != nullptr && s->sub->session == s) {
    s->sub->session = nullptr;
    UpdateFloor(s->sub);
  }
  sessions_.erase(s->id);
}

void DeliveryHub::DoAttach(uint64_t id, PeerIdentity peer, SubscribeParams params,
                           std::shared_ptr<DeliverySink> sink, ExchangeCore::OpenCallback opened) {
  auto key = std::make_pair(peer.agency_id, params.name);
  auto session = std::make_unique<Session>();
  session->id = id;
  session->peer = peer;
  session->sink = std::move(sink);
  session->max_in_flight = params.max_in_flight;
  session->ack_deadline = params.ack_deadline;
  Session* s = session.get();

  auto it = subs_.find(key);
  bool created = it == subs_.end();
  Sub* sub;
  if (created) {
    auto fresh = std::make_unique<Sub>();
    fresh->record.set_agency_id(peer.agency_id);
    fresh->record.set_name(params.name);
    *fresh->record.mutable_topic_filters() = {params.topic_filters.begin(),
                                              params.topic_filters.end()};
    uint64_t floor = params.start == v1::START_POSITION_NEW_ONLY ? head(peer.agency_id) + 1 : 1;
    fresh->record.set_ack_floor(floor);
    fresh->persisted_floor = floor;  // the record below is written with it
    *fresh->record.mutable_created_at() = google::protobuf::util::TimeUtil::GetCurrentTime();
    fresh->record.set_created_by(peer.spiffe_id);
    sub = fresh.get();
    subs_[key] = std::move(fresh);
  } else {
    sub = it->second.get();
    if (sub->session != nullptr) {
      DropSession(sub->session,
                  absl::AbortedError(absl::StrCat("subscription '", params.name,
                                                  "' was taken over by another stream")),
                  /*close_sink=*/true);
    }
  }
  s->sub = sub;
  sub->session = s;
  s->replay = params.start == v1::START_POSITION_FROM_SEQ;
  s->scan_pos = s->replay ? std::max<uint64_t>(1, params.start_seq) : sub->record.ack_floor();
  sessions_[id] = std::move(session);

  bool filters_changed =
      !params.topic_filters.empty() &&
      !std::equal(params.topic_filters.begin(), params.topic_filters.end(),
                  sub->record.topic_filters().begin(), sub->record.topic_filters().end());
  if (!created && !filters_changed) {
    Activate(s, std::move(opened), /*created=*/false);
    return;
  }
  if (filters_changed) {
    *sub->record.mutable_topic_filters() = {params.topic_filters.begin(),
                                            params.topic_filters.end()};
  }
  // Make the subscription (or its new filters) durable before anything flows.
  store::v1::SubscriptionRecord record = sub->record;
  auto opened_shared = std::make_shared<ExchangeCore::OpenCallback>(std::move(opened));
  committer_->Enqueue(Committer::Task{
      .prepare =
          [this, record](rocksdb::WriteBatch& batch) {
            auto s = batch.Put(store_->cf(Store::kSubscriptions),
                               SubscriptionKey(record.agency_id(), record.name()),
                               record.SerializeAsString());
            if (!s.ok()) return FromRocks(s, "subscriptions");
            on_filters_changed_(record.agency_id(), record.name(),
                                {record.topic_filters().begin(), record.topic_filters().end()});
            return absl::OkStatus();
          },
      .done =
          [this, id, created, opened_shared](absl::Status st) {
            bool posted = Post([this, id, created, opened_shared, st] {
              Session* s = FindSession(id);
              if (s == nullptr) {
                if (!st.ok())
                  (*opened_shared)(st);
                else
                  (*opened_shared)(absl::AbortedError("subscription stream ended while opening"));
                return;
              }
              if (!st.ok()) {
                (*opened_shared)(st);
                DropSession(s, st, /*close_sink=*/false);
                return;
              }
              Activate(s, std::move(*opened_shared), created);
            });
            if (!posted) (*opened_shared)(absl::UnavailableError("broker is shutting down"));
          }});
}

void DeliveryHub::Activate(Session* s, ExchangeCore::OpenCallback opened, bool created) {
  s->ready = true;
  v1::SubscriptionOpened info;
  info.set_name(s->sub->record.name());
  info.set_created(created);
  info.set_ack_floor(s->sub->record.ack_floor());
  info.set_queue_head(head(s->sub->record.agency_id()));
  *info.mutable_topic_filters() = s->sub->record.topic_filters();
  opened(std::move(info));
  Pump(s);
}

void DeliveryHub::Pump(Session* s) {
  if (!s->ready) return;
  Sub* sub = s->sub;
  const std::string& agency = sub->record.agency_id();
  const uint64_t head_seq = head(agency);
  if (s->scan_pos > head_seq || s->inflight.size() >= s->max_in_flight) return;
  if (unpersisted_audit_ >= options_.max_unpersisted_audit) return;  // resumes once committed
  auto tail_it = tails_.find(agency);
  const Tail* tail = tail_it == tails_.end() ? nullptr : &tail_it->second;
  const absl::Time now = absl::Now();
  bool scanned = false;
  // The store is read only for what the tail does not hold. The session's
  // iterator stays positioned on the next stored entry between Pumps.
  std::unique_ptr<rocksdb::Iterator>& it = s->store_it;
  if (it != nullptr && now - s->store_it_made > kStoreIteratorMaxAge) it.reset();
  bool seek = it == nullptr || !s->store_it_positioned;
  bool remade = false;  // at most one new iterator per Pump
  const std::string prefix = DeliveryPrefix(agency);
  while (s->scan_pos <= head_seq && s->inflight.size() < s->max_in_flight) {
    uint64_t seq = 0;
    std::shared_ptr<const QueuedDelivery> d;
    if (tail != nullptr && tail->Covers(s->scan_pos)) {
      seq = s->scan_pos;
      s->scan_pos = seq + 1;
      scanned = true;
      seek = true;  // the iterator (if any) is behind now
      if (!s->replay && (seq < sub->record.ack_floor() || sub->acked.count(seq))) continue;
      d = tail->entries[seq - tail->first_seq].delivery;
    } else {
      if (it == nullptr) {
        it.reset(store_->db()->NewIterator(rocksdb::ReadOptions(), store_->cf(Store::kDeliveries)));
        s->store_it_head = head_seq;
        s->store_it_made = now;
        remade = true;
        seek = true;
      }
      if (seek) {
        it->Seek(DeliveryKey(agency, s->scan_pos));
        seek = false;
      }
      bool stored = false;
      if (it->Valid()) {
        rocksdb::Slice k = it->key();
        if (k.starts_with(prefix) && k.size() == prefix.size() + 8) {
          stored = true;
          seq = ReadBe64(std::string_view(k.data() + prefix.size(), 8));
        }
      }
      if ((!stored || seq > s->store_it_head) && s->store_it_head < head_seq && !remade) {
        // Past what the iterator can see, and more is durable since it was made.
        if (!it->status().ok()) break;
        it.reset();
        continue;
      }
      if (tail != nullptr && !tail->entries.empty() && tail->first_seq > s->scan_pos &&
          tail->first_seq <= head_seq && (!stored || seq >= tail->first_seq)) {
        // Nothing stored below the tail from here: go on from the tail.
        s->scan_pos = tail->first_seq;
        scanned = true;
        continue;
      }
      if (!stored || seq > head_seq) break;  // seq > head: not yet acknowledged to its sender
      s->scan_pos = seq + 1;
      scanned = true;
      if (!s->replay && (seq < sub->record.ack_floor() || sub->acked.count(seq))) {
        it->Next();
        continue;
      }
      // The key is the truth for seq; stored values do not carry it.
      auto read = MakeQueuedDelivery(seq, it->value().ToString());
      if (!read.ok()) {
        // A record we cannot read is never silently skipped: the stream ends and the
        // operator sees why; the delivery stays queued.
        DropSession(s, read.status(), /*close_sink=*/true);
        return;
      }
      d = *std::move(read);
      it->Next();
    }
    if (!Matches(sub->record, *d) || Expired(*d, now)) continue;  // expired: being erased
    SendFirst(s, seq, std::move(d), now);
  }
  if (it != nullptr && !it->status().ok()) {
    DropSession(s, FromRocks(it->status(), "deliveries"), /*close_sink=*/true);
    return;
  }
  s->store_it_positioned = !seek;
  if (scanned) UpdateFloor(sub);
}

void DeliveryHub::SendFirst(Session* s, uint64_t seq, std::shared_ptr<const QueuedDelivery> d,
                            absl::Time now) {
  auto [it, inserted] = s->inflight.try_emplace(seq);
  if (!inserted) {
    EraseInflight(s, it);
    it = s->inflight.try_emplace(seq).first;
  }
  ++inflight_total_;
  Inflight& inf = it->second;
  inf.deadline = now + s->ack_deadline;
  inf.expires = d->expires;
  inf.attempt = 1;
  inf.delivery = d;
  if (inf.expires != absl::InfiniteFuture()) s->expiring.emplace(inf.expires, seq);
  s->due.push_back(Due{inf.deadline, seq, 1});
  if (s->due.size() > 2 * s->inflight.size() + kDueSlack) {
    std::erase_if(s->due, [s](const Due& due) {
      auto f = s->inflight.find(due.seq);
      return f == s->inflight.end() || f->second.attempt != due.attempt;
    });
  }
  s->sink->Send(std::move(d), 1, s->sub->record.name());
}

void DeliveryHub::EraseInflight(Session* s, std::map<uint64_t, Inflight>::iterator it) {
  if (it->second.expires != absl::InfiniteFuture()) {
    s->expiring.erase({it->second.expires, it->first});
  }
  if (it->second.attempt > 1) s->retry.erase({it->second.deadline, it->first});
  s->inflight.erase(it);  // its Due entry is dropped when it reaches the front
  --inflight_total_;
}

void DeliveryHub::Redeliver(absl::Time now) {
  for (auto& [id, session] : sessions_) {
    Session* s = session.get();
    if (!s->ready) continue;
    // Expired (erased, or about to be): never sent again.
    while (!s->expiring.empty() && s->expiring.begin()->first <= now) {
      auto inflight = s->inflight.find(s->expiring.begin()->second);
      if (inflight != s->inflight.end()) {
        EraseInflight(s, inflight);
      } else {
        s->expiring.erase(s->expiring.begin());
      }
    }
    // First sends past their ack deadline.
    while (!s->due.empty() && s->due.front().deadline <= now) {
      const Due due = s->due.front();
      s->due.pop_front();
      auto inflight = s->inflight.find(due.seq);
      if (inflight == s->inflight.end() || inflight->second.attempt != due.attempt) continue;
      Resend(s, due.seq, inflight->second, now);
    }
    // Redeliveries past theirs (each one's next deadline lies after `now`).
    while (!s->retry.empty() && s->retry.begin()->first <= now) {
      const uint64_t seq = s->retry.begin()->second;
      s->retry.erase(s->retry.begin());
      auto inflight = s->inflight.find(seq);
      if (inflight == s->inflight.end()) continue;  // not expected: acks erase their entry
      Resend(s, seq, inflight->second, now);
    }
  }
}

void DeliveryHub::Resend(Session* s, uint64_t seq, Inflight& inf, absl::Time now) {
  ++inf.attempt;
  // Attempt n waits ack_deadline * 2^(n-1), capped (the shift is bounded so
  // that it cannot overflow; the cap is reached long before).
  const absl::Duration cap = std::max(options_.redelivery_backoff_max, s->ack_deadline);
  absl::Duration wait = s->ack_deadline * (int64_t{1} << std::min<uint32_t>(inf.attempt - 1, 30));
  if (wait >= cap) {
    wait = cap;
    ++backoff_capped_;
  }
  inf.deadline = now + wait;
  s->retry.emplace(inf.deadline, seq);
  ++redeliveries_;
  NoteRedelivery(s, seq, inf, now);
  s->sink->Send(inf.delivery, inf.attempt, s->sub->record.name());
}

void DeliveryHub::NoteRedelivery(Session* s, uint64_t seq, const Inflight& inf, absl::Time now) {
  Sub* sub = s->sub;
  RedeliveryWindow& w = sub->redeliveries;
  if (!w.by_seq.empty() &&
      (w.peer.spiffe_id != s->peer.spiffe_id ||
       (w.by_seq.size() >= kMaxRedeliveriesPerSummary && !w.by_seq.count(seq)))) {
    RecordRedeliveries(sub);  // another node, or the entry is full
  }
  if (w.by_seq.empty()) {
    if (w.count == 0) open_windows_.push_back(sub);  // not listed since it was last recorded
    w.peer = s->peer;
    w.ends = now + options_.redelivery_audit_window;
    w.first = now;
    w.count = 0;
  }
  w.last = now;
  ++w.count;
  Redelivered& r = w.by_seq[seq];
  if (r.count == 0) {
    const QueuedDelivery& d = *inf.delivery;
    r.exchange_id = d.exchange_id;
    r.client_message_id = d.client_message_id;
    r.sender_agency_id = d.sender_agency_id;
    r.first_attempt = inf.attempt;
  }
  ++r.count;
  r.last_attempt = inf.attempt;
  r.last_sent = now;
}

void DeliveryHub::RecordRedeliveries(Sub* sub) {
  RedeliveryWindow& w = sub->redeliveries;
  if (w.by_seq.empty()) return;
  using google::protobuf::util::TimeUtil;
  auto ts = [](absl::Time t) { return TimeUtil::NanosecondsToTimestamp(absl::ToUnixNanos(t)); };
  // A rare entry (one per subscription and window): built as a message.
  v1::AuditEntry e;
  e.set_event(v1::AUDIT_EVENT_REDELIVERY);
  *e.mutable_broker_time() = TimeUtil::GetCurrentTime();
  e.set_actor_agency_id(w.peer.agency_id);
  e.set_actor_node(w.peer.node);
  e.set_actor_spiffe_id(w.peer.spiffe_id);
  e.set_recipient_agency_id(sub->record.agency_id());
  v1::RedeliverySummary& summary = *e.mutable_redeliveries();
  summary.set_subscription(sub->record.name());
  summary.set_count(w.count);
  *summary.mutable_first_attempt() = ts(w.first);
  *summary.mutable_last_attempt() = ts(w.last);
  summary.set_first_seq(w.by_seq.begin()->first);
  summary.set_last_seq(w.by_seq.rbegin()->first);
  for (auto& [seq, r] : w.by_seq) {
    v1::RedeliveredExchange& x = *summary.add_exchanges();
    x.set_exchange_id(std::move(r.exchange_id));
    x.set_client_message_id(std::move(r.client_message_id));
    x.set_sender_agency_id(std::move(r.sender_agency_id));
    x.set_delivery_seq(seq);
    x.set_count(r.count);
    x.set_first_attempt(r.first_attempt);
    x.set_last_attempt(r.last_attempt);
    *x.mutable_last_sent() = ts(r.last_sent);
  }
  // In wire form like the others: no index, no delivery_seq (AuditLog::Append
  // writes the index first), so the stored bytes are protobuf's serialization.
  PreparedEntry& p = sub->audit.emplace_back();
  e.SerializeToString(&p.bytes);
  p.seq_at = 0;
  w.by_seq.clear();
  ++unpersisted_audit_;
  MarkDirty(sub);
}

void DeliveryHub::RecordEndedWindows(absl::Time now) {
  std::erase_if(open_windows_, [&](Sub* sub) {
    RedeliveryWindow& w = sub->redeliveries;
    if (!w.by_seq.empty() && w.ends > now) return false;
    RecordRedeliveries(sub);
    w.count = 0;  // no longer listed
    return true;
  });
}

void DeliveryHub::UpdateFloor(Sub* sub) {
  uint64_t floor = sub->record.ack_floor();
  if (Session* s = sub->session; s != nullptr && s->ready) {
    uint64_t candidate = s->scan_pos;
    if (!s->inflight.empty()) candidate = std::min(candidate, s->inflight.begin()->first);
    if (s->replay) {
      // A replay re-reads acked history; the floor only moves past what is acked.
      candidate = floor;
      while (sub->acked.count(candidate) && candidate <= s->scan_pos) ++candidate;
    }
    floor = std::max(floor, candidate);
  } else {
    while (sub->acked.count(floor)) ++floor;
  }
  if (floor == sub->record.ack_floor()) return;
  sub->record.set_ack_floor(floor);
  sub->acked.erase(sub->acked.begin(), sub->acked.lower_bound(floor));
  MarkDirty(sub);
}

void DeliveryHub::MarkDirty(Sub* sub) {
  if (sub->dirty) return;
  sub->dirty = true;
  dirty_.push_back(sub);
}

void DeliveryHub::Audit(Session* s, const QueuedDelivery& d, uint32_t attempt,
                        v1::AuditEvent event) {
  // Built in wire form, in place (audit_entry_wire.h), in field order.
  using E = v1::AuditEntry;
  PreparedEntry& e = s->sub->audit.emplace_back();
  e.bytes.reserve(256);
  const EntryWriter w(&e.bytes);
  w.Enum(E::kEventFieldNumber, event);
  w.Message(E::kBrokerTimeFieldNumber, google::protobuf::util::TimeUtil::GetCurrentTime());
  w.String(E::kActorAgencyIdFieldNumber, s->peer.agency_id);
  w.String(E::kActorNodeFieldNumber, s->peer.node);
  w.String(E::kActorSpiffeIdFieldNumber, s->peer.spiffe_id);
  w.String(E::kRecipientAgencyIdFieldNumber, s->sub->record.agency_id());
  w.String(E::kExchangeIdFieldNumber, d.exchange_id);
  w.String(E::kClientMessageIdFieldNumber, d.client_message_id);
  w.String(E::kSenderAgencyIdFieldNumber, d.sender_agency_id);
  w.Enum(E::kKindFieldNumber, d.kind);
  w.String(E::kTopicFieldNumber, d.topic);
  w.String(E::kHandlingCodeFieldNumber, d.handling_code);
  e.seq_at = e.bytes.size();
  e.delivery_seq = d.seq;
  w.String(E::kCaseRefFieldNumber, d.case_ref);
  ++unpersisted_audit_;
  MarkDirty(s->sub);
}

void DeliveryHub::PersistDirty() {
  std::vector<Sub*> dirty;
  dirty.swap(dirty_);
  for (Sub* sub : dirty) {
    sub->dirty = false;
    const uint64_t floor = sub->record.ack_floor();
    // Ack keys exist only for acks above the floor: in-order acks never touch
    // the disk beyond the subscription record; keys the floor passed are deleted.
    std::vector<uint64_t> put, del;
    for (uint64_t seq : sub->acked) {
      if (!sub->persisted_acks.count(seq)) put.push_back(seq);
    }
    for (auto it = sub->persisted_acks.begin(); it != sub->persisted_acks.end() && *it < floor;) {
      del.push_back(*it);
      it = sub->persisted_acks.erase(it);
    }
    sub->persisted_acks.insert(put.begin(), put.end());
    std::optional<store::v1::SubscriptionRecord> record;
    if (floor != sub->persisted_floor) {
      record = sub->record;
      sub->persisted_floor = floor;
    }
    sub->new_acks.clear();
    const size_t audit_size = sub->audit.size();
    auto audit = std::make_shared<std::vector<PreparedEntry>>(std::move(sub->audit));
    sub->audit.clear();
    sub->audit.reserve(audit_size);  // the next tick is likely alike: no regrowth moves
    if (!record && put.empty() && del.empty() && audit->empty()) continue;
    committer_->Enqueue(Committer::Task{
        .prepare =
            [this, agency = sub->record.agency_id(), name = sub->record.name(), record,
             put = std::move(put), del = std::move(del), audit](rocksdb::WriteBatch& batch) {
              rocksdb::Status s;
              if (record) {
                s = batch.Put(store_->cf(Store::kSubscriptions), SubscriptionKey(agency, name),
                              record->SerializeAsString());
              }
              for (uint64_t seq : del) {
                if (s.ok()) s = batch.Delete(store_->cf(Store::kAcks), AckKey(agency, name, seq));
              }
              for (uint64_t seq : put) {
                if (s.ok()) s = batch.Put(store_->cf(Store::kAcks), AckKey(agency, name, seq), "");
              }
              if (!s.ok()) return FromRocks(s, "acks");
              // Last: nothing after this may fail, or the in-memory tree would run
              // ahead of the rolled-back batch. One group for the tick: an entry
              // per acked or redelivered delivery, one Append.
              audit_append_(*audit, batch);
              return absl::OkStatus();
            },
        // A lost ack means a redelivery, never a loss. Either way the entries
        // no longer wait: sending may go on (Run pumps after posted work).
        .done =
            [this, n = audit->size()](absl::Status) {
              if (n > 0) Post([this, n] { unpersisted_audit_ -= std::min(n, unpersisted_audit_); });
            },
        .sync = false});
  }
}

void DeliveryHub::Run() {
  std::vector<std::function<void()>> work;
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(mu_);
      if (!dirty_.empty()) {
        cv_.wait_for(lock, absl::ToChronoMilliseconds(kPersistTick),
                     [&] { return stopping_ || !queue_.empty(); });
      } else if (inflight_total_ > 0 || !open_windows_.empty()) {
        cv_.wait_for(lock, absl::ToChronoMilliseconds(kDeadlineTick),
                     [&] { return stopping_ || !queue_.empty(); });
      } else {
        cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      }
      if (stopping_) break;
      work.swap(queue_);
    }
    for (auto& fn : work) fn();
    work.clear();
    std::vector<uint64_t> ids;
    ids.reserve(sessions_.size());
    for (const auto& [id, s] : sessions_) ids.push_back(id);
    for (uint64_t id : ids) {
      if (Session* s = FindSession(id)) Pump(s);
    }
    absl::Time now = absl::Now();
    if (now >= next_deadline_check_) {
      Redeliver(now);
      if (!open_windows_.empty()) RecordEndedWindows(now);
      next_deadline_check_ = now + kDeadlineTick;
    }
    // Acks are batched for the disk: at most one task per subscription per tick.
    if (now >= next_persist_) {
      PersistDirty();
      next_persist_ = now + kPersistTick;
    }
  }
  // Stopping: run what was already posted (acks, detaches), persist, close every stream.
  {
    std::lock_guard<std::mutex> lock(mu_);
    work.swap(queue_);
  }
  for (auto& fn : work) fn();
  for (auto& [id, s] : sessions_) {
    if (s->sink) s->sink->Close(absl::UnavailableError("broker is shutting down"));
    if (s->sub) s->sub->session = nullptr;
  }
  sessions_.clear();
  inflight_total_ = 0;
  RecordEndedWindows(absl::InfiniteFuture());
  PersistDirty();
}

}  // namespace corridor::broker
