#include "core/model/t5_model.h"

#include <ATen/ATen.h>
#include <c10/core/GradMode.h>
#include <c10/core/InferenceMode.h>
#include <torch/version.h>

#include <array>
#include <atomic>
#include <cmath>
#include <cstring>

#include "core/common/file_util.h"
#include "core/model/cpu_gemm.h"
#include "core/model/cpu_norm.h"
#include "core/model/cpu_attention.h"
#include "core/model/host_to_device.h"
#include "core/model/tensor_convert.h"

#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 1)
#define SOFTSERVE_HAVE_SDPA 1
#else
#define SOFTSERVE_HAVE_SDPA 0
#endif

namespace softserve::core {
namespace {

using at::indexing::Slice;

// Training (a soft prompt that requires grad): only libtorch's differentiable ops.
bool Recording(const at::Tensor& x) { return x.requires_grad() && at::GradMode::is_enabled(); }

// Dropout (t5_model.h) of x; x itself for no dropout. Callers pass `d` only for a pass that
// records (the decoder's first sublayers do not depend on the prompt, yet HF drops there too).
at::Tensor Drop(const at::Tensor& x, const Dropout* d) {
  if (d == nullptr || d->p <= 0) return x;
  if (d->p >= 1) return x * 0;
  at::Tensor keep = at::empty(x.sizes(), x.options().requires_grad(false).device(at::kCPU));
  if (x.device().is_cpu() && d->generator.defined()) {
    keep.bernoulli_(1 - d->p, d->generator);
  } else {
    keep = at::empty_like(x, x.options().requires_grad(false)).bernoulli_(1 - d->p);
  }
  return x * keep.to(x.device()) / (1 - d->p);
}

at::Tensor RmsNorm(const at::Tensor& x, const at::Tensor& weight, double eps) {
  if (!Recording(x) && CanUseCpuRmsNorm(x, weight)) return CpuRmsNorm(x, weight, eps);
  // Variance in float32 even for bf16 activations, as HF's T5LayerNorm.
  at::Tensor xf = x.to(at::kFloat);
  at::Tensor y = xf * at::rsqrt(xf.pow(2).mean(-1, /*keepdim=*/true) + eps);
  return weight * y.to(weight.scalar_type());
}

// x @ w: the packed kernel (cpu_packed_gemm.h), oneDNN or libtorch on the CPU (cpu_gemm.h),
// libtorch elsewhere.
at::Tensor Linear(const at::Tensor& x, const Projection& w) {
  if (Recording(x)) return w.packed.defined() ? PackedMatmulWithGrad(x, w.packed) : at::matmul(x, w.wt);
  if (w.packed.defined()) return PackedMatmul(x, w.packed);
  if (x.device().is_cpu()) return CpuMatmul(x, w.wt);
  return at::matmul(x, w.wt);
}

// x + Drop(h @ w, d). On packed weights, when nothing records or drops, the add is the packed
// product's epilogue (bit-identical, one pass and one operator fewer).
at::Tensor AddLinear(const at::Tensor& x, const at::Tensor& h, const Projection& w, const Dropout* d = nullptr) {
  if (w.packed.defined() && !Recording(h) && !Recording(x) && (d == nullptr || d->p <= 0)) {
    return PackedMatmul(h, w.packed, PackedEpilogue{x, false});
  }
  return x + Drop(Linear(h, w), d);
}

// storage[i, :, positions[i], :] = step[i, :, 0, :] for the step's rows i < n (storage
// [slots, H, T, dk], step [n, H, 1, dk]). On the CPU a copy per (row, head) where the layouts
// allow it: libtorch's advanced indexing costs tens of microseconds per call, twice per layer and
// step. Elsewhere index_put_.
void WriteStepKv(at::Tensor& storage, const at::Tensor& step, const std::vector<int64_t>& positions,
                 const at::Tensor& rows, const at::Tensor& device_positions) {
  if (!storage.device().is_cpu() || !storage.is_contiguous() || step.scalar_type() != storage.scalar_type() ||
      step.stride(3) != 1) {
    storage.index_put_({rows, at::indexing::Slice(), device_positions}, step.squeeze(2));
    return;
  }
  const int64_t n = step.size(0), heads = step.size(1), t = storage.size(2), dk = step.size(3);
  const int64_t element = storage.element_size();
  auto* dst = static_cast<char*>(storage.data_ptr());
  const auto* src = static_cast<const char*>(step.data_ptr());
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t h = 0; h < heads; ++h) {
      std::memcpy(dst + (((i * heads + h) * t + positions[i]) * dk) * element,
                  src + (i * step.stride(0) + h * step.stride(1)) * element, dk * element);
    }
  }
}

