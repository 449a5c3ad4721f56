# corridor-load: the load generator (bench/load), driving corridord over mTLS and,
# when their client libraries are installed, the peers NATS JetStream (libnats)
# and RabbitMQ (librabbitmq). bench/compare runs them side by side.
add_library(corridor_load_lib STATIC
  ${CMAKE_CURRENT_LIST_DIR}/load/histogram.cc
  ${CMAKE_CURRENT_LIST_DIR}/load/tracker.cc
  ${CMAKE_CURRENT_LIST_DIR}/load/workload.cc
  ${CMAKE_CURRENT_LIST_DIR}/load/proc_stats.cc
  ${CMAKE_CURRENT_LIST_DIR}/load/corridord_process.cc
  ${CMAKE_CURRENT_LIST_DIR}/load/corridor_backend.cc
  ${CMAKE_CURRENT_LIST_DIR}/load/nats_backend.cc
  ${CMAKE_CURRENT_LIST_DIR}/load/rabbit_backend.cc
)
target_include_directories(corridor_load_lib PUBLIC ${PROJECT_SOURCE_DIR})
target_link_libraries(corridor_load_lib PUBLIC corridor::client corridor::certs
                      corridor::proto_grpc absl::strings absl::str_format Threads::Threads)

find_path(CORRIDOR_NATS_INCLUDE nats/nats.h)
find_library(CORRIDOR_NATS_LIB nats)
if(CORRIDOR_NATS_INCLUDE AND CORRIDOR_NATS_LIB)
  target_compile_definitions(corridor_load_lib PRIVATE CORRIDOR_LOAD_NATS=1)
  target_include_directories(corridor_load_lib PRIVATE ${CORRIDOR_NATS_INCLUDE})
  target_link_libraries(corridor_load_lib PUBLIC ${CORRIDOR_NATS_LIB})
else()
  message(STATUS "corridor-load: libnats-dev not found, building without the NATS peer")
endif()
find_path(CORRIDOR_AMQP_INCLUDE amqp.h)
find_library(CORRIDOR_AMQP_LIB rabbitmq)
if(CORRIDOR_AMQP_INCLUDE AND CORRIDOR_AMQP_LIB)
  target_compile_definitions(corridor_load_lib PRIVATE CORRIDOR_LOAD_RABBITMQ=1)
  target_include_directories(corridor_load_lib PRIVATE ${CORRIDOR_AMQP_INCLUDE})
  target_link_libraries(corridor_load_lib PUBLIC ${CORRIDOR_AMQP_LIB})
else()
  message(STATUS "corridor-load: librabbitmq-dev not found, building without the RabbitMQ peer")
endif()

add_executable(corridor_load ${CMAKE_CURRENT_LIST_DIR}/load/main.cc)
# jemalloc for the same reason as corridord: glibc malloc spent ~5 % of the load
# generator's CPU on the two cores it shares with the broker under test.
target_link_libraries(corridor_load PRIVATE corridor_load_lib CLI11::CLI11 PkgConfig::JEMALLOC
                      "$<LINK_LIBRARY:WHOLE_ARCHIVE,corridor::protobuf_utf8>")
set_target_properties(corridor_load PROPERTIES OUTPUT_NAME corridor-load
                      RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/bin)
if(TARGET corridord)
  add_dependencies(corridor_load corridord)
endif()

# The default-suite smoke test lives in tests/bench. tests/CMakeLists.txt adds it
# once it lists "bench"; until then it is added from here.
if(CORRIDOR_BUILD_TESTS AND NOT TARGET bench_load_smoke_test
   AND EXISTS ${PROJECT_SOURCE_DIR}/tests/bench/CMakeLists.txt)
  add_subdirectory(${PROJECT_SOURCE_DIR}/tests/bench ${CMAKE_BINARY_DIR}/tests/bench)
endif()
