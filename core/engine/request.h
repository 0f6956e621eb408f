// The engine's plain request and result types. No libtorch, no protobuf: the server converts
// its messages into these, the offline generator and benchmarks build them directly.
#ifndef SOFTSERVE_CORE_ENGINE_REQUEST_H_
#define SOFTSERVE_CORE_ENGINE_REQUEST_H_

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/common/status.h"
#include "core/prompts/prompt.h"

namespace softserve::core {

using Clock = std::chrono::steady_clock;
using TimePoint = Clock::time_point;
inline TimePoint NoDeadline() { return TimePoint::max(); }

enum class DecodingMode { kGreedy, kBeam, kSample };

// When beam search stops, as Hugging Face's `early_stopping` defines it.
enum class EarlyStopping {
  kHeuristic,  // false: stop when no live beam can beat the worst finished hypothesis
  kTrue,       // true: stop as soon as num_beams hypotheses are finished
  kNever,      // "never": the canonical beam-search stopping rule
};

struct DecodingParams {
  DecodingMode mode = DecodingMode::kGreedy;
  int max_new_tokens = 20;
  // Eos cannot be chosen before this many new tokens (HF's min_new_tokens).
  int min_new_tokens = 0;
  // Beam search.
  int num_beams = 4;
  double length_penalty = 1.0;
  EarlyStopping early_stopping = EarlyStopping::kHeuristic;
  // Sampling (applied in this order: temperature, top-k, top-p), reproducible per seed.
  double temperature = 1.0;
  int top_k = 0;       // 0 = off
  double top_p = 1.0;  // 1 = off
  uint64_t seed = 0;
  // Report the log-probability of every generated token.
  bool return_logprobs = false;
};

// Set by the caller to stop a request; the engine frees its rows at the next step.
using CancelFlag = std::shared_ptr<std::atomic<bool>>;
inline CancelFlag NewCancelFlag() { return std::make_shared<std::atomic<bool>>(false); }

// Fields every request kind shares.
struct RequestCommon {
  std::string tenant;  // admission interleaves tenants fairly
  std::vector<int64_t> input_ids;  // used exactly as given (the caller appends eos if wanted)
  TimePoint deadline = NoDeadline();
  CancelFlag cancel;  // may be null
};

enum class FinishReason { kEos, kMaxTokens };
const char* FinishReasonName(FinishReason reason);

struct GenerationResult {
  // Generated ids after the decoder start token, including the final eos when one was produced.
  std::vector<int64_t> output_ids;
  std::vector<float> token_logprobs;  // one per output id, when requested
  // Beam: Hugging Face's sequence score (sum of log-probs / length^length_penalty).
  // Greedy and sampling: the sum of the output tokens' log-probabilities.
  double score = 0;
  FinishReason finish_reason = FinishReason::kMaxTokens;
  // Timing, for metrics.
  double queue_seconds = 0;
  double first_token_seconds = 0;  // from submission
  double total_seconds = 0;
};

// Streaming: called on the engine thread with each token as soon as it is chosen (greedy and
// sampling only). Must not block.
using TokenCallback = std::function<void(int64_t token, float logprob)>;

struct GenerationRequest {
  RequestCommon common;
  PromptPtr prompt;  // null: plain T5
  DecodingParams params;
  TokenCallback on_token;  // optional
};

struct ScoreRequest {
  RequestCommon common;
  PromptPtr prompt;  // null: plain T5
  // Candidate target sequences; each is scored as given (include eos to score it).
  std::vector<std::vector<int64_t>> targets;
};

struct ScoreResult {
  std::vector<double> total_logprobs;              // per target
  std::vector<std::vector<float>> token_logprobs;  // per target, per token
  int best = -1;                                   // index of the highest total
};

// Lester et al. §6: one input, K prompts, run as K rows of one batch.
struct EnsembleRequest {
  RequestCommon common;
  std::vector<PromptPtr> prompts;  // K >= 1, non-null
  DecodingParams params;           // generation, when targets is empty
  std::vector<std::vector<int64_t>> targets;  // scoring ensemble, when non-empty
};

struct EnsembleResult {
  std::vector<GenerationResult> members;  // generation: one per prompt
  std::vector<ScoreResult> member_scores;  // scoring: one per prompt
  // Generation: index of the member whose output won the majority vote (ties: earliest
  // prompt among the most frequent outputs), and how many members produced it.
  int winner = -1;
  int votes = 0;
  // Scoring: per-target sums over prompts, and the best target by that sum.
  std::vector<double> summed_logprobs;
  int best = -1;
};

// Lester et al. §7: nearest vocabulary tokens of each prompt position.
struct ExplainRequest {
  RequestCommon common;
  PromptPtr prompt;  // non-null
  int top_k = 5;
};

struct TokenSimilarity {
  int64_t token = 0;
  float similarity = 0;  // cosine
};

struct ExplainResult {
  std::vector<std::vector<TokenSimilarity>> positions;  // [rows][top_k], best first
};

template <typename T>
using DoneCallback = std::function<void(StatusOr<T>)>;

}  // namespace softserve::core

#endif  // SOFTSERVE_CORE_ENGINE_REQUEST_H_
