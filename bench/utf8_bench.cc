// protobuf 3.21's UTF-8 validator (google::protobuf::internal::
// IsStructurallyValidUTF8, as libprotobuf defines it) against
// corridor::IsValidUtf8, which replaces it in corridord, corridor-bridge and
// corridor-load. This binary does not link the replacement, so protobuf's
// function here is protobuf's own.
//
//   ./bin/corridor_utf8_bench     (bytes_per_second is the figure to compare)
#include <string>

#include "benchmark/benchmark.h"
#include "common/utf8.h"
#include "google/protobuf/stubs/common.h"

namespace {

std::string Text(const std::string& phrase, size_t bytes) {
  std::string s;
  while (s.size() + phrase.size() <= bytes) s += phrase;
  return s;
}

// "船名不详的快艇于凌晨两点在三号码头附近卸货，" — a tip-off's narrative.
const std::string kChinese = Text(
    "\xe8\x88\xb9\xe5\x90\x8d\xe4\xb8\x8d\xe8\xaf\xa6\xe7\x9a\x84\xe5\xbf\xab\xe8\x89\x87"
    "\xe4\xba\x8e\xe5\x87\x8c\xe6\x99\xa8\xe4\xb8\xa4\xe7\x82\xb9\xe5\x9c\xa8\xe4\xb8\x89"
    "\xe5\x8f\xb7\xe7\xa0\x81\xe5\xa4\xb4\xe9\x99\x84\xe8\xbf\x91\xe5\x8d\xb8\xe8\xb4\xa7"
    "\xef\xbc\x8c",
    1024);
const std::string kAscii = Text("Speedboat unloading near pier 3 at 02:00, ", 1024);

enum class Validator { kProtobuf, kCorridor, kCorridorOneChain };

void Run(benchmark::State& state, const std::string& text, Validator v) {
  const auto* begin = reinterpret_cast<const unsigned char*>(text.data());
  for (auto _ : state) {
    bool ok = false;
    switch (v) {
      case Validator::kProtobuf:
        ok = google::protobuf::internal::IsStructurallyValidUTF8(text.data(),
                                                                 static_cast<int>(text.size()));
        break;
      case Validator::kCorridor:
        ok = corridor::IsValidUtf8(text);
        break;
      case Validator::kCorridorOneChain:  // without the four quarters side by side
        ok = corridor::utf8_internal::Run(begin, begin + text.size(),
                                          corridor::utf8_internal::kAccept) ==
             corridor::utf8_internal::kAccept;
        break;
    }
    benchmark::DoNotOptimize(ok);
    if (!ok) state.SkipWithError("text not valid");
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * text.size()));
}

void BM_Protobuf_Chinese(benchmark::State& s) { Run(s, kChinese, Validator::kProtobuf); }
void BM_Corridor_Chinese(benchmark::State& s) { Run(s, kChinese, Validator::kCorridor); }
void BM_CorridorOneChain_Chinese(benchmark::State& s) {
  Run(s, kChinese, Validator::kCorridorOneChain);
}
void BM_Protobuf_Ascii(benchmark::State& s) { Run(s, kAscii, Validator::kProtobuf); }
void BM_Corridor_Ascii(benchmark::State& s) { Run(s, kAscii, Validator::kCorridor); }
BENCHMARK(BM_Protobuf_Chinese);
BENCHMARK(BM_Corridor_Chinese);
BENCHMARK(BM_CorridorOneChain_Chinese);
BENCHMARK(BM_Protobuf_Ascii);
BENCHMARK(BM_Corridor_Ascii);

}  // namespace

BENCHMARK_MAIN();