// q [B,H,Tq,dk], k/v [B,H,Tk,dk], bias and mask broadcastable to [B,H,Tq,Tk] (mask may be
// undefined) -> [B,Tq,H*dk]. Added separately so that [B,H,S,S] is never materialized twice.
// No 1/sqrt(d_kv) scaling (T5 folds it into the initialisation); softmax in float32.
std::atomic<bool> g_force_device_attention{false};

// Attention off the CPU: one fused kernel where libtorch has it (scaled_dot_product_attention,
// libtorch >= 2.1, with T5's relative-position bias plus the padding mask as the additive mask
// and scale 1), else batched matmuls; never [B,H,T,dk] broadcast temporaries.
at::Tensor AttendOnDevice(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                          const at::Tensor& bias, const at::Tensor& mask) {
  const at::Tensor additive = mask.defined() ? bias + mask : bias;
#if SOFTSERVE_HAVE_SDPA
  const at::Tensor out = at::scaled_dot_product_attention(q, k, v, additive.to(q.scalar_type()), /*dropout_p=*/0.0,
                                                          /*is_causal=*/false, /*scale=*/1.0);
#else
  const at::Tensor scores = at::matmul(q, k.transpose(-1, -2)) + additive;
  const at::Tensor out = at::matmul(at::softmax(scores.to(at::kFloat), -1).to(q.scalar_type()), v);
#endif
  return out.transpose(1, 2).reshape({q.size(0), q.size(2), q.size(1) * q.size(3)});
}

at::Tensor Attend(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                  const at::Tensor& bias, const at::Tensor& mask = at::Tensor(), const Dropout* dropout = nullptr) {
  const bool drop = dropout != nullptr && dropout->p > 0;
  if (!drop && (!q.device().is_cpu() || g_force_device_attention.load(std::memory_order_relaxed))) {
    return AttendOnDevice(q, k, v, bias, mask);
  }
  if (!drop && !Recording(q) && !Recording(k) && !Recording(v) && CanUseCpuAttention(q, k, v)) {
    return CpuAttention(q, k, v, bias, mask);  // records no autograd
  }
  const bool single_query = q.size(2) == 1;
  // One query per row (decoding): a batched dot product. Broadcast multiply-and-reduce avoids
  // libtorch's CPU bmm, which loops over B*H tiny matrices on the strided cache views.
  at::Tensor scores = single_query ? (q * k).sum(-1, /*keepdim=*/false).unsqueeze(2)
                                   : at::matmul(q, k.transpose(-1, -2));
  scores.add_(bias);
  if (mask.defined()) scores.add_(mask);
  at::Tensor probs = Drop(at::softmax(scores.to(at::kFloat), -1).to(q.scalar_type()), drop ? dropout : nullptr);
  at::Tensor out = single_query ? (probs.squeeze(2).unsqueeze(-1) * v).sum(2).unsqueeze(2)
                                : at::matmul(probs, v);
  return out.transpose(1, 2).reshape({q.size(0), q.size(2), q.size(1) * q.size(3)});
}

// [B, T, 3I] -> q, k, v as [B, H, T, dk].
std::array<at::Tensor, 3> SplitHeads3(const at::Tensor& qkv, int64_t heads, int64_t dk) {
  at::Tensor x = qkv.view({qkv.size(0), qkv.size(1), 3, heads, dk}).permute({2, 0, 3, 1, 4});
  return {x[0], x[1], x[2]};
}

