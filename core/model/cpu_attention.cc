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

// The same for d_kv = 64 (every T5 size up to t5-large) in 16-float vectors (GCC's vector
// extensions; clones for AVX-512, AVX2 and the baseline): q and the output stay in registers,
// and exp runs 16 scores at a time (Cephes' expf: range reduction by ln 2 and a degree-6
// polynomial, within 2 ulp of std::exp). It pays where the keys are in cache (the encoder's 84
// queries per (row, head)); a decode step's single query is bound by reading the cache.
// No 16-float vector crosses a call by value (loads and splats are expressions, the helpers take
// references): GCC warns and Clang refuses where a clone without AVX-512 would change the ABI.
typedef float F16 __attribute__((vector_size(64)));
typedef float F8 __attribute__((vector_size(32)));
typedef float F4 __attribute__((vector_size(16)));
typedef int32_t I16 __attribute__((vector_size(64)));
constexpr int64_t kVectorKv = 64;

#define LOAD16(p)                                   \
  ({                                                \
    F16 loaded_;                                    \
    __builtin_memcpy(&loaded_, (p), sizeof(loaded_)); \
    loaded_;                                        \
  })
#define SPLAT16(x) (F16{} + (x))

inline __attribute__((always_inline)) void Store16(float* p, const F16& v) {
  __builtin_memcpy(p, &v, sizeof(v));
}

inline __attribute__((always_inline)) float Sum16(const F16& v) {
  const F8 a = __builtin_shufflevector(v, v, 0, 1, 2, 3, 4, 5, 6, 7) +
               __builtin_shufflevector(v, v, 8, 9, 10, 11, 12, 13, 14, 15);
  const F4 b = __builtin_shufflevector(a, a, 0, 1, 2, 3) + __builtin_shufflevector(a, a, 4, 5, 6, 7);
  return (b[0] + b[2]) + (b[1] + b[3]);
}

// *x = exp(*x) for x <= 0 (scores minus their maximum); 0 below -87.3, where float underflows.
inline __attribute__((always_inline)) void Exp16(F16* x) {
  const I16 underflow = *x < SPLAT16(-87.3f);
  const F16 c = underflow ? SPLAT16(-87.3f) : *x;
  const F16 magic = SPLAT16(12582912.0f);  // 1.5 * 2^23: adding it rounds to an integer
  const F16 n = (c * SPLAT16(1.44269504088896341f) + magic) - magic;
  const F16 r = (c - n * SPLAT16(0.693359375f)) - n * SPLAT16(-2.12194440e-4f);
  F16 p = SPLAT16(1.9875691500e-4f);
  p = p * r + SPLAT16(1.3981999507e-3f);
  p = p * r + SPLAT16(8.3334519073e-3f);
  p = p * r + SPLAT16(4.1665795894e-2f);
  p = p * r + SPLAT16(1.6666665459e-1f);
  p = p * r + SPLAT16(5.0000001201e-1f);
  const F16 e = p * r * r + r + SPLAT16(1.f);
  const I16 scale = (__builtin_convertvector(n, I16) + 127) << 23;
  F16 two_n;
  __builtin_memcpy(&two_n, &scale, sizeof(two_n));
  *x = underflow ? SPLAT16(0.f) : e * two_n;
}

SOFTSERVE_TARGET_CLONES_AVX512
void AttendOne64(const float* q, const float* k, int64_t k_step, const float* v, int64_t v_step,
                 const float* bias, int64_t bias_step, const float* mask, int64_t mask_step,
                 int64_t t_len, float* scores, float* out) {
  const F16 q0 = LOAD16(q), q1 = LOAD16(q + 16), q2 = LOAD16(q + 32), q3 = LOAD16(q + 48);
  float max_score = -std::numeric_limits<float>::infinity();
  for (int64_t t = 0; t < t_len; ++t) {
    const float* kt = k + t * k_step;
    const F16 products = (q0 * LOAD16(kt) + q1 * LOAD16(kt + 16)) + (q2 * LOAD16(kt + 32) + q3 * LOAD16(kt + 48));
    float s = Sum16(products);
    s += bias[t * bias_step];
    if (mask != nullptr) s += mask[t * mask_step];
    scores[t] = s;
    max_score = std::max(max_score, s);
  }
  const int64_t padded = (t_len + 15) / 16 * 16;  // `scores` holds this many
  for (int64_t t = t_len; t < padded; ++t) scores[t] = -std::numeric_limits<float>::infinity();
  F16 sums{};
  for (int64_t t = 0; t < padded; t += 16) {
    F16 e = LOAD16(scores + t) - SPLAT16(max_score);
    Exp16(&e);
    Store16(scores + t, e);
    sums += e;
  }
  F16 a0{}, a1{}, a2{}, a3{};
  for (int64_t t = 0; t < t_len; ++t) {
    const float* vt = v + t * v_step;
    const F16 p = SPLAT16(scores[t]);
    a0 += p * LOAD16(vt);
    a1 += p * LOAD16(vt + 16);
    a2 += p * LOAD16(vt + 32);
    a3 += p * LOAD16(vt + 48);
  }
  const F16 inv = SPLAT16(1.f / Sum16(sums));
  Store16(out, a0 * inv);
  Store16(out + 16, a1 * inv);
  Store16(out + 32, a2 * inv);
  Store16(out + 48, a3 * inv);
}
#undef LOAD16
#undef SPLAT16

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
    std::vector<float> scores((t_len + 15) / 16 * 16);
    for (int64_t i = begin; i < end; ++i) {
      const int64_t b = i / (heads * queries), h = i / queries % heads, j = i % queries;
      const float* qi = qo.data + b * qo.s0 + h * qo.s1 + j * qo.s2;
      const float* ki = ko.data + b * ko.s0 + h * ko.s1;
      const float* vi = vo.data + b * vo.s0 + h * vo.s1;
      const float* bi = bo.data + b * bo.s0 + h * bo.s1 + j * bo.s2;
      const float* mi = mo.data == nullptr ? nullptr : mo.data + b * mo.s0 + h * mo.s1 + j * mo.s2;
      float* oi = op + (b * queries + j) * heads * dk + h * dk;
      if (dk == kVectorKv) {
        AttendOne64(qi, ki, ko.s2, vi, vo.s2, bi, bias_step, mi, mask_step, t_len, scores.data(), oi);
      } else {
        AttendOne(qi, ki, ko.s2, vi, vo.s2, bi, bias_step, mi, mask_step, t_len, dk, scores.data(), oi);
      }
    }
  });
  return out;
}

}  // namespace softserve::core
