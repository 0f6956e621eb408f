// Internal to the engine (included by engine*.cc only): a job is one submitted request from the
// moment it is queued until its callback ran; a sequence is one decoding stream of a job (a
// generation has one, a generation ensemble one per prompt).
#ifndef SOFTSERVE_CORE_ENGINE_ENGINE_JOB_H_
#define SOFTSERVE_CORE_ENGINE_ENGINE_JOB_H_

#include <functional>
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
  std::vector<int64_t> slots;  // runner row of each decoder row
  bool finished = false;
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

  const RequestCommon& common() const;
  // The prompt that BatchPolicy::kSameKey groups by (0 for none).
  uint64_t BatchKey() const;
  bool cancelled() const { return common().cancel && common().cancel->load(); }
  // Runs the job's callback with `status` (not OK).
  void Fail(const Status& status);
  // Generation and generation-ensemble completion, once every sequence finished.
  void Complete(TimePoint now);
};

// Majority vote over member outputs (by `text_of` when set, else by ids); ties go to the
// earliest member among the most frequent outputs. Exposed for unit tests.
void VoteEnsemble(const std::function<std::string(const std::vector<int64_t>&)>& text_of,
                  EnsembleResult* result);
// Sums member scores per target and picks the best target. Exposed for unit tests.
void SumEnsembleScores(EnsembleResult* result);

}  // namespace softserve::core

#endif  // SOFTSERVE_CORE_ENGINE_ENGINE_JOB_H_
