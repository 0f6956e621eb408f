// Engine: submission, validation, lifecycle and the loop. The per-step work (admission, the
// decode step, retiring rows) is in engine_step.cc.
#include "core/engine/engine.h"

#include <cmath>

#include "core/engine/engine_job.h"

namespace softserve::core {
namespace {

std::string Str(int64_t v) { return std::to_string(v); }

int64_t PromptRows(const PromptPtr& p) { return p ? p->rows() : 0; }

}  // namespace

Engine::Engine(std::unique_ptr<ModelRunner> runner, EngineLimits limits, EngineObserver* observer)
    : runner_(std::move(runner)),
      config_(runner_->config()),
      limits_(limits),
      scheduler_limits_{limits.max_rows, limits.max_tokens_in_flight, limits.max_prefill_tokens,
                        limits.batch_policy},
      observer_(observer),
      description_(runner_->Describe()) {
  thread_ = std::thread([this] { Run(); });
}

Engine::~Engine() { Shutdown(Clock::now()); }

Status Engine::ValidateCommon(const RequestCommon& c, bool allow_empty_input) const {
  if (c.input_ids.empty() && !allow_empty_input) {
    return InvalidArgumentError("input is empty: give at least one token");
  }
  if (static_cast<int64_t>(c.input_ids.size()) > limits_.max_input_tokens) {
    return InvalidArgumentError("input has " + Str(c.input_ids.size()) +
                                " tokens, over the limit of " + Str(limits_.max_input_tokens));
  }
  for (size_t i = 0; i < c.input_ids.size(); ++i) {
    if (c.input_ids[i] < 0 || c.input_ids[i] >= config_.vocab_size) {
      return InvalidArgumentError("input token " + Str(c.input_ids[i]) + " at position " + Str(i) +
                                  " is outside the vocabulary [0, " + Str(config_.vocab_size) + ")");
    }
  }
  if (c.deadline <= Clock::now()) return DeadlineExceededError("deadline passed before admission");
  return OkStatus();
}

Status Engine::ValidatePrompt(const PromptPtr& p) const {
  if (!p) return OkStatus();
  if (p->dim() != config_.d_model) {
    return InvalidArgumentError("prompt " + p->key().ToString() + " has width " + Str(p->dim()) +
                                ", the model's d_model is " + Str(config_.d_model));
  }
  if (p->rows() < 1 || p->rows() > limits_.max_prompt_rows) {
    return InvalidArgumentError("prompt " + p->key().ToString() + " has " + Str(p->rows()) +
                                " rows; allowed 1.." + Str(limits_.max_prompt_rows));
  }
  return OkStatus();
}

Status Engine::ValidateParams(const DecodingParams& p, bool streaming) const {
  if (p.max_new_tokens < 1 || p.max_new_tokens > limits_.max_new_tokens) {
    return InvalidArgumentError("max_new_tokens = " + Str(p.max_new_tokens) + "; allowed 1.." +
                                Str(limits_.max_new_tokens));
  }
  if (p.min_new_tokens < 0 || p.min_new_tokens > p.max_new_tokens) {
    return InvalidArgumentError("min_new_tokens = " + Str(p.min_new_tokens) + "; allowed 0..max_new_tokens (" +
                                Str(p.max_new_tokens) + ")");
  }
  if (p.mode == DecodingMode::kBeam) {
    if (p.num_beams < 1 || p.num_beams > limits_.max_beams) {
      return InvalidArgumentError("num_beams = " + Str(p.num_beams) + "; allowed 1.." +
                                  Str(limits_.max_beams));
    }
    if (!std::isfinite(p.length_penalty)) return InvalidArgumentError("length_penalty must be finite");
    if (streaming) {
      return InvalidArgumentError("streaming needs greedy or sampling: beam search only knows "
                                  "its output when it ends");
    }
  }
  if (p.mode == DecodingMode::kSample) {
    if (!(p.temperature > 0) || !std::isfinite(p.temperature)) {
      return InvalidArgumentError("temperature must be a finite number > 0");
    }
    if (p.top_k < 0) return InvalidArgumentError("top_k must be >= 0 (0 disables it)");
    if (!(p.top_p > 0 && p.top_p <= 1)) return InvalidArgumentError("top_p must be in (0, 1]");
  }
  return OkStatus();
}

Status Engine::ValidateTargets(const std::vector<std::vector<int64_t>>& targets) const {
  if (targets.empty()) return InvalidArgumentError("no candidate targets to score");
  if (static_cast<int64_t>(targets.size()) > limits_.max_score_targets) {
    return InvalidArgumentError(Str(targets.size()) + " targets, over the limit of " +
                                Str(limits_.max_score_targets));
  }
  for (size_t t = 0; t < targets.size(); ++t) {
    if (targets[t].empty()) return InvalidArgumentError("target " + Str(t) + " is empty");
    if (static_cast<int64_t>(targets[t].size()) > limits_.max_target_tokens) {
      return InvalidArgumentError("target " + Str(t) + " has " + Str(targets[t].size()) +
                                  " tokens, over the limit of " + Str(limits_.max_target_tokens));
    }
    for (int64_t id : targets[t]) {
      if (id < 0 || id >= config_.vocab_size) {
        return InvalidArgumentError("target " + Str(t) + " token " + Str(id) +
                                    " is outside the vocabulary");
      }
    }
  }
  return OkStatus();
}

void Engine::Submit(GenerationRequest request, DoneCallback<GenerationResult> done) {
  const PromptPtr& prompt = request.prompt;
  Status s = ValidateCommon(request.common, prompt != nullptr);
  if (s.ok()) s = ValidatePrompt(prompt);
  if (s.ok()) s = ValidateParams(request.params, request.on_token != nullptr);
  if (!s.ok()) return done(s);
  auto job = std::make_unique<Job>();
  job->kind = JobKind::kGenerate;
  const int64_t rows = request.params.mode == DecodingMode::kBeam ? request.params.num_beams : 1;
  const int64_t input = PromptRows(prompt) + static_cast<int64_t>(request.common.input_ids.size());
  job->rows = rows;
  job->prefill_tokens = input;
  job->kv_tokens = rows * (input + request.params.max_new_tokens);
  job->generation = std::move(request);
  job->generation_done = std::move(done);
  Enqueue(std::move(job));
}

void Engine::SubmitScore(ScoreRequest request, DoneCallback<ScoreResult> done) {
  Status s = ValidateCommon(request.common, request.prompt != nullptr);
  if (s.ok()) s = ValidatePrompt(request.prompt);
  if (s.ok()) s = ValidateTargets(request.targets);
  if (!s.ok()) return done(s);
  auto job = std::make_unique<Job>();
  job->kind = JobKind::kScore;
  job->prefill_tokens = PromptRows(request.prompt) + static_cast<int64_t>(request.common.input_ids.size());
  for (const auto& t : request.targets) job->prefill_tokens += static_cast<int64_t>(t.size());
  job->score = std::move(request);
  job->score_done = std::move(done);
  Enqueue(std::move(job));
}

void Engine::SubmitEnsemble(EnsembleRequest request, DoneCallback<EnsembleResult> done,
                            std::function<std::string(const std::vector<int64_t>&)> text_of) {
  Status s = ValidateCommon(request.common, /*allow_empty_input=*/true);
  if (s.ok() && request.prompts.empty()) s = InvalidArgumentError("an ensemble needs at least one prompt");
  if (s.ok() && static_cast<int64_t>(request.prompts.size()) > limits_.max_ensemble_prompts) {
    s = InvalidArgumentError(Str(request.prompts.size()) + " prompts, over the ensemble limit of " +
                             Str(limits_.max_ensemble_prompts));
  }
  for (size_t i = 0; s.ok() && i < request.prompts.size(); ++i) {
    if (!request.prompts[i]) s = InvalidArgumentError("ensemble prompt " + Str(i) + " is missing");
    else s = ValidatePrompt(request.prompts[i]);
  }
  const bool scoring = !request.targets.empty();
  if (s.ok()) s = scoring ? ValidateTargets(request.targets) : ValidateParams(request.params, false);
  if (!s.ok()) return done(s);
  auto job = std::make_unique<Job>();
  job->kind = scoring ? JobKind::kEnsembleScore : JobKind::kEnsembleGenerate;
  const int64_t rows_each = request.params.mode == DecodingMode::kBeam ? request.params.num_beams : 1;
  for (const PromptPtr& p : request.prompts) {
    const int64_t input = p->rows() + static_cast<int64_t>(request.common.input_ids.size());
    job->prefill_tokens += input;
    if (!scoring) {
      job->rows += rows_each;
      job->kv_tokens += rows_each * (input + request.params.max_new_tokens);
    }
  }
  if (job->rows > limits_.max_rows) {
    return done(InvalidArgumentError("the ensemble needs " + Str(job->rows) +
                                     " rows, over the batch limit of " + Str(limits_.max_rows)));
  }
  job->ensemble = std::move(request);
  job->ensemble_done = std::move(done);
  job->text_of = std::move(text_of);
  Enqueue(std::move(job));
}

void Engine::SubmitExplain(ExplainRequest request, DoneCallback<ExplainResult> done) {
  Status s;
  if (!request.prompt) s = InvalidArgumentError("explain needs a prompt");
  if (s.ok()) s = ValidatePrompt(request.prompt);
  if (s.ok() && (request.top_k < 1 || request.top_k > limits_.max_explain_top_k)) {
    s = InvalidArgumentError("top_k = " + Str(request.top_k) + "; allowed 1.." +
                             Str(limits_.max_explain_top_k));
  }
  if (!s.ok()) return done(s);
  auto job = std::make_unique<Job>();
  job->kind = JobKind::kExplain;
  job->explain = std::move(request);
  job->explain_done = std::move(done);
  Enqueue(std::move(job));
}

void Engine::Enqueue(std::unique_ptr<Job> job) {
  if (job->rows > limits_.max_rows || job->kv_tokens > limits_.max_tokens_in_flight) {
    return job->Fail(InvalidArgumentError(
        "the request needs " + Str(job->rows) + " rows and " + Str(job->kv_tokens) +
        " KV tokens; the server allows " + Str(limits_.max_rows) + " rows and " +
        Str(limits_.max_tokens_in_flight) + " tokens in flight"));
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) {
      job->Fail(UnavailableError("the server is shutting down"));
      return;
    }
    if (static_cast<int64_t>(queue_.size()) >= limits_.max_queue) {
      job->Fail(ResourceExhaustedError("the request queue is full (" + Str(queue_.size()) +
                                       " waiting); retry later"));
      return;
    }
    job->id = next_id_++;
    job->enqueued = Clock::now();
    queue_.push_back(std::move(job));
    queue_depth_ = static_cast<int64_t>(queue_.size());
  }
  cv_.notify_one();
}

