// A small StatusIs matcher for absl::Status / absl::StatusOr<T> and grpc::Status.
//
//   EXPECT_THAT(store.Get(key), StatusIs(absl::StatusCode::kNotFound));
//   EXPECT_THAT(grpc_status, GrpcStatusIs(grpc::StatusCode::INVALID_ARGUMENT,
//                                         HasSubstr("envelope.topic")));
#pragma once

#include <ostream>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "gmock/gmock.h"

namespace corridor::testing {

inline const absl::Status& GetStatus(const absl::Status& s) { return s; }
template <typename T>
const absl::Status& GetStatus(const absl::StatusOr<T>& s) {
  return s.status();
}

MATCHER_P(StatusIs, code, "status code is " + absl::StatusCodeToString(code)) {
  const absl::Status& s = ::corridor::testing::GetStatus(arg);
  *result_listener << "status is " << s;
  return s.code() == code;
}

MATCHER_P2(StatusIs, code, message_matcher, "") {
  const absl::Status& s = ::corridor::testing::GetStatus(arg);
  *result_listener << "status is " << s;
  return s.code() == code &&
         ::testing::ExplainMatchResult(message_matcher, std::string(s.message()), result_listener);
}

MATCHER(IsOk, "is OK") {
  const absl::Status& s = ::corridor::testing::GetStatus(arg);
  *result_listener << "status is " << s;
  return s.ok();
}

// For grpc::Status (kept generic so this header needs no gRPC include).
MATCHER_P(GrpcStatusIs, code, "") {
  *result_listener << "grpc status " << static_cast<int>(arg.error_code()) << ": "
                   << arg.error_message();
  return arg.error_code() == code;
}

MATCHER_P2(GrpcStatusIs, code, message_matcher, "") {
  *result_listener << "grpc status " << static_cast<int>(arg.error_code()) << ": "
                   << arg.error_message();
  return arg.error_code() == code &&
         ::testing::ExplainMatchResult(message_matcher, arg.error_message(), result_listener);
}

}  // namespace corridor::testing
