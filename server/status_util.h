// The one place where core::Status becomes grpc::Status (handlers never invent codes), and
// where gRPC deadlines become engine deadlines.
#ifndef SOFTSERVE_SERVER_STATUS_UTIL_H_
#define SOFTSERVE_SERVER_STATUS_UTIL_H_

#include <grpcpp/grpcpp.h>

#include "core/common/status.h"
#include "core/engine/request.h"

namespace softserve::server {

grpc::Status ToGrpcStatus(const core::Status& status);

// The call's deadline on the engine's steady clock (NoDeadline when the client set none).
core::TimePoint DeadlineOf(const grpc::ServerContextBase& context);

}  // namespace softserve::server

#endif  // SOFTSERVE_SERVER_STATUS_UTIL_H_
