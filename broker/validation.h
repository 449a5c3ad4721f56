// Input validation for what agency nodes send: envelopes, topic filters,
// subscription names. Every failure names the offending field, e.g.
//   INVALID_ARGUMENT "envelope.tip_off.vessel.mmsi: must be 9 digits, got '12345'"
//   PERMISSION_DENIED "envelope.sender.agency_id: a node of 'zs-police' cannot send as 'zs-msa'"
//
// Pure functions; thread-safe.
#pragma once

#include <cstddef>
#include <string_view>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "broker/identity.h"
#include "corridor/v1/envelope.pb.h"
#include "policy/registry.h"

namespace corridor::broker {

struct EnvelopeLimits {
  size_t max_message_bytes = 256 * 1024;
  size_t max_addressees = 64;
};

// Checks a submitted envelope from `sender` (an agency peer). Returns
// INVALID_ARGUMENT naming the field for malformed input, PERMISSION_DENIED when
// the sender fields name anyone but the caller.
absl::Status ValidateEnvelope(const v1::Envelope& env, const PeerIdentity& sender,
                              const policy::Registry& registry, const EnvelopeLimits& limits,
                              absl::Time now);

// Checks an envelope a peer exchange transferred (Transfer.envelope): the
// content checks of ValidateEnvelope, the origin's stamp (exchange_id and
// broker_time required), and a sender that is an agency of `peer_domain` in
// `registry`. PERMISSION_DENIED when the sender is of another domain (a peer
// speaking for a third domain, or for this one) or the envelope was itself
// transferred before (it is not sent on); INVALID_ARGUMENT naming the field
// otherwise. Addressees are not checked: they may name the origin's agencies.
absl::Status ValidateTransferredEnvelope(const v1::Envelope& env, std::string_view peer_domain,
                                         const policy::Registry& registry,
                                         const EnvelopeLimits& limits, absl::Time now);

// A topic: dot-separated labels of [a-z0-9_], at most 200 characters.
absl::Status ValidateTopic(std::string_view topic, std::string_view field);

// A topic filter: "*", an exact topic, or a topic followed by ".*" (prefix wildcard).
absl::Status ValidateTopicFilter(std::string_view filter, std::string_view field);

// True when `topic` matches `filter` ("smuggling.*" matches "smuggling.fuel" and
// "smuggling.fuel.diesel", not "smuggling"; "*" matches everything).
bool TopicMatches(std::string_view filter, std::string_view topic);

// A subscription name: [a-z0-9][a-z0-9_.-]{0,63}.
absl::Status ValidateSubscriptionName(std::string_view name, std::string_view field);

}  // namespace corridor::broker
