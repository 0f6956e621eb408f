#include "server/training_service.h"

#include <chrono>
#include <memory>
#include <mutex>
#include <optional>

#include "server/raw_message.h"
#include "server/status_util.h"

namespace softserve::server {
namespace {

// WatchTrainingJob: writes the job's state as it changes, one write at a time; a state that
// arrives while a write is in flight replaces any older unsent one (a slow reader gets the
// latest, and the server buffers one message at most). Finishes OK after an ended state.
class WatchCall : public grpc::ServerWriteReactor<grpc::ByteBuffer> {
 public:
  WatchCall(const ServiceContext* sc, TrainingJobs* jobs) : sc_(sc), jobs_(jobs), start_(std::chrono::steady_clock::now()) {}

  void Start(grpc::CallbackServerContext* context, const grpc::ByteBuffer& raw) {
    core::Status s = BeginCallIds(context, &record_.ids);
    auto caller = sc_->auth->Authenticate(*context);
    if (s.ok()) s = caller.status();
    if (caller.ok()) record_.tenant = caller->name();
    v1::TrainingJobRef ref;
    if (s.ok()) s = ParseMessage(raw, &ref);
    if (!s.ok()) return FinishWith(s);
    record_.detail = "job=" + ref.id();
    AnnounceRequestId(context, record_.ids);
    auto state = state_;
    auto watch = jobs_->WatchJob(caller->name(), ref.id(), [state](const v1::TrainingJob& j) { state->Offer(j); });
    if (!watch.ok()) return FinishWith(watch.status());
    watch_ = std::move(watch).value();
    state_->Ready();  // from here on the call may finish (and this be deleted)
  }

  void OnWriteDone(bool ok) override { state_->WriteDone(ok); }
  void OnCancel() override { state_->Cancel(); }
  void OnDone() override {
    {
      std::lock_guard<std::mutex> lock(state_->mu);
      state_->reactor = nullptr;
    }
    watch_.reset();  // no more offers reach this call
    delete this;
  }

 private:
  struct State {
    std::mutex mu;
    WatchCall* reactor = nullptr;
    std::optional<grpc::ByteBuffer> pending;  // the latest state not yet written
    bool pending_final = false;
    grpc::ByteBuffer writing;                 // the message being written
    bool in_flight = false, last_final = false, finished = false;
    bool ready = false;                       // Start is done: finishing may delete the reactor
    std::optional<grpc::Status> deferred;     // a finish that came before that

    void Ready() {
      std::unique_lock<std::mutex> lock(mu);
      ready = true;
      if (deferred) Finish(&lock, *deferred);
    }

    void Offer(const v1::TrainingJob& j) {
      std::unique_lock<std::mutex> lock(mu);
      if (finished || reactor == nullptr) return;
      pending = SerializeMessage(j);
      pending_final = TrainingJobEnded(j);
      if (!in_flight) StartNext(&lock);
    }
    void WriteDone(bool ok) {
      std::unique_lock<std::mutex> lock(mu);
      in_flight = false;
      if (!ok) return Finish(&lock, grpc::Status(grpc::StatusCode::CANCELLED, "the watcher went away"));
      if (pending) return StartNext(&lock);
      if (last_final) Finish(&lock, grpc::Status::OK);
    }
    void Cancel() {
      std::unique_lock<std::mutex> lock(mu);
      if (!in_flight) Finish(&lock, grpc::Status(grpc::StatusCode::CANCELLED, "cancelled by the client"));
    }
    // With mu held (released before entering gRPC).
    void StartNext(std::unique_lock<std::mutex>* lock) {
      writing = std::move(*pending);
      pending.reset();
      last_final = pending_final;
      in_flight = true;
      WatchCall* r = reactor;
      lock->unlock();
      r->StartWrite(&writing);
    }
    void Finish(std::unique_lock<std::mutex>* lock, const grpc::Status& status) {
      if (finished || reactor == nullptr) return;
      if (!ready) {
        deferred = status;
        return;
      }
      finished = true;
      WatchCall* r = reactor;
      lock->unlock();
      r->Done(status);
    }
  };

