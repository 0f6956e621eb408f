// ModelRunner: what the engine needs from a model, in plain types, so that the scheduler and
// engine can be tested with a fake runner and no weights. T5Runner is the real implementation.
//
// A runner holds a batch of decode rows [0, num_rows()) (each with its own encoder output and
// decoder history). The engine appends rows with Prefill (fresh, or recomputed from the tokens
// a preempted row had already fed), advances all of them with Step, removes finished ones with
// Compact and reorders beams with CopyHistory.
// Errors: every operation returns a Status (libtorch errors are caught inside: out of memory is
// ResourceExhausted, anything else Internal). After a failed Step, Compact or CopyHistory the
// rows' state is undefined and the engine calls Reset. The engine also catches exceptions that
// escape a runner (fault-injection tests throw on purpose).
// Not thread-safe: used only from the engine thread, except config() and Describe().
#ifndef SOFTSERVE_CORE_ENGINE_MODEL_RUNNER_H_
#define SOFTSERVE_CORE_ENGINE_MODEL_RUNNER_H_

#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "core/common/status.h"
#include "core/engine/request.h"
#include "core/model/t5_config.h"
#include "core/prompts/prompt.h"

namespace softserve::core {

// How the next token of a row is chosen from its logits.
enum class SelectKind {
  kArgmax,         // greedy
  kTopCandidates,  // beam search: the best `candidates` (token, log-prob) pairs
  kSample,         // temperature, top-k, top-p, then inverse-CDF at `uniform`; all sampled rows
                   // of a step together, on the device (sampler.h)
};

struct RowSelection {
  SelectKind kind = SelectKind::kArgmax;
  int candidates = 0;
  double temperature = 1.0;
  int top_k = 0;
  double top_p = 1.0;
  double uniform = 0.0;  // in [0, 1), drawn by the request's own generator
  bool suppress_eos = false;  // min_new_tokens not reached: eos gets -inf before choosing
  int top_logprobs = 0;       // kArgmax, kSample: also report this many most likely tokens
  // DecodingParams::repetition_penalty over the tokens of `history` (the row's decoder input so
  // far, start token first); history must outlive the Step call. 1 = off.
  double repetition_penalty = 1.0;
  const std::vector<int64_t>* history = nullptr;
};

struct RowOutput {
  int64_t token = -1;  // kArgmax, kSample
  float logprob = 0;   // log-softmax of the raw logits at `token`
  std::vector<TokenLogprob> candidates;  // kTopCandidates, best first
  std::vector<TokenLogprob> top;         // RowSelection::top_logprobs most likely, best first
};

struct PrefillItem {
  const std::vector<int64_t>* input_ids = nullptr;
  const Prompt* prompt = nullptr;  // may be null
  int copies = 1;                  // rows to create (beam search)
  // Recomputing preempted rows: for each copy, the decoder tokens the row had already fed
  // (starting with the decoder start token); its next Step continues from there exactly as if
  // it had never left. Null: fresh rows with no decoder history.
  const std::vector<std::vector<int64_t>>* histories = nullptr;
};

struct ScoreItem {
  const std::vector<int64_t>* input_ids = nullptr;
  const Prompt* prompt = nullptr;
  const std::vector<std::vector<int64_t>>* targets = nullptr;
};

struct ScoreOutput {
  std::vector<double> totals;
  std::vector<std::vector<float>> token_logprobs;
};

class ModelRunner {
 public:
  virtual ~ModelRunner() = default;

  virtual const T5Config& config() const = 0;
  // "cpu float32" etc., for model-info replies and logs.
  virtual std::string Describe() const = 0;
  virtual int64_t num_rows() const = 0;
  // Rows it can hold at once (its KV cache's slots); the engine admits no more.
  virtual int64_t row_capacity() const { return std::numeric_limits<int64_t>::max(); }

  // Encodes all items in one batched pass and appends item i's `copies` rows after the
  // existing rows, in item order; rows with histories get their decoder state recomputed in
  // one teacher-forced pass. On error nothing is appended.
  // REQUIRES: inputs validated (ids in vocab, prompt width == d_model, non-empty); histories,
  // when given, hold `copies` non-empty vectors.
  virtual Status Prefill(const std::vector<PrefillItem>& items) = 0;

  // Feeds tokens[r] to row r and selects each row's next token as selections[r] says, for the
  // first n = tokens.size() rows; rows n.. are not stepped and keep their state (a priority
  // step for some rows, see engine.h). REQUIRES: tokens.size() == selections.size() <=
  // num_rows(). On error the rows' state is undefined and the caller must Reset().
  virtual Status Step(const std::vector<int64_t>& tokens,
                      const std::vector<RowSelection>& selections,
                      std::vector<RowOutput>* outputs) = 0;

  // Afterwards row i is what row keep[i] was. REQUIRES: keep[i] == i or keep[i] >= keep.size().
  virtual Status Compact(const std::vector<int64_t>& keep) = 0;
  // Row dst[i] continues the decoder history of row src[i] (sources read first).
  virtual Status CopyHistory(const std::vector<int64_t>& dst, const std::vector<int64_t>& src) = 0;
  // Afterwards row i is what row order[i] was (whole rows: encoder and decoder state).
  // REQUIRES: `order` is a permutation of [0, num_rows()).
  virtual Status Permute(const std::vector<int64_t>& order) = 0;
  // Drops every row. On error the runner is unusable until a later Reset succeeds.
  virtual Status Reset() = 0;

  // Log-likelihood of each target given the input, teacher-forced, all items batched. The
  // engine sizes each call to EngineLimits::max_score_bytes using ScoringBytes (cost.h).
  virtual StatusOr<std::vector<ScoreOutput>> Score(const std::vector<ScoreItem>& items) = 0;

  // For each prompt row, the top_k vocabulary tokens by cosine similarity to the embedding table
  // (normalized once per runner, not per call).
  virtual StatusOr<ExplainResult> Explain(const Prompt& prompt, int top_k) = 0;
};

}  // namespace softserve::core

#endif  // SOFTSERVE_CORE_ENGINE_MODEL_RUNNER_H_
