#pragma once

// Float32 matrix products on the CPU: libtorch's matmul, or oneDNN's sgemm where the process has it.
//
// libtorch sends a CPU matmul to the BLAS it was built with. On Debian that is OpenBLAS, which
// runs the small-M products of a decode step at 20-55 GFLOP/s on two cores, while oneDNN's
// JIT sgemm (AVX-512 where the CPU has it) runs the same shapes at 300-470 GFLOP/s (measured on
// this project's CI machine kind: docs/BENCHMARKS.md). Debian's libtorch links oneDNN (libdnnl)
// for its own mkldnn operators, so the library is already in the process: dnnl_sgemm is found at
// run time with dlsym (its C signature is the same in oneDNN 2.x and 3.x). core/ therefore has no
// build dependency on oneDNN, and a libtorch without an exported dnnl_sgemm keeps libtorch's
// matmul.
//
// Threading: oneDNN's sgemm runs on the calling thread's OpenMP team, the pool libtorch's own
// CPU operators use; ConfigureCpuRuntime (device.h) sizes it.
//
// The choice is process-wide (like libtorch's thread settings) and made once at model load;
// CpuMatmul may be called from any thread.

#include <ATen/ATen.h>

#include "core/common/status.h"
#include "core/model/device.h"

namespace softserve::core {

// Whether the process has oneDNN's dnnl_sgemm.
bool OneDnnSgemmAvailable();

// What `gemm` means in this process (kAuto resolved: kPacked where PackedGemmSupported(), else
// kOneDnn where OneDnnSgemmAvailable(), else kTorch). FailedPrecondition when kOneDnn is asked
// for and the process has no oneDNN, or kPacked and the CPU runs no packed kernel.
StatusOr<CpuGemm> ResolveCpuGemm(CpuGemm gemm);
// ResolveCpuGemm, and selects the result for CpuMatmul from now on (no change on error).
StatusOr<CpuGemm> SelectCpuGemm(CpuGemm gemm);
// kPacked, kOneDnn or kTorch.
CpuGemm ActiveCpuGemm();

// x [..., k] @ w [k, n] -> [..., n], for matrices that were not packed (with kPacked selected,
// T5Weights packs every projection and this sees none of them). With oneDNN selected, float32 CPU operands of two rows or more
// with w contiguous (or the transpose of a contiguous matrix) go to dnnl_sgemm; everything else
// to libtorch: at::mv for a single row (OpenBLAS's GEMV on its own pool beats oneDNN's there:
// batch-1 decode steps of 4.3-4.5 vs 5.5-5.8 ms on t5-small), at::matmul otherwise.
at::Tensor CpuMatmul(const at::Tensor& x, const at::Tensor& w);

}  // namespace softserve::core
