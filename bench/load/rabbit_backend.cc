// RabbitMQ through librabbitmq (rabbitmq-c): a fanout exchange to one durable
// quorum queue per receiving agency, persistent messages with publisher
// confirms (a window of K unconfirmed per sender, or one at a time), consumers
// with manual acks and a prefetch window, all over TLS with client
// certificates. Quorum queues confirm after their Raft log's fdatasync.
#include "bench/load/backend.h"

#ifdef CORRIDOR_LOAD_RABBITMQ

#include <amqp.h>
#include <amqp_ssl_socket.h>
#include <sys/time.h>

#include <atomic>
#include <cstring>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace corridor::load {
namespace {

constexpr amqp_channel_t kChannel = 1;

amqp_bytes_t Bytes(const std::string& s) {
  return amqp_bytes_t{s.size(), const_cast<char*>(s.data())};
}

std::string ReplyError(const amqp_rpc_reply_t& r, const char* what) {
  if (r.reply_type == AMQP_RESPONSE_NORMAL) return "";
  if (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION) {
    return absl::StrCat(what, ": ", amqp_error_string2(r.library_error));
  }
  if (r.reply.id == AMQP_CHANNEL_CLOSE_METHOD) {
    auto* m = static_cast<amqp_channel_close_t*>(r.reply.decoded);
    return absl::StrCat(what, ": channel closed: ",
                        std::string(static_cast<char*>(m->reply_text.bytes), m->reply_text.len));
  }
  if (r.reply.id == AMQP_CONNECTION_CLOSE_METHOD) {
    auto* m = static_cast<amqp_connection_close_t*>(r.reply.decoded);
    return absl::StrCat(what, ": connection closed: ",
                        std::string(static_cast<char*>(m->reply_text.bytes), m->reply_text.len));
  }
  return absl::StrCat(what, ": server error");
}

class Conn {
 public:
  ~Conn() {
    if (state_ != nullptr) {
      if (open_) {
        amqp_channel_close(state_, kChannel, AMQP_REPLY_SUCCESS);
        amqp_connection_close(state_, AMQP_REPLY_SUCCESS);
      }
      amqp_destroy_connection(state_);
    }
  }
  amqp_connection_state_t state() const { return state_; }

  absl::Status Open(const BackendOptions& o, const std::string& name) {
    std::vector<std::string> hp = absl::StrSplit(o.target, ':');
    int port = 0;
    if (hp.size() != 2 || !absl::SimpleAtoi(hp[1], &port)) {
      return absl::InvalidArgumentError("--broker: host:port");
    }
    state_ = amqp_new_connection();
    amqp_socket_t* sock = amqp_ssl_socket_new(state_);
    if (sock == nullptr) return absl::InternalError("amqp_ssl_socket_new failed");
    amqp_ssl_socket_set_verify_peer(sock, 1);
    amqp_ssl_socket_set_verify_hostname(sock, 1);
    if (amqp_ssl_socket_set_cacert(sock, absl::StrCat(o.certs_dir, "/ca.crt").c_str()) != 0 ||
        amqp_ssl_socket_set_key(sock, absl::StrCat(o.certs_dir, "/", name, ".crt").c_str(),
                                absl::StrCat(o.certs_dir, "/", name, ".key").c_str()) != 0) {
      return absl::FailedPreconditionError("cannot load TLS files from " + o.certs_dir);
    }
    timeval tv{o.connect_timeout_s, 0};
    int rc = amqp_socket_open_noblock(sock, hp[0].c_str(), port, &tv);
    if (rc != AMQP_STATUS_OK) {
      return absl::UnavailableError(
          absl::StrCat("amqp connect ", o.target, ": ", amqp_error_string2(rc)));
    }
    // TLS with a verified client certificate; inside it, the loopback-only guest login.
    amqp_rpc_reply_t r =
        amqp_login(state_, "/", 0, 131072, 0, AMQP_SASL_METHOD_PLAIN, "guest", "guest");
    if (std::string e = ReplyError(r, "login"); !e.empty()) return absl::UnavailableError(e);
    amqp_channel_open(state_, kChannel);
    if (std::string e = ReplyError(amqp_get_rpc_reply(state_), "channel"); !e.empty()) {
      return absl::UnavailableError(e);
    }
    open_ = true;
    return absl::OkStatus();
  }

