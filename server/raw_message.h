// The server takes every request as raw bytes (gRPC "raw" callback methods) and parses it
// itself, so that a request that is not a valid message gets INVALID_ARGUMENT with a message a
// person can act on — gRPC's generated handlers answer such requests UNIMPLEMENTED with no
// message at all. Thread-safe.
#ifndef SOFTSERVE_SERVER_RAW_MESSAGE_H_
#define SOFTSERVE_SERVER_RAW_MESSAGE_H_

#include <string>

#include <google/protobuf/message.h>
#include <grpcpp/support/byte_buffer.h>

#include "core/common/status.h"

namespace softserve::server {

// Routes protobuf's log lines to spdlog and lets ParseMessage quote the parse error protobuf
// reports (e.g. which string field is not UTF-8). Call once at start-up.
void InstallProtobufLogHandler();

// Parses `in` into `msg`. InvalidArgument naming the message type and, where protobuf says, the
// offending field: "the request is not a valid softserve.v1.GenerateRequest: String field
// 'softserve.v1.Input.text' contains invalid UTF-8 data ...".
core::Status ParseMessage(const grpc::ByteBuffer& in, google::protobuf::Message* msg);

grpc::ByteBuffer SerializeMessage(const google::protobuf::Message& msg);

}  // namespace softserve::server

#endif  // SOFTSERVE_SERVER_RAW_MESSAGE_H_