  void Done(const grpc::Status& status) {
    sc_->Record("WatchTrainingJob", record_, status, start_);
    Finish(status);
  }
  void FinishWith(const core::Status& s) {
    {
      std::lock_guard<std::mutex> lock(state_->mu);
      state_->finished = true;
    }
    Done(ToGrpcStatus(s));
  }

  const ServiceContext* sc_;
  TrainingJobs* jobs_;
  std::chrono::steady_clock::time_point start_;
  CallRecord record_;
  std::shared_ptr<State> state_ = MakeState();
  std::unique_ptr<TrainingJobs::Watch> watch_;

  std::shared_ptr<State> MakeState() {
    auto s = std::make_shared<State>();
    s->reactor = this;
    return s;
  }
};

}  // namespace

grpc::ServerUnaryReactor* TrainingServiceImpl::TrainPrompt(grpc::CallbackServerContext* context,
                                                           const grpc::ByteBuffer* request, grpc::ByteBuffer* response) {
  return ServeUnary<v1::TrainPromptRequest, v1::TrainingJob>(
      sc_, "TrainPrompt", /*inference=*/true, context, request, response,
      [this](UnaryCall* call, grpc::CallbackServerContext*, const v1::TrainPromptRequest& req, v1::TrainingJob* resp) {
        auto job = jobs_->Start(call->caller(), req);
        if (job.ok()) *resp = *job;
        call->Complete(job.status(), job.ok() ? "job=" + job->id() + " prompt=" + req.prompt_name() : "");
      });
}

grpc::ServerUnaryReactor* TrainingServiceImpl::GetTrainingJob(grpc::CallbackServerContext* context,
                                                              const grpc::ByteBuffer* request, grpc::ByteBuffer* response) {
  return ServeUnary<v1::TrainingJobRef, v1::TrainingJob>(
      sc_, "GetTrainingJob", false, context, request, response,
      [this](UnaryCall* call, grpc::CallbackServerContext*, const v1::TrainingJobRef& req, v1::TrainingJob* resp) {
        auto job = jobs_->Get(call->caller().name(), req.id());
        if (job.ok()) *resp = *job;
        call->Complete(job.status(), "job=" + req.id());
      });
}

grpc::ServerWriteReactor<grpc::ByteBuffer>* TrainingServiceImpl::WatchTrainingJob(grpc::CallbackServerContext* context,
                                                                                  const grpc::ByteBuffer* request) {
  auto* call = new WatchCall(sc_, jobs_);
  call->Start(context, *request);
  return call;
}

grpc::ServerUnaryReactor* TrainingServiceImpl::CancelTrainingJob(grpc::CallbackServerContext* context,
                                                                 const grpc::ByteBuffer* request, grpc::ByteBuffer* response) {
  return ServeUnary<v1::TrainingJobRef, v1::TrainingJob>(
      sc_, "CancelTrainingJob", false, context, request, response,
      [this](UnaryCall* call, grpc::CallbackServerContext*, const v1::TrainingJobRef& req, v1::TrainingJob* resp) {
        auto job = jobs_->Cancel(call->caller().name(), req.id());
        if (job.ok()) *resp = *job;
        call->Complete(job.status(), "job=" + req.id());
      });
}

grpc::ServerUnaryReactor* TrainingServiceImpl::ListTrainingJobs(grpc::CallbackServerContext* context,
                                                                const grpc::ByteBuffer* request, grpc::ByteBuffer* response) {
  return ServeUnary<v1::ListTrainingJobsRequest, v1::ListTrainingJobsResponse>(
      sc_, "ListTrainingJobs", false, context, request, response,
      [this](UnaryCall* call, grpc::CallbackServerContext*, const v1::ListTrainingJobsRequest&,
             v1::ListTrainingJobsResponse* resp) {
        for (v1::TrainingJob& j : jobs_->List(call->caller().name())) *resp->add_jobs() = std::move(j);
        call->Complete(core::OkStatus());
      });
}

}  // namespace softserve::server
