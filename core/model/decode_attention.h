// Single-query attention for incremental decoding on CPU float32: for each (row, head), scores
// over the cached keys, softmax, weighted sum of the cached values — in one pass over K and V
// without materializing [n, H, T, d_kv] temporaries. libtorch's CPU bmm instead loops over
// n * H tiny matrices, and broadcast-multiply-and-reduce writes and rereads a temporary as big
// as the cache; with the cache in the hundreds of MB per step at large batches, that dominated.
// Same math as T5Model's generic path (no 1/sqrt(d_kv) scaling, float32 softmax); summation
// order differs, so results agree to float rounding.
#ifndef SOFTSERVE_CORE_MODEL_DECODE_ATTENTION_H_
#define SOFTSERVE_CORE_MODEL_DECODE_ATTENTION_H_

#include <ATen/core/Tensor.h>

namespace softserve::core {

// True when DecodeAttention can take these operands: CPU float32, one query per row, and keys
// and values contiguous in their last dimension.
bool CanUseDecodeAttention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v);

// q [n, H, 1, dk]; k, v [n, H, T, dk] (any strides but the last); bias broadcastable to
// [n, H, 1, T]; mask broadcastable to [n, H, 1, T] or undefined. Returns [n, 1, H * dk].
// REQUIRES: CanUseDecodeAttention(q, k, v); bias and mask float32 on CPU.
at::Tensor DecodeAttention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                           const at::Tensor& bias, const at::Tensor& mask);

}  // namespace softserve::core

#endif  // SOFTSERVE_CORE_MODEL_DECODE_ATTENTION_H_
