// Batched sampling on the device: Hugging Face's sampling warpers with per-row parameters, then
// the deterministic inverse-CDF draw, for every sampled row of a step at once (no per-row loop,
// no host round trip inside; the caller reads the chosen ids back with the rest of the step).
//
// Semantics are those of transformers' `generate(do_sample=True)` (logits_process.py), applied
// in its order to float32 scores [rows, vocab]:
//   1. temperature  s / T                              (T == 1: unchanged)
//   2. top-k        keep s >= the k-th largest value   (k = max(top_k, mtk); 0 = off; ties kept)
//   3. top-p        keep the smallest most-probable prefix whose mass reaches top_p, including
//                   the token that crosses it; the mtk most probable always stay (1 = off)
//   4. min-p        drop p < min_p * max(p); the mtk most probable stay          (0 = off)
//   5. typical-p    keep the most typical tokens (|-log p - H| ascending) until their mass
//                   reaches typical_p, ties with the last kept included; the mtk most typical
//                   stay                                                          (1 = off)
// Each stage sees the previous stage's output (its softmax is over the survivors). Filtered
// entries are exactly -inf. Draw: for u in [0, 1) the token is the smallest index i (vocabulary
// order) with cumsum(p)[i] > u * sum(p), in float64; a zero-probability token is never chosen.
// ../shared/testdata/sampling-warpers (tests/data/sampling-warpers) holds Hugging Face's outputs
// of every stage and the draws; tests/core/engine/sampler_test.cc checks all of them.
//
// Pure functions of tensors; any device. Parameters are per-row tensors on the scores' device:
// temperature, top_p, min_p, typical_p float32 [rows]; top_k, min_tokens_to_keep int64 [rows].
#ifndef SOFTSERVE_CORE_ENGINE_SAMPLER_H_
#define SOFTSERVE_CORE_ENGINE_SAMPLER_H_

#include <cstdint>
#include <vector>

#include <ATen/core/Tensor.h>

namespace softserve::core {

// One row's sampling parameters, as requests carry them.
struct SamplingParams {
  double temperature = 1.0;
  int64_t top_k = 0;
  double top_p = 1.0;
  double min_p = 0.0;
  double typical_p = 1.0;
  int64_t min_tokens_to_keep = 1;
};

// The per-row parameter tensors of a batch of rows, on `device`. top_k holds the effective k
// (max(top_k, mtk) capped at the vocabulary; the vocabulary size where top-k is off), top_p_cut
// float32(1 - top_p) evaluated in double as Python does; active_* say which rows run a stage.
struct SamplingBatch {
  at::Tensor temperature, top_k, top_p_cut, min_p, typical_p, min_tokens_to_keep;
  at::Tensor active_top_p, active_typical;  // bool [rows]
  int64_t max_top_k = 0;                    // largest effective k among rows running top-k
  int64_t max_keep = 1;                     // largest min_tokens_to_keep
  bool any_temperature = false, any_top_k = false, any_top_p = false, any_min_p = false,
       any_typical = false;
};
SamplingBatch MakeSamplingBatch(const std::vector<SamplingParams>& rows, int64_t vocab, const at::Device& device);

// The five stages, each [rows, vocab] float32 -> same; exposed for the reference tests.
at::Tensor ApplyTemperature(const at::Tensor& scores, const SamplingBatch& b);
at::Tensor ApplyTopK(const at::Tensor& scores, const SamplingBatch& b);
at::Tensor ApplyTopP(const at::Tensor& scores, const SamplingBatch& b);
at::Tensor ApplyMinP(const at::Tensor& scores, const SamplingBatch& b);
at::Tensor ApplyTypical(const at::Tensor& scores, const SamplingBatch& b);
// All five in order.
at::Tensor WarpScores(const at::Tensor& scores, const SamplingBatch& b);

// Inverse-CDF draw from probabilities [rows, vocab] with uniforms [rows] (float32 or float64,
// same device): int64 [rows].
at::Tensor DrawInverseCdf(const at::Tensor& probs, const at::Tensor& uniforms);

// Warp, softmax, draw: the tokens chosen for `scores` [rows, vocab] (int64 [rows]).
at::Tensor SampleTokens(const at::Tensor& scores, const SamplingBatch& b, const at::Tensor& uniforms);

}  // namespace softserve::core

#endif  // SOFTSERVE_CORE_ENGINE_SAMPLER_H_
