// InferenceService.GenerateStream: tokens go out as the engine chooses them. The engine thread
// only queues messages (each carrying the text the token adds, decoded incrementally over a
// short window, never the whole output again); the reactor writes one at a time (gRPC allows one
// write in flight) and finishes after every input's final message. A reader that falls more
// than max_stream_buffer_messages behind is cut off with RESOURCE_EXHAUSTED, so a client that
// stops reading cannot make the server buffer without bound. Client cancellation frees the rows
// at the next step through the shared cancel flag.
#include <chrono>
#include <algorithm>
#include <deque>
#include <mutex>

#include "server/convert.h"
#include "server/inference_service.h"
#include "server/output_text.h"
#include "server/raw_message.h"
#include "server/status_util.h"

namespace softserve::server {
namespace {

class StreamCall : public grpc::ServerWriteReactor<grpc::ByteBuffer> {
 public:
  explicit StreamCall(const ServiceContext* sc) : sc_(sc), start_(std::chrono::steady_clock::now()) {}

  void Start(grpc::CallbackServerContext* context, const grpc::ByteBuffer& raw) {
    core::Status s = BeginCallIds(context, &record_.ids);
    auto caller = sc_->auth->Authenticate(*context);
    if (s.ok()) s = caller.ok() ? sc_->CheckAccepting() : caller.status();
    if (caller.ok()) record_.tenant = (*caller).name();
    v1::GenerateRequest request;
    if (s.ok()) s = ParseMessage(raw, &request);
    core::StatusOr<PreparedGeneration> prepared = s.ok() ? PrepareGeneration(*sc_, *caller, request, /*streaming=*/true, *context) : s;
    if (!prepared.ok()) return FinishNow(prepared.status());
    AnnounceRequestId(context, record_.ids);  // before the first message
    slot_ = std::move(prepared->slot);
    record_.prompt = PromptLabel(prepared->prompt);
    const size_t n = prepared->inputs.size();
    std::unique_lock<std::mutex> lock(mu_);
    remaining_ = static_cast<int>(n) + 1;  // +1: this submission loop, so no callback can finish early
    stops_ = prepared->stop_sequences;
    for (size_t i = 0; i < n; ++i) texts_.emplace_back(sc_->tokenizer, stops_);
    for (const auto& ids : prepared->inputs) input_tokens_.push_back(static_cast<int>(ids.size()));
    record_.input_tokens = 0;
    for (int t : input_tokens_) record_.input_tokens += t;
    record_.output_tokens = 0;
    registration_ = RegisterGeneration(*sc_, record_, end_early_);
    lock.unlock();
    for (size_t i = 0; i < n; ++i) {
      const int index = static_cast<int>(i);
      if (!prepared->input_errors[i].ok()) {
        OnResult(index, prepared->input_errors[i]);
        continue;
      }
      core::GenerationRequest g = EngineRequest(record_.tenant, &*prepared, i, cancel_, end_early_);
      g.on_token = [this, index](const core::TokenChoice& c) { OnToken(index, c); };
      if (!stops_.empty()) {
        g.stop = [this, index](int64_t) {
          std::lock_guard<std::mutex> lock(mu_);
          return texts_[index].stopped();
        };
      }
      sc_->engine->Submit(std::move(g), [this, index](core::StatusOr<core::GenerationResult> r) {
        OnResult(index, std::move(r));
      });
    }
    Pump(/*inputs_done=*/1);  // the submission loop's hold
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
  // Queues a message; past the buffer limit the stream fails instead (the reader is not keeping
  // up) and the engine stops the request at its next step.
  void Enqueue(const v1::GenerateStreamResponse& m) {
    if (!status_.ok()) return;
    if (static_cast<int64_t>(queue_.size()) >= sc_->config->max_stream_buffer_messages) {
      status_ = core::ResourceExhaustedError(
          "the stream's reader fell " + std::to_string(queue_.size()) + " messages behind (max_stream_buffer_messages); "
          "read the stream faster, or use Generate");
      cancel_->store(true);
      return;
    }
    queue_.push_back(SerializeMessage(m));
  }

  void OnToken(int index, const core::TokenChoice& c) {
    v1::GenerateStreamResponse m;
    m.set_input_index(index);
    m.set_token_id(c.token);
    m.set_logprob(c.logprob);
    if (!c.top.empty()) ToProto(c.top, sc_->tokenizer, m.mutable_top_logprobs());
    {
      std::lock_guard<std::mutex> lock(mu_);
      m.set_text_delta(texts_[index].Add(c.token));
      Enqueue(m);
    }
    Pump();
  }

  void OnResult(int index, core::StatusOr<core::GenerationResult> r) {
    std::unique_lock<std::mutex> lock(mu_);
    if (r.ok()) {
      v1::GenerateStreamResponse m;
      m.set_input_index(index);
      ToProto(*r, sc_->tokenizer, input_tokens_[index], m.mutable_final(), stops_);
      m.set_text(m.final().text());
      // What the token messages held back (a tail that might have begun a stop sequence).
      const std::string& shown = texts_[index].shown();
      if (m.text().compare(0, shown.size(), shown) == 0) m.set_text_delta(m.text().substr(shown.size()));
      Enqueue(m);
      sc_->metrics->RecordGeneration(r->queue_seconds, r->first_token_seconds);
      record_.output_tokens += static_cast<int64_t>(r->output_ids.size());
      record_.queue_seconds = std::max(record_.queue_seconds, r->queue_seconds);
    } else if (texts_.size() > 1 && EndsOnlyItsInput(r.status())) {
      v1::GenerateStreamResponse m;  // this input's own problem: the others go on
      m.set_input_index(index);
      ToProto(r.status(), m.mutable_final());
      Enqueue(m);
    } else if (status_.ok()) {
      status_ = r.status();
      cancel_->store(true);
    }
    lock.unlock();
    Pump(/*inputs_done=*/1);
  }

  // Starts the next write, or finishes once every input is done. Called without mu_ held: gRPC
  // is never entered under our lock (a reaction run inline would deadlock, and Finish may lead
  // to OnDone deleting this). The deque's front element stays put while it is being written.
  // A caller whose input is done counts it down here, in the same critical section as the
  // decision to finish: counted down any earlier, another thread's Pump could finish and delete
  // this before the caller's own Pump touched it.
  void Pump(int inputs_done = 0) {
    const grpc::ByteBuffer* next = nullptr;
    grpc::Status final_status;
    {
      std::lock_guard<std::mutex> lock(mu_);
      remaining_ -= inputs_done;
      if (writing_ || finished_) return;
      if (!queue_.empty() && status_.ok()) {
        writing_ = true;
        next = &queue_.front();
      } else if (remaining_ == 0) {
        finished_ = true;
        slot_.reset();
        registration_.reset();
        final_status = ToGrpcStatus(status_);
      } else {
        return;
      }
    }
    if (next != nullptr) {
      StartWrite(next);
      return;
    }
    record_.detail = "inputs=" + std::to_string(texts_.size());
    sc_->Record("GenerateStream", record_, final_status, start_);
    Finish(final_status);
  }

  void FinishNow(const core::Status& s) {
    finished_ = true;
    const grpc::Status g = ToGrpcStatus(s);
    sc_->Record("GenerateStream", record_, g, start_);
    Finish(g);
  }

  const ServiceContext* sc_;
  std::chrono::steady_clock::time_point start_;
  CallRecord record_;  // tenant, ids, prompt; tokens and queue time added under mu_ as inputs finish
  core::CancelFlag cancel_ = core::NewCancelFlag();
  core::CancelFlag end_early_ = core::NewCancelFlag();  // CancelGeneration: complete with what we have
  std::unique_ptr<ActiveGenerations::Registration> registration_;
  std::unique_ptr<InflightLimiter::Slot> slot_;
  std::vector<int> input_tokens_;
  std::mutex mu_;
  std::deque<grpc::ByteBuffer> queue_;  // front is being written while writing_
  std::vector<OutputText> texts_;
  std::vector<std::string> stops_;
  core::Status status_;
  int remaining_ = 0;
  bool writing_ = false;
  bool finished_ = false;
};

}  // namespace

grpc::ServerWriteReactor<grpc::ByteBuffer>* InferenceServiceImpl::GenerateStream(grpc::CallbackServerContext* context,
                                                                                 const grpc::ByteBuffer* request) {
  auto* call = new StreamCall(sc_);
  call->Start(context, *request);
  return call;
}

}  // namespace softserve::server
