#include "core/model/cpu_gemm.h"

#include "core/model/cpu_packed_gemm.h"

#include <ATen/Parallel.h>
#include <dlfcn.h>

#include <atomic>
#include <cstdint>
#include <vector>

namespace softserve::core {
namespace {

// oneDNN's C API: dnnl_status_t dnnl_sgemm(char transa, char transb, dnnl_dim_t M, dnnl_dim_t N,
// dnnl_dim_t K, float alpha, const float* A, dnnl_dim_t lda, const float* B, dnnl_dim_t ldb,
// float beta, float* C, dnnl_dim_t ldc), row-major, dnnl_dim_t = int64_t, 0 = dnnl_success.
using Sgemm = int (*)(char, char, int64_t, int64_t, int64_t, float, const float*, int64_t, const float*, int64_t,
                      float, float*, int64_t);

Sgemm ResolveSgemm() {
  static const Sgemm fn = reinterpret_cast<Sgemm>(::dlsym(RTLD_DEFAULT, "dnnl_sgemm"));
  return fn;
}

std::atomic<CpuGemm> g_active{CpuGemm::kTorch};

at::Tensor TorchMatmul(const at::Tensor& x, const at::Tensor& w) {
  std::vector<int64_t> shape(x.sizes().begin(), x.sizes().end());
  shape.back() = w.size(1);
  const at::Tensor rows = x.reshape({-1, x.size(-1)});
  if (rows.size(0) == 1) return at::mv(w.t(), rows[0]).view(shape);
  return at::mm(rows, w).view(shape);
}

// at::set_num_threads sizes the OpenMP team of the thread that calls it; other threads pick the
// setting up here, once, before their first oneDNN call (libtorch's own operators do the same).
void InitThreadsOnce() {
  thread_local bool done = false;
  if (!done) {
    at::init_num_threads();
    done = true;
  }
}

}  // namespace

bool OneDnnSgemmAvailable() { return ResolveSgemm() != nullptr; }

StatusOr<CpuGemm> ResolveCpuGemm(CpuGemm gemm) {
  switch (gemm) {
    case CpuGemm::kAuto:
      if (PackedGemmSupported()) return CpuGemm::kPacked;
      return OneDnnSgemmAvailable() ? CpuGemm::kOneDnn : CpuGemm::kTorch;
    case CpuGemm::kPacked:
      if (!PackedGemmSupported()) {
        return FailedPreconditionError(
            "CPU GEMM 'packed' requested, but this CPU has neither AVX-512F nor AVX2 with FMA; use --cpu-gemm "
            "auto, onednn or torch");
      }
      return gemm;
    case CpuGemm::kOneDnn:
      if (!OneDnnSgemmAvailable()) {
        return FailedPreconditionError(
            "CPU GEMM 'onednn' requested, but this process has no oneDNN (dnnl_sgemm is not exported by the "
            "libtorch it loaded); use --cpu-gemm auto, packed or torch");
      }
      return gemm;
    case CpuGemm::kTorch:
      return gemm;
  }
  return CpuGemm::kTorch;
}

StatusOr<CpuGemm> SelectCpuGemm(CpuGemm gemm) {
  SOFTSERVE_ASSIGN_OR_RETURN(const CpuGemm resolved, ResolveCpuGemm(gemm));
  g_active.store(resolved);
  return resolved;
}

CpuGemm ActiveCpuGemm() { return g_active.load(std::memory_order_relaxed); }

at::Tensor CpuMatmul(const at::Tensor& x, const at::Tensor& w) {
  const Sgemm sgemm = ResolveSgemm();
  const bool w_rows = w.is_contiguous(), w_cols = !w_rows && w.t().is_contiguous();
  if (ActiveCpuGemm() != CpuGemm::kOneDnn || sgemm == nullptr || !x.device().is_cpu() ||
      x.scalar_type() != at::kFloat || w.scalar_type() != at::kFloat || w.dim() != 2 || (!w_rows && !w_cols) ||
      x.numel() == x.size(-1)) {  // one row: libtorch's GEMV
    return TorchMatmul(x, w);
  }
  InitThreadsOnce();
  const int64_t k = w.size(0), n = w.size(1);
  const at::Tensor rows = x.reshape({-1, k}).contiguous();
  const int64_t m = rows.size(0);
  std::vector<int64_t> shape(x.sizes().begin(), x.sizes().end());
  shape.back() = n;
  at::Tensor out = at::empty({m, n}, rows.options());
  const int status = sgemm('N', w_rows ? 'N' : 'T', m, n, k, 1.f, rows.data_ptr<float>(), k, w.data_ptr<float>(),
                           w_rows ? n : k, 0.f, out.data_ptr<float>(), n);
  if (status != 0) return TorchMatmul(x, w);  // oneDNN refused the shape: libtorch computes it
  return out.view(shape);
}

}  // namespace softserve::core
