// Attention on the CPU in float32: for each (row, head, query), scores over the keys, softmax,
// weighted sum of the values — in one pass over K and V without materializing [n, H, Tq, T]
// temporaries, split over the worker pool. Decoding (one query per row): libtorch's CPU bmm
// loops over n * H tiny matrices, and broadcast-multiply-and-reduce writes and rereads a
// temporary as big as the cache; with the cache in the hundreds of MB per step at large batches,
// that dominated. The encoder (Tq = T): libtorch's bmm, bias add and softmax run on one thread.
// Same math as T5Model's generic path (no 1/sqrt(d_kv) scaling, float32 softmax); summation
// order differs, so results agree to float rounding.
#ifndef SOFTSERVE_CORE_MODEL_CPU_ATTENTION_H_
#define SOFTSERVE_CORE_MODEL_CPU_ATTENTION_H_

#include <ATen/core/Tensor.h>

namespace softserve::core {

// True when CpuAttention can take these operands: CPU float32, and queries, keys and values
// contiguous in their last dimension.
bool CanUseCpuAttention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v);

// q [n, H, Tq, dk]; k, v [n, H, T, dk] (any strides but the last); bias broadcastable to
// [n, H, Tq, T]; mask broadcastable to [n, H, Tq, T] or undefined. Returns [n, Tq, H * dk].
// REQUIRES: CanUseCpuAttention(q, k, v); bias and mask float32 on CPU.
at::Tensor CpuAttention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                        const at::Tensor& bias, const at::Tensor& mask);

}  // namespace softserve::core

#endif  // SOFTSERVE_CORE_MODEL_CPU_ATTENTION_H_