at::Tensor SplitHeads(const at::Tensor& x, int64_t heads, int64_t dk) {
  return x.view({x.size(0), x.size(1), heads, dk}).transpose(1, 2);
}

}  // namespace

const char* ForceDeviceAttentionForTesting(bool on) {
  g_force_device_attention.store(on);
  return SOFTSERVE_HAVE_SDPA ? "scaled_dot_product_attention" : "batched matmul";
}

StatusOr<std::unique_ptr<T5Model>> T5Model::Load(const std::string& dir,
                                                 const ModelOptions& options) {
  if (!IsDirectory(dir)) return NotFoundError("model directory '" + dir + "' does not exist");
  if (options.dtype == DType::kFloat16) {
    // Hugging Face clamps T5's activations in float16 because v1.1 and FLAN checkpoints
    // overflow it; this model does not, so float16 would silently produce inf/NaN.
    return InvalidArgumentError("dtype float16 is not supported for T5 (v1.1 and FLAN checkpoints overflow "
                                "it); use bfloat16 (half precision on CUDA) or float32");
  }
  if (options.device.kind == DeviceKind::kCpu) {
    SOFTSERVE_ASSIGN_OR_RETURN(CpuRuntime runtime, ConfigureCpuRuntime(options.num_threads, options.cpu_gemm));
    (void)runtime;
  }
  SOFTSERVE_ASSIGN_OR_RETURN(T5Config config, LoadT5Config(dir + "/config.json"));
  // Not InferenceMode: inference tensors could not be saved for a soft prompt's backward pass.
  at::NoGradGuard no_grad;
  SOFTSERVE_ASSIGN_OR_RETURN(T5Weights weights, LoadT5Weights(dir, config, options));
  return std::make_unique<T5Model>(config, std::move(weights), options);
}

T5Model::T5Model(T5Config config, T5Weights weights, ModelOptions options)
    : config_(config), weights_(std::move(weights)), options_(options) {}

c10::TensorOptions T5Model::tensor_options() const { return ToTensorOptions(options_); }

KvCache T5Model::NewCache(const KvCacheShape& shape) const {
  return KvCache(config_, tensor_options(), shape);
}

c10::ScalarType T5Model::scalar_type() const {
  return c10::typeMetaToScalarType(tensor_options().dtype());
}

EncoderBatch T5Model::EmbedRows(const std::vector<EncoderRow>& rows) const {
  bool training = false;
  for (const EncoderRow& r : rows) training = training || (r.prompt.defined() && Recording(r.prompt));
  c10::InferenceMode guard(!training);
  EncoderBatch batch;
  int64_t s = 0;
  for (const EncoderRow& r : rows) {
    batch.lengths.push_back(r.length());
    s = std::max(s, r.length());
  }
  const int64_t b = static_cast<int64_t>(rows.size());
  batch.embeds = at::zeros({b, s, config_.d_model}, tensor_options());
  batch.mask = at::zeros({b, s}, at::TensorOptions().dtype(at::kBool));
  for (int64_t i = 0; i < b; ++i) {
    const EncoderRow& r = rows[i];
    int64_t p = 0;
    if (r.prompt.defined()) {
      p = r.prompt.size(0);
      batch.embeds[i].narrow(0, 0, p).copy_(r.prompt);
    }
    if (!r.ids.empty()) {
      at::Tensor ids = ToDevice(r.ids, tensor_options().device());
      batch.embeds[i].narrow(0, p, ids.size(0)).copy_(weights_.embedding.index_select(0, ids));
    }
    batch.mask[i].narrow(0, 0, batch.lengths[i]).fill_(true);
  }
  batch.mask = batch.mask.to(tensor_options().device());
  return batch;
}