void Engine::Shutdown(TimePoint grace_deadline) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!stopping_) {
      stopping_ = true;
      grace_deadline_ = grace_deadline;
    } else {
      grace_deadline_ = std::min(grace_deadline_, grace_deadline);
    }
  }
  cv_.notify_all();
  std::lock_guard<std::mutex> join_lock(join_mu_);
  if (thread_.joinable()) thread_.join();
}

bool Engine::TakeWork(std::vector<std::unique_ptr<Job>>* admitted,
                      std::vector<std::pair<std::unique_ptr<Job>, Status>>* ended) {
  std::vector<RunningWork> running;
  for (const auto& [id, job] : running_) {
    running.push_back({id, job->BatchKey(), job->rows, job->kv_tokens, job->common().deadline, job->cancelled()});
  }
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait(lock, [&] { return !queue_.empty() || !running_.empty() || stopping_; });
  const TimePoint now = Clock::now();
  if (stopping_ && (now >= grace_deadline_ || (queue_.empty() && running_.empty()))) {
    for (auto& job : queue_) ended->push_back({std::move(job), UnavailableError("the server is shutting down")});
    queue_.clear();
    queue_depth_ = 0;
    return false;
  }
  std::vector<PendingWork> pending;
  for (const auto& job : queue_) {
    pending.push_back({job->id, job->common().tenant, job->rows, job->kv_tokens,
                       job->prefill_tokens, job->common().deadline, job->cancelled(), job->BatchKey()});
  }
  StepPlan plan = PlanStep(pending, running, scheduler_limits_, now, tenant_cursor_);
  tenant_cursor_ = plan.tenant_cursor;
  std::map<uint64_t, Status> end_queued;
  for (uint64_t id : plan.expired_queued) end_queued[id] = DeadlineExceededError("deadline passed while queued");
  for (uint64_t id : plan.cancelled_queued) end_queued[id] = CancelledError("cancelled while queued");
  std::map<uint64_t, size_t> admit_order;
  for (size_t i = 0; i < plan.admit.size(); ++i) admit_order[plan.admit[i]] = i;
  admitted->resize(plan.admit.size());
  std::deque<std::unique_ptr<Job>> keep;
  for (auto& job : queue_) {
    if (auto it = end_queued.find(job->id); it != end_queued.end()) {
      ended->push_back({std::move(job), it->second});
    } else if (auto a = admit_order.find(job->id); a != admit_order.end()) {
      (*admitted)[a->second] = std::move(job);
    } else {
      keep.push_back(std::move(job));
    }
  }
  queue_ = std::move(keep);
  queue_depth_ = static_cast<int64_t>(queue_.size());
  lock.unlock();

  EndRunning(plan.expired_running, DeadlineExceededError("deadline passed while generating"));
  EndRunning(plan.cancelled_running, CancelledError("cancelled by the caller"));
  return true;
}

void Engine::Run() {
  while (true) {
    std::vector<std::unique_ptr<Job>> admitted;
    std::vector<std::pair<std::unique_ptr<Job>, Status>> ended;
    const bool keep_going = TakeWork(&admitted, &ended);
    for (auto& [job, status] : ended) job->Fail(status);
    if (!keep_going) {
      FailAllRunning(UnavailableError("the server is shutting down"));
      return;
    }
    const TimePoint start = Clock::now();
    StepStats stats;
    Admit(std::move(admitted), &stats);
    if (runner_->num_rows() > 0) RunStep(&stats);
    RetireFinished();
    running_rows_ = runner_->num_rows();
    stats.seconds = std::chrono::duration<double>(Clock::now() - start).count();
    if (observer_ != nullptr && stats.rows > 0) observer_->OnStep(stats);
  }
}

}  // namespace softserve::core
