#include "core/model/cpu_attention.h"

#include <ATen/ATen.h>

#include <cmath>
#include <limits>
#include <vector>

#include "core/model/spin_pool.h"
#include "core/model/target_clones.h"

namespace softserve::core {
namespace {

// (row, head) pairs per task on the worker pool: a few, so a task's scratch and its claim are
// amortized while a batch of 8 still splits over the threads.
constexpr int64_t kHeadsPerTask = 4;

struct Operand {
  const float* data;
  int64_t s0, s1, s2;  // strides of dims 0..2 (elements); dim 3 is contiguous or absent
};

Operand Strided(const at::Tensor& t) {
  return {t.data_ptr<float>(), t.stride(0), t.stride(1), t.stride(2)};
}

// One (row, head): scores over T keys, softmax, weighted sum of values into out[0, dk).
SOFTSERVE_TARGET_CLONES
void AttendOne(const float* q, const float* k, int64_t k_step, const float* v, int64_t v_step,
               const float* bias, int64_t bias_step, const float* mask, int64_t mask_step,
               int64_t t_len, int64_t dk, float* scores, float* out) {
  float max_score = -std::numeric_limits<float>::infinity();
  for (int64_t t = 0; t < t_len; ++t) {
    const float* kt = k + t * k_step;
    float s = 0.f;
#pragma omp simd reduction(+ : s)
    for (int64_t d = 0; d < dk; ++d) s += q[d] * kt[d];
    s += bias[t * bias_step];
    if (mask != nullptr) s += mask[t * mask_step];
    scores[t] = s;
    max_score = std::max(max_score, s);
  }
  float sum = 0.f;
  for (int64_t t = 0; t < t_len; ++t) {
    scores[t] = std::exp(scores[t] - max_score);
    sum += scores[t];
  }
  const float inv = 1.f / sum;
  for (int64_t d = 0; d < dk; ++d) out[d] = 0.f;
  for (int64_t t = 0; t < t_len; ++t) {
    const float p = scores[t] * inv;
    const float* vt = v + t * v_step;
#pragma omp simd
    for (int64_t d = 0; d < dk; ++d) out[d] += p * vt[d];
  }
}

}  // namespace

bool CanUseCpuAttention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v) {
  return q.device().is_cpu() && q.scalar_type() == at::kFloat && k.scalar_type() == at::kFloat &&
         v.scalar_type() == at::kFloat && q.dim() == 4 && q.stride(3) == 1 && k.stride(3) == 1 &&
         v.stride(3) == 1;
}

at::Tensor CpuAttention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                           const at::Tensor& bias_in, const at::Tensor& mask_in) {
  const int64_t n = q.size(0), heads = q.size(1), queries = q.size(2), dk = q.size(3), t_len = k.size(2);
  const at::Tensor bias = bias_in.expand({n, heads, queries, t_len});
  const at::Tensor mask = mask_in.defined() ? mask_in.expand({n, heads, queries, t_len}) : at::Tensor();
  at::Tensor out = at::empty({n, queries, heads * dk}, q.options());
  float* op = out.data_ptr<float>();
  const Operand qo = Strided(q), ko = Strided(k), vo = Strided(v), bo = Strided(bias);
  const Operand mo = mask.defined() ? Strided(mask) : Operand{nullptr, 0, 0, 0};
  const int64_t bias_step = bias.stride(3);
  const int64_t mask_step = mask.defined() ? mask.stride(3) : 0;
  // Tasks in (row, head, query) order: the queries of one (row, head) share its keys and values.
  ParallelFor(n * heads * queries, kHeadsPerTask * queries, [&](int64_t begin, int64_t end) {
    std::vector<float> scores(t_len);
    for (int64_t i = begin; i < end; ++i) {
      const int64_t b = i / (heads * queries), h = i / queries % heads, j = i % queries;
      AttendOne(qo.data + b * qo.s0 + h * qo.s1 + j * qo.s2, ko.data + b * ko.s0 + h * ko.s1, ko.s2,
                vo.data + b * vo.s0 + h * vo.s1, vo.s2, bo.data + b * bo.s0 + h * bo.s1 + j * bo.s2, bias_step,
                mo.data == nullptr ? nullptr : mo.data + b * mo.s0 + h * mo.s1 + j * mo.s2, mask_step, t_len, dk,
                scores.data(), op + (b * queries + j) * heads * dk + h * dk);
    }
  });
  return out;
}

}  // namespace softserve::core
