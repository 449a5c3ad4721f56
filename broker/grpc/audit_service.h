// corridor.v1.Audit over gRPC: auditor certificates only. Queries and proofs
// run on a small broker-owned pool (they read RocksDB); every Query is itself
// recorded as a consultation entry before its stream finishes.
//
// Lifetime: borrows the core, which must outlive it; destroy it (joining its
// pool) before the core.
#pragma once

#include "broker/exchange_core.h"
#include "broker/grpc/work_queue.h"
#include "corridor/v1/audit.grpc.pb.h"

namespace corridor::broker::grpc_transport {

// Query is a raw method: it parses the AuditQuery itself, so a filter that is
// not UTF-8 is answered INVALID_ARGUMENT naming the field (gRPC's typed
// handler answers any request it cannot parse with UNIMPLEMENTED).
using AuditServiceBase = v1::Audit::WithRawCallbackMethod_Query<
    v1::Audit::WithCallbackMethod_GetCheckpoint<v1::Audit::WithCallbackMethod_GetInclusionProof<
        v1::Audit::WithCallbackMethod_GetConsistencyProof<v1::Audit::Service>>>>;

class AuditService final : public AuditServiceBase {
 public:
  explicit AuditService(ExchangeCore* core) : core_(core), pool_(2, 64) {}

  grpc::ServerWriteReactor<grpc::ByteBuffer>* Query(grpc::CallbackServerContext* ctx,
                                                    const grpc::ByteBuffer* request) override;
  grpc::ServerUnaryReactor* GetCheckpoint(grpc::CallbackServerContext* ctx,
                                          const v1::CheckpointRequest* request,
                                          v1::SignedCheckpoint* response) override;
  grpc::ServerUnaryReactor* GetInclusionProof(grpc::CallbackServerContext* ctx,
                                              const v1::InclusionProofRequest* request,
                                              v1::InclusionProofResponse* response) override;
  grpc::ServerUnaryReactor* GetConsistencyProof(grpc::CallbackServerContext* ctx,
                                                const v1::ConsistencyProofRequest* request,
                                                v1::ConsistencyProofResponse* response) override;

 private:
  ExchangeCore* const core_;
  WorkQueue pool_;
};

}  // namespace corridor::broker::grpc_transport
