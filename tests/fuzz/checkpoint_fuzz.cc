// libFuzzer target: the auditor's side of signed checkpoints
// (broker/audit/checkpoint.h). The input is taken as
//  - a checkpoint body: ParseCheckpointBody; what parses and validates must
//    write back (CheckpointBody) to text that parses to the same checkpoint;
//  - a C2SP signed note: VerifyNote / VerifyCheckpointNote against the
//    verifier key of the fixed fuzz key (fuzz_support.h), so seeds signed by
//    make_seeds verify and mutations reach every check after the signature;
//  - its first line, as a verifier key, checking a real signed note.
//
// Commands: tests/fuzz/README.md.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "broker/audit/checkpoint.h"
#include "tests/fuzz/fuzz_support.h"

namespace audit = corridor::broker::audit;

namespace {

struct Keys {
  std::string verifier_key;
  std::string signed_note;  // a real checkpoint note by that key
};

const Keys& FuzzKeys() {
  static const Keys* const keys = [] {
    auto signer = audit::Ed25519Signer::FromSeed(corridor::fuzz::CheckpointKeySeed(),
                                                 corridor::fuzz::kCheckpointOrigin);
    if (!signer.ok()) std::abort();
    auto* k = new Keys;
    k->verifier_key = signer->VerifierKey();
    audit::Checkpoint cp;
    cp.origin = corridor::fuzz::kCheckpointOrigin;
    cp.size = 12;
    cp.root = audit::LeafHash("fuzz");
    k->signed_note = signer->SignNote(audit::CheckpointBody(cp));
    return k;
  }();
  return *keys;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  (void)FuzzKeys();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  const Keys& keys = FuzzKeys();

  auto cp = audit::ParseCheckpointBody(in);
  if (cp.ok() && audit::ValidateCheckpoint(*cp).ok()) {
    auto again = audit::ParseCheckpointBody(audit::CheckpointBody(*cp));
    if (!again.ok() || !(*again == *cp)) __builtin_trap();
  }

  auto text = audit::VerifyNote(in, keys.verifier_key);
  if (text.ok() && in.substr(0, text->size()) != *text) __builtin_trap();  // a prefix
  (void)audit::VerifyCheckpointNote(in, keys.verifier_key);

  const std::string_view first_line = in.substr(0, in.find('\n'));
  (void)audit::VerifyNote(keys.signed_note, first_line);
  return 0;
}
