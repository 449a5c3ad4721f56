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

class AuditService final : public v1::Audit::CallbackService {
 public:
  explicit AuditService(ExchangeCore* core) : core_(core), pool_(2, 64) {}

  grpc::ServerWriteReactor<v1::AuditQueryResponse>* Query(grpc::CallbackServerContext* ctx,
                                                          const v1::AuditQuery* query) override;
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
