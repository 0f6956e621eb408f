#include "core/engine/sampler.h"

#include <algorithm>
#include <limits>

#include <ATen/ATen.h>

#include "core/model/host_to_device.h"

namespace softserve::core {
namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

// [rows, vocab] bool: position j < n[r] (n: int64 [rows]).
at::Tensor FirstN(const at::Tensor& n, int64_t vocab) {
  return at::arange(vocab, n.options()).unsqueeze(0) < n.unsqueeze(1);
}

// Back from sorted order: out[r, order[r, j]] = mask[r, j] ([rows, vocab]; order may cover
// only the first columns of the sorted order, as topk's indices do).
at::Tensor Unsort(const at::Tensor& mask, const at::Tensor& order, int64_t vocab) {
  return at::zeros({mask.size(0), vocab}, mask.options()).scatter(1, order, mask);
}

}  // namespace

SamplingBatch MakeSamplingBatch(const std::vector<SamplingParams>& rows, int64_t vocab, const at::Device& device) {
  // All parameters go to the device in two transfers: one float32 and one int64 block, row-major
  // by parameter.
  const size_t n = rows.size();
  std::vector<float> floats(4 * n);     // temperature, top_p_cut, min_p, typical_p
  std::vector<int64_t> ints(4 * n);     // top_k, min_tokens_to_keep, top-p on, typical on
  SamplingBatch b;
  for (size_t i = 0; i < n; ++i) {
    const SamplingParams& r = rows[i];
    const int64_t k = r.top_k > 0 ? std::min(std::max(r.top_k, r.min_tokens_to_keep), vocab) : vocab;
    const int64_t keep = std::max<int64_t>(1, r.min_tokens_to_keep);
    floats[i] = static_cast<float>(r.temperature);
    floats[n + i] = static_cast<float>(1.0 - r.top_p);  // Python: 1 - top_p in double, then float32
    floats[2 * n + i] = static_cast<float>(r.min_p);
    floats[3 * n + i] = static_cast<float>(r.typical_p);
    ints[i] = k;
    ints[n + i] = keep;
    ints[2 * n + i] = r.top_p < 1.0;
    ints[3 * n + i] = r.typical_p < 1.0;
    b.any_temperature |= r.temperature != 1.0;
    if (r.top_k > 0 && k < vocab) {
      b.any_top_k = true;
      b.max_top_k = std::max(b.max_top_k, k);
    }
    b.any_top_p |= r.top_p < 1.0;
    b.any_min_p |= r.min_p > 0.0;
    b.any_typical |= r.typical_p < 1.0;
    b.max_keep = std::max(b.max_keep, keep);
  }
  const at::Tensor f = ToDevice(floats, device).view({4, static_cast<int64_t>(n)});
  const at::Tensor l = ToDevice(ints, device).view({4, static_cast<int64_t>(n)});
  b.temperature = f[0];
  b.top_p_cut = f[1];
  b.min_p = f[2];
  b.typical_p = f[3];
  b.top_k = l[0];
  b.min_tokens_to_keep = l[1];
  b.active_top_p = l[2].to(at::kBool);
  b.active_typical = l[3].to(at::kBool);
  return b;
}

at::Tensor ApplyTemperature(const at::Tensor& scores, const SamplingBatch& b) {
  if (!b.any_temperature) return scores;
  return scores / b.temperature.unsqueeze(1);  // float32 / float32(T); T == 1 leaves a row as is
}

at::Tensor ApplyTopK(const at::Tensor& scores, const SamplingBatch& b) {
  if (!b.any_top_k) return scores;
  const at::Tensor top = std::get<0>(at::topk(scores, b.max_top_k, /*dim=*/1));  // descending
  // Rows with top-k off carry k = vocab: their threshold is their own minimum (nothing is below).
  const at::Tensor k = b.top_k.clamp_max(b.max_top_k);
  at::Tensor kth = top.gather(1, (k - 1).unsqueeze(1));
  kth = at::where(b.top_k.unsqueeze(1) > b.max_top_k, std::get<0>(scores.min(1, /*keepdim=*/true)), kth);
  return scores.masked_fill(scores < kth, kNegInf);
}

