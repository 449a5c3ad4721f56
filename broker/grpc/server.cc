#include "broker/grpc/server.h"

#include <algorithm>
#include <iostream>
#include <limits>
#include <mutex>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "broker/grpc/audit_service.h"
#include "broker/grpc/exchange_service.h"
#include "broker/grpc/stream_registry.h"
#include "broker/grpc/tls.h"
#include "broker/policy_loader.h"
#include "common/status_macros.h"
#include "grpcpp/ext/proto_server_reflection_plugin.h"
#include "grpcpp/grpcpp.h"
#include "grpcpp/health_check_service_interface.h"

namespace corridor::broker::grpc_transport {

// Where TLS refusals go: the audit log (security entries) and the log, with
// handshake and revoked-call refusals summarized per reason per 10 s window.
// Shared with gRPC's credentials, which may outlive the server: after Close()
// nothing is recorded. Thread-safe.
class SecurityEvents {
 public:
  SecurityEvents(ExchangeCore* core, std::function<void(std::string_view)> log)
      : core_(core), log_(std::move(log)) {}

  void HandshakeRefused(const PeerCertCheck& c) {
    if (auto r = summarizer_.Note(absl::StrCat("handshake/", RefusalName(c.refusal)), c)) {
      Emit("TLS handshake refused", *r);
    }
  }
  void CallRefused(const PeerCertCheck& c, std::string_view why) {
    if (c.refusal == CertRefusal::kNone) {
      // An identity this exchange does not know (as AuthenticateCall records it).
      absl::MutexLock lock(&mu_);
      if (core_ == nullptr) return;
      PeerIdentity who;
      who.spiffe_id = c.spiffe_id;
      core_->RecordSecurityEvent(who, absl::StrCat("peer refused: ", std::string(why)));
      return;
    }
    if (auto r = summarizer_.Note(absl::StrCat("call/", RefusalName(c.refusal)), c)) {
      Emit("call refused", *r);
    }
  }
  // Emits the summaries of windows that ended.
  void Flush() {
    for (const auto& r : summarizer_.Flush()) {
      Emit(absl::StartsWith(r.reason, "call/") ? "call refused" : "TLS handshake refused", r);
    }
  }
  void Record(const std::string& actor, const std::string& detail) {
    absl::MutexLock lock(&mu_);
    if (core_ == nullptr) return;
    PeerIdentity who;
    who.spiffe_id = actor;
    core_->RecordSecurityEvent(who, detail);
  }
  void Close() {
    absl::MutexLock lock(&mu_);
    core_ = nullptr;
  }

 private:
  void Emit(std::string_view what, RefusalSummarizer::Report r) {
    r.reason = r.reason.substr(r.reason.find('/') + 1);
    const std::string line = DescribeRefusal(what, r);
    log_(line);
    absl::MutexLock lock(&mu_);
    if (core_ == nullptr) return;
    PeerIdentity who;
    who.spiffe_id = r.sample.spiffe_id;
    core_->RecordSecurityEvent(who, line);
  }

