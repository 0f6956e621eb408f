#pragma once

// Float32 projections on the CPU with weights packed once, at load, for a kernel of our own.
//
// A decode step multiplies a few rows (one per sequence in the batch) by every weight matrix of
// the decoder and by the output projection: 150 MB of float32 weights per step for t5-small,
// 5x that of L3 on the CI machine, so the step is bound by how fast the weights stream from
// memory. Library GEMMs are built for the opposite case: oneDNN's sgemm re-packs the weight on
// every call and OpenBLAS's GEMV reads a [k, n] matrix with row stride n. PackedMatrix lays the
// matrix out once as strips of 64 columns, each [k, 64] contiguous, so that the kernel
// (cpu_packed_kernel.inc) reads each weight exactly once per product, sequentially, with up to 6
// rows of x held in registers against it. Measured on the CI machine kind (2 threads, the 37
// products of one t5-small decoder step, weights from DRAM): 2.2-3.4 ms at 1 row against 3.0-4.1
// for oneDNN and 4.2 for OpenBLAS's GEMV; 3.3-3.9 ms at 8 rows against 4.5-5.1; on par with
// oneDNN at 64 rows (docs/BENCHMARKS.md).
//
// Instruction sets: an AVX-512F kernel and an AVX2+FMA one, chosen at run time from the CPU;
// PackedGemmSupported() is false on other CPUs (and on non-x86 builds), where callers keep the
// unpacked matrix and cpu_gemm.h's products. core/ needs nothing but libtorch for this.
//
// Threading: PackedMatmul splits its tiles (strip x block of rows) over the process's
// CpuWorkerPool (spin_pool.h; ConfigureCpuRuntime in device.h sizes it; without one, products run
// on the calling thread). Safe to call from any thread; a PackedMatrix is immutable once packed.

#include <ATen/ATen.h>

namespace softserve::core {

// Whether this CPU runs one of the packed kernels.
bool PackedGemmSupported();
// "avx512", "avx2" or "none": the kernel PackedMatmul runs on this CPU.
const char* PackedGemmIsa();

class PackedMatrix {
 public:
  PackedMatrix() = default;
  // Packs w [k, n] (float32, CPU, any strides). Precondition: PackedGemmSupported().
  static PackedMatrix Pack(const at::Tensor& w);

  bool defined() const { return strips_.defined(); }
  int64_t rows() const { return strips_.defined() ? strips_.size(1) : 0; }  // k
  int64_t cols() const { return cols_; }                                      // n
  // The strips, [ceil(n / 64), k, 64], zero past column n.
  const at::Tensor& strips() const { return strips_; }
  // The matrix again, [k, n] contiguous (for tests and fallbacks; a copy).
  at::Tensor Unpack() const;

 private:
  at::Tensor strips_;
  int64_t cols_ = 0;
};

// What PackedMatmul does to each output as it stores it, saving a pass of libtorch's element-wise
// operators over the result (and their dispatch, which a decode step would pay ~50 times):
// out + add (a residual, out's shape), then max(0, out) when relu. Same arithmetic as libtorch's
// `add + out` and `relu`, so the results are bit-identical to the unfused operators.
struct PackedEpilogue {
  at::Tensor add;  // undefined: none
  bool relu = false;
};

// x [..., k] @ w -> [..., n], float32 on the CPU, then the epilogue. x need not be contiguous;
// k must equal w.rows() and epilogue.add, when defined, have the result's shape (TORCH_CHECKs,
// as libtorch's own matmul checks shapes).
at::Tensor PackedMatmul(const at::Tensor& x, const PackedMatrix& w, const PackedEpilogue& epilogue = {});

// PackedMatmul recorded by autograd (prompt training on the weights a server packed, without a
// plain copy): the product is PackedMatmul's; the backward gives x the gradient dY w^T, computed
// from the strips in chunks with libtorch's batched products, and gives w none (it is frozen).
// Not twice differentiable.
at::Tensor PackedMatmulWithGrad(const at::Tensor& x, const PackedMatrix& w);

}  // namespace softserve::core
