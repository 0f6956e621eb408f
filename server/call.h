// Plumbing shared by the unary handlers: a unary reactor that turns client cancellation into
// the engine's cancel flag, finishes exactly once, and records metrics and the log line; and
// ServeUnary, which takes a raw request, authenticates, parses it (INVALID_ARGUMENT for bytes
// that are not the message) and hands the typed request to a handler.
#ifndef SOFTSERVE_SERVER_CALL_H_
#define SOFTSERVE_SERVER_CALL_H_

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include <grpcpp/grpcpp.h>

#include "core/engine/request.h"
#include "server/auth.h"
#include "server/raw_message.h"
#include "server/service_context.h"

namespace softserve::server {

class UnaryCall : public grpc::ServerUnaryReactor {
 public:
  UnaryCall(const ServiceContext* sc, const char* rpc)
      : sc_(sc), rpc_(rpc), start_(std::chrono::steady_clock::now()) {}

  // Reads the request id (request_id.h), authenticates and, for inference, checks that the
  // server is accepting work; on failure finishes the call and returns false.
  bool Begin(grpc::CallbackServerContext* context, bool inference);
  // Finishes with `status` (first call wins); the reactor must not be used afterwards.
  void Complete(const core::Status& status, const std::string& detail = "");
  // Runs just before a successful Finish (ServeUnary serializes the response there).
  void BeforeFinish(std::function<void()> f) { before_finish_ = std::move(f); }
  // Keeps `p` alive until the call is done (the request and response messages).
  void Keep(std::shared_ptr<void> p) { kept_ = std::move(p); }

  void OnCancel() override { cancel_->store(true); }
  void OnDone() override { delete this; }

  const Caller& caller() const { return caller_; }
  // The call's access-log record (request id, tenant, prompt, tokens); handlers add what they learn.
  CallRecord& record() { return record_; }
  const core::CancelFlag& cancel() const { return cancel_; }
  void HoldSlot(std::unique_ptr<InflightLimiter::Slot> slot) { slot_ = std::move(slot); }

 private:
  const ServiceContext* sc_;
  const char* rpc_;
  grpc::CallbackServerContext* context_ = nullptr;
  std::chrono::steady_clock::time_point start_;
  Caller caller_;
  CallRecord record_;
  core::CancelFlag cancel_ = core::NewCancelFlag();
  std::unique_ptr<InflightLimiter::Slot> slot_;
  std::function<void()> before_finish_;
  std::shared_ptr<void> kept_;
  std::atomic<bool> finished_{false};
};

// Serves one raw unary call: authenticate (and check draining when `inference`), parse the
// request as Req, then `handle(call, context, request, response)`; the handler (or the engine's
// callback) completes the call, and a successful response is serialized into `out`.
template <typename Req, typename Resp, typename Handler>
grpc::ServerUnaryReactor* ServeUnary(const ServiceContext* sc, const char* rpc, bool inference,
                                     grpc::CallbackServerContext* context, const grpc::ByteBuffer* in,
                                     grpc::ByteBuffer* out, Handler handle) {
  auto* call = new UnaryCall(sc, rpc);
  auto messages = std::make_shared<std::pair<Req, Resp>>();
  call->Keep(messages);
  call->BeforeFinish([messages, out] { *out = SerializeMessage(messages->second); });
  if (!call->Begin(context, inference)) return call;
  if (core::Status s = ParseMessage(*in, &messages->first); !s.ok()) {
    call->Complete(s);
    return call;
  }
  handle(call, context, messages->first, &messages->second);
  return call;
}

}  // namespace softserve::server

#endif  // SOFTSERVE_SERVER_CALL_H_
