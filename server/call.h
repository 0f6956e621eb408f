// Plumbing shared by the unary handlers: a unary reactor that turns client cancellation into
// the engine's cancel flag, finishes exactly once, and records metrics and the log line.
#ifndef SOFTSERVE_SERVER_CALL_H_
#define SOFTSERVE_SERVER_CALL_H_

#include <atomic>
#include <chrono>
#include <memory>
#include <string>

#include <grpcpp/grpcpp.h>

#include "core/engine/request.h"
#include "server/auth.h"
#include "server/service_context.h"

namespace softserve::server {

class UnaryCall : public grpc::ServerUnaryReactor {
 public:
  UnaryCall(const ServiceContext* sc, const char* rpc)
      : sc_(sc), rpc_(rpc), start_(std::chrono::steady_clock::now()) {}

  // Authenticates and checks that the server is accepting work; on failure finishes the call
  // and returns false.
  bool Begin(grpc::CallbackServerContext* context, bool inference);
  // Finishes with `status` (first call wins); the reactor must not be used afterwards.
  void Complete(const core::Status& status, const std::string& detail = "");

  void OnCancel() override { cancel_->store(true); }
  void OnDone() override { delete this; }

  const Caller& caller() const { return caller_; }
  const core::CancelFlag& cancel() const { return cancel_; }
  void HoldSlot(std::unique_ptr<InflightLimiter::Slot> slot) { slot_ = std::move(slot); }

 private:
  const ServiceContext* sc_;
  const char* rpc_;
  std::chrono::steady_clock::time_point start_;
  Caller caller_;
  core::CancelFlag cancel_ = core::NewCancelFlag();
  std::unique_ptr<InflightLimiter::Slot> slot_;
  std::atomic<bool> finished_{false};
};

}  // namespace softserve::server

#endif  // SOFTSERVE_SERVER_CALL_H_
