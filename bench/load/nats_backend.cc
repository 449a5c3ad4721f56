#include "bench/load/backend.h"
namespace corridor::load {
std::unique_ptr<Backend> MakeNatsBackend(const BackendOptions&, Tracker*) { return nullptr; }
}  // namespace corridor::load
