// T5Model: the frozen T5 encoder-decoder in libtorch, numerically equal to Hugging Face's
// T5ForConditionalGeneration (RMS norm, relative position buckets, unscaled attention scores,
// relu / gated-gelu feed-forward, tied-embedding output scaling).
//
// Inputs are batches of right-padded rows; every row's result equals running that row alone.
// The encoder takes input *embeddings*, so a soft prompt [p, d_model] is prepended per row
// (EmbedRows) and attended like ordinary tokens. Decoding runs either teacher-forced over whole
// target sequences (scoring, reference checks) or one token per row per step against a KvCache
// (generation), where rows may be at different positions.
//
// Every method runs under inference mode. Not thread-safe: one engine thread owns the model.
// Methods that take tensors expect them on the model's device (ids may be on CPU).
#ifndef SOFTSERVE_CORE_MODEL_T5_MODEL_H_
#define SOFTSERVE_CORE_MODEL_T5_MODEL_H_

#include <ATen/core/Tensor.h>
#include <c10/core/TensorOptions.h>

#include <memory>
#include <string>
#include <vector>

#include "core/common/status.h"
#include "core/model/device.h"
#include "core/model/kv_cache.h"
#include "core/model/t5_config.h"
#include "core/model/t5_weights.h"

namespace softserve::core {

// One encoder row: an optional soft prompt followed by token ids.
struct EncoderRow {
  at::Tensor prompt;  // [p, d_model] in the model's dtype/device, or undefined for none
  std::vector<int64_t> ids;
  int64_t length() const { return (prompt.defined() ? prompt.size(0) : 0) + static_cast<int64_t>(ids.size()); }
};

// Train-mode dropout while recording (prompt training, as the papers train: T5's dropout 0.1),
// at Hugging Face's T5 positions: the embeddings, the attention weights, each attention and
// feed-forward sublayer's output before its residual add, the feed-forward activation and each
// stack's final norm output; inverted scaling (kept values / (1 - p)); p >= 1 drops everything.
// Masks are drawn from `generator` on the CPU (the device's default generator elsewhere), so
// a run is reproducible per seed but not bit-equal to a PyTorch run.
struct Dropout {
  double p = 0;
  at::Generator generator;
};

// A right-padded encoder batch.
struct EncoderBatch {
  at::Tensor embeds;             // [B, S, d]
  at::Tensor mask;               // [B, S] bool, true on real positions
  std::vector<int64_t> lengths;  // per row
};

class T5Model {
 public:
  // Reads `dir`/config.json and the weights (see LoadT5Weights), sets the intra-op thread
  // count. Errors as LoadT5Config / LoadT5Weights.
  static StatusOr<std::unique_ptr<T5Model>> Load(const std::string& dir, const ModelOptions& options);

  T5Model(T5Config config, T5Weights weights, ModelOptions options);

  const T5Config& config() const { return config_; }
  const ModelOptions& options() const { return options_; }
  const T5Weights& weights() const { return weights_; }
  c10::TensorOptions tensor_options() const;

  // Soft-prompt training: when a row's prompt requires grad (and grad mode is on), EmbedRows,
  // Encode, ComputeCrossKv and DecodeTeacherForced[Hidden] record autograd with libtorch's own
  // differentiable ops instead of running in InferenceMode on the CPU kernels; the weights get
  // no gradient. Projections on packed CPU weights go through PackedMatmulWithGrad
  // (cpu_packed_gemm.h), so a server's model trains without a plain copy of its weights.

  // Builds right-padded input embeddings: per row, cat(prompt, shared[ids]).
  // REQUIRES: every id in [0, vocab), every row non-empty, prompt width == d_model.
  EncoderBatch EmbedRows(const std::vector<EncoderRow>& rows) const;

  // Encoder last hidden states [B, S, d] (after the final norm). Padded positions hold
  // meaningless values.
  // `dropout` (may be null) applies only while recording.
  at::Tensor Encode(const EncoderBatch& batch, const Dropout* dropout = nullptr) const;

  // Cross-attention keys/values of every decoder layer: [L, 2, B, H, S, d_kv], a view of one
  // product (not contiguous; its last dimension is).
  at::Tensor ComputeCrossKv(const at::Tensor& encoder_states) const;

  // Teacher-forced decoding. decoder_input_ids [B, T] (int64, right-padded),
  // decoder_mask [B, T] (true on real positions), encoder_mask [B, S]. Returns logits [B, T, V]
  // in the model dtype.
  at::Tensor DecodeTeacherForced(const at::Tensor& encoder_states, const at::Tensor& encoder_mask,
                                 const at::Tensor& decoder_input_ids, const at::Tensor& decoder_mask,
                                 const Dropout* dropout = nullptr) const;
  // As DecodeTeacherForced, stopping before the output layer: the decoder's final hidden
  // states [B, T, d_model] (after the final norm).
  at::Tensor DecodeTeacherForcedHidden(const at::Tensor& encoder_states, const at::Tensor& encoder_mask,
                                       const at::Tensor& decoder_input_ids, const at::Tensor& decoder_mask,
                                       const Dropout* dropout = nullptr) const;
  // log-softmax(output layer(hidden[i]))[labels[i]] for hidden [N, d_model], labels [N] (int64),
  // as float32 [N]; the output layer runs over at most `chunk_rows` rows at a time, so no more
  // than chunk_rows x vocab logits exist at once.
  at::Tensor LabelLogProbs(const at::Tensor& hidden, const at::Tensor& labels, int64_t chunk_rows) const;

  // One incremental step: feeds tokens[i] to row i of `cache` for the first n = tokens.size()
  // rows (REQUIRES n <= cache->size(); rows n.. are left as they are), appends their keys/values
  // and returns the next-token logits [n, V] (model dtype).
  at::Tensor DecodeStep(const std::vector<int64_t>& tokens, KvCache* cache) const;

  // Recompute: rebuilds the decoder self-attention state of rows [first, first + n) of `cache`
  // (rows appended without history) from histories[i], the tokens row i had fed (decoder start
  // token first), in one teacher-forced pass; the rows then continue as if they had decoded
  // those tokens step by step. REQUIRES: non-empty histories, rows within the cache.
  void RecomputeHistory(int64_t first, const std::vector<std::vector<int64_t>>& histories,
                        KvCache* cache) const;

  // A fresh, empty cache of `shape` for this model (allocated whole; see kv_cache.h).
  KvCache NewCache(const KvCacheShape& shape) const;
  // The element type the model's tensors (and its cache) use.
  c10::ScalarType scalar_type() const;

 private:
  at::Tensor RelativePositionBias(const at::Tensor& relative, bool bidirectional,
                                  const at::Tensor& table) const;
  // x + the feed-forward sublayer of `in` (dropout on its activation and its output).
  at::Tensor AddFeedForward(const at::Tensor& x, const at::Tensor& in, const FeedForwardWeights& w,
                            const Dropout* dropout = nullptr) const;
  at::Tensor LmHead(const at::Tensor& h) const;

  T5Config config_;
  T5Weights weights_;
  ModelOptions options_;
};

// Tests only: run the attention used off the CPU (scaled_dot_product_attention with the bias
// as additive mask where libtorch >= 2.1, else batched matmuls) on the CPU too, so the reference
// suites check it without a GPU. Returns that kernel's name. Not for concurrent use.
const char* ForceDeviceAttentionForTesting(bool on);

}  // namespace softserve::core

#endif  // SOFTSERVE_CORE_MODEL_T5_MODEL_H_
