// T5Runner: the ModelRunner over the real libtorch T5Model and its KvCache.
//
// Prefill embeds each item's prompt and ids, runs one encoder pass for all items and one GEMM
// for every layer's cross keys/values, then appends rows to the cache; preempted rows get their
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

#include "core/engine/model_runner.h"
#include "core/engine/prompt_cache.h"
#include "core/model/kv_cache.h"
#include "core/model/t5_model.h"

namespace softserve::core {

class T5Runner : public ModelRunner {
 public:
  // The model is shared (read-only) so that several runners — one at a time, e.g. successive
  // benchmark configurations — can use one copy of the weights.
  // `prompt_cache_bytes` bounds the prompts kept resident on the model's device
  // (prompt_cache.h).
  explicit T5Runner(std::shared_ptr<const T5Model> model, int64_t prompt_cache_bytes = kDefaultPromptCacheBytes);
  static constexpr int64_t kDefaultPromptCacheBytes = int64_t{256} << 20;

  const T5Config& config() const override { return model_->config(); }
  std::string Describe() const override;
  int64_t num_rows() const override { return cache_.size(); }
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
  // Drops rows appended by a Prefill that failed half-way.
  void TruncateTo(int64_t rows);
  // The embedding table with unit-norm rows, for Explain; computed on first use.
  const at::Tensor& NormalizedEmbedding();

  std::shared_ptr<const T5Model> model_;
  KvCache cache_;
  at::Tensor normalized_embedding_;
  mutable DevicePromptCache prompt_cache_;  // engine thread only, like the rest of the runner
  int64_t device_to_host_transfers_ = 0;
};

}  // namespace softserve::core

#endif  // SOFTSERVE_CORE_ENGINE_T5_RUNNER_H_
