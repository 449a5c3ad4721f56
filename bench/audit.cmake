# Audit-log crypto micro-benchmarks (broker/audit): appends, proofs, verification,
# checkpoint signing.
add_executable(corridor_audit_bench ${CMAKE_CURRENT_LIST_DIR}/audit_bench.cc)
target_link_libraries(corridor_audit_bench PRIVATE corridor::audit_crypto benchmark::benchmark)
