// Engine: serves generation, scoring, ensemble and explain requests for many tasks at once
// with one model, mixing rows of different soft prompts in every encoder pass and decoder step
// (continuous batching: finished rows leave and queued requests join between steps).
//
// Threading: exactly one engine thread owns the ModelRunner. Submit* may be called from any
// thread; it validates, enqueues under a mutex held only to move the job, and returns at once.
// Each request's `done` callback runs exactly once: on the caller's thread when the request is
// rejected up front, otherwise on the engine thread (it must not block). Streaming callbacks
// also run on the engine thread.
//
// Errors delivered to `done`:
//   InvalidArgument     bad ids, lengths, prompt width, decoding parameters, over a limit
//   ResourceExhausted   the queue is full; device out of memory during the job's step
//   DeadlineExceeded    the request's deadline passed (queued or running)
//   Cancelled           the request's cancel flag was set
//   Unavailable         the engine is shutting down
//   Internal            the model failed; only the rows of the failing step are affected
#ifndef SOFTSERVE_CORE_ENGINE_ENGINE_H_
#define SOFTSERVE_CORE_ENGINE_ENGINE_H_

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "core/common/thread_annotations.h"
#include "core/engine/model_runner.h"
#include "core/engine/request.h"
#include "core/engine/scheduler.h"

namespace softserve::core {

struct EngineLimits {
  int64_t max_rows = 64;                    // decode rows in the batch (beams count each)
  int64_t max_tokens_in_flight = 1 << 17;   // KV tokens of everything running
  int64_t max_prefill_tokens = 4096;        // encoder tokens admitted per step
  int64_t max_queue = 1024;                 // waiting jobs before ResourceExhausted
  int64_t max_input_tokens = 512;
  int64_t max_prompt_rows = 256;
  int64_t max_new_tokens = 512;
  int64_t max_beams = 16;
  int64_t max_score_targets = 64;
  int64_t max_target_tokens = 256;
  int64_t max_ensemble_prompts = 16;
  int64_t max_explain_top_k = 100;
  // kMixed serves every task in the same batch; kSameKey restricts each batch to one prompt
  // (only to measure, in bench/, what a server that cannot mix tasks would achieve).
  BatchPolicy batch_policy = BatchPolicy::kMixed;
};

// Per-step figures, for metrics and benchmarks.
struct StepStats {
  int64_t rows = 0;              // decode rows in the step
  int64_t distinct_prompts = 0;  // distinct soft prompts among them (no prompt counts as one)
  int64_t prefill_rows = 0;      // rows that joined before this step
  int64_t new_tokens = 0;        // tokens chosen in this step (all rows)
  double seconds = 0;            // wall time of admission + step
};

// Hooks called on the engine thread; implementations must be cheap and not block.
class EngineObserver {
 public:
  virtual ~EngineObserver() = default;
  virtual void OnStep(const StepStats& stats) {}
};

class Engine {
 public:
  // Starts the engine thread. `observer` may be null and must outlive the engine.
  Engine(std::unique_ptr<ModelRunner> runner, EngineLimits limits,
         EngineObserver* observer = nullptr);
  // Shutdown(now) if not already shut down; joins the engine thread.
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  void Submit(GenerationRequest request, DoneCallback<GenerationResult> done);
  void SubmitScore(ScoreRequest request, DoneCallback<ScoreResult> done);
  // Generation ensemble when request.targets is empty, scoring ensemble otherwise.
  // `text_of`, if set, maps generated ids to the text the majority vote compares.
  void SubmitEnsemble(EnsembleRequest request, DoneCallback<EnsembleResult> done,
                      std::function<std::string(const std::vector<int64_t>&)> text_of = nullptr);
  void SubmitExplain(ExplainRequest request, DoneCallback<ExplainResult> done);

  // Stops accepting (later submissions get Unavailable), lets queued and running work finish
  // until `grace_deadline`, then fails what is left with Unavailable and joins the thread.
  // Idempotent; blocks until the thread has exited.
  void Shutdown(TimePoint grace_deadline);

  bool accepting() const { return !stopping_.load(); }
  int64_t queue_depth() const { return queue_depth_.load(); }
  int64_t running_rows() const { return running_rows_.load(); }
  const T5Config& config() const { return config_; }
  const EngineLimits& limits() const { return limits_; }
  std::string Describe() const { return description_; }

 private:
  struct Job;
  struct Sequence;

  // Submission.
  Status ValidateCommon(const RequestCommon& common, bool allow_empty_input) const;
  Status ValidatePrompt(const PromptPtr& prompt) const;
  Status ValidateParams(const DecodingParams& params, bool streaming) const;
  Status ValidateTargets(const std::vector<std::vector<int64_t>>& targets) const;
  void Enqueue(std::unique_ptr<Job> job);

  // The loop, as named steps.
  void Run();
  bool TakeWork(std::vector<std::unique_ptr<Job>>* admitted,
                std::vector<std::pair<std::unique_ptr<Job>, Status>>* ended);
  void EndRunning(const std::vector<uint64_t>& ids, const Status& status);
  void Admit(std::vector<std::unique_ptr<Job>> jobs, StepStats* stats);
  void AdmitDecoding(std::vector<Job*> jobs, StepStats* stats);
  void RunScoring(std::vector<Job*> jobs);
  void RunStep(StepStats* stats);
  void RetireFinished();
  void FinishSequence(Sequence* seq);
  void FailAllRunning(const Status& status);
  void RemoveRows(const std::vector<bool>& dead);

  std::unique_ptr<ModelRunner> runner_;
  const T5Config config_;
  const EngineLimits limits_;
  const SchedulerLimits scheduler_limits_;
  EngineObserver* const observer_;
  const std::string description_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::unique_ptr<Job>> queue_ SOFTSERVE_GUARDED_BY(mu_);
  TimePoint grace_deadline_ SOFTSERVE_GUARDED_BY(mu_) = NoDeadline();
  uint64_t next_id_ SOFTSERVE_GUARDED_BY(mu_) = 1;
  std::atomic<bool> stopping_{false};
  std::atomic<int64_t> queue_depth_{0};
  std::atomic<int64_t> running_rows_{0};

  // Engine-thread state.
  std::map<uint64_t, std::unique_ptr<Job>> running_;
  std::vector<std::pair<Sequence*, int>> slots_;  // runner row -> (sequence, its row)
  std::string tenant_cursor_;

  std::mutex join_mu_;
  std::thread thread_;
};

}  // namespace softserve::core

#endif  // SOFTSERVE_CORE_ENGINE_ENGINE_H_
