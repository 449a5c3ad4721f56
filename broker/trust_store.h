// TrustStore: which client certificates the broker accepts, decided by the
// broker itself (not by gRPC's built-in checks): the chain to a CA of the
// peer's trust domain, the TLS client purpose, validity times, the CA's
// current CRL, and a leaf that is not itself a CA. It owns the CRLs in force
// and reloads them (and the CA bundle) while running.
//
//   TrustStore::Options o;
//   o.domains.push_back({.trust_domain = "zhongshan.corridor", .ca_file = "ca.crt",
//                        .crl_dir = "crl", .crl_required = true});
//   CORRIDOR_ASSIGN_OR_RETURN(auto store, TrustStore::Load(o));
//   PeerCertCheck c = store->Verify(leaf_pem, chain_pem);   // at the handshake
//   store->IsRevoked(leaf_pem);                              // on every call
//   TrustStore::ReloadReport r = store->Reload();            // SIGHUP, timer
//
// Trust domains: a map trust domain -> CA bundle + CRL dir. Today a broker has
// one (its own); a peer whose SPIFFE id names a trust domain without an entry
// is checked against the local domain's bundle (a bundle may hold several CAs;
// the identity check after the handshake then refuses the foreign domain).
//
// CRLs: every file in the CRL dir named *.r<N>, *.pem or *.crl (PEM, one or
// more CRLs, or DER) is read. A CRL counts only when its signature verifies
// against a CA of the bundle; per CA the one with the highest CRL number
// (then the latest thisUpdate) is in force. A reload never goes back: a
// missing, unreadable, badly signed or older CRL keeps the one in force and
// is reported. A CRL past its nextUpdate stays in force (revoked certificates
// stay refused; nobody is locked out by an operator's late CRL) and is
// reported until a newer one arrives; one within `warn_before` of its
// nextUpdate is reported as a warning.
//
// Thread-safety: every method is thread-safe. Verify/IsRevoked read an
// immutable snapshot (swapped under a mutex by Reload) and never block on I/O;
// Load/Reload read files. Lifetime: owned by the broker server; the gRPC
// verifier and call gate hold a pointer and must not outlive it.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace corridor::broker {

// Why a certificate was refused. The name (RefusalName) is what security
// entries and logs say, and what refusals are summarized by.
enum class CertRefusal {
  kNone,
  kUnparseable,    // no certificate in the PEM
  kUnknownIssuer,  // does not chain to a CA of the bundle (another CA, self-signed)
  kBadSignature,   // a signature in the chain does not verify
  kExpired,        // a certificate of the chain is past notAfter
  kNotYetValid,    // before notBefore
  kRevoked,        // listed on the CRL in force
  kNoCrl,          // no CRL in force for an issuer (crl: required)
  kWrongPurpose,   // not for TLS client authentication
  kCaLeaf,         // the leaf is a CA certificate (basicConstraints CA:TRUE)
  kOther,          // any other chain error (detail has OpenSSL's reason)
};
const char* RefusalName(CertRefusal refusal);

// The outcome of a check and what could be read from the certificate (for the
// audit log; never key material). Fields are empty when unreadable; text from
// the certificate is cut to 200 characters of printable ASCII (others become '?').
struct PeerCertCheck {
  CertRefusal refusal = CertRefusal::kNone;
  std::string detail;      // the reason in words, e.g. OpenSSL's "certificate revoked"
  std::string subject;     // RFC 2253
  std::string spiffe_id;   // the first spiffe:// URI SAN
  std::string issuer;      // RFC 2253
  std::string serial_hex;  // canonical hex
  bool ok() const { return refusal == CertRefusal::kNone; }
};

struct TrustDomainFiles {
  std::string trust_domain;
  std::string ca_file;       // PEM bundle: the CAs of this domain
  std::string crl_dir;       // their CRLs; empty only when !crl_required
  bool crl_required = true;  // false: no revocation checks (config `crl: none`)
};

class TrustStore {
 public:
  struct Options {
    std::vector<TrustDomainFiles> domains;  // the first is the local one
    absl::Duration warn_before = absl::Hours(7 * 24);
  };

  // Reads every domain's bundle and CRLs. FAILED_PRECONDITION naming the file
  // or the CA when a bundle is unreadable or holds no certificate, or when a
  // domain with crl_required has no usable CRL for one of its CAs (none in the
  // dir, unreadable, or not signed by that CA); INVALID_ARGUMENT for options
  // without domains or with crl_required and no crl_dir.
  static absl::StatusOr<std::unique_ptr<TrustStore>> Load(Options options,
                                                          absl::Time now = absl::Now());