  absl::Mutex mu_;
  ExchangeCore* core_ ABSL_GUARDED_BY(mu_);
  const std::function<void(std::string_view)> log_;
  RefusalSummarizer summarizer_;
};

namespace {

void LogToStderr(std::string_view line) {
  std::cerr << absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", absl::Now(), absl::UTCTimeZone())
            << " corridord: " << line << std::endl;
}

std::filesystem::path AuditKeyPath(const BrokerConfig& config) {
  return config.audit.key_file.empty()
             ? std::filesystem::path(config.data_dir) / "audit-signing.key"
             : std::filesystem::path(config.audit.key_file);
}

}  // namespace

absl::StatusOr<std::unique_ptr<BrokerServer>> BrokerServer::Start(
    const BrokerConfig& config, std::shared_ptr<const DecisionPoint> decision_point,
    Options options) {
  CORRIDOR_RETURN_IF_ERROR(RestrictProcessToTls13());
  if (auto s = CheckReadable({config.tls.cert, config.tls.key, config.tls.ca}); !s.ok()) {
    return absl::FailedPreconditionError(absl::StrCat("broker.tls: ", s.message()));
  }
  CORRIDOR_RETURN_IF_ERROR(CheckPrivateKeyMode(config.tls.key, "broker.tls.key"));
  CORRIDOR_RETURN_IF_ERROR(
      CheckPrivateKeyMode(AuditKeyPath(config).string(), "broker.audit.key_file"));
  TrustStore::Options trust_options;
  trust_options.domains.push_back({.trust_domain = config.registry->trust_domain,
                                   .ca_file = config.tls.ca,
                                   .crl_dir = config.tls.crl_dir,
                                   .crl_required = !config.tls.crl_none});
  // Each peer domain's certificates are checked against that domain's own
  // bundle only (its broker's CRLs are not exchanged: revoke a peer by
  // removing it from federation.peers).
  for (const PeerConfig& p : config.federation.peers) {
    trust_options.domains.push_back(
        {.trust_domain = p.domain, .ca_file = p.ca, .crl_dir = "", .crl_required = false});
  }
  trust_options.warn_before = config.tls.crl_warn_before;
  auto trust = TrustStore::Load(std::move(trust_options));
  if (!trust.ok()) {
    return absl::Status(trust.status().code(),
                        absl::StrCat("broker.tls: ", trust.status().message()));
  }

  std::unique_ptr<BrokerServer> server(new BrokerServer());
  server->log_ = options.log ? std::move(options.log) : LogToStderr;
  server->trust_ = std::shared_ptr<TrustStore>(*std::move(trust));
  CORRIDOR_ASSIGN_OR_RETURN(server->core_, ExchangeCore::Open(config, std::move(decision_point)));
  ExchangeCore* core = server->core_.get();
  server->streams_ = std::make_unique<StreamRegistry>(
      config.limits, [core](const PeerIdentity& peer, const std::string& detail) {
        core->RecordSecurityEvent(peer, detail);
      });
  // A trust reload that revokes a certificate also ends its open streams
  // (new calls and handshakes are refused by the checks below); the registry
  // audits one entry per certificate it cut.
  server->SetRevocationsChangedHook(
      [streams = server->streams_.get()](std::function<bool(std::string_view)> is_revoked) {
        streams->CancelWhere([&](const StreamInfo& s) { return is_revoked(s.cert_pem); },
                             absl::UnauthenticatedError("certificate revoked"));
      });
  server->events_ = std::make_shared<SecurityEvents>(core, server->log_);
  PeerChecks checks;
  checks.trust = server->trust_;
  checks.registry = config.registry;
  checks.federation = std::make_shared<const FederationSettings>(config.federation);
  checks.on_handshake_refused = [events = server->events_](const PeerCertCheck& c) {
    events->HandshakeRefused(c);
  };
  checks.on_call_refused = [events = server->events_](const PeerCertCheck& c,
                                                      std::string_view why) {
    events->CallRefused(c, why);
  };
  auto creds = MakeServerCredentials(config.tls, std::move(checks));
  if (!creds.ok()) {
    server->streams_->Stop();
    server->core_->Shutdown();
    return creds.status();
  }
  server->exchange_ = std::make_unique<ExchangeService>(core, server->streams_.get());
  BrokerServer* self = server.get();
  for (const PeerConfig& p : config.federation.peers) {
    server->links_.push_back(std::make_unique<PeerLink>(core, p, config.tls, server->log_));
  }
  server->admin_ = std::make_unique<AdminService>(
      core, [config, core](const std::string& who) { return ReloadPolicy(config, core, who); },
      server->streams_.get(), [self] { return self->TlsProblems(); },
      [self] {
        std::vector<v1::PeerLinkStatus> peers;
        for (const auto& link : self->links_) peers.push_back(link->Status());
        return peers;
      });

  static std::once_flag once;
  std::call_once(once, [] {
    grpc::EnableDefaultHealthCheckService(true);
    grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  });
  grpc::ServerBuilder builder;
  builder.AddListeningPort(config.listen, *creds, &server->port_);
  builder.RegisterService(server->exchange_.get());
  builder.RegisterService(server->admin_.get());
  server->audit_ = std::make_unique<AuditService>(core);
  builder.RegisterService(server->audit_.get());
  server->federation_ = std::make_unique<FederationService>(core, server->streams_.get());
  builder.RegisterService(server->federation_.get());
  // Our own INVALID_ARGUMENT names the field for envelopes up to 4x the limit;
  // beyond that gRPC refuses the frame (RESOURCE_EXHAUSTED) without buffering it.
  builder.SetMaxReceiveMessageSize(
      static_cast<int>(std::max<size_t>(4 * config.max_message_bytes, 4 << 20)));
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIME_MS, 30000);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 10000);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, 10000);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  // A connection that has not completed its TLS handshake by then is closed
  // (gRPC's default holds it 120 s).
  builder.AddChannelArgument(GRPC_ARG_SERVER_HANDSHAKE_TIMEOUT_MS,
                             static_cast<int>(std::clamp<int64_t>(
                                 absl::ToInt64Milliseconds(config.limits.handshake_timeout), 1,
                                 std::numeric_limits<int>::max())));
  server->server_ = builder.BuildAndStart();
  if (server->server_ == nullptr || server->port_ == 0) {
    server->streams_->Stop();
    server->core_->Shutdown();
    return absl::UnavailableError(absl::StrCat("cannot listen on ", config.listen));
  }
  for (const std::string& p : server->trust_->Problems()) server->Log(p);
  {
    absl::MutexLock lock(&server->mu_);
    server->reported_problems_ = server->trust_->Problems();
  }
  server->maintenance_ =
      std::thread([self, refresh = config.tls.crl_refresh] { self->MaintenanceLoop(refresh); });
  for (const auto& link : server->links_) link->Start();
  return server;
}

