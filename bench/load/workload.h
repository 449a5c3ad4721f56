// Workload: the messages the load generator sends — realistic Corridor envelopes
// (a night-time smuggling tip-off, or a patrol report with a vessel track), with
// Chinese text, padded to a target serialized size.
//
//   WorkloadOptions w{.kind = MessageMix::kTipOff, .size_bytes = 1024,
//                     .addressees = {"zs-customs"}};
//   v1::Envelope e = MakeEnvelope(w, /*variant=*/0);
//
// Pure functions; thread-safe.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "corridor/v1/envelope.pb.h"

namespace corridor::load {

enum class MessageMix { kTipOff, kPatrol, kMixed };

struct WorkloadOptions {
  MessageMix kind = MessageMix::kTipOff;
  size_t size_bytes = 1024;  // serialized envelope, with a client_message_id of id_length
  size_t id_length = 20;
  std::vector<std::string> addressees;
  std::string topic = "smuggling.cross_border";
  std::string handling_code = "H0";
};

// variant selects tip-off vs patrol report for kMixed (even: tip-off).
v1::Envelope MakeEnvelope(const WorkloadOptions& w, int variant);

absl::StatusOr<MessageMix> ParseMix(const std::string& s);

}  // namespace corridor::load
