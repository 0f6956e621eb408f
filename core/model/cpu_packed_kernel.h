// The inner kernel of PackedMatmul (cpu_packed_gemm.h), one build per instruction set. This
// header is plain C++ (no ATen): the kernels' translation units are compiled with -mavx512f or
// -mavx2 -mfma, and nothing inline from a shared header may be compiled into them, or the linker
// could keep an AVX-512 copy of it for the whole program.
#ifndef SOFTSERVE_CORE_MODEL_CPU_PACKED_KERNEL_H_
#define SOFTSERVE_CORE_MODEL_CPU_PACKED_KERNEL_H_

#include <cstdint>

namespace softserve::core::packed_kernel {

// Columns per strip of a packed matrix: strip s holds columns [64 s, 64 s + 64) of the [k, n]
// matrix as k rows of 64 contiguous floats (zeros past column n in the last strip).
inline constexpr int64_t kStripWidth = 64;

// c[r, j] = sum_p a[r, p] * strip[p, j] for r < rows, j < cols (cols <= kStripWidth).
struct Tile {
  const float* a;      // rows x k, row stride lda
  int64_t lda;
  const float* strip;  // k x kStripWidth, contiguous
  int64_t k;
  float* c;            // rows x cols, row stride ldc
  int64_t ldc;
  int64_t rows;
  int64_t cols;
  // Epilogue, applied as each output is stored: c = c + add[r, j] (row stride ld_add; null:
  // none), then max(0, c) when relu.
  const float* add = nullptr;
  int64_t ld_add = 0;
  bool relu = false;
};

// Defined only where the compiler can build them (x86-64); callers check CPU support first.
void RunTileAvx512(const Tile& t);
void RunTileAvx2(const Tile& t);

}  // namespace softserve::core::packed_kernel

#endif  // SOFTSERVE_CORE_MODEL_CPU_PACKED_KERNEL_H_