  absl::Status Check(const char* what) {
    std::string e = ReplyError(amqp_get_rpc_reply(state_), what);
    return e.empty() ? absl::OkStatus() : absl::InternalError(e);
  }

 private:
  amqp_connection_state_t state_ = nullptr;
  bool open_ = false;
};

// Publishes on its own connection and reads the confirms on the same thread
// (rabbitmq-c is not thread-safe): in Poll while the window is full, and in
// IdleUntil between open-loop sends.
class RabbitSender final : public SenderConn {
 public:
  RabbitSender(const BackendOptions& o, Tracker* t, int index, std::string exchange)
      : SenderConn(t, index), o_(o), exchange_(std::move(exchange)) {
    props_._flags = AMQP_BASIC_DELIVERY_MODE_FLAG | AMQP_BASIC_CONTENT_TYPE_FLAG;
    props_.delivery_mode = 2;  // persistent
    props_.content_type = amqp_cstring_bytes("application/x-protobuf");
  }

  absl::Status Connect() {
    if (absl::Status s = conn_.Open(o_, o_.sender_names[index_]); !s.ok()) return s;
    amqp_confirm_select(conn_.state(), kChannel);
    return conn_.Check("confirm.select");
  }

  void Send(uint64_t n) override {
    buf_ = tracker_->MessageId(index_, n);
    buf_.push_back('\n');
    buf_.append(o_.payload);
    // In confirm mode the channel numbers publishes 1, 2, …: tag = n + 1.
    int rc = amqp_basic_publish(conn_.state(), kChannel, Bytes(exchange_), amqp_empty_bytes, 0, 0,
                                &props_, Bytes(buf_));
    if (rc != AMQP_STATUS_OK) {
      tracker_->NoteError(absl::StrCat("basic.publish: ", amqp_error_string2(rc)));
      tracker_->OnAck(index_, n, false, 0, NowNs());
      broken_ = true;
    }
  }

  void Poll(int64_t deadline_ns, uint64_t window) override {
    int64_t wait = 50'000'000;
    if (deadline_ns != 0) wait = std::max<int64_t>(0, std::min(wait, deadline_ns - NowNs()));
    ReadConfirms(wait);
  }

  void IdleUntil(int64_t t_ns) override {
    for (int64_t now = NowNs(); now < t_ns; now = NowNs()) ReadConfirms(t_ns - now);
  }

  void Close(int64_t deadline_ns) override {
    while (!broken_ && tracker_->in_flight(index_) > 0 && NowNs() < deadline_ns) {
      ReadConfirms(std::min<int64_t>(50'000'000, deadline_ns - NowNs()));
    }
  }