at::Tensor T5Model::RelativePositionBias(const at::Tensor& relative, bool bidirectional,
                                         const at::Tensor& table) const {
  // Hugging Face's T5Attention._relative_position_bucket, log term in float32.
  int64_t nb = config_.relative_attention_num_buckets;
  at::Tensor buckets = at::zeros_like(relative);
  at::Tensor n;
  if (bidirectional) {
    nb /= 2;
    buckets = buckets + (relative > 0).to(at::kLong) * nb;
    n = relative.abs();
  } else {
    n = -at::clamp_max(relative, 0);
  }
  const int64_t exact = nb / 2;
  at::Tensor large =
      exact + (at::log(n.to(at::kFloat) / static_cast<double>(exact)) /
               std::log(static_cast<double>(config_.relative_attention_max_distance) / exact) *
               static_cast<double>(nb - exact))
                  .to(at::kLong);
  large = at::clamp_max(large, nb - 1);
  buckets = buckets + at::where(n < exact, n, large);
  // table [NB, H] -> bias [..., H]
  return at::embedding(table, buckets);
}

at::Tensor T5Model::AddFeedForward(const at::Tensor& x, const at::Tensor& in, const FeedForwardWeights& w,
                                   const Dropout* dropout) const {
  at::Tensor a;
  if (config_.activation == Activation::kRelu && !config_.gated && w.wi.packed.defined() && !Recording(in)) {
    a = PackedMatmul(in, w.wi.packed, PackedEpilogue{at::Tensor(), /*relu=*/true});
  } else {
    const at::Tensor h = Linear(in, w.wi);
    a = config_.gated ? h.narrow(-1, 0, config_.d_ff) : h;
    switch (config_.activation) {
      case Activation::kRelu: a = at::relu(a); break;
      case Activation::kGeluNew: a = at::gelu(a, "tanh"); break;
      case Activation::kGelu: a = at::gelu(a); break;
    }
    if (config_.gated) a = a * h.narrow(-1, config_.d_ff, config_.d_ff);
  }
  return AddLinear(x, Drop(a, dropout), w.wo, dropout);
}

at::Tensor T5Model::LmHead(const at::Tensor& h) const {
  if (config_.tie_word_embeddings) {
    return Linear(h * std::pow(static_cast<double>(config_.d_model), -0.5), weights_.lm_head);
  }
  return Linear(h, weights_.lm_head);
}

at::Tensor T5Model::Encode(const EncoderBatch& batch, const Dropout* dropout) const {
  c10::InferenceMode guard(!Recording(batch.embeds));
  const auto opt = tensor_options();
  const int64_t s = batch.embeds.size(1), heads = config_.num_heads, dk = config_.d_kv;
  at::Tensor pos = at::arange(s, at::TensorOptions().dtype(at::kLong).device(opt.device()));
  at::Tensor relative = pos.unsqueeze(0) - pos.unsqueeze(1);  // key - query
  at::Tensor bias = RelativePositionBias(relative, /*bidirectional=*/true,
                                         weights_.encoder_relative_bias)
                        .permute({2, 0, 1})
                        .unsqueeze(0);  // [1, H, S, S]
  at::Tensor key_mask = at::where(batch.mask.view({batch.mask.size(0), 1, 1, s}),
                                  at::zeros({}, opt), at::full({}, MaskValue(opt), opt));

  const Dropout* d = Recording(batch.embeds) ? dropout : nullptr;
  at::Tensor x = Drop(batch.embeds, d);
  for (const EncoderLayerWeights& layer : weights_.encoder) {
    at::Tensor h = RmsNorm(x, layer.attention_norm, config_.layer_norm_epsilon);
    auto [q, k, v] = SplitHeads3(Linear(h, layer.attention.qkv), heads, dk);
    x = AddLinear(x, Attend(q, k, v, bias, key_mask, d), layer.attention.o, d);
    h = RmsNorm(x, layer.feed_forward_norm, config_.layer_norm_epsilon);
    x = AddFeedForward(x, h, layer.feed_forward, d);
  }
  return Drop(RmsNorm(x, weights_.encoder_final_norm, config_.layer_norm_epsilon), d);
}

