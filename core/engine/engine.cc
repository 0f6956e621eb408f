// Engine: submission, validation, queue budgets, lifecycle and the loop. The per-step work is
// in engine_step.cc (admission, decode step, retiring rows), engine_scoring.cc (scoring passes)
// and engine_recovery.cc (preemption, failure isolation).
#include "core/engine/engine.h"

#include <algorithm>
#include <cmath>

#include "core/engine/cost.h"
#include "core/engine/engine_job.h"

namespace softserve::core {
namespace {

std::string Str(int64_t v) { return std::to_string(v); }

std::string MiB(int64_t bytes) { return std::to_string((bytes + (1 << 20) - 1) >> 20) + " MiB"; }

int64_t PromptRows(const PromptPtr& p) { return p ? p->rows() : 0; }

int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch()).count();
}

// The runner's KV cache bounds the rows in the batch.
EngineLimits WithinRunner(EngineLimits limits, const ModelRunner& runner) {
  limits.max_rows = std::min(limits.max_rows, runner.row_capacity());
  return limits;
}

}  // namespace

Engine::Engine(std::unique_ptr<ModelRunner> runner, EngineLimits limits, EngineObserver* observer)
    : runner_(std::move(runner)),
      config_(runner_->config()),
      limits_(WithinRunner(limits, *runner_)),
      scheduler_limits_{limits_.max_rows, limits.max_tokens_in_flight, limits.max_prefill_tokens,
                        limits.batch_policy, limits.preemption,
                        std::chrono::milliseconds(limits.tenant_idle_grace_ms)},
      observer_(observer),
      description_(runner_->Describe()) {
  thread_ = std::thread([this] { Run(); });
}

Engine::~Engine() { Shutdown(Clock::now()); }

double Engine::busy_seconds() const {
  const int64_t since = busy_since_ns_.load();
  return since == 0 ? 0.0 : static_cast<double>(NowNs() - since) * 1e-9;
}

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
  if (!(p.repetition_penalty > 0) || !std::isfinite(p.repetition_penalty)) {
    return InvalidArgumentError("repetition_penalty must be a finite number > 0 (1 = off)");
  }
  if (p.top_logprobs < 0 || p.top_logprobs > limits_.max_top_logprobs) {
    return InvalidArgumentError("top_logprobs = " + Str(p.top_logprobs) + "; allowed 0.." + Str(limits_.max_top_logprobs));
  }
  if (p.top_logprobs > 0 && p.mode == DecodingMode::kBeam) {
    return InvalidArgumentError("top_logprobs needs greedy or sampling (beam search keeps candidates per beam, not per token)");
  }
  return OkStatus();
}

