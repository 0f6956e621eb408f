#include "core/engine/sampler.h"

#include <algorithm>
#include <limits>

#include <ATen/ATen.h>

#include "core/model/host_to_device.h"

namespace softserve::core {
namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

at::Tensor FloatRow(const std::vector<float>& v, const at::Device& device) {
  return ToDevice(v, device);
}

at::Tensor LongRow(const std::vector<int64_t>& v, const at::Device& device) {
  return ToDevice(v, device);
}

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
  std::vector<float> temperature, cut, min_p, typical;
  std::vector<int64_t> top_k, keep;
  std::vector<uint8_t> top_p_on, typical_on;
  SamplingBatch b;
  for (const SamplingParams& r : rows) {
    const int64_t k = r.top_k > 0 ? std::min(std::max(r.top_k, r.min_tokens_to_keep), vocab) : vocab;
    temperature.push_back(static_cast<float>(r.temperature));
    top_k.push_back(k);
    cut.push_back(static_cast<float>(1.0 - r.top_p));  // Python: 1 - top_p in double, then float32
    min_p.push_back(static_cast<float>(r.min_p));
    typical.push_back(static_cast<float>(r.typical_p));
    keep.push_back(std::max<int64_t>(1, r.min_tokens_to_keep));
    top_p_on.push_back(r.top_p < 1.0);
    typical_on.push_back(r.typical_p < 1.0);
    b.any_temperature |= r.temperature != 1.0;
    if (r.top_k > 0 && k < vocab) {
      b.any_top_k = true;
      b.max_top_k = std::max(b.max_top_k, k);
    }
    b.any_top_p |= r.top_p < 1.0;
    b.any_min_p |= r.min_p > 0.0;
    b.any_typical |= r.typical_p < 1.0;
    b.max_keep = std::max(b.max_keep, keep.back());
  }
  b.temperature = FloatRow(temperature, device);
  b.top_k = LongRow(top_k, device);
  b.top_p_cut = FloatRow(cut, device);
  b.min_p = FloatRow(min_p, device);
  b.typical_p = FloatRow(typical, device);
  b.min_tokens_to_keep = LongRow(keep, device);
  b.active_top_p = ToDevice(std::vector<int64_t>(top_p_on.begin(), top_p_on.end()), device).to(at::kBool);
  b.active_typical =
      ToDevice(std::vector<int64_t>(typical_on.begin(), typical_on.end()), device).to(at::kBool);
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