at::Tensor T5Model::ComputeCrossKv(const at::Tensor& encoder_states) const {
  c10::InferenceMode guard(!Recording(encoder_states));
  const int64_t b = encoder_states.size(0), s = encoder_states.size(1);
  const int64_t layers = config_.num_decoder_layers;
  // One GEMM for the keys and values of every layer.
  at::Tensor kv = Linear(encoder_states, weights_.cross_kv);  // [B, S, L*2*I]
  // A view: KvCache::Append copies it into the cache once, so making it contiguous first would
  // cost a pass over the largest tensor of the prefill for nothing.
  return kv.view({b, s, layers, 2, config_.num_heads, config_.d_kv})
      .permute({2, 3, 0, 4, 1, 5});  // [L, 2, B, H, S, dk]
}

at::Tensor T5Model::DecodeTeacherForced(const at::Tensor& encoder_states,
                                        const at::Tensor& encoder_mask,
                                        const at::Tensor& decoder_input_ids,
                                        const at::Tensor& decoder_mask, const Dropout* dropout) const {
  c10::InferenceMode guard(!Recording(encoder_states));
  return LmHead(DecodeTeacherForcedHidden(encoder_states, encoder_mask, decoder_input_ids, decoder_mask, dropout));
}

at::Tensor T5Model::LabelLogProbs(const at::Tensor& hidden, const at::Tensor& labels, int64_t chunk_rows) const {
  c10::InferenceMode guard;
  const int64_t n = hidden.size(0);
  at::Tensor out = at::empty({n}, hidden.options().dtype(at::kFloat));
  const at::Tensor l = labels.to(hidden.device());
  for (int64_t begin = 0; begin < n; begin += chunk_rows) {
    const int64_t len = std::min(chunk_rows, n - begin);
    at::Tensor logits = LmHead(hidden.narrow(0, begin, len)).to(at::kFloat);  // [len, V]
    at::Tensor picked = logits.gather(1, l.narrow(0, begin, len).unsqueeze(1)).squeeze(1);
    out.narrow(0, begin, len).copy_(picked - at::logsumexp(logits, -1));
  }
  return out;
}

at::Tensor T5Model::DecodeTeacherForcedHidden(const at::Tensor& encoder_states,
                                              const at::Tensor& encoder_mask,
                                              const at::Tensor& decoder_input_ids,
                                              const at::Tensor& decoder_mask, const Dropout* dropout) const {
  c10::InferenceMode guard(!Recording(encoder_states));
  const auto opt = tensor_options();
  const int64_t b = decoder_input_ids.size(0), t = decoder_input_ids.size(1);
  const int64_t s = encoder_states.size(1), heads = config_.num_heads, dk = config_.d_kv;
  const at::Tensor ids = decoder_input_ids.to(opt.device());
  const at::Tensor lowest = at::full({}, MaskValue(opt), opt), zero = at::zeros({}, opt);

  at::Tensor pos = at::arange(t, at::TensorOptions().dtype(at::kLong).device(opt.device()));
  at::Tensor relative = pos.unsqueeze(0) - pos.unsqueeze(1);  // key - query
  at::Tensor self_bias = RelativePositionBias(relative, /*bidirectional=*/false,
                                              weights_.decoder_relative_bias)
                             .permute({2, 0, 1})
                             .unsqueeze(0);  // [1, H, T, T]
  at::Tensor allowed = (relative <= 0).view({1, 1, t, t}) &
                       decoder_mask.to(opt.device()).view({b, 1, 1, t});
  self_bias = self_bias + at::where(allowed, zero, lowest);
  at::Tensor cross_bias = at::where(encoder_mask.to(opt.device()).view({b, 1, 1, s}), zero, lowest);
  at::Tensor cross_kv = ComputeCrossKv(encoder_states);

  at::Tensor x = weights_.embedding.index_select(0, ids.reshape({-1})).view({b, t, config_.d_model});
  const Dropout* d = Recording(encoder_states) ? dropout : nullptr;
  x = Drop(x, d);
  for (size_t j = 0; j < weights_.decoder.size(); ++j) {
    const DecoderLayerWeights& layer = weights_.decoder[j];
    at::Tensor h = RmsNorm(x, layer.self_attention_norm, config_.layer_norm_epsilon);
    auto [q, k, v] = SplitHeads3(Linear(h, layer.self_attention.qkv), heads, dk);
    x = AddLinear(x, Attend(q, k, v, self_bias, at::Tensor(), d), layer.self_attention.o, d);
    h = RmsNorm(x, layer.cross_attention_norm, config_.layer_norm_epsilon);
    at::Tensor cq = SplitHeads(Linear(h, layer.cross_attention.q), heads, dk);
    const int64_t li = static_cast<int64_t>(j);
    x = AddLinear(x, Attend(cq, cross_kv[li][0], cross_kv[li][1], cross_bias, at::Tensor(), d),
                  layer.cross_attention.o, d);
    h = RmsNorm(x, layer.feed_forward_norm, config_.layer_norm_epsilon);
    x = AddFeedForward(x, h, layer.feed_forward, d);
  }
  return Drop(RmsNorm(x, weights_.decoder_final_norm, config_.layer_norm_epsilon), d);
}

