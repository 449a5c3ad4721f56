#include "broker/grpc/audit_service.h"

#include <deque>
#include <future>
#include <mutex>

#include "absl/strings/str_cat.h"
#include "broker/audit_log.h"
#include "broker/grpc/auth.h"
#include "broker/grpc/request_parsing.h"
#include "broker/grpc/status_conversion.h"
#include "common/utf8_fields.h"
#include "google/protobuf/util/json_util.h"
#include "grpcpp/support/byte_buffer.h"
#include "grpcpp/support/proto_buffer_reader.h"
#include "grpcpp/support/proto_buffer_writer.h"

namespace corridor::broker::grpc_transport {
namespace {

constexpr size_t kRecordsPerMessage = 256;

std::string QueryText(const v1::AuditQuery& q) {
  std::string json;
  google::protobuf::util::JsonPrintOptions opts;
  opts.preserve_proto_field_names = true;
  (void)google::protobuf::util::MessageToJsonString(q, &json, opts);
  return json;
}

// Writes prepared pages (serialized AuditQueryResponses) one after another.
// No lock: Start() runs once, before the first write, and each OnWriteDone
// after the previous write; holding a lock across Finish() would race OnDone's
// delete.
class QueryReactor final : public grpc::ServerWriteReactor<grpc::ByteBuffer> {
 public:
  // Takes the pages to send; Finish()es with `status` after the last one.
  void Start(std::deque<v1::AuditQueryResponse> pages, grpc::Status status) {
    pages_ = std::move(pages);
    status_ = std::move(status);
    Next();
  }
  void OnWriteDone(bool ok) override {
    pages_.pop_front();
    if (!ok) pages_.clear();
    Next();
  }
  void OnDone() override { delete this; }

 private:
  void Next() {
    if (pages_.empty()) {
      Finish(status_);
      return;
    }
    bool own = false;
    buf_.Clear();
    if (!grpc::SerializationTraits<v1::AuditQueryResponse>::Serialize(pages_.front(), &buf_, &own)
             .ok()) {
      // Cannot happen: records carry stored bytes as `bytes` and parsed entries.
      pages_.clear();
      Finish(grpc::Status(grpc::StatusCode::INTERNAL, "query: could not serialize a page"));
      return;
    }
    StartWrite(&buf_);
  }
  std::deque<v1::AuditQueryResponse> pages_;
  grpc::ByteBuffer buf_;  // pages_.front(), serialized, for the write in progress
  grpc::Status status_;
};

// The AuditQuery in `request`, or INVALID_ARGUMENT: naming the filter that is
// not UTF-8, or saying the bytes are not an AuditQuery at all.
absl::StatusOr<v1::AuditQuery> ParseQuery(const grpc::ByteBuffer& request) {
  grpc::ByteBuffer copy = request;  // shares the slices
  v1::AuditQuery q;
  if (grpc::SerializationTraits<v1::AuditQuery>::Deserialize(&copy, &q).ok()) return q;
  // The failure path only: look at the bytes again to say why.
  if (auto field =
          FindInvalidUtf8Field(*v1::AuditQuery::descriptor(), BufferBytes(request), "query")) {
    return absl::InvalidArgumentError(absl::StrCat(*field, ": not valid UTF-8"));
  }
  return absl::InvalidArgumentError("request: not a corridor.v1.AuditQuery");
}

template <typename Fn>
grpc::ServerUnaryReactor* RunUnary(grpc::CallbackServerContext* ctx, ExchangeCore* core,
                                   WorkQueue& pool, Fn fn) {
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  auto peer = AuthenticateCall(*ctx, core);
  if (!peer.ok()) {
    reactor->Finish(ToGrpcStatus(peer.status()));
    return reactor;
  }
  if (auto s = RequireRole(*peer, {PeerRole::kAuditor}, "Audit",
                           "the audit log is for auditor certificates only", core);
      !s.ok()) {
    reactor->Finish(ToGrpcStatus(s));
    return reactor;
  }
  PeerIdentity auditor = *peer;
  if (!pool.TryPost([reactor, fn, auditor] { reactor->Finish(ToGrpcStatus(fn(auditor))); })) {
    reactor->Finish(grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED, "audit service busy"));
  }
  return reactor;
}

}  // namespace

