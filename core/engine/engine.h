// Engine: serves generation, scoring, ensemble and explain requests for many tasks at once
// with one model, mixing rows of different soft prompts in every encoder pass and decoder step
// (continuous batching: finished rows leave and queued requests join between steps).
//
// Threading: exactly one engine thread owns the ModelRunner. Submit* may be called from any
// thread; it validates, enqueues under a mutex held only to move the job, and returns at once.
// Each request's `done` callback runs exactly once and never under the engine's queue mutex:
// on the caller's thread when the request is rejected up front, otherwise on the engine thread
// (it must not block). Streaming callbacks also run on the engine thread.
//
// Isolation between tenants (see scheduler.h and docs/ARCHITECTURE.md):
//   - budgets count cost, not calls: rows (beams count each), KV tokens, encoder tokens per
//     step, scoring bytes per pass, and queued tokens per tenant and in total;
//   - each active tenant has a fair share of rows and KV tokens; a tenant that arrives while
//     others hold more than their share gets its share at the next step by *preemption*: the
//     over-share tenant's newest jobs give their rows back and wait at the head of the queue;
//     when admitted again their state is recomputed from their tokens (nothing is lost, outputs
//     are what they would have been);
//   - one loop iteration does bounded work: admissions within the encoder budget (and each
//     tenant within its share of it), at most one scoring pass within max_score_bytes, one
//     decode step;
//   - priority steps: while some tenant is heavy (scheduler.h: half its share of rows or more,
//     or its encoder work held back by its share of the budget), the rows of the light tenants
//     may be stepped alone (a heavy tenant's rows wait, keeping their state, and its jobs are
//     not admitted in that iteration). Priority iterations are paid for with time credit that
//     full iterations earn (max_priority_time_fraction of the time, banking at most two
//     iterations' worth), so heavy tenants keep at least 1 - that fraction of the engine's
//     time. On hardware whose step time grows with the rows in it (CPUs), this keeps a light
//     tenant's latency near what it is on an idle server.
//
// Failure: every error or exception of a step is caught at the step boundary. The rows of the
// failed step are retried in halves (recomputed from their tokens) until the jobs that fail
// alone are found; only those get the error, the others continue. The engine thread never exits
// before Shutdown.
//
// Background work (background.h): low-priority tasks (prompt training) run in slices on the
// engine thread, with the model being served, whenever no request is queued or running, and
// while requests are served for at most max_background_time_fraction of the engine's time
// (serving iterations earn it; a slice starts under load only once a whole slice's duration, a
// moving average, is earned, and spends what it takes). A request that arrives during a slice
// waits for that slice only; one that is being served is interrupted by a slice only under
// sustained load: credit is earned only while tasks wait, and an idle slice drops it, so it
// takes slice / fraction seconds of serving without an idle moment to start one.
//
// Early ends that are results, not errors: a generation's stop callback (kStopSequence, checked
// after each token), its time_limit (kTimeLimit, checked at each iteration's plan, queued or
// running; it acts like a deadline that completes with the tokens so far) and its end_early flag
// (kCancelled, checked likewise: the caller's "stop now, keep what you have").
//
// Errors delivered to `done`:
//   InvalidArgument     bad ids, lengths, prompt width, decoding parameters (a stop callback
//                       with beam search), over a per-request limit (the message names it)
//   ResourceExhausted   the queue (or the tenant's share of it) is full; device out of memory
//                       in a step the job failed alone
//   DeadlineExceeded    the request's deadline passed (queued or running)
//   Cancelled           the request's cancel flag was set
//   Unavailable         the engine is shutting down
//   Internal            the model failed on this job alone (after isolation)
#ifndef SOFTSERVE_CORE_ENGINE_ENGINE_H_
#define SOFTSERVE_CORE_ENGINE_ENGINE_H_

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "core/common/mutex.h"
#include "core/common/thread_annotations.h"
#include "core/engine/background.h"
#include "core/engine/model_runner.h"
#include "core/engine/request.h"
#include "core/engine/scheduler.h"