void T5Model::RecomputeHistory(int64_t first, const std::vector<std::vector<int64_t>>& histories,
                               KvCache* cache) const {
  c10::InferenceMode guard;
  const auto opt = tensor_options();
  const auto long_opt = at::TensorOptions().dtype(at::kLong);
  const int64_t r = static_cast<int64_t>(histories.size()), heads = config_.num_heads, dk = config_.d_kv;
  std::vector<int64_t> lengths;
  int64_t t = 0;
  for (const auto& h : histories) {
    lengths.push_back(static_cast<int64_t>(h.size()));
    t = std::max<int64_t>(t, h.size());
  }
  at::Tensor ids = at::zeros({r, t}, long_opt);
  at::Tensor mask = at::zeros({r, t}, at::TensorOptions().dtype(at::kBool));
  for (int64_t i = 0; i < r; ++i) {
    ids[i].narrow(0, 0, lengths[i]).copy_(at::tensor(histories[i], long_opt));
    mask[i].narrow(0, 0, lengths[i]).fill_(true);
  }
  ids = ids.to(opt.device());
  cache->SetHistoryLengths(first, lengths);

  const at::Tensor lowest = at::full({}, MaskValue(opt), opt), zero = at::zeros({}, opt);
  at::Tensor pos = at::arange(t, long_opt.device(opt.device()));
  at::Tensor relative = pos.unsqueeze(0) - pos.unsqueeze(1);  // key - query
  at::Tensor self_bias = RelativePositionBias(relative, /*bidirectional=*/false, weights_.decoder_relative_bias)
                             .permute({2, 0, 1})
                             .unsqueeze(0);  // [1, H, T, T]
  at::Tensor allowed = (relative <= 0).view({1, 1, t, t}) & mask.to(opt.device()).view({r, 1, 1, t});
  self_bias = self_bias + at::where(allowed, zero, lowest);
  const int64_t s = cache->max_encoder_length();
  const at::Tensor cross_bias = cache->cross_bias().narrow(0, first, r);

  at::Tensor x = weights_.embedding.index_select(0, ids.reshape({-1})).view({r, t, config_.d_model});
  for (size_t j = 0; j < weights_.decoder.size(); ++j) {
    const DecoderLayerWeights& layer = weights_.decoder[j];
    const int64_t li = static_cast<int64_t>(j);
    at::Tensor h = RmsNorm(x, layer.self_attention_norm, config_.layer_norm_epsilon);
    auto [q, k, v] = SplitHeads3(Linear(h, layer.self_attention.qkv), heads, dk);
    cache->self_k_storage(li).narrow(0, first, r).narrow(2, 0, t).copy_(k);
    cache->self_v_storage(li).narrow(0, first, r).narrow(2, 0, t).copy_(v);
    x = AddLinear(x, Attend(q, k, v, self_bias), layer.self_attention.o);
    h = RmsNorm(x, layer.cross_attention_norm, config_.layer_norm_epsilon);
    at::Tensor cq = SplitHeads(Linear(h, layer.cross_attention.q), heads, dk);
    x = AddLinear(x, Attend(cq, cache->cross_k(li).narrow(0, first, r).narrow(2, 0, s),
                            cache->cross_v(li).narrow(0, first, r).narrow(2, 0, s), cross_bias),
                  layer.cross_attention.o);
    h = RmsNorm(x, layer.feed_forward_norm, config_.layer_norm_epsilon);
    x = AddFeedForward(x, h, layer.feed_forward);
  }
}

