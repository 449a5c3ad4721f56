# The audit log on real RocksDB: appends in the commit path, agency-day queries.
add_executable(corridor_audit_log_bench ${CMAKE_CURRENT_LIST_DIR}/audit_log_bench.cc)
target_link_libraries(corridor_audit_log_bench PRIVATE corridor::broker_core benchmark::benchmark)
set_target_properties(corridor_audit_log_bench PROPERTIES
  RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/bin)
