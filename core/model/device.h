// Where and in which precision the model runs. Parsed from user-facing strings
// ("cpu", "cuda", "cuda:1"; "float32", "bfloat16"), kept free of libtorch types so that the
// server and CLI can validate flags without including torch.
#ifndef SOFTSERVE_CORE_MODEL_DEVICE_H_
#define SOFTSERVE_CORE_MODEL_DEVICE_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "core/common/status.h"

namespace softserve::core {

enum class DeviceKind { kCpu, kCuda };
enum class DType { kFloat32, kBFloat16, kFloat16 };

struct DeviceSpec {
  DeviceKind kind = DeviceKind::kCpu;
  int index = 0;  // CUDA ordinal
  std::string ToString() const;
};

// Returns InvalidArgument for anything but "cpu", "cuda" or "cuda:<n>".
StatusOr<DeviceSpec> ParseDevice(std::string_view s);
// Accepts float32/fp32, bfloat16/bf16, float16/fp16; InvalidArgument otherwise.
StatusOr<DType> ParseDType(std::string_view s);
const char* DTypeName(DType dtype);

// What computes float32 matrix products on the CPU (cpu_packed_gemm.h, cpu_gemm.h).
enum class CpuGemm {
  kAuto,    // packed where the CPU runs the packed kernel, else oneDNN where the process has it,
            // else libtorch
  kPacked,  // weights packed at load for our kernel (AVX-512F or AVX2+FMA); an error on other CPUs
  kOneDnn,  // oneDNN's sgemm; an error where the process has none
  kTorch,   // libtorch's matmul (the BLAS it was built with)
};
// Accepts "auto", "packed", "onednn", "torch"; InvalidArgument otherwise.
StatusOr<CpuGemm> ParseCpuGemm(std::string_view s);
const char* CpuGemmName(CpuGemm gemm);

// Numerical settings of one loaded model.
struct ModelOptions {
  DeviceSpec device;
  DType dtype = DType::kFloat32;
  // Threads for CPU math; 0 means one per hardware core. Applied explicitly at load time
  // (libtorch may default to a single thread); see ConfigureCpuRuntime.
  int num_threads = 0;
  CpuGemm cpu_gemm = CpuGemm::kAuto;  // CPU only
};

// What ConfigureCpuRuntime set.
struct CpuRuntime {
  CpuGemm gemm = CpuGemm::kTorch;  // what computes the float32 matrix products (never kAuto)
  int blas_threads = 0;            // threads OpenBLAS runs each of its GEMMs on
  int intra_op_threads = 0;        // libtorch's own OpenMP pool (element-wise work, oneDNN's GEMMs)
  int worker_threads = 1;          // our kernels' SpinPool (spin_pool.h; only with the packed kernel)
  bool separate_blas_pool = false;
  std::string Describe() const;
};

// Process-wide CPU settings for inference:
// - GEMM. SelectCpuGemm (cpu_gemm.h): with kAuto, the packed kernel where the CPU runs it, else
//   oneDNN's sgemm where the process has it, else libtorch.
// - Threads. With Debian's libopenblas0-pthread, OpenBLAS runs its GEMMs on its own pthread pool,
//   whose threads spin for a while after each call; giving libtorch's OpenMP pool the same cores
//   makes the two pools fight (measured on 2 cores: batch-1 decoding 79 vs 103 tokens/s). With
//   libtorch's GEMM, OpenBLAS's pool gets num_threads and libtorch's 1. With oneDNN, the OpenMP
//   pool (oneDNN's GEMMs, attention, element-wise work) gets num_threads and OpenBLAS's pool too,
//   for single-row products only (the two alternate within a step; measured faster than either
//   alone). With the packed kernel, a SpinPool (spin_pool.h) runs every projection, the decode
//   attention and the RMS norms on num_threads, and
//   libtorch's OpenMP pool and OpenBLAS get one thread each: their workers would compete with
//   the spinning ones for the same cores (measured on 2 cores: batch-1 encoder 3.8-4.1k vs
//   6.4-7.4k tokens/s with one OpenMP thread, decode no slower at batch 1-64). Without a separate OpenBLAS pool (MKL, OpenMP OpenBLAS) libtorch gets num_threads.
// - Allocator. Large tensors are kept in the heap after free (mallopt) instead of being
//   unmapped and re-faulted zero page by zero page on the next step.
// FailedPrecondition when gemm is kOneDnn and the process has no oneDNN, or kPacked and the CPU
// runs no packed kernel.
StatusOr<CpuRuntime> ConfigureCpuRuntime(int num_threads, CpuGemm gemm = CpuGemm::kAuto);

// Returns Unavailable if the device is CUDA and this libtorch has no usable CUDA device.
Status CheckDeviceAvailable(const DeviceSpec& device);

// Free and total memory of a CUDA device, in bytes, from the CUDA runtime that libtorch loaded
// (found by symbol, so this builds against CPU-only libtorch too). Unavailable on CPU, or when no
// CUDA runtime is loaded in the process.
struct DeviceMemory {
  int64_t free_bytes = 0;
  int64_t total_bytes = 0;
};
StatusOr<DeviceMemory> QueryDeviceMemory(const DeviceSpec& device);

}  // namespace softserve::core

#endif  // SOFTSERVE_CORE_MODEL_DEVICE_H_