 private:
  // Reads what is there (waiting up to wait_ns for the first frame).
  void ReadConfirms(int64_t wait_ns) {
    if (broken_) {
      usleep(1000);
      return;
    }
    for (bool first = true;; first = false) {
      if (!first && !amqp_frames_enqueued(conn_.state()) && !amqp_data_in_buffer(conn_.state())) {
        // Nothing buffered: one more non-blocking look at the socket, then return.
        timeval zero{0, 0};
        amqp_frame_t frame;
        int rc = amqp_simple_wait_frame_noblock(conn_.state(), &frame, &zero);
        if (rc != AMQP_STATUS_OK) return;
        Handle(frame);
        continue;
      }
      timeval tv{static_cast<time_t>(wait_ns / 1'000'000'000),
                 static_cast<suseconds_t>((wait_ns % 1'000'000'000) / 1000)};
      amqp_frame_t frame;
      int rc = amqp_simple_wait_frame_noblock(conn_.state(), &frame, first ? &tv : nullptr);
      if (rc == AMQP_STATUS_TIMEOUT) return;
      if (rc != AMQP_STATUS_OK) {
        tracker_->NoteError(absl::StrCat("reading confirms: ", amqp_error_string2(rc)));
        broken_ = true;
        return;
      }
      Handle(frame);
    }
  }

  void Handle(const amqp_frame_t& frame) {
    if (frame.frame_type != AMQP_FRAME_METHOD) return;
    const int64_t now = NowNs();
    uint64_t tag = 0;
    bool multiple = false, ok = true;
    if (frame.payload.method.id == AMQP_BASIC_ACK_METHOD) {
      auto* m = static_cast<amqp_basic_ack_t*>(frame.payload.method.decoded);
      tag = m->delivery_tag;
      multiple = m->multiple;
    } else if (frame.payload.method.id == AMQP_BASIC_NACK_METHOD) {
      auto* m = static_cast<amqp_basic_nack_t*>(frame.payload.method.decoded);
      tag = m->delivery_tag;
      multiple = m->multiple;
      ok = false;
      tracker_->NoteError("basic.nack from the broker");
    } else if (frame.payload.method.id == AMQP_CHANNEL_CLOSE_METHOD ||
               frame.payload.method.id == AMQP_CONNECTION_CLOSE_METHOD) {
      tracker_->NoteError("the broker closed the publishing channel");
      broken_ = true;
      return;
    } else {
      return;
    }
    const uint64_t mask = (1u << o_.fanout) - 1;
    const uint64_t from = multiple ? confirmed_ + 1 : tag;
    for (uint64_t t = from; t <= tag; ++t) tracker_->OnAck(index_, t - 1, ok, ok ? mask : 0, now);
    confirmed_ = std::max(confirmed_, tag);
  }

  const BackendOptions& o_;
  const std::string exchange_;
  Conn conn_;
  amqp_basic_properties_t props_{};
  std::string buf_;
  uint64_t confirmed_ = 0;  // every tag up to here answered (multiple acks)
  bool broken_ = false;
};

class RabbitSubscriber final : public SubscriberConn {
 public:
  RabbitSubscriber(const BackendOptions& o, Tracker* t, int index, std::string queue)
      : o_(o), tracker_(t), index_(index), queue_(std::move(queue)) {}
  ~RabbitSubscriber() override { Stop(); }

  absl::Status Start() {
    if (absl::Status s = conn_.Open(o_, o_.subscriber_names[index_]); !s.ok()) return s;
    amqp_basic_qos(conn_.state(), kChannel, 0,
                   static_cast<uint16_t>(std::min<uint32_t>(o_.sub_window, 65535)), 0);
    if (absl::Status s = conn_.Check("basic.qos"); !s.ok()) return s;
    amqp_basic_consume(conn_.state(), kChannel, Bytes(queue_), amqp_empty_bytes, 0, /*no_ack=*/0, 0,
                       amqp_empty_table);
    if (absl::Status s = conn_.Check("basic.consume"); !s.ok()) return s;
    thread_ = std::thread([this] { Run(); });
    return absl::OkStatus();
  }

  void Stop() override {
    stop_.store(true);
    if (thread_.joinable()) thread_.join();
  }

 private:
  void Run() {
    uint64_t unacked_tag = 0;
    int unacked = 0;
    while (!stop_.load()) {
      amqp_maybe_release_buffers(conn_.state());
      amqp_envelope_t env;
      timeval tv{0, 100'000};
      amqp_rpc_reply_t r = amqp_consume_message(conn_.state(), &env, &tv, 0);
      if (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION &&
          r.library_error == AMQP_STATUS_TIMEOUT) {
        continue;
      }
      if (r.reply_type != AMQP_RESPONSE_NORMAL) {
        if (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION &&
            r.library_error == AMQP_STATUS_UNEXPECTED_STATE) {
          amqp_frame_t frame;
          amqp_simple_wait_frame(conn_.state(), &frame);  // a non-delivery frame: skip it
          continue;
        }
        tracker_->NoteError(ReplyError(r, "consume"));
        return;
      }
      const char* data = static_cast<const char*>(env.message.body.bytes);
      const size_t len = env.message.body.len;
      const char* nl = static_cast<const char*>(memchr(data, '\n', len));
      tracker_->OnDelivery(index_, std::string_view(data, nl ? nl - data : len), NowNs());
      unacked_tag = env.delivery_tag;
      ++unacked;
      amqp_destroy_envelope(&env);
      // Ack what arrived together in one basic.ack (multiple), like a batching consumer.
      if (unacked >= 64 ||
          (!amqp_frames_enqueued(conn_.state()) && !amqp_data_in_buffer(conn_.state()))) {
        amqp_basic_ack(conn_.state(), kChannel, unacked_tag, /*multiple=*/1);
        unacked = 0;
      }
    }
    if (unacked > 0) amqp_basic_ack(conn_.state(), kChannel, unacked_tag, 1);
  }

  const BackendOptions& o_;
  Tracker* const tracker_;
  const int index_;
  const std::string queue_;
  Conn conn_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

class RabbitBackend final : public Backend {
 public:
  RabbitBackend(const BackendOptions& o, Tracker* t)
      : o_(o), tracker_(t), exchange_(absl::StrCat("load-", o.run_tag)) {}
  ~RabbitBackend() override { Cleanup(); }
  std::string name() const override { return "rabbitmq"; }

  std::string Queue(int i) const { return absl::StrCat(exchange_, "-", o_.subscriber_names[i]); }

  absl::Status Prepare() override {
    admin_ = std::make_unique<Conn>();
    if (absl::Status s = admin_->Open(o_, o_.sender_names[0]); !s.ok()) return s;
    amqp_exchange_declare(admin_->state(), kChannel, Bytes(exchange_), amqp_cstring_bytes("fanout"),
                          0, /*durable=*/1, 0, 0, amqp_empty_table);
    if (absl::Status s = admin_->Check("exchange.declare"); !s.ok()) return s;
    made_ = true;
    amqp_table_entry_t arg;
    arg.key = amqp_cstring_bytes("x-queue-type");
    arg.value.kind = AMQP_FIELD_KIND_UTF8;
    arg.value.value.bytes = amqp_cstring_bytes("quorum");
    amqp_table_t args{1, &arg};
    for (int i = 0; i < o_.fanout; ++i) {
      const std::string q = Queue(i);
      amqp_queue_declare(admin_->state(), kChannel, Bytes(q), 0, /*durable=*/1, 0, 0, args);
      if (absl::Status s = admin_->Check("queue.declare (quorum)"); !s.ok()) return s;
      amqp_queue_bind(admin_->state(), kChannel, Bytes(q), Bytes(exchange_), amqp_empty_bytes,
                      amqp_empty_table);
      if (absl::Status s = admin_->Check("queue.bind"); !s.ok()) return s;
    }
    return absl::OkStatus();
  }

  absl::StatusOr<std::unique_ptr<SenderConn>> ConnectSender(int index) override {
    auto s = std::make_unique<RabbitSender>(o_, tracker_, index, exchange_);
    if (absl::Status st = s->Connect(); !st.ok()) return st;
    return s;
  }

  absl::StatusOr<std::unique_ptr<SubscriberConn>> StartSubscriber(int index) override {
    auto s = std::make_unique<RabbitSubscriber>(o_, tracker_, index, Queue(index));
    if (absl::Status st = s->Start(); !st.ok()) return st;
    return s;
  }

  void Cleanup() override {
    if (made_ && admin_) {
      for (int i = 0; i < o_.fanout; ++i) {
        amqp_queue_delete(admin_->state(), kChannel, Bytes(Queue(i)), 0, 0);
        amqp_get_rpc_reply(admin_->state());
      }
      amqp_exchange_delete(admin_->state(), kChannel, Bytes(exchange_), 0);
      amqp_get_rpc_reply(admin_->state());
      made_ = false;
    }
    admin_.reset();
  }

  std::vector<std::pair<std::string, std::string>> Facts() override {
    return {{"storage",
             "quorum queues (Raft log, fdatasync before confirm), persistent messages, "
             "publisher confirms"}};
  }

 private:
  const BackendOptions& o_;
  Tracker* const tracker_;
  const std::string exchange_;
  std::unique_ptr<Conn> admin_;
  bool made_ = false;
};

}  // namespace

std::unique_ptr<Backend> MakeRabbitBackend(const BackendOptions& o, Tracker* tracker) {
  return std::make_unique<RabbitBackend>(o, tracker);
}

}  // namespace corridor::load

#else

namespace corridor::load {
std::unique_ptr<Backend> MakeRabbitBackend(const BackendOptions&, Tracker*) { return nullptr; }
}  // namespace corridor::load

#endif
