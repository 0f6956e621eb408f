// InferenceService.GenerateStream: tokens go out as the engine chooses them. The engine thread
// only queues messages; the reactor writes one at a time (gRPC allows one write in flight) and
// finishes after every input's final message. Client cancellation frees the rows at the next
// step through the shared cancel flag.
#include <chrono>
#include <deque>
#include <mutex>

#include "server/convert.h"
#include "server/inference_service.h"
#include "server/status_util.h"

namespace softserve::server {
namespace {

class StreamCall : public grpc::ServerWriteReactor<v1::GenerateStreamResponse> {
 public:
  StreamCall(const ServiceContext* sc) : sc_(sc), start_(std::chrono::steady_clock::now()) {}

  void Start(grpc::CallbackServerContext* context, const v1::GenerateRequest& request) {
    auto caller = sc_->auth->Authenticate(*context);
    core::Status s = caller.ok() ? sc_->CheckAccepting() : caller.status();
    if (caller.ok()) tenant_ = (*caller).name();
    core::StatusOr<PreparedGeneration> prepared = s.ok() ? PrepareGeneration(*sc_, *caller, request, *context) : s;
    if (!prepared.ok()) return FinishNow(prepared.status());
    slot_ = std::move(prepared->slot);
    const size_t n = prepared->inputs.size();
    std::unique_lock<std::mutex> lock(mu_);
    remaining_ = static_cast<int>(n) + 1;  // +1: this submission loop, so no callback can finish early
    outputs_.resize(n);
    for (const auto& ids : prepared->inputs) input_tokens_.push_back(static_cast<int>(ids.size()));
    lock.unlock();
    for (size_t i = 0; i < n; ++i) {
      core::GenerationRequest g;
      g.common = {tenant_, std::move(prepared->inputs[i]), prepared->deadline, cancel_};
      g.prompt = prepared->prompt;
      g.params = prepared->params;
      const int index = static_cast<int>(i);
      g.on_token = [this, index](int64_t token, float logprob) { OnToken(index, token, logprob); };
      sc_->engine->Submit(std::move(g), [this, index](core::StatusOr<core::GenerationResult> r) {
        OnResult(index, std::move(r));
      });
    }
    lock.lock();
    --remaining_;
    lock.unlock();
    Pump();
  }

  void OnWriteDone(bool ok) override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      queue_.pop_front();
      writing_ = false;
      if (!ok) cancel_->store(true);  // the client went away
    }
    Pump();
  }
  void OnCancel() override { cancel_->store(true); }
  void OnDone() override { delete this; }

 private:
  void OnToken(int index, int64_t token, float logprob) {
    v1::GenerateStreamResponse m;
    m.set_input_index(index);
    m.set_token_id(token);
    m.set_logprob(logprob);
    {
      std::lock_guard<std::mutex> lock(mu_);
      outputs_[index].push_back(token);
      if (sc_->tokenizer != nullptr) {
        auto text = sc_->tokenizer->Decode(outputs_[index]);
        if (text.ok()) m.set_text(*text);
      }
      queue_.push_back(std::move(m));
    }
    Pump();
  }

  void OnResult(int index, core::StatusOr<core::GenerationResult> r) {
    std::unique_lock<std::mutex> lock(mu_);
    if (r.ok()) {
      v1::GenerateStreamResponse m;
      m.set_input_index(index);
      ToProto(*r, sc_->tokenizer, input_tokens_[index], m.mutable_final());
      m.set_text(m.final().text());
      queue_.push_back(std::move(m));
      sc_->metrics->RecordGeneration(r->queue_seconds, r->first_token_seconds);
    } else if (status_.ok()) {
      status_ = r.status();
      cancel_->store(true);
    }
    --remaining_;
    lock.unlock();
    Pump();
  }

  // Starts the next write, or finishes once every input is done. Called without mu_ held: gRPC
  // is never entered under our lock (a reaction run inline would deadlock, and Finish may lead
  // to OnDone deleting this). The deque's front element stays put while it is being written.
  void Pump() {
    const v1::GenerateStreamResponse* next = nullptr;
    grpc::Status final_status;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (writing_ || finished_) return;
      if (!queue_.empty() && status_.ok()) {
        writing_ = true;
        next = &queue_.front();
      } else if (remaining_ == 0) {
        finished_ = true;
        slot_.reset();
        final_status = ToGrpcStatus(status_);
      } else {
        return;
      }
    }
    if (next != nullptr) {
      StartWrite(next);
      return;
    }
    sc_->Record("GenerateStream", tenant_, final_status, start_, "inputs=" + std::to_string(outputs_.size()));
    Finish(final_status);
  }

  void FinishNow(const core::Status& s) {
    finished_ = true;
    const grpc::Status g = ToGrpcStatus(s);
    sc_->Record("GenerateStream", tenant_, g, start_, "");
    Finish(g);
  }

  const ServiceContext* sc_;
  std::chrono::steady_clock::time_point start_;
  std::string tenant_;
  core::CancelFlag cancel_ = core::NewCancelFlag();
  std::unique_ptr<InflightLimiter::Slot> slot_;
  std::vector<int> input_tokens_;
  std::mutex mu_;
  std::deque<v1::GenerateStreamResponse> queue_;  // front is being written while writing_
  std::vector<std::vector<int64_t>> outputs_;
  core::Status status_;
  int remaining_ = 0;
  bool writing_ = false;
  bool finished_ = false;
};

}  // namespace

grpc::ServerWriteReactor<v1::GenerateStreamResponse>* InferenceServiceImpl::GenerateStream(
    grpc::CallbackServerContext* context, const v1::GenerateRequest* request) {
  auto* call = new StreamCall(sc_);
  call->Start(context, *request);
  return call;
}

}  // namespace softserve::server
