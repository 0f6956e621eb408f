// T5's RMS normalization (Hugging Face's T5LayerNorm: x * rsqrt(mean(x^2) + eps) * weight, the
// variance in float32) as one pass per row on the CPU, instead of the six libtorch operators and
// four temporaries of the generic path; a decode step normalizes three times per layer.
#ifndef SOFTSERVE_CORE_MODEL_CPU_NORM_H_
#define SOFTSERVE_CORE_MODEL_CPU_NORM_H_

#include <ATen/core/Tensor.h>

namespace softserve::core {

// True when CpuRmsNorm can take these operands: CPU float32 x with a contiguous last dimension
// of weight's size, float32 contiguous weight.
bool CanUseCpuRmsNorm(const at::Tensor& x, const at::Tensor& weight);

// x [..., d] -> same shape. REQUIRES: CanUseCpuRmsNorm(x, weight).
at::Tensor CpuRmsNorm(const at::Tensor& x, const at::Tensor& weight, double eps);

}  // namespace softserve::core

#endif  // SOFTSERVE_CORE_MODEL_CPU_NORM_H_
