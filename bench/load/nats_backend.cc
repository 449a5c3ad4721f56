// NATS JetStream through libnats (the C client): one file-storage stream, a
// durable pull consumer with explicit acks per receiving agency, async publish
// with a window (or sync publish, one at a time), all over TLS with client
// certificates. JetStream 2.9 does not fsync per message: it acks once the
// message is in its file store's page cache (sync_interval, default 2 min).
#include "bench/load/backend.h"

#ifdef CORRIDOR_LOAD_NATS

#include <nats/nats.h>

#include <atomic>
#include <cstring>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace corridor::load {
namespace {

std::string NatsError(natsStatus s, jsErrCode je = static_cast<jsErrCode>(0)) {
  return absl::StrCat(natsStatus_GetText(s), je ? absl::StrCat(" (jetstream ", je, ")") : "", ": ",
                      nats_GetLastError(nullptr) ? nats_GetLastError(nullptr) : "");
}

struct Conn {
  natsConnection* nc = nullptr;
  jsCtx* js = nullptr;
  ~Conn() {
    if (js) jsCtx_Destroy(js);
    if (nc) {
      natsConnection_Close(nc);
      natsConnection_Destroy(nc);
    }
  }
};

absl::StatusOr<std::unique_ptr<Conn>> Dial(const BackendOptions& o, const std::string& name,
                                           jsOptions* jo) {
  natsOptions* opts = nullptr;
  natsOptions_Create(&opts);
  natsOptions_SetURL(opts, absl::StrCat("tls://", o.target).c_str());
  natsOptions_SetSecure(opts, true);
  natsOptions_LoadCATrustedCertificates(opts, absl::StrCat(o.certs_dir, "/ca.crt").c_str());
  natsStatus s =
      natsOptions_LoadCertificatesChain(opts, absl::StrCat(o.certs_dir, "/", name, ".crt").c_str(),
                                        absl::StrCat(o.certs_dir, "/", name, ".key").c_str());
  natsOptions_SetTimeout(opts, o.connect_timeout_s * 1000);
  natsOptions_SetMaxPendingMsgs(opts, 1 << 20);
  auto c = std::make_unique<Conn>();
  if (s == NATS_OK) s = natsConnection_Connect(&c->nc, opts);
  natsOptions_Destroy(opts);
  if (s != NATS_OK) return absl::UnavailableError("nats connect: " + NatsError(s));
  s = natsConnection_JetStream(&c->js, c->nc, jo);
  if (s != NATS_OK) return absl::UnavailableError("jetstream: " + NatsError(s));
  return c;
}

class NatsSender final : public SenderConn {
 public:
  NatsSender(const BackendOptions& o, Tracker* t, int index, std::string subject)
      : SenderConn(t, index), o_(o), subject_(std::move(subject)) {}

  absl::Status Connect(uint64_t max_pending) {
    jsOptions jo;
    jsOptions_Init(&jo);
    jo.PublishAsync.MaxPending = static_cast<int64_t>(max_pending);
    jo.PublishAsync.AckHandler = &NatsSender::OnPubAck;
    jo.PublishAsync.AckHandlerClosure = this;
    auto c = Dial(o_, o_.sender_names[index_], &jo);
    if (!c.ok()) return c.status();
    conn_ = *std::move(c);
    return absl::OkStatus();
  }

  void Send(uint64_t n) override {
    buf_ = tracker_->MessageId(index_, n);
    buf_.push_back('\n');
    buf_.append(o_.payload);
    if (o_.unary) {
      jsPubAck* pa = nullptr;
      jsErrCode je = static_cast<jsErrCode>(0);
      natsStatus s = js_Publish(&pa, conn_->js, subject_.c_str(), buf_.data(),
                                static_cast<int>(buf_.size()), nullptr, &je);
      if (s != NATS_OK) tracker_->NoteError("js_Publish: " + NatsError(s, je));
      tracker_->OnAck(index_, n, s == NATS_OK, AllMask(), NowNs());
      jsPubAck_Destroy(pa);
      return;
    }
    natsStatus s = js_PublishAsync(conn_->js, subject_.c_str(), buf_.data(),
                                   static_cast<int>(buf_.size()), nullptr);
    if (s != NATS_OK) {
      tracker_->NoteError("js_PublishAsync: " + NatsError(s));
      tracker_->OnAck(index_, n, false, 0, NowNs());
    }
  }

