// T5Runner: the ModelRunner over the real libtorch T5Model and its KvCache.
//
// Prefill embeds each item's prompt and ids, runs encoder passes over chunks of items
// (T5RunnerOptions::prefill_chunk_tokens) and one GEMM per chunk for every layer's cross
// keys/values, then appends rows to the cache; preempted rows get their
// decoder state back in one teacher-forced pass over their histories. Step runs one decoder
// step for all rows (any mix of prompts, lengths and positions) and selects tokens per row.
// Score computes log-probabilities over at most kScoreLogitRows positions at a time (never a
// full [targets, T, vocab] logits copy).
// libtorch errors (c10::Error) are caught here: out-of-memory becomes ResourceExhausted,
// anything else Internal. Not thread-safe: engine thread only.
#ifndef SOFTSERVE_CORE_ENGINE_T5_RUNNER_H_
#define SOFTSERVE_CORE_ENGINE_T5_RUNNER_H_

#include <memory>
#include <string>
#include <vector>

#include "core/engine/engine.h"
#include "core/engine/model_runner.h"
#include "core/engine/prompt_cache.h"
#include "core/model/kv_cache.h"
#include "core/model/t5_model.h"

namespace softserve::core {

struct T5RunnerOptions {
  // The KV cache's memory (kv_cache.h): a byte budget, or a fraction of the device's free
  // memory (CUDA only) measured when the runner is created; at most one of them. Neither: what
  // the engine's max_rows need at full length.
  int64_t kv_cache_bytes = 0;
  double kv_cache_memory_fraction = 0;
  // Bounds the prompts kept resident on the model's device (prompt_cache.h).
  int64_t prompt_cache_bytes = int64_t{256} << 20;
  // Prefill encodes consecutive items in chunks of at most this many padded encoder positions
  // (an item wider than that alone): on a CPU, products of a few hundred rows keep their inputs
  // in cache and run near the GEMM peak, while one pass over thousands of rows does not (the
  // t5-base encoder at batch 64 ran 25% faster in chunks of 672 positions, docs/BENCHMARKS.md).
  // 0: one pass for all items; -1: the device's default (CPU kCpuPrefillChunkTokens, else 0).
  int64_t prefill_chunk_tokens = -1;
};

inline constexpr int64_t kCpuPrefillChunkTokens = 672;

// Where Prefill ends the chunk that starts at items[first]: the largest end such that
// (end - first) x the widest item's encoder positions (prompt rows + ids) is at most
// `max_tokens`, and at least first + 1. max_tokens <= 0: items.size().
size_t PrefillChunkEnd(const std::vector<PrefillItem>& items, size_t first, int64_t max_tokens);

class T5Runner : public ModelRunner {
 public:
  // Plans the KV cache for `limits` (every row may reach max_prompt_rows + max_input_tokens
  // encoder and max_new_tokens decoder positions) within the options' budget, allocates it
  // whole, and lowers limits->max_rows to the rows it holds. Errors: InvalidArgument for a bad
  // budget, ResourceExhausted when the budget holds no row or the device lacks the memory,
  // Unavailable when a memory fraction is asked for where free memory cannot be measured.
  // The model is shared (read-only) so that several runners — one at a time, e.g. successive
  // benchmark configurations — can use one copy of the weights.
  static StatusOr<std::unique_ptr<T5Runner>> Create(std::shared_ptr<const T5Model> model,
                                                    const T5RunnerOptions& options,
                                                    EngineLimits* limits);
  // A runner with a cache of exactly `kv_shape`. Throws c10::Error if it cannot be allocated.
  T5Runner(std::shared_ptr<const T5Model> model, const KvCacheShape& kv_shape,
           int64_t prompt_cache_bytes = T5RunnerOptions().prompt_cache_bytes,
           int64_t prefill_chunk_tokens = T5RunnerOptions().prefill_chunk_tokens);

  const T5Config& config() const override { return model_->config(); }
  std::string Describe() const override;
  int64_t num_rows() const override { return cache_.size(); }
  int64_t row_capacity() const override { return cache_.shape().slots; }
  const KvCache& kv_cache() const { return cache_; }
  Status Prefill(const std::vector<PrefillItem>& items) override;
  Status Step(const std::vector<int64_t>& tokens, const std::vector<RowSelection>& selections,
              std::vector<RowOutput>* outputs) override;
  Status Compact(const std::vector<int64_t>& keep) override;
  Status CopyHistory(const std::vector<int64_t>& dst, const std::vector<int64_t>& src) override;
  Status Permute(const std::vector<int64_t>& order) override;
  Status Reset() override;
  StatusOr<std::vector<ScoreOutput>> Score(const std::vector<ScoreItem>& items) override;
  StatusOr<ExplainResult> Explain(const Prompt& prompt, int top_k) override;

  const T5Model& model() const { return *model_; }
  // Device -> host reads made so far (each would synchronize on CUDA). A decode step makes
  // exactly one, whatever its mix of greedy, sampled and beam rows: the chosen tokens, their
  // log-probabilities and the beam candidates come back in one tensor.
  int64_t device_to_host_transfers() const { return device_to_host_transfers_; }
  const PromptCacheStats& prompt_cache_stats() const { return prompt_cache_.stats(); }

 private:
  // Reads `t` to the host as float64 (exact for token ids), counting the transfer.
  std::vector<double> ReadBack(const at::Tensor& t);
  at::Tensor PromptTensor(const Prompt* prompt) const;
  EncoderBatch Embed(const std::vector<std::pair<const std::vector<int64_t>*, const Prompt*>>& rows) const;
  // Encodes items [first, end) in one pass and appends their rows to the cache.
  void EncodeIntoCache(const std::vector<PrefillItem>& items, size_t first, size_t end);
  // Drops rows appended by a Prefill that failed half-way.
  void TruncateTo(int64_t rows);
  // The embedding table with unit-norm rows, for Explain; computed on first use.
  const at::Tensor& NormalizedEmbedding();

  std::shared_ptr<const T5Model> model_;
  KvCache cache_;
  at::Tensor normalized_embedding_;
  mutable DevicePromptCache prompt_cache_;  // engine thread only, like the rest of the runner
  int64_t device_to_host_transfers_ = 0;
  int64_t prefill_chunk_tokens_;
};

}  // namespace softserve::core

#endif  // SOFTSERVE_CORE_ENGINE_T5_RUNNER_H_
