#include "bench/load/backend.h"
namespace corridor::load {
std::unique_ptr<Backend> MakeRabbitBackend(const BackendOptions&, Tracker*) { return nullptr; }
}  // namespace corridor::load
