#include "server/status_util.h"

namespace softserve::server {

grpc::Status ToGrpcStatus(const core::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  // core::StatusCode uses the canonical gRPC numbering.
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()), status.message());
}

core::TimePoint DeadlineOf(const grpc::ServerContextBase& context) {
  const auto deadline = context.deadline();
  if (deadline >= std::chrono::system_clock::time_point::max() - std::chrono::hours(24 * 365)) {
    return core::NoDeadline();
  }
  const auto remaining = deadline - std::chrono::system_clock::now();
  return core::Clock::now() + std::chrono::duration_cast<core::Clock::duration>(remaining);
}

}  // namespace softserve::server