grpc::ServerWriteReactor<grpc::ByteBuffer>* AuditService::Query(grpc::CallbackServerContext* ctx,
                                                                const grpc::ByteBuffer* request) {
  auto* reactor = new QueryReactor();
  auto peer = AuthenticateCall(*ctx, core_);
  if (!peer.ok()) {
    reactor->Start({}, ToGrpcStatus(peer.status()));
    return reactor;
  }
  if (auto s = RequireRole(*peer, {PeerRole::kAuditor}, "Audit.Query",
                           "the audit log is for auditor certificates only", core_);
      !s.ok()) {
    reactor->Start({}, ToGrpcStatus(s));
    return reactor;
  }
  absl::StatusOr<v1::AuditQuery> parsed = ParseQuery(*request);
  if (!parsed.ok()) {
    reactor->Start({}, ToGrpcStatus(parsed.status()));
    return reactor;
  }
  v1::AuditQuery q = *std::move(parsed);
  ExchangeCore* core = core_;
  PeerIdentity auditor = *peer;
  bool posted = pool_.TryPost([reactor, q, core, auditor] {
    std::deque<v1::AuditQueryResponse> pages(1);
    const uint64_t tree_size = core->audit().durable_size();
    uint64_t count = 0;
    auto next = core->audit().Query(q, [&](const v1::AuditEntryRecord& r) {
      if (static_cast<size_t>(pages.back().records_size()) == kRecordsPerMessage) {
        pages.emplace_back();
      }
      *pages.back().add_records() = r;
      ++count;
      return true;
    });
    if (!next.ok()) {
      reactor->Start({}, ToGrpcStatus(next.status()));
      return;
    }
    pages.back().set_tree_size(tree_size);
    if (next->has_value()) {
      pages.back().set_more_after(true);
      pages.back().set_next_start_index(**next);
    }
    // The query is itself an entry, durable before the auditor sees the answer.
    core->RecordConsultation(auditor, QueryText(q), count,
                             [reactor, pages = std::move(pages)](absl::Status s) mutable {
                               if (!s.ok()) {
                                 reactor->Start({}, ToGrpcStatus(s));
                               } else {
                                 reactor->Start(std::move(pages), grpc::Status::OK);
                               }
                             });
  });
  if (!posted) {
    reactor->Start({}, grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED, "audit service busy"));
  }
  return reactor;
}

grpc::ServerUnaryReactor* AuditService::GetCheckpoint(grpc::CallbackServerContext* ctx,
                                                      const v1::CheckpointRequest* request,
                                                      v1::SignedCheckpoint* response) {
  uint64_t size = request->size();
  ExchangeCore* core = core_;
  return RunUnary(ctx, core_, pool_, [core, size, response](const PeerIdentity&) -> absl::Status {
    auto cp = core->audit().GetCheckpoint(size);
    if (!cp.ok()) return cp.status();
    *response = *std::move(cp);
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* AuditService::GetInclusionProof(grpc::CallbackServerContext* ctx,
                                                          const v1::InclusionProofRequest* request,
                                                          v1::InclusionProofResponse* response) {
  v1::InclusionProofRequest req = *request;
  ExchangeCore* core = core_;
  return RunUnary(
      ctx, core_, pool_, [core, req, response](const PeerIdentity& auditor) -> absl::Status {
        auto r = core->audit().GetInclusionProof(req.index(), req.tree_size());
        if (!r.ok()) return r.status();
        // The answer carries the entry itself: reading it is a consultation,
        // recorded durably before the auditor sees it (on our pool thread).
        std::promise<absl::Status> recorded;
        core->RecordConsultation(auditor,
                                 absl::StrCat("{\"inclusion_proof\":{\"index\":", req.index(),
                                              ",\"tree_size\":", r->tree_size(), "}}"),
                                 1, [&recorded](absl::Status s) { recorded.set_value(s); });
        if (absl::Status s = recorded.get_future().get(); !s.ok()) return s;
        *response = *std::move(r);
        return absl::OkStatus();
      });
}

grpc::ServerUnaryReactor* AuditService::GetConsistencyProof(
    grpc::CallbackServerContext* ctx, const v1::ConsistencyProofRequest* request,
    v1::ConsistencyProofResponse* response) {
  v1::ConsistencyProofRequest req = *request;
  ExchangeCore* core = core_;
  return RunUnary(ctx, core_, pool_, [core, req, response](const PeerIdentity&) -> absl::Status {
    auto r = core->audit().GetConsistencyProof(req.old_size(), req.new_size());
    if (!r.ok()) return r.status();
    *response = *std::move(r);
    return absl::OkStatus();
  });
}

}  // namespace corridor::broker::grpc_transport
