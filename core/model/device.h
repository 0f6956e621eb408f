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

// Numerical settings of one loaded model.
struct ModelOptions {
  DeviceSpec device;
  DType dtype = DType::kFloat32;
  // Threads for CPU math; 0 means one per hardware core. Applied explicitly at load time
  // (libtorch may default to a single thread); see ConfigureCpuRuntime.
  int num_threads = 0;
};

// What ConfigureCpuRuntime set.
struct CpuRuntime {
  int blas_threads = 0;      // threads OpenBLAS runs each GEMM on
  int intra_op_threads = 0;  // libtorch's own (OpenMP) pool, for element-wise work
  bool separate_blas_pool = false;
  std::string Describe() const;
};

// Process-wide CPU settings for inference:
// - Threads. With Debian's libopenblas0-pthread, every GEMM runs on OpenBLAS's own pthread
//   pool; giving libtorch's OpenMP pool the same cores makes the two pools fight (measured on
//   2 cores: batch-1 decoding 79 vs 103 tokens/s). So when OpenBLAS has its own pool, it gets
//   num_threads and libtorch's pool 1; otherwise (MKL, OpenMP OpenBLAS) libtorch gets
//   num_threads and drives the BLAS itself.
// - Allocator. Large tensors are kept in the heap after free (mallopt) instead of being
//   unmapped and re-faulted zero page by zero page on the next step.
CpuRuntime ConfigureCpuRuntime(int num_threads);

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
