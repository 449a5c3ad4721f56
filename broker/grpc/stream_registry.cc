#include "broker/grpc/stream_registry.h"

#include <grpc/grpc_security_constants.h>
#include <pthread.h>

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "broker/grpc/status_conversion.h"

namespace corridor::broker::grpc_transport {
namespace {

std::string Seconds(absl::Duration d) { return absl::FormatDuration(d); }

}  // namespace

StreamInfo StreamInfoFor(const grpc::CallbackServerContext& ctx, std::string method,
                         PeerIdentity peer) {
  StreamInfo info;
  info.method = std::move(method);
  info.peer = std::move(peer);
  info.connection = ctx.peer();
  if (std::shared_ptr<const grpc::AuthContext> auth = ctx.auth_context(); auth != nullptr) {
    for (const auto& v : auth->FindPropertyValues(GRPC_X509_PEM_CERT_PROPERTY_NAME)) {
      info.cert_pem.assign(v.data(), v.size());
      break;
    }
  }
  return info;
}

void StreamRegistry::Registration::FirstMessage() {
  if (registry_ != nullptr) registry_->FirstMessage(id_);
}

void StreamRegistry::Registration::Reset() {
  if (registry_ != nullptr) std::exchange(registry_, nullptr)->Deregister(id_);
}

StreamRegistry::StreamRegistry(const LimitSettings& limits, SecurityRecorder record)
    : limits_(limits), record_(std::move(record)) {
  thread_ = std::thread([this] {
    pthread_setname_np(pthread_self(), "stream-limits");
    Run();
  });
}

StreamRegistry::~StreamRegistry() { Stop(); }

void StreamRegistry::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
    cv_.SignalAll();
  }
  if (thread_.joinable()) thread_.join();
}

const std::string& StreamRegistry::CertKey(const StreamInfo& info) {
  // mTLS always gives the PEM; the SPIFFE id stands in should it not.
  return info.cert_pem.empty() ? info.peer.spiffe_id : info.cert_pem;
}

absl::StatusOr<StreamRegistry::Registration> StreamRegistry::Register(StreamInfo info,
                                                                      CancellableStream* stream) {
  std::vector<Record> records;
  absl::Status refused;
  uint64_t id = 0;
  {
    absl::MutexLock lock(&mu_);
    const absl::Time now = absl::Now();
    auto conn = per_connection_.find(info.connection);
    auto cert = per_certificate_.find(CertKey(info));
    if (conn != per_connection_.end() && conn->second >= limits_.streams_per_connection) {
      refused = absl::ResourceExhaustedError(absl::StrCat(
          kStreamsPerConnection, ": this connection already has ", conn->second,
          " open streams, the most allowed (broker.limits.", kStreamsPerConnection, ")"));
      HitLocked(kStreamsPerConnection, info.peer,
                absl::StrCat("limit ", kStreamsPerConnection, " (", limits_.streams_per_connection,
                             ") hit: ", info.method, " refused on ", info.connection),
                now, &records);
    } else if (cert != per_certificate_.end() && cert->second >= limits_.streams_per_certificate) {
      refused = absl::ResourceExhaustedError(absl::StrCat(
          kStreamsPerCertificate, ": this certificate already has ", cert->second,
          " open streams, the most allowed (broker.limits.", kStreamsPerCertificate, ")"));
      HitLocked(
          kStreamsPerCertificate, info.peer,
          absl::StrCat("limit ", kStreamsPerCertificate, " (", limits_.streams_per_certificate,
                       ") hit: ", info.method, " refused on ", info.connection),
          now, &records);
    } else {
      id = next_id_++;
      info.id = id;
      info.opened = now;
      ++per_connection_[info.connection];
      ++per_certificate_[CertKey(info)];
      const absl::Time silent_until = now + limits_.stream_first_message_timeout;
      const bool earliest = silent_.empty() || silent_until < silent_.begin()->first;
      silent_.emplace(silent_until, id);
      streams_.emplace(id, Entry{std::move(info), stream, false});
      if (earliest) cv_.Signal();
    }
  }
  RecordAll(records);
  if (!refused.ok()) return refused;
  return Registration(this, id);
}

void StreamRegistry::FirstMessage(uint64_t id) {
  absl::MutexLock lock(&mu_);
  auto it = streams_.find(id);
  if (it == streams_.end() || it->second.spoke) return;
  it->second.spoke = true;
  silent_.erase({it->second.info.opened + limits_.stream_first_message_timeout, id});
}

void StreamRegistry::Deregister(uint64_t id) {
  absl::MutexLock lock(&mu_);
  auto it = streams_.find(id);
  if (it == streams_.end()) return;
  const StreamInfo& info = it->second.info;
  if (!it->second.spoke) silent_.erase({info.opened + limits_.stream_first_message_timeout, id});
  if (auto c = per_connection_.find(info.connection);
      c != per_connection_.end() && --c->second == 0) {
    per_connection_.erase(c);
  }
  if (auto c = per_certificate_.find(CertKey(info));
      c != per_certificate_.end() && --c->second == 0) {
    per_certificate_.erase(c);
  }
  streams_.erase(it);
}

