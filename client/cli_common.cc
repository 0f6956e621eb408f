#include "client/cli_common.h"

#include <google/protobuf/util/json_util.h>

#include <cstdio>
#include <cstdlib>
#include <iostream>

namespace softserve::client {

int PrintStatus(const grpc::Status& s) {
  static const char* kNames[] = {"OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND",
                                 "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION",
                                 "ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS",
                                 "UNAUTHENTICATED"};
  const int code = static_cast<int>(s.error_code());
  std::fprintf(stderr, "softserve: %s: %s\n", code >= 0 && code <= 16 ? kNames[code] : "UNKNOWN", s.error_message().c_str());
  return 1;
}

void PrintJson(const google::protobuf::Message& m) {
  std::string out;
  google::protobuf::util::JsonPrintOptions opts;
  opts.add_whitespace = true;
  opts.always_print_primitive_fields = true;
  (void)google::protobuf::util::MessageToJsonString(m, &out, opts);
  std::cout << out;
}

v1::PromptRef ParsePromptRef(const std::string& s) {
  v1::PromptRef ref;
  const size_t at = s.find('@');
  ref.set_name(s.substr(0, at));
  if (at != std::string::npos) ref.set_version(std::atoll(s.c_str() + at + 1));
  return ref;
}

}  // namespace softserve::client
