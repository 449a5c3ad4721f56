# UTF-8 validation: protobuf 3.21's own validator against the one corridord,
# corridor-bridge and corridor-load put in its place (common/protobuf_utf8.cc),
# on 1 KiB of Chinese narrative (a tip-off's text) and of ASCII.
#   ninja corridor_utf8_bench && ./bin/corridor_utf8_bench
add_executable(corridor_utf8_bench ${CMAKE_CURRENT_LIST_DIR}/utf8_bench.cc)
target_link_libraries(corridor_utf8_bench PRIVATE corridor::common protobuf::libprotobuf
                      benchmark::benchmark ${CMAKE_DL_LIBS})
set_target_properties(corridor_utf8_bench PROPERTIES RUNTIME_OUTPUT_DIRECTORY
                      ${CMAKE_BINARY_DIR}/bin)
