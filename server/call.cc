#include "server/call.h"

#include "server/status_util.h"

namespace softserve::server {

bool UnaryCall::Begin(grpc::CallbackServerContext* context, bool inference) {
  auto caller = sc_->auth->Authenticate(*context);
  if (!caller.ok()) {
    Complete(caller.status());
    return false;
  }
  caller_ = *caller;
  if (inference) {
    if (core::Status s = sc_->CheckAccepting(); !s.ok()) {
      Complete(s);
      return false;
    }
  }
  return true;
}

void UnaryCall::Complete(const core::Status& status, const std::string& detail) {
  if (finished_.exchange(true)) return;
  slot_.reset();
  const grpc::Status g = ToGrpcStatus(status);
  if (g.ok() && before_finish_) before_finish_();
  sc_->Record(rpc_, caller_.tenant ? caller_.name() : std::string(), g, start_, detail);
  Finish(g);  // may delete this
}

}  // namespace softserve::server