  void Close(int64_t deadline_ns) override {
    if (!o_.unary && conn_) {
      jsPubOptions po;
      jsPubOptions_Init(&po);
      po.MaxWait = std::max<int64_t>(1, (deadline_ns - NowNs()) / 1'000'000);
      js_PublishAsyncComplete(conn_->js, &po);
    }
    tracker_->WaitForSlot(index_, 1, deadline_ns);
  }

 private:
  uint32_t AllMask() const { return (1u << o_.fanout) - 1; }

  static void OnPubAck(jsCtx*, natsMsg* msg, jsPubAck* pa, jsPubAckErr* pae, void* closure) {
    auto* self = static_cast<NatsSender*>(closure);
    const char* data = natsMsg_GetData(msg);
    const int len = natsMsg_GetDataLength(msg);
    const char* nl = static_cast<const char*>(memchr(data, '\n', len));
    int sender;
    uint64_t n;
    if (nl != nullptr && self->tracker_->ParseId(std::string_view(data, nl - data), &sender, &n)) {
      const bool ok = pa != nullptr && pae == nullptr;
      if (!ok && pae != nullptr) {
        self->tracker_->NoteError(
            absl::StrCat("publish ack error: ", pae->ErrText ? pae->ErrText : ""));
      }
      self->tracker_->OnAck(sender, n, ok, ok ? self->AllMask() : 0, NowNs());
    }
    natsMsg_Destroy(msg);
  }

  const BackendOptions& o_;
  const std::string subject_;
  std::unique_ptr<Conn> conn_;
  std::string buf_;
};

class NatsSubscriber final : public SubscriberConn {
 public:
  NatsSubscriber(Tracker* t, int index, std::unique_ptr<Conn> c, natsSubscription* sub, int batch)
      : tracker_(t), index_(index), conn_(std::move(c)), sub_(sub), batch_(batch) {
    thread_ = std::thread([this] { Run(); });
  }
  ~NatsSubscriber() override { Stop(); }

  void Stop() override {
    stop_.store(true);
    if (thread_.joinable()) thread_.join();
    if (sub_ != nullptr) {
      natsSubscription_Destroy(sub_);  // not Unsubscribe: that would delete the durable
      sub_ = nullptr;
    }
    conn_.reset();
  }