BrokerServer::~BrokerServer() { Shutdown(); }

void BrokerServer::Log(std::string_view line) const {
  if (log_) log_(line);
}

void BrokerServer::MaintenanceLoop(absl::Duration refresh) {
  absl::Time next_reload = absl::Now() + refresh;
  absl::MutexLock lock(&mu_);
  while (!stopping_) {
    mu_.AwaitWithTimeout(absl::Condition(&stopping_), absl::Seconds(1));
    if (stopping_) break;
    mu_.Unlock();
    events_->Flush();
    if (absl::Now() >= next_reload) {
      ReloadTrust("timer");
      next_reload = absl::Now() + refresh;
    }
    mu_.Lock();
  }
}

void BrokerServer::ReloadTrust(std::string_view who) {
  if (trust_ == nullptr) return;
  TrustStore::ReloadReport report = trust_->Reload();
  std::vector<std::string> problems = trust_->Problems();
  std::vector<std::string> fresh;
  std::function<void(std::function<bool(std::string_view)>)> hook;
  {
    absl::MutexLock lock(&mu_);
    for (const std::string& p : problems) {
      if (std::find(reported_problems_.begin(), reported_problems_.end(), p) ==
          reported_problems_.end()) {
        fresh.push_back(p);
      }
    }
    reported_problems_ = problems;
    if (report.revocations_changed) hook = revocations_hook_;
  }
  // Changes and new problems are logged and audited once each; a problem that
  // persists is not repeated (it stays in TlsProblems() and `corridorctl status`).
  for (const std::string& c : report.changes) {
    Log(absl::StrCat("trust reload (", std::string(who), "): ", c));
    events_->Record(std::string(who), absl::StrCat("trust reload: ", c));
  }
  for (const std::string& p : fresh) {
    Log(absl::StrCat("trust reload (", std::string(who), "): WARNING: ", p));
    events_->Record(std::string(who), absl::StrCat("trust reload: ", p));
  }
  if (hook) {
    std::shared_ptr<TrustStore> trust = trust_;
    hook([trust](std::string_view pem) { return trust->IsRevoked(pem); });
  }
}

std::vector<std::string> BrokerServer::TlsProblems() const {
  return trust_ == nullptr ? std::vector<std::string>{} : trust_->Problems();
}

void BrokerServer::SetRevocationsChangedHook(
    std::function<void(std::function<bool(std::string_view)>)> hook) {
  absl::MutexLock lock(&mu_);
  revocations_hook_ = std::move(hook);
}

void BrokerServer::Shutdown(absl::Duration grace) {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  if (maintenance_.joinable()) maintenance_.join();
  for (const auto& link : links_) link->Stop();
  if (federation_) federation_->Stop();
  if (server_) {
    // End the subscription streams first (they never end by themselves), so the
    // grace period is left to unary calls and submit streams.
    if (core_) core_->CloseStreams();
    server_->Shutdown(std::chrono::system_clock::now() + absl::ToChronoMilliseconds(grace));
  }
  if (streams_) streams_->Stop();  // records its pending summaries while the core still runs
  if (events_) events_->Close();
  if (core_) core_->Shutdown();
}

void BrokerServer::Wait() {
  if (server_) server_->Wait();
}

}  // namespace corridor::broker::grpc_transport
