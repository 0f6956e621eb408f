#include "core/model/cpu_norm.h"

#include <ATen/ATen.h>

#include <cmath>

#include "core/model/spin_pool.h"
#include "core/model/target_clones.h"

namespace softserve::core {
namespace {

SOFTSERVE_TARGET_CLONES
void NormalizeRow(const float* x, const float* w, int64_t d, float eps, float* out) {
  float sum = 0.f;
#pragma omp simd reduction(+ : sum)
  for (int64_t j = 0; j < d; ++j) sum += x[j] * x[j];
  const float scale = 1.f / std::sqrt(sum / static_cast<float>(d) + eps);
#pragma omp simd
  for (int64_t j = 0; j < d; ++j) out[j] = w[j] * (x[j] * scale);
}

}  // namespace

bool CanUseCpuRmsNorm(const at::Tensor& x, const at::Tensor& weight) {
  return x.device().is_cpu() && x.scalar_type() == at::kFloat && weight.scalar_type() == at::kFloat &&
         weight.dim() == 1 && weight.is_contiguous() && x.dim() >= 1 && x.size(-1) == weight.size(0);
}

at::Tensor CpuRmsNorm(const at::Tensor& x_in, const at::Tensor& weight, double eps) {
  const at::Tensor x = x_in.contiguous();
  const int64_t d = weight.size(0), rows = x.numel() / (d == 0 ? 1 : d);
  at::Tensor out = at::empty_like(x);
  const float* xp = x.data_ptr<float>();
  const float* wp = weight.data_ptr<float>();
  float* op = out.data_ptr<float>();
  const auto e = static_cast<float>(eps);
  // A row is a few KB: split rows across threads only when there are many.
  ParallelFor(rows, 64, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) NormalizeRow(xp + r * d, wp, d, e, op + r * d);
  });
  return out;
}

}  // namespace softserve::core