 private:
  void Run() {
    while (!stop_.load()) {
      natsMsgList list = {nullptr, 0};
      natsStatus s = natsSubscription_Fetch(&list, sub_, batch_, 100, nullptr);
      if (s != NATS_OK && s != NATS_TIMEOUT) {
        tracker_->NoteError("fetch: " + NatsError(s));
        usleep(10'000);
      }
      const int64_t now = NowNs();
      for (int i = 0; i < list.Count; ++i) {
        natsMsg* m = list.Msgs[i];
        const char* data = natsMsg_GetData(m);
        const int len = natsMsg_GetDataLength(m);
        const char* nl = static_cast<const char*>(memchr(data, '\n', len));
        tracker_->OnDelivery(index_, std::string_view(data, nl ? nl - data : len), now);
        natsMsg_Ack(m, nullptr);
      }
      natsMsgList_Destroy(&list);
    }
  }

  Tracker* const tracker_;
  const int index_;
  std::unique_ptr<Conn> conn_;
  natsSubscription* sub_;
  const int batch_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

class NatsBackend final : public Backend {
 public:
  NatsBackend(const BackendOptions& o, Tracker* t)
      : o_(o),
        tracker_(t),
        stream_(absl::StrCat("LOAD_", o.run_tag)),
        subject_(absl::StrCat("load.", o.run_tag)) {}
  ~NatsBackend() override { Cleanup(); }
  std::string name() const override { return "nats"; }

  absl::Status Prepare() override {
    auto c = Dial(o_, o_.sender_names[0], nullptr);
    if (!c.ok()) return c.status();
    admin_ = *std::move(c);
    jsStreamConfig sc;
    jsStreamConfig_Init(&sc);
    sc.Name = stream_.c_str();
    const char* subjects[] = {subject_.c_str()};
    sc.Subjects = subjects;
    sc.SubjectsLen = 1;
    sc.Storage = js_FileStorage;
    sc.Retention = js_InterestPolicy;  // gone once every consumer acked: a queue per agency
    jsStreamInfo* si = nullptr;
    jsErrCode je = static_cast<jsErrCode>(0);
    natsStatus s = js_AddStream(&si, admin_->js, &sc, nullptr, &je);
    if (s != NATS_OK) return absl::InternalError("add stream: " + NatsError(s, je));
    jsStreamInfo_Destroy(si);
    stream_made_ = true;
    for (int i = 0; i < o_.fanout; ++i) {
      jsConsumerConfig cc;
      jsConsumerConfig_Init(&cc);
      cc.Durable = o_.subscriber_names[i].c_str();
      cc.AckPolicy = js_AckExplicit;
      cc.DeliverPolicy = js_DeliverAll;
      cc.MaxAckPending = o_.sub_window;
      cc.AckWait = 30'000'000'000LL;
      jsConsumerInfo* ci = nullptr;
      s = js_AddConsumer(&ci, admin_->js, stream_.c_str(), &cc, nullptr, &je);
      if (s != NATS_OK) return absl::InternalError("add consumer: " + NatsError(s, je));
      jsConsumerInfo_Destroy(ci);
    }
    return absl::OkStatus();
  }

  absl::StatusOr<std::unique_ptr<SenderConn>> ConnectSender(int index) override {
    auto sender = std::make_unique<NatsSender>(o_, tracker_, index, subject_);
    if (absl::Status s = sender->Connect(1 << 20); !s.ok()) return s;
    return sender;
  }

  absl::StatusOr<std::unique_ptr<SubscriberConn>> StartSubscriber(int index) override {
    auto c = Dial(o_, o_.subscriber_names[index], nullptr);
    if (!c.ok()) return c.status();
    jsSubOptions so;
    jsSubOptions_Init(&so);
    so.Stream = stream_.c_str();
    so.Consumer = o_.subscriber_names[index].c_str();
    natsSubscription* sub = nullptr;
    jsErrCode je = static_cast<jsErrCode>(0);
    natsStatus s = js_PullSubscribe(&sub, (*c)->js, subject_.c_str(),
                                    o_.subscriber_names[index].c_str(), nullptr, &so, &je);
    if (s != NATS_OK) return absl::InternalError("pull subscribe: " + NatsError(s, je));
    return std::make_unique<NatsSubscriber>(
        tracker_, index, *std::move(c), sub,
        static_cast<int>(std::min<uint32_t>(o_.sub_window, 256)));
  }

  void Cleanup() override {
    if (stream_made_ && admin_) {
      js_DeleteStream(admin_->js, stream_.c_str(), nullptr, nullptr);
      stream_made_ = false;
    }
    admin_.reset();
  }

  std::vector<std::pair<std::string, std::string>> Facts() override {
    return {{"storage", "JetStream file store, interest retention, no fsync per message"}};
  }

 private:
  const BackendOptions& o_;
  Tracker* const tracker_;
  const std::string stream_, subject_;
  std::unique_ptr<Conn> admin_;
  bool stream_made_ = false;
};

}  // namespace

std::unique_ptr<Backend> MakeNatsBackend(const BackendOptions& o, Tracker* tracker) {
  return std::make_unique<NatsBackend>(o, tracker);
}

}  // namespace corridor::load

#else

namespace corridor::load {
std::unique_ptr<Backend> MakeNatsBackend(const BackendOptions&, Tracker*) { return nullptr; }
}  // namespace corridor::load

#endif