at::Tensor ApplyTopP(const at::Tensor& scores, const SamplingBatch& b) {
  if (!b.any_top_p) return scores;
  const int64_t vocab = scores.size(1);
  auto [sorted, order] = at::sort(scores, /*dim=*/1, /*descending=*/false);
  const at::Tensor cumulative = at::softmax(sorted, 1).cumsum(1);
  at::Tensor remove = cumulative <= b.top_p_cut.unsqueeze(1);
  remove = remove & FirstN(vocab - b.min_tokens_to_keep, vocab);  // the mtk most probable stay
  remove = remove & b.active_top_p.unsqueeze(1);
  return scores.masked_fill(Unsort(remove, order, vocab), kNegInf);
}

at::Tensor ApplyMinP(const at::Tensor& scores, const SamplingBatch& b) {
  if (!b.any_min_p) return scores;
  const int64_t vocab = scores.size(1);
  const at::Tensor probs = at::softmax(scores, 1);
  const at::Tensor top = std::get<0>(probs.max(1, /*keepdim=*/true));
  at::Tensor remove = probs < b.min_p.unsqueeze(1) * top;
  const int64_t keep = std::min(b.max_keep, vocab);
  const at::Tensor most_probable = std::get<1>(at::topk(probs, keep, /*dim=*/1));
  const at::Tensor protect = Unsort(FirstN(b.min_tokens_to_keep, keep), most_probable, vocab);
  return scores.masked_fill(remove & ~protect, kNegInf);
}

at::Tensor ApplyTypical(const at::Tensor& scores, const SamplingBatch& b) {
  if (!b.any_typical) return scores;
  const int64_t vocab = scores.size(1);
  const at::Tensor logp = at::log_softmax(scores, 1);
  const at::Tensor p = logp.exp();
  const at::Tensor entropy = -at::nansum(logp * p, {1}, /*keepdim=*/true);
  const at::Tensor typicality = (-logp - entropy).abs();
  auto [sorted, order] = at::sort(typicality, /*dim=*/1, /*descending=*/false);
  const at::Tensor cumulative = at::softmax(scores.gather(1, order), 1).cumsum(1);
  const at::Tensor last = (cumulative < b.typical_p.unsqueeze(1)).sum(1).clamp_max(vocab - 1);
  at::Tensor remove = sorted > sorted.gather(1, last.unsqueeze(1));
  remove = remove & ~FirstN(b.min_tokens_to_keep, vocab);  // the most typical stay
  remove = remove & b.active_typical.unsqueeze(1);
  return scores.masked_fill(Unsort(remove, order, vocab), kNegInf);
}

at::Tensor WarpScores(const at::Tensor& scores, const SamplingBatch& b) {
  return ApplyTypical(ApplyMinP(ApplyTopP(ApplyTopK(ApplyTemperature(scores, b), b), b), b), b);
}

at::Tensor DrawInverseCdf(const at::Tensor& probs, const at::Tensor& uniforms) {
  const int64_t vocab = probs.size(1);
  const at::Tensor cdf = probs.to(at::kDouble).cumsum(1);
  const at::Tensor target = uniforms.to(at::kDouble).unsqueeze(1) * cdf.select(1, vocab - 1).unsqueeze(1);
  at::Tensor token = (cdf <= target).sum(1).clamp_max(vocab - 1);
  // Rounding at the top of the CDF must never land on a filtered token.
  const at::Tensor zero = probs.gather(1, token.unsqueeze(1)).squeeze(1) <= 0;
  return at::where(zero, probs.argmax(1), token);
}

at::Tensor SampleTokens(const at::Tensor& scores, const SamplingBatch& b, const at::Tensor& uniforms) {
  return DrawInverseCdf(at::softmax(WarpScores(scores, b), 1), uniforms);
}

}  // namespace softserve::core
