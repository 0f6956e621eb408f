#include "server/call.h"

#include "server/status_util.h"

namespace softserve::server {

bool UnaryCall::Begin(grpc::CallbackServerContext* context, bool inference) {
  context_ = context;
  if (core::Status s = BeginCallIds(context, &record_.ids); !s.ok()) {
    Complete(s);
    return false;
  }
  auto caller = sc_->auth->Authenticate(*context);
  if (!caller.ok()) {
    Complete(caller.status());
    return false;
  }
  caller_ = *caller;
  record_.tenant = caller_.name();
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
  if (g.ok() && context_ != nullptr) AnnounceRequestId(context_, record_.ids);
  if (!detail.empty()) record_.detail = detail;
  sc_->Record(rpc_, record_, g, start_);
  Finish(g);  // may delete this
}

}  // namespace softserve::server
