# Need-to-share policy decision benchmark (policy/): decisions per second per
# core and p50/p99 latency per decision with 10, 200 and 2,000 generated rules.
#   ninja corridor_policy_bench && ./bin/corridor_policy_bench
add_executable(corridor_policy_bench ${CMAKE_CURRENT_LIST_DIR}/policy_bench.cc)
target_link_libraries(corridor_policy_bench PRIVATE corridor::policy benchmark::benchmark)
set_target_properties(corridor_policy_bench PROPERTIES RUNTIME_OUTPUT_DIRECTORY
                      ${CMAKE_BINARY_DIR}/bin)
