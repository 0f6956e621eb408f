// T5Weights: the tensors of one T5 checkpoint, laid out for inference, and the loader that
// reads them from a Hugging Face checkpoint directory.
//
// Layout choices (all equivalent to HF's math): every projection matrix is stored transposed,
// [in, out] (HF stores torch Linear weights as [out, in]), so that y = x @ W runs as one GEMM
// for many rows and as one GEMV on the transposed view for a single row — OpenBLAS's GEMM
// with few rows re-packs the whole weight on every call and is several times slower. Each
// self-attention's q, k, v are concatenated into one [d, 3I] matrix (one GEMM per layer); each
// cross-attention's k, v into [d, 2I], and those of all decoder layers side by side in one
// [d, L*2I] matrix so a new row's cross keys and values for every layer come from a single GEMM;
// gated feed-forwards concatenate wi_0 and wi_1 into [d, 2F]. The embedding table stays
// [V, d] for lookups; the output projection is kept separately as [d, V] even when tied.
// On the CPU with the packed kernel (CpuGemm::kPacked) every projection is held packed instead
// (cpu_packed_gemm.h), never in both layouts.
// Immutable after loading; safe to read from any thread.
#ifndef SOFTSERVE_CORE_MODEL_T5_WEIGHTS_H_
#define SOFTSERVE_CORE_MODEL_T5_WEIGHTS_H_

#include <ATen/core/Tensor.h>

#include <string>
#include <vector>

#include "core/common/status.h"
#include "core/model/cpu_packed_gemm.h"
#include "core/model/device.h"
#include "core/model/t5_config.h"

namespace softserve::core {

// One projection matrix [in, out]: exactly one of the two is defined.
struct Projection {
  at::Tensor wt;        // as a tensor (GPUs; CPU with --cpu-gemm onednn or torch)
  PackedMatrix packed;  // packed for the CPU kernel (CpuGemm::kPacked)
};

struct SelfAttentionWeights {
  Projection qkv;  // [d, 3I]: q columns, then k, then v
  Projection o;    // [I, d]
};

struct CrossAttentionWeights {
  Projection q;  // [d, I]
  Projection o;  // [I, d]
  // k and v live in T5Weights::cross_kv (all layers side by side).
};

struct FeedForwardWeights {
  Projection wi;  // [d, F], or [d, 2F] (wi_0 columns then wi_1 columns) when gated
  Projection wo;  // [F, d]
};

struct EncoderLayerWeights {
  at::Tensor attention_norm;  // [d]
  SelfAttentionWeights attention;
  at::Tensor feed_forward_norm;  // [d]
  FeedForwardWeights feed_forward;
};

struct DecoderLayerWeights {
  at::Tensor self_attention_norm;  // [d]
  SelfAttentionWeights self_attention;
  at::Tensor cross_attention_norm;  // [d]
  CrossAttentionWeights cross_attention;
  at::Tensor feed_forward_norm;  // [d]
  FeedForwardWeights feed_forward;
};

struct T5Weights {
  at::Tensor embedding;  // [V, d] ("shared.weight")
  Projection lm_head;               // [d, V]: lm_head.weight transposed, or shared.weight's when tied
  at::Tensor encoder_relative_bias;  // [NB, H]
  at::Tensor decoder_relative_bias;  // [NB, H]
  std::vector<EncoderLayerWeights> encoder;
  std::vector<DecoderLayerWeights> decoder;
  at::Tensor encoder_final_norm;  // [d]
  at::Tensor decoder_final_norm;  // [d]
  Projection cross_kv;              // [d, L_dec * 2I]: layer j's k columns, then its v columns
};

// Loads weights from a checkpoint directory exactly as downloaded from the Hugging Face hub:
// `model.safetensors`, or `model.safetensors.index.json` plus the shards it names. Tensors are
// looked up by HF name (`shared.weight`, or its aliases `encoder.embed_tokens.weight` /
// `decoder.embed_tokens.weight`; `lm_head.weight` only when untied), shape-checked against
// `config`, converted from F32/F16/BF16 to options.dtype and moved to options.device; projections
// packed when the device is the CPU, the dtype float32 and ResolveCpuGemm(options.cpu_gemm) is
// kPacked.
// Returns NotFound if the directory has neither file (mentioning pytorch_model.bin when only
// that is present), InvalidArgument/DataLoss for a missing or mis-shaped tensor or a corrupt
// file (naming tensor and file), Unavailable if the device cannot be used.
StatusOr<T5Weights> LoadT5Weights(const std::string& dir, const T5Config& config,
                                  const ModelOptions& options);

}  // namespace softserve::core

#endif  // SOFTSERVE_CORE_MODEL_T5_WEIGHTS_H_
