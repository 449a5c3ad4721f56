// Process set-up for Corridor's long-running programs (corridord,
// corridor-bridge, corridor-load).
#pragma once

#include "absl/synchronization/mutex.h"

namespace corridor {

// Turns off Abseil's mutex deadlock detection. Debian builds Abseil without
// NDEBUG, so detection is on by default: every absl::Mutex acquisition (gRPC's
// included) records lock-order edges and stack traces in one global graph
// behind a spinlock — about 5 % of the broker's CPU with 64 concurrent
// senders — and a lock-order cycle it suspects (real or not) aborts the
// process. Release builds of Abseil ship with it off; tests keep it on.
inline void UseReleaseMutexes() {
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
}

}  // namespace corridor
