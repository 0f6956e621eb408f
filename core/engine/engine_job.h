// Internal to the engine (included by engine*.cc only): a job is one submitted request from the
// moment it is queued until its callback ran; a sequence is one decoding stream of a job (a
// generation has one, a generation ensemble one per prompt). A preempted job keeps its
// sequences (their decoders hold every token so far) and waits in the queue without rows.
#ifndef SOFTSERVE_CORE_ENGINE_ENGINE_JOB_H_
#define SOFTSERVE_CORE_ENGINE_ENGINE_JOB_H_

#include <functional>
#include <utility>
#include <memory>
#include <string>
#include <vector>

#include "core/engine/decoding.h"
#include "core/engine/engine.h"

namespace softserve::core {

enum class JobKind { kGenerate, kScore, kEnsembleGenerate, kEnsembleScore, kExplain };

struct Engine::Sequence {
  Job* job = nullptr;
  int member = 0;  // ensemble member (prompt index)
  PromptPtr prompt;
  std::unique_ptr<SequenceDecoder> decoder;
  std::vector<int64_t> slots;  // runner row of each decoder row; empty while not in the runner
  bool finished = false;
};

// One target of one scoring member: the unit a scoring pass is made of.
struct Engine::ScoreUnit {
  int member = 0;
  int target = 0;
  int64_t bytes = 0;  // ScoringBytes of this unit
};

struct Engine::Job {
  uint64_t id = 0;
  JobKind kind = JobKind::kGenerate;
  TimePoint enqueued;
  TimePoint admitted;
  TimePoint first_token;
  bool has_first_token = false;
  int64_t rows = 0;
  int64_t kv_tokens = 0;
  int64_t prefill_tokens = 0;
  int64_t cost_tokens = 0;     // counted against the queue budgets (cost.h)
  uint64_t admit_order = 0;    // the scheduler preempts the most recently admitted first
  int preemptions = 0;         // times this job gave its rows back

  GenerationRequest generation;
  ScoreRequest score;
  EnsembleRequest ensemble;
  ExplainRequest explain;
  DoneCallback<GenerationResult> generation_done;
  DoneCallback<ScoreResult> score_done;
  DoneCallback<EnsembleResult> ensemble_done;
  DoneCallback<ExplainResult> explain_done;
  std::function<std::string(const std::vector<int64_t>&)> text_of;

  std::vector<std::unique_ptr<Sequence>> sequences;
  std::vector<GenerationResult> member_results;
  int unfinished = 0;

  // Scoring: the units left to score (in order) and the results so far, one per member.
  std::vector<ScoreUnit> units;
  size_t next_unit = 0;
  std::vector<ScoreResult> member_scores;

  const RequestCommon& common() const;
  // When the scheduler must end the job: its deadline, or earlier its time limit (generation;
  // the distant past once end_early is set).
  TimePoint EndBy() const;
  // Why a generation the scheduler ends before its deadline ends: kCancelled once end_early is
  // set, else kTimeLimit.
  FinishReason EarlyEndReason() const;
  // The prompt that BatchPolicy::kSameKey groups by (0 for none).
  uint64_t BatchKey() const;
  bool decoding() const { return kind == JobKind::kGenerate || kind == JobKind::kEnsembleGenerate; }
  // Prompts of the job's members (one for generation and scoring, K for ensembles).
  std::vector<PromptPtr> MemberPrompts() const;
  // The targets a scoring job scores (empty for others).
  const std::vector<std::vector<int64_t>>& Targets() const;
  bool cancelled() const { return common().cancel && common().cancel->load(); }
  // Runs the job's callback with `status` (not OK).
  void Fail(const Status& status);
  // Generation and generation-ensemble completion, once every sequence finished.
  void Complete(TimePoint now);
  // Scoring and scoring-ensemble completion, once every unit is scored.
  void CompleteScoring();
};

// Runs a callback the engine does not own; an exception it throws is swallowed, so that the
// engine thread survives a buggy caller (the callback has run: "exactly once" holds).
template <typename F, typename... Args>
void SafeCall(F& f, Args&&... args) {
  try {
    f(std::forward<Args>(args)...);
  } catch (...) {
  }
}

// A predicate the engine does not own; one that throws counts as false.
template <typename F, typename... Args>
bool SafeTest(F& f, Args&&... args) {
  try {
    return f(std::forward<Args>(args)...);
  } catch (...) {
    return false;
  }
}

// Calls a ModelRunner operation, turning an exception that escapes it into Internal.
template <typename F>
Status GuardRunner(const char* what, F f) {
  try {
    return f();
  } catch (const std::exception& e) {
    return InternalError(std::string(what) + " threw: " + e.what());
  } catch (...) {
    return InternalError(std::string(what) + " threw a non-standard exception");
  }
}

// Majority vote over member outputs (by `text_of` when set, else by ids); ties go to the
// earliest member among the most frequent outputs. Exposed for unit tests.
void VoteEnsemble(const std::function<std::string(const std::vector<int64_t>&)>& text_of,
                  EnsembleResult* result);
// Sums member scores per target and picks the best target. Exposed for unit tests.
void SumEnsembleScores(EnsembleResult* result);

}  // namespace softserve::core

#endif  // SOFTSERVE_CORE_ENGINE_ENGINE_JOB_H_