size_t StreamRegistry::CancelWhere(const std::function<bool(const StreamInfo&)>& match,
                                   const absl::Status& reason) {
  const grpc::Status why = ToGrpcStatus(reason);
  // Per certificate: its identity and how many of its streams were cut.
  std::map<std::string, std::pair<PeerIdentity, size_t>> cut;
  size_t n = 0;
  {
    absl::MutexLock lock(&mu_);
    for (auto& [id, entry] : streams_) {
      if (!match(entry.info)) continue;
      // Held under the lock: the stream cannot deregister (and its reactor
      // cannot be deleted) while it is being cancelled.
      CancelLocked(id, entry, why);
      auto& [peer, count] = cut[entry.info.peer.spiffe_id];
      peer = entry.info.peer;
      ++count;
      ++n;
    }
  }
  std::vector<Record> records;
  for (auto& [spiffe_id, what] : cut) {
    records.push_back(
        Record{what.first, absl::StrCat(what.second, " open stream", what.second == 1 ? "" : "s",
                                        " cut: ", reason.message())});
  }
  RecordAll(records);
  return n;
}

void StreamRegistry::CancelLocked(uint64_t id, Entry& entry, const grpc::Status& why) {
  entry.stream->CancelStream(why);
  const bool earliest = cancelled_.empty();
  cancelled_.emplace(absl::Now() + kAbortGrace, id);
  if (earliest) cv_.Signal();
}

size_t StreamRegistry::open_streams() const {
  absl::MutexLock lock(&mu_);
  return streams_.size();
}

std::map<std::string, uint64_t> StreamRegistry::hits() const {
  absl::MutexLock lock(&mu_);
  return hits_;
}

void StreamRegistry::FillStatus(v1::StatusResponse* status) const {
  auto& out = *status->mutable_limits_hit();
  for (const char* limit : {kStreamsPerConnection, kStreamsPerCertificate, kFirstMessageTimeout}) {
    out[limit] = 0;
  }
  for (const auto& [limit, count] : hits()) out[limit] = count;
}

void StreamRegistry::HitLocked(const char* limit, const PeerIdentity& peer, std::string detail,
                               absl::Time now, std::vector<Record>* out) {
  ++hits_[limit];
  auto key = std::make_pair(std::string(limit), peer.spiffe_id);
  auto it = windows_.find(key);
  if (it != windows_.end() && it->second.ends > now) {
    HitWindow& w = it->second;
    if (w.more++ == 0) w.first_more = now;
    w.last_more = now;
    return;
  }
  if (it != windows_.end()) EndWindowsLocked(now, out);  // records its summary first
  HitWindow& w = windows_[key];
  w.peer = peer;
  w.ends = now + limits_.audit_window;
  w.more = 0;
  out->push_back(Record{peer, std::move(detail)});
  cv_.Signal();  // the thread waits for this window's end too
}

void StreamRegistry::EndWindowsLocked(absl::Time now, std::vector<Record>* out) {
  for (auto it = windows_.begin(); it != windows_.end();) {
    const HitWindow& w = it->second;
    if (w.ends > now) {
      ++it;
      continue;
    }
    if (w.more > 0) {
      out->push_back(Record{
          w.peer, absl::StrCat("limit ", it->first.first, " hit ", w.more, " more time",
                               w.more == 1 ? "" : "s", " from ", absl::FormatTime(w.first_more),
                               " to ", absl::FormatTime(w.last_more))});
    }
    it = windows_.erase(it);
  }
}

void StreamRegistry::RecordAll(std::vector<Record>& records) {
  if (!record_) return;
  for (Record& r : records) record_(r.peer, r.detail);
  records.clear();
}

void StreamRegistry::Run() {
  std::vector<Record> records;
  absl::MutexLock lock(&mu_);
  while (!stopping_) {
    const absl::Time now = absl::Now();
    while (!silent_.empty() && silent_.begin()->first <= now) {
      const uint64_t id = silent_.begin()->second;
      silent_.erase(silent_.begin());
      auto it = streams_.find(id);
      if (it == streams_.end()) continue;
      Entry& e = it->second;
      e.spoke = true;  // no longer in silent_
      CancelLocked(id, e,
                   grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED,
                                absl::StrCat(kFirstMessageTimeout, ": no message within ",
                                             Seconds(limits_.stream_first_message_timeout),
                                             " of opening the stream (broker.limits.",
                                             kFirstMessageTimeout, "_ms)")));
      HitLocked(kFirstMessageTimeout, e.info.peer,
                absl::StrCat("limit ", kFirstMessageTimeout, " (",
                             Seconds(limits_.stream_first_message_timeout),
                             ") hit: ", e.info.method, " on ", e.info.connection, " closed"),
                now, &records);
    }
    while (!cancelled_.empty() && cancelled_.begin()->first <= now) {
      const uint64_t id = cancelled_.begin()->second;
      cancelled_.erase(cancelled_.begin());
      // Still registered: it has not reached OnDone within the grace.
      if (auto it = streams_.find(id); it != streams_.end()) it->second.stream->AbortStream();
    }
    EndWindowsLocked(now, &records);
    if (!records.empty()) {
      mu_.Unlock();
      RecordAll(records);
      mu_.Lock();
      continue;
    }
    absl::Time next = absl::InfiniteFuture();
    if (!silent_.empty()) next = silent_.begin()->first;
    if (!cancelled_.empty()) next = std::min(next, cancelled_.begin()->first);
    for (const auto& [key, w] : windows_) next = std::min(next, w.ends);
    cv_.WaitWithDeadline(&mu_, next);
  }
  EndWindowsLocked(absl::InfiniteFuture(), &records);
  mu_.Unlock();
  RecordAll(records);
  mu_.Lock();
}

}  // namespace corridor::broker::grpc_transport