Status Engine::ValidateDecoding(const DecodingParams& params, bool streaming, bool stop_callback) const {
  SOFTSERVE_RETURN_IF_ERROR(ValidateParams(params, streaming));
  if (stop_callback && params.mode == DecodingMode::kBeam) {
    return InvalidArgumentError("stop sequences need greedy or sampling: beam search only knows its output when it ends");
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

Status Engine::ValidateScoringMemory(const std::vector<PromptPtr>& prompts, int64_t input_tokens,
                                     const std::vector<std::vector<int64_t>>& targets) const {
  for (const PromptPtr& p : prompts) {
    const int64_t s = PromptRows(p) + input_tokens;
    for (size_t t = 0; t < targets.size(); ++t) {
      const int64_t bytes = ScoringBytes(config_, s, static_cast<int64_t>(targets[t].size()));
      if (bytes > limits_.max_score_bytes) {
        return InvalidArgumentError("scoring target " + Str(t) + " (" + Str(targets[t].size()) +
                                    " tokens) against " + Str(s) + " input positions needs " + MiB(bytes) +
                                    " of working memory, over the per-pass limit of " +
                                    MiB(limits_.max_score_bytes) + " (max_score_bytes); shorten the input or target");
      }
    }
  }
  return OkStatus();
}

void Engine::Submit(GenerationRequest request, DoneCallback<GenerationResult> done) {
  const PromptPtr& prompt = request.prompt;
  Status s = ValidateCommon(request.common, prompt != nullptr);
  if (s.ok()) s = ValidatePrompt(prompt);
  if (s.ok()) s = ValidateDecoding(request.params, request.on_token != nullptr, request.stop != nullptr);
  if (!s.ok()) return done(s);
  auto job = std::make_unique<Job>();
  job->kind = JobKind::kGenerate;
  const int64_t input = PromptRows(prompt) + static_cast<int64_t>(request.common.input_ids.size());
  job->rows = GenerationRows(request.params);
  job->prefill_tokens = input;
  job->kv_tokens = job->rows * (input + request.params.max_new_tokens);
  job->cost_tokens = job->kv_tokens;
  job->generation = std::move(request);
  job->generation_done = std::move(done);
  Enqueue(std::move(job));
}

namespace {

// The scoring units of a job: every target of every member, with its working memory.
void BuildUnits(const T5Config& config, const std::vector<PromptPtr>& prompts, int64_t input_tokens,
                const std::vector<std::vector<int64_t>>& targets, std::vector<ScoreResult>* results,
                std::vector<int64_t>* prompt_rows, std::function<void(int, int, int64_t)> add) {
  results->resize(prompts.size());
  for (size_t m = 0; m < prompts.size(); ++m) {
    const int64_t s = PromptRows(prompts[m]) + input_tokens;
    prompt_rows->push_back(PromptRows(prompts[m]));
    (*results)[m].total_logprobs.assign(targets.size(), 0.0);
    (*results)[m].token_logprobs.resize(targets.size());
    for (size_t t = 0; t < targets.size(); ++t) {
      add(static_cast<int>(m), static_cast<int>(t), ScoringBytes(config, s, static_cast<int64_t>(targets[t].size())));
    }
  }
}

}  // namespace

void Engine::SubmitScore(ScoreRequest request, DoneCallback<ScoreResult> done) {
  Status s = ValidateCommon(request.common, request.prompt != nullptr);
  if (s.ok()) s = ValidatePrompt(request.prompt);
  if (s.ok()) s = ValidateTargets(request.targets);
  const int64_t input = static_cast<int64_t>(request.common.input_ids.size());
  if (s.ok()) s = ValidateScoringMemory({request.prompt}, input, request.targets);
  if (!s.ok()) return done(s);
  auto job = std::make_unique<Job>();
  job->kind = JobKind::kScore;
  std::vector<int64_t> prompt_rows;
  BuildUnits(config_, {request.prompt}, input, request.targets, &job->member_scores, &prompt_rows,
             [&](int m, int t, int64_t bytes) { job->units.push_back({m, t, bytes}); });
  job->cost_tokens = ScoringCostTokens(prompt_rows, input, request.targets);
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
  const int64_t input = static_cast<int64_t>(request.common.input_ids.size());
  if (s.ok()) s = scoring ? ValidateTargets(request.targets) : ValidateParams(request.params, false);
  if (s.ok() && scoring) s = ValidateScoringMemory(request.prompts, input, request.targets);
  if (!s.ok()) return done(s);
  auto job = std::make_unique<Job>();
  job->kind = scoring ? JobKind::kEnsembleScore : JobKind::kEnsembleGenerate;
  if (scoring) {
    std::vector<int64_t> prompt_rows;
    BuildUnits(config_, request.prompts, input, request.targets, &job->member_scores, &prompt_rows,
               [&](int m, int t, int64_t bytes) { job->units.push_back({m, t, bytes}); });
    job->cost_tokens = ScoringCostTokens(prompt_rows, input, request.targets);
  } else {
    for (const PromptPtr& p : request.prompts) {
      const int64_t rows = GenerationRows(request.params);
      job->rows += rows;
      job->prefill_tokens += p->rows() + input;
      job->kv_tokens += GenerationCostTokens(p->rows(), input, request.params);
    }
    job->cost_tokens = job->kv_tokens;
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
  job->cost_tokens = request.prompt->rows();
  job->explain = std::move(request);
  job->explain_done = std::move(done);
  Enqueue(std::move(job));
}

Status Engine::CheckQueueBudget(const Job& job) const {
  const std::string& tenant = job.common().tenant;
  if (static_cast<int64_t>(queue_.size()) >= limits_.max_queue) {
    return ResourceExhaustedError("the request queue is full (" + Str(queue_.size()) +
                                  " waiting, max_queue); retry later");
  }
  if (queue_tokens_ + job.cost_tokens > limits_.max_queue_tokens) {
    return ResourceExhaustedError("the queue holds " + Str(queue_tokens_) + " tokens of work; this request adds " +
                                  Str(job.cost_tokens) + ", over the server's limit of " +
                                  Str(limits_.max_queue_tokens) + " (max_queue_tokens); retry later");
  }
  auto it = tenant_queue_tokens_.find(tenant);
  const int64_t mine = it == tenant_queue_tokens_.end() ? 0 : it->second;
  if (mine + job.cost_tokens > limits_.max_tenant_queue_tokens) {
    return ResourceExhaustedError("your requests already queued hold " + Str(mine) + " tokens of work; this one adds " +
                                  Str(job.cost_tokens) + ", over the per-tenant limit of " +
                                  Str(limits_.max_tenant_queue_tokens) +
                                  " (max_tenant_queue_tokens); wait for earlier requests to finish");
  }
  return OkStatus();
}

void Engine::Enqueue(JobPtr job) {
  if (job->rows > limits_.max_rows || job->kv_tokens > limits_.max_tokens_in_flight) {
    return job->Fail(InvalidArgumentError(
        "the request needs " + Str(job->rows) + " rows and " + Str(job->kv_tokens) +
        " KV tokens; the server allows " + Str(limits_.max_rows) + " rows and " +
        Str(limits_.max_tokens_in_flight) + " tokens in flight"));
  }
  if (job->cost_tokens > limits_.max_tenant_queue_tokens || job->cost_tokens > limits_.max_queue_tokens) {
    return job->Fail(InvalidArgumentError(
        "the request costs " + Str(job->cost_tokens) + " tokens of work, more than a tenant may queue (" +
        Str(std::min(limits_.max_tenant_queue_tokens, limits_.max_queue_tokens)) + ", max_tenant_queue_tokens)"));
  }
  Status s;
  {
    MutexLock lock(&mu_);
    if (stopping_) {
      s = UnavailableError("the server is shutting down");
    } else {
      s = CheckQueueBudget(*job);
    }
    if (s.ok()) {
      job->id = next_id_++;
      job->enqueued = Clock::now();
      queue_tokens_ += job->cost_tokens;
      tenant_queue_tokens_[job->common().tenant] += job->cost_tokens;
      queue_.push_back(std::move(job));
      queue_depth_ = static_cast<int64_t>(queue_.size());
    }
  }
  if (!s.ok()) return job->Fail(s);  // never under mu_
  cv_.NotifyOne();
}

void Engine::PushFront(std::vector<JobPtr> jobs) {
  if (jobs.empty()) return;
  MutexLock lock(&mu_);
  for (auto it = jobs.rbegin(); it != jobs.rend(); ++it) {
    queue_tokens_ += (*it)->cost_tokens;
    tenant_queue_tokens_[(*it)->common().tenant] += (*it)->cost_tokens;
    queue_.push_front(std::move(*it));
  }
  queue_depth_ = static_cast<int64_t>(queue_.size());
}

void Engine::Shutdown(TimePoint grace_deadline) {
  {
    MutexLock lock(&mu_);
    if (!stopping_) {
      stopping_ = true;
      grace_deadline_ = grace_deadline;
    } else {
      grace_deadline_ = std::min(grace_deadline_, grace_deadline);
    }
  }
  cv_.NotifyAll();
  MutexLock join_lock(&join_mu_);
  if (thread_.joinable()) thread_.join();
}

std::vector<RunningWork> Engine::RunningSnapshot() const {
  std::vector<RunningWork> running;
  for (const auto& [id, job] : running_) {
    running.push_back({id, job->common().tenant, job->BatchKey(), job->rows, job->kv_tokens,
                       job->EndBy(), job->cancelled(), job->admit_order, true});
  }
  for (const auto& [id, job] : scoring_) {
    running.push_back({id, job->common().tenant, job->BatchKey(), 0, 0, job->common().deadline,
                       job->cancelled(), job->admit_order, false});
  }
  return running;
}

std::vector<TenantActivity> Engine::RecentTenants(TimePoint now) {
  std::vector<TenantActivity> recent;
  for (auto it = last_active_.begin(); it != last_active_.end();) {
    if (now - it->second >= scheduler_limits_.tenant_idle_grace) {
      it = last_active_.erase(it);
    } else {
      recent.push_back({it->first, it->second});
      ++it;
    }
  }
  return recent;
}

bool Engine::TakeWork(std::vector<JobPtr>* admitted, std::vector<std::pair<JobPtr, Status>>* ended,
                      StepPlan* plan, bool* priority_only) {
  const std::vector<RunningWork> running = RunningSnapshot();
  const bool idle = running_.empty() && scoring_.empty();
  MutexLock lock(&mu_);
  while (queue_.empty() && idle && !stopping_ && background_.empty()) {
    busy_since_ns_ = 0;
    cv_.Wait(&mu_);
  }
  busy_since_ns_ = NowNs();
  const TimePoint now = Clock::now();
  if (stopping_ && (now >= grace_deadline_ || (queue_.empty() && idle))) {
    for (auto& job : queue_) ended->push_back({std::move(job), UnavailableError("the server is shutting down")});
    queue_.clear();
    queue_tokens_ = 0;
    tenant_queue_tokens_.clear();
    queue_depth_ = 0;
    return false;
  }
  std::vector<PendingWork> pending;
  for (const auto& job : queue_) {
    // A priority iteration admits nothing of the tenants over their share.
    if (*priority_only && over_share_tenants_.count(job->common().tenant) != 0) continue;
    pending.push_back({job->id, job->common().tenant, job->rows, job->kv_tokens, job->prefill_tokens,
                       job->EndBy(), job->cancelled(), job->BatchKey()});
  }
  if (*priority_only && pending.empty() && priority_tenants_.empty()) {
    // Nobody to give priority to: a full iteration (it must not spin on filtered work).
    *priority_only = false;
    for (const auto& job : queue_) {
      pending.push_back({job->id, job->common().tenant, job->rows, job->kv_tokens, job->prefill_tokens,
                         job->EndBy(), job->cancelled(), job->BatchKey()});
    }
  }
  *plan = PlanStep(pending, running, scheduler_limits_, now, tenant_cursor_, RecentTenants(now));
  tenant_cursor_ = plan->tenant_cursor;
  std::map<uint64_t, Status> end_queued;
  for (uint64_t id : plan->expired_queued) end_queued[id] = DeadlineExceededError("deadline passed while queued");
  for (const auto& job : queue_) {
    auto e = end_queued.find(job->id);
    if (e != end_queued.end() && e->second.code() == StatusCode::kDeadlineExceeded && job->common().deadline > now) {
      e->second = OkStatus();  // its time limit passed (or end_early was set), not its deadline
    }
  }
  for (uint64_t id : plan->cancelled_queued) end_queued[id] = CancelledError("cancelled while queued");
  std::map<uint64_t, size_t> admit_order;
  for (size_t i = 0; i < plan->admit.size(); ++i) admit_order[plan->admit[i]] = i;
  admitted->resize(plan->admit.size());
  std::deque<JobPtr> keep;
  for (auto& job : queue_) {
    auto end = end_queued.find(job->id);
    auto admit = admit_order.find(job->id);
    if (end == end_queued.end() && admit == admit_order.end()) {
      keep.push_back(std::move(job));
      continue;
    }
    queue_tokens_ -= job->cost_tokens;
    if ((tenant_queue_tokens_[job->common().tenant] -= job->cost_tokens) <= 0) {
      tenant_queue_tokens_.erase(job->common().tenant);
    }
    if (end != end_queued.end()) ended->push_back({std::move(job), end->second});
    else (*admitted)[admit->second] = std::move(job);
  }
  queue_ = std::move(keep);
  queue_depth_ = static_cast<int64_t>(queue_.size());
  return true;
}

bool Engine::Iterate() {
  std::vector<JobPtr> admitted;
  std::vector<std::pair<JobPtr, Status>> ended;
  StepPlan plan;
  if (runner_broken_ && !ResetRunner().ok()) {
    FailAll(InternalError("the model runner cannot be reset; failing every request"));
  }
  bool want_priority = limits_.priority_steps && !over_share_tenants_.empty() && priority_credit_ > 0;
  const bool keep_going = TakeWork(&admitted, &ended, &plan, &want_priority);
  for (auto& [job, status] : ended) {
    if (status.ok()) EndQueuedEarly(std::move(job));
    else job->Fail(status);
  }
  if (!keep_going) {
    FailAll(UnavailableError("the server is shutting down"));
    FinishBackground(UnavailableError("the server is shutting down"));
    return false;
  }
  const TimePoint start = Clock::now();
  StepStats stats;
  std::vector<uint64_t> expired, ended_early;
  for (uint64_t id : plan.expired_running) {
    auto it = running_.find(id);
    const bool early = it != running_.end() && it->second->common().deadline > start;
    (early ? ended_early : expired).push_back(id);
  }
  Status s = EndRunning(expired, DeadlineExceededError("deadline passed while generating"));
  if (s.ok()) s = EndRunningEarly(ended_early);
  if (s.ok()) s = EndRunning(plan.cancelled_running, CancelledError("cancelled by the caller"));
  if (s.ok()) s = Preempt(plan.preempt);
  stats.preempted_jobs = static_cast<int64_t>(plan.preempt.size());
  if (!s.ok()) {
    PushFront(std::move(admitted));  // planned against rows that are gone: plan them again
    RecoverFromFailure(s);
    return true;
  }
  // A priority iteration did not plan the over-share tenants' queued work: they stay over share
  // until a full iteration plans everything again (when the credit runs out).
  std::set<std::string> over(plan.over_share_tenants.begin(), plan.over_share_tenants.end());
  if (want_priority) over.insert(over_share_tenants_.begin(), over_share_tenants_.end());
  over_share_tenants_ = std::move(over);
  priority_tenants_.clear();
  for (const std::string& t : plan.priority_tenants) {
    if (over_share_tenants_.count(t) == 0) priority_tenants_.insert(t);
  }
  Admit(std::move(admitted), &stats);
  RunScoringPass(&stats);
  bool priority_step = false;
  if (runner_->num_rows() > 0) {
    int64_t rows = runner_->num_rows();
    priority_step = want_priority && !priority_tenants_.empty();
    if (priority_step) s = ArrangePriorityRows(&rows);
    priority_step = priority_step && rows > 0 && rows < runner_->num_rows();
    if (s.ok() && rows == 0) rows = runner_->num_rows();
    if (s.ok()) s = RunStep(&stats, rows);
    if (s.ok()) s = RetireFinished();
    if (!s.ok()) RecoverFromFailure(s);
  }
  PublishRows();
  stats.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  AccountStep(priority_step, stats.seconds);
  if (stats.rows > 0 || stats.scored_targets > 0 || stats.prefill_rows > 0) EarnBackgroundTime(stats.seconds);
  if (observer_ != nullptr && (stats.rows > 0 || stats.scored_targets > 0)) observer_->OnStep(stats);
  MaybeRunBackground();
  return true;
}

void Engine::Run() {
  for (bool keep_going = true; keep_going; ++iterations_) {
    try {
      keep_going = Iterate();
    } catch (const std::exception& e) {
      RecoverFromFailure(InternalError(std::string("the engine step threw: ") + e.what()));
    } catch (...) {
      RecoverFromFailure(InternalError("the engine step threw a non-standard exception"));
    }
  }
  busy_since_ns_ = 0;
}

}  // namespace softserve::core