at::Tensor T5Model::DecodeStep(const std::vector<int64_t>& tokens, KvCache* cache) const {
  c10::InferenceMode guard;
  const auto opt = tensor_options();
  const auto long_opt = at::TensorOptions().dtype(at::kLong).device(opt.device());
  const int64_t n = static_cast<int64_t>(tokens.size()), heads = config_.num_heads, dk = config_.d_kv;
  const int64_t t = cache->ReserveStep(n);  // keys visible this step: positions [0, t)
  const std::vector<int64_t> lengths(cache->self_lengths().begin(), cache->self_lengths().begin() + n);
  at::Tensor positions = ToDevice(lengths, opt.device());
  // Row i's query sits at positions[i]; key j is visible iff j <= positions[i].
  at::Tensor relative = at::arange(t, long_opt).unsqueeze(0) - positions.unsqueeze(1);  // [n, t]
  at::Tensor self_bias = RelativePositionBias(relative, /*bidirectional=*/false,
                                              weights_.decoder_relative_bias)
                             .permute({0, 2, 1})
                             .unsqueeze(2);  // [n, H, 1, t]
  self_bias = self_bias + at::where((relative <= 0).view({n, 1, 1, t}), at::zeros({}, opt),
                                    at::full({}, MaskValue(opt), opt));
  const at::Tensor cross_bias = cache->cross_bias();
  const at::Tensor rows = at::arange(n, long_opt);

  at::Tensor ids = ToDevice(tokens, opt.device());
  at::Tensor x = weights_.embedding.index_select(0, ids).view({n, 1, config_.d_model});
  for (size_t j = 0; j < weights_.decoder.size(); ++j) {
    const DecoderLayerWeights& layer = weights_.decoder[j];
    const int64_t li = static_cast<int64_t>(j);
    at::Tensor h = RmsNorm(x, layer.self_attention_norm, config_.layer_norm_epsilon);
    auto [q, k, v] = SplitHeads3(Linear(h, layer.self_attention.qkv), heads, dk);
    // k, v: [n, H, 1, dk] -> cache[row, :, position_row, :]
    WriteStepKv(cache->self_k_storage(li), k, lengths, rows, positions);
    WriteStepKv(cache->self_v_storage(li), v, lengths, rows, positions);
    x = AddLinear(x, Attend(q, cache->self_k(li, t), cache->self_v(li, t), self_bias), layer.self_attention.o);
    h = RmsNorm(x, layer.cross_attention_norm, config_.layer_norm_epsilon);
    at::Tensor cq = SplitHeads(Linear(h, layer.cross_attention.q), heads, dk);
    x = AddLinear(x, Attend(cq, cache->cross_k(li), cache->cross_v(li), cross_bias), layer.cross_attention.o);
    h = RmsNorm(x, layer.feed_forward_norm, config_.layer_norm_epsilon);
    x = AddFeedForward(x, h, layer.feed_forward);
  }
  cache->AdvanceStepRows();
  return LmHead(RmsNorm(x, weights_.decoder_final_norm, config_.layer_norm_epsilon)).squeeze(1);
}

}  // namespace softserve::core