namespace softserve::core {

struct EngineLimits {
  int64_t max_rows = 64;                    // decode rows in the batch (beams count each);
                                            // lowered to the runner's KV cache slots
  int64_t max_tokens_in_flight = 1 << 17;   // KV tokens of everything running
  int64_t max_prefill_tokens = 2048;        // encoder tokens admitted per step (bounds a step)
  int64_t max_queue = 1024;                 // waiting jobs before ResourceExhausted
  int64_t max_queue_tokens = 1 << 22;       // cost (cost.h) of everything waiting
  int64_t max_tenant_queue_tokens = 1 << 20;  // cost one tenant may have waiting
  int64_t max_score_bytes = 256 << 20;      // working memory of one scoring pass
  int64_t max_input_tokens = 512;
  int64_t max_prompt_rows = 256;
  int64_t max_new_tokens = 512;
  int64_t max_beams = 16;
  int64_t max_top_logprobs = 20;            // alternatives reported per generated token
  int64_t max_score_targets = 64;
  int64_t max_target_tokens = 256;
  int64_t max_ensemble_prompts = 16;
  int64_t max_explain_top_k = 100;
  bool preemption = true;                   // give waiting tenants their share at once
  bool priority_steps = true;               // step light tenants' rows alone (see above)
  double max_priority_time_fraction = 0.25;  // of the engine's time, while tenants are heavy
  int64_t tenant_idle_grace_ms = 1000;      // a tenant keeps its share this long after its work
  double max_background_time_fraction = 0.1;  // background slices' share while requests are served
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
  int64_t preempted_jobs = 0;    // jobs that gave their rows back before this step
  int64_t scored_targets = 0;    // targets scored in this iteration's scoring pass
  double seconds = 0;            // wall time of admission + scoring + step
};

// Hooks called on the engine thread; implementations must be cheap and not block.
class EngineObserver {
 public:
  virtual ~EngineObserver() = default;
  virtual void OnStep(const StepStats& stats) {}
  // A step failed or threw; `jobs` of its jobs were retried in halves (see the header).
  virtual void OnStepFailure(const Status& status, int64_t jobs) {}
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

  // The checks Submit makes of a generation's decoding parameters alone (InvalidArgument naming
  // the parameter), for callers that split one request of several inputs into several
  // submissions and want a parameter problem reported once. Thread-safe.
  Status ValidateDecoding(const DecodingParams& params, bool streaming, bool stop_callback) const;

  void Submit(GenerationRequest request, DoneCallback<GenerationResult> done);
  void SubmitScore(ScoreRequest request, DoneCallback<ScoreResult> done);
  // Generation ensemble when request.targets is empty, scoring ensemble otherwise.
  // `text_of`, if set, maps generated ids to the text the majority vote compares.
  void SubmitEnsemble(EnsembleRequest request, DoneCallback<EnsembleResult> done,
                      std::function<std::string(const std::vector<int64_t>&)> text_of = nullptr);
  void SubmitExplain(ExplainRequest request, DoneCallback<ExplainResult> done);
  // Queues a background task (background.h). Unavailable while shutting down (the task's
  // Finished is then not called).
  Status SubmitBackground(std::shared_ptr<BackgroundTask> task);
  int64_t background_tasks() const { return background_count_.load(); }

  // Stops accepting (later submissions get Unavailable), lets queued and running work finish
  // until `grace_deadline`, then fails what is left with Unavailable and joins the thread.
  // Idempotent; blocks until the thread has exited.
  void Shutdown(TimePoint grace_deadline);

  bool accepting() const { return !stopping_.load(); }
  int64_t queue_depth() const { return queue_depth_.load(); }
  int64_t running_rows() const { return running_rows_.load(); }
  // Seconds the current loop iteration has been running; 0 while the engine waits for work.
  // A watchdog reads it to tell a stuck engine (a step that never returns) from a busy one.
  double busy_seconds() const;
  // Loop iterations completed since start.
  int64_t iterations() const { return iterations_.load(); }
  const T5Config& config() const { return config_; }
  const EngineLimits& limits() const { return limits_; }
  std::string Describe() const { return description_; }

 private:
  struct Job;
  struct Sequence;
  struct ScoreUnit;
  using JobPtr = std::unique_ptr<Job>;

  // Submission (engine.cc).
  Status ValidateCommon(const RequestCommon& common, bool allow_empty_input) const;
  Status ValidatePrompt(const PromptPtr& prompt) const;
  Status ValidateParams(const DecodingParams& params, bool streaming) const;
  Status ValidateTargets(const std::vector<std::vector<int64_t>>& targets) const;
  Status ValidateScoringMemory(const std::vector<PromptPtr>& prompts, int64_t input_tokens,
                               const std::vector<std::vector<int64_t>>& targets) const;
  void Enqueue(JobPtr job);
  Status CheckQueueBudget(const Job& job) const SOFTSERVE_REQUIRES(mu_);
  void PushFront(std::vector<JobPtr> jobs) SOFTSERVE_EXCLUDES(mu_);

  // The loop, as named steps (engine.cc).
  void Run();
  bool Iterate();
  // `ended`: queued jobs that end now, with their error, or with OK for one whose time limit
  // passed (it completes with what it has).
  bool TakeWork(std::vector<JobPtr>* admitted, std::vector<std::pair<JobPtr, Status>>* ended,
                StepPlan* plan, bool* priority_only) SOFTSERVE_EXCLUDES(mu_);
  std::vector<TenantActivity> RecentTenants(TimePoint now);
  std::vector<RunningWork> RunningSnapshot() const;