  struct ReloadReport {
    std::vector<std::string> changes;  // e.g. "CRL #4 of CN=… now in force (3 revoked)"
    bool revocations_changed = false;  // the set of revoked serials differs from before
  };
  // Reads the bundles and CRL dirs again and swaps in what is usable (see the
  // file comment). Never fails: problems keep what is in force and show up in
  // Problems(). Concurrent calls are serialized.
  ReloadReport Reload(absl::Time now = absl::Now());

  // Full check of a peer's certificate (PEM leaf, optional PEM chain of
  // intermediates the peer sent) at `now`.
  PeerCertCheck Verify(std::string_view leaf_pem, std::string_view chain_pem,
                       absl::Time now = absl::Now()) const;

  // What can be read from a PEM certificate (refusal kNone, or kUnparseable).
  static PeerCertCheck Describe(std::string_view leaf_pem);

  // Cheap check for every call on an established connection: kRevoked when the
  // leaf is on a CRL in force now, kExpired past its notAfter, kUnparseable,
  // else kNone. Parsed certificates are cached.
  CertRefusal CheckOnCall(std::string_view leaf_pem, absl::Time now = absl::Now()) const;
  // True when the leaf (PEM) is on a CRL in force now.
  bool IsRevoked(std::string_view leaf_pem) const {
    return CheckOnCall(leaf_pem, absl::InfinitePast()) == CertRefusal::kRevoked;
  }

  // What an operator must look at, as of the last load/reload and `now`: an
  // expired CRL kept in force, one nearing nextUpdate, a file that could not
  // be used, revocation checks switched off. Empty when all is well.
  std::vector<std::string> Problems(absl::Time now = absl::Now()) const;

  ~TrustStore();

 private:
  struct Snapshot;
  struct CertFacts {
    std::string revocation_key;  // issuer DER + serial DER
    int64_t not_after = 0;       // Unix seconds
  };
  TrustStore(Options options, std::shared_ptr<const Snapshot> snapshot);
  std::shared_ptr<const Snapshot> snapshot() const;

  const Options options_;
  absl::Mutex reload_mu_;  // serializes Reload
  mutable absl::Mutex mu_;
  std::shared_ptr<const Snapshot> snapshot_ ABSL_GUARDED_BY(mu_);
  mutable absl::Mutex cache_mu_;
  mutable absl::flat_hash_map<std::string, CertFacts> cache_ ABSL_GUARDED_BY(cache_mu_);
};

// Bounded accounting of refusals that would otherwise flood the audit log and
// the logs (for example a client retrying a bad handshake): the first refusal
// of a reason in a window is reported at once, the rest of that window as one
// summary (count, first and last time, a sample) when the window ends.
//
// Thread-safe. Note() is cheap (a mutex and a map lookup); Flush() is called by
// the owner's timer.
class RefusalSummarizer {
 public:
  explicit RefusalSummarizer(absl::Duration window = absl::Seconds(10)) : window_(window) {}

  struct Report {
    std::string reason;
    uint64_t count = 0;  // refusals this report covers
    absl::Time first, last;
    PeerCertCheck sample;  // the first of them
    bool summary = false;  // false: the first of a window, reported at once
  };
  // Records one refusal of `reason`; returns the report to emit now (the first
  // of a window), or nothing.
  std::optional<Report> Note(std::string_view reason, const PeerCertCheck& sample,
                             absl::Time now = absl::Now());
  // Summaries of windows that ended by `now` (only for reasons refused more
  // than once in their window).
  std::vector<Report> Flush(absl::Time now = absl::Now());

 private:
  struct Window {
    absl::Time start;
    uint64_t more = 0;  // after the first
    absl::Time first_more, last_more;
    PeerCertCheck sample;  // the first after the first
  };
  const absl::Duration window_;
  absl::Mutex mu_;
  absl::flat_hash_map<std::string, Window> windows_ ABSL_GUARDED_BY(mu_);
  std::vector<Report> pending_ ABSL_GUARDED_BY(mu_);  // windows a Note() closed
};

// Words for a report, e.g. "handshake refused (revoked): 57 more between
// 2026-12-03T10:00:01Z and 2026-12-03T10:00:09Z; sample subject CN=node1, …".
std::string DescribeRefusal(std::string_view what, const RefusalSummarizer::Report& report);

}  // namespace corridor::broker