  // Admission, decode step, retiring (engine_step.cc).
  void Admit(std::vector<JobPtr> jobs, StepStats* stats);
  void AdmitDecoding(std::vector<Job*> jobs, StepStats* stats);
  Status RunStep(StepStats* stats, int64_t rows);
  bool IsPriority(const Sequence* seq) const;
  Status ArrangePriorityRows(int64_t* prefix);
  void AccountStep(bool priority_step, double seconds);
  Status RetireFinished();
  void FinishSequence(Sequence* seq);
  Status RemoveRows(const std::vector<bool>& dead);
  Status EndRunning(const std::vector<uint64_t>& ids, const Status& status);
  // Generations whose time limit passed or whose end_early is set: running jobs complete with
  // their tokens so far (rows retired), queued ones with what they have (nothing, or what they
  // had before preemption).
  Status EndRunningEarly(const std::vector<uint64_t>& ids);
  void EndQueuedEarly(JobPtr job);
  void PublishRows();

  // Background slices (engine_background.cc).
  void EarnBackgroundTime(double serving_seconds);
  // Runs one slice of the next task when the engine is idle or has earned the time.
  void MaybeRunBackground();
  // Ends every queued task with `status` (shutdown).
  void FinishBackground(const Status& status);

  // Scoring passes and explain (engine_scoring.cc).
  void StartScoring(Job* job);
  void RunScoringPass(StepStats* stats);
  void EndScoring(const std::vector<uint64_t>& ids, const Status& status);

  // Preemption and failure recovery (engine_recovery.cc).
  Status Preempt(const std::vector<uint64_t>& ids);
  std::vector<JobPtr> DetachAllRunning();
  void RecoverFromFailure(const Status& status);
  void Isolate(std::vector<JobPtr> group, const Status& status, std::vector<JobPtr>* survivors);
  Status Probe(std::vector<JobPtr>* group);
  Status ResetRunner();
  void FailAll(const Status& status);

  std::unique_ptr<ModelRunner> runner_;
  const T5Config config_;
  const EngineLimits limits_;
  const SchedulerLimits scheduler_limits_;
  EngineObserver* const observer_;
  const std::string description_;

  mutable Mutex mu_;
  CondVar cv_;
  std::deque<JobPtr> queue_ SOFTSERVE_GUARDED_BY(mu_);
  std::map<std::string, int64_t> tenant_queue_tokens_ SOFTSERVE_GUARDED_BY(mu_);
  int64_t queue_tokens_ SOFTSERVE_GUARDED_BY(mu_) = 0;
  TimePoint grace_deadline_ SOFTSERVE_GUARDED_BY(mu_) = NoDeadline();
  uint64_t next_id_ SOFTSERVE_GUARDED_BY(mu_) = 1;
  std::deque<std::shared_ptr<BackgroundTask>> background_ SOFTSERVE_GUARDED_BY(mu_);  // next first
  std::atomic<int64_t> background_count_{0};
  std::atomic<bool> stopping_{false};
  std::atomic<int64_t> queue_depth_{0};
  std::atomic<int64_t> running_rows_{0};
  std::atomic<int64_t> busy_since_ns_{0};  // steady-clock time the iteration began; 0 idle
  std::atomic<int64_t> iterations_{0};

  // Engine-thread state.
  std::map<uint64_t, JobPtr> running_;   // generation jobs whose rows are in the runner
  std::map<uint64_t, JobPtr> scoring_;   // scoring jobs with targets left to score
  std::vector<std::pair<Sequence*, int>> slots_;  // runner row -> (sequence, its row)
  std::string tenant_cursor_;
  uint64_t next_admit_order_ = 1;
  uint64_t scoring_cursor_ = 0;          // scoring jobs take turns, one pass at a time
  bool runner_broken_ = false;           // Reset failed: no work until it succeeds
  std::map<std::string, TimePoint> last_active_;  // per tenant: last admission or completion
  std::set<std::string> priority_tenants_;        // from the last plan
  std::set<std::string> over_share_tenants_;      // from the last plan
  double priority_credit_ = 0;                    // seconds of priority steps earned
  double background_credit_ = 0;                  // seconds of background slices earned (may be < 0)
  double background_slice_seconds_ = 0;           // a slice's duration, moving average

  Mutex join_mu_;
  std::thread thread_;
};

}  // namespace softserve::core

#endif  // SOFTSERVE_CORE_ENGINE_ENGINE_H_
