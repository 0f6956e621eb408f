#include "core/model/device.h"

#include "core/model/cpu_gemm.h"
#include "core/model/cpu_packed_gemm.h"
#include "core/model/spin_pool.h"

#include <ATen/Context.h>
#include <ATen/Parallel.h>
#include <torch/cuda.h>

#include <dlfcn.h>
#include <malloc.h>

#include <cstdlib>
#include <thread>

namespace softserve::core {

std::string DeviceSpec::ToString() const {
  if (kind == DeviceKind::kCpu) return "cpu";
  return "cuda:" + std::to_string(index);
}

StatusOr<DeviceSpec> ParseDevice(std::string_view s) {
  DeviceSpec d;
  if (s == "cpu") return d;
  if (s == "cuda") {
    d.kind = DeviceKind::kCuda;
    return d;
  }
  if (s.rfind("cuda:", 0) == 0 && s.size() > 5 && s.size() < 9) {
    int idx = 0;
    for (char c : s.substr(5)) {
      if (c < '0' || c > '9') return InvalidArgumentError("bad device '" + std::string(s) + "'");
      idx = idx * 10 + (c - '0');
    }
    d.kind = DeviceKind::kCuda;
    d.index = idx;
    return d;
  }
  return InvalidArgumentError("unknown device '" + std::string(s) +
                              "' (expected cpu, cuda or cuda:<n>)");
}

StatusOr<DType> ParseDType(std::string_view s) {
  if (s == "float32" || s == "fp32") return DType::kFloat32;
  if (s == "bfloat16" || s == "bf16") return DType::kBFloat16;
  if (s == "float16" || s == "fp16") return DType::kFloat16;
  return InvalidArgumentError("unknown dtype '" + std::string(s) +
                              "' (expected float32, bfloat16 or float16)");
}

const char* DTypeName(DType dtype) {
  switch (dtype) {
    case DType::kFloat32: return "float32";
    case DType::kBFloat16: return "bfloat16";
    case DType::kFloat16: return "float16";
  }
  return "float32";
}

StatusOr<CpuGemm> ParseCpuGemm(std::string_view s) {
  if (s == "auto") return CpuGemm::kAuto;
  if (s == "packed") return CpuGemm::kPacked;
  if (s == "onednn") return CpuGemm::kOneDnn;
  if (s == "torch") return CpuGemm::kTorch;
  return InvalidArgumentError("unknown CPU GEMM '" + std::string(s) + "' (expected auto, packed, onednn or torch)");
}

const char* CpuGemmName(CpuGemm gemm) {
  switch (gemm) {
    case CpuGemm::kAuto: return "auto";
    case CpuGemm::kPacked: return "packed";
    case CpuGemm::kOneDnn: return "onednn";
    case CpuGemm::kTorch: return "torch";
  }
  return "torch";
}

std::string CpuRuntime::Describe() const {
  if (gemm == CpuGemm::kPacked) {
    return std::string("GEMM: packed weights, ") + PackedGemmIsa() + " kernel on " + std::to_string(worker_threads) +
           " spinning threads (with attention and norms); " + std::to_string(intra_op_threads) + " intra-op threads";
  }
  if (gemm == CpuGemm::kOneDnn) {
    return "GEMM: oneDNN sgemm on " + std::to_string(intra_op_threads) + " OpenMP threads, single rows on " +
           std::to_string(blas_threads) + " BLAS threads" + (separate_blas_pool ? " (OpenBLAS pthread pool)" : "");
  }
  return "GEMM: libtorch, " + std::to_string(blas_threads) + " BLAS threads" +
         (separate_blas_pool ? " (OpenBLAS pthread pool)" : "") + ", " + std::to_string(intra_op_threads) +
         " intra-op threads";
}

StatusOr<CpuRuntime> ConfigureCpuRuntime(int num_threads, CpuGemm gemm) {
  int n = num_threads > 0 ? num_threads : static_cast<int>(std::thread::hardware_concurrency());
  if (n <= 0) n = 1;
  CpuRuntime rt;
  SOFTSERVE_ASSIGN_OR_RETURN(rt.gemm, SelectCpuGemm(gemm));
  // Keep freed tensor buffers in the heap (up to glibc's largest mmap threshold, 32 MiB).
  ::mallopt(M_MMAP_THRESHOLD, 32 << 20);
  ::mallopt(M_TRIM_THRESHOLD, 1 << 30);

  // OpenBLAS's exports, if it is the BLAS libtorch loaded: openblas_get_parallel() is 1 for
  // its pthread build, 2 for its OpenMP build.
  using GetParallel = int (*)();
  using SetThreads = void (*)(int);
  auto get_parallel = reinterpret_cast<GetParallel>(::dlsym(RTLD_DEFAULT, "openblas_get_parallel"));
  auto set_threads = reinterpret_cast<SetThreads>(::dlsym(RTLD_DEFAULT, "openblas_set_num_threads"));
  rt.separate_blas_pool = get_parallel != nullptr && set_threads != nullptr && get_parallel() == 1;
  // OpenBLAS's own pool runs its GEMMs (libtorch selected) or its single-row GEMVs (oneDNN
  // selected); the OpenMP pool runs oneDNN's GEMMs, so it gets the cores unless OpenBLAS's pool
  // does all the matrix work.
  const bool blas_pool_runs_gemms = rt.separate_blas_pool && rt.gemm == CpuGemm::kTorch;
  // With the packed kernel OpenBLAS only gets prefill attention's batched products: one thread,
  // so that no pool of its spins on the cores the OpenMP pool needs.
  rt.blas_threads = rt.gemm == CpuGemm::kPacked ? 1 : n;
  if (rt.separate_blas_pool) set_threads(rt.blas_threads);
  SetCpuWorkerThreads(rt.gemm == CpuGemm::kPacked ? n : 1);
  rt.worker_threads = CpuWorkerThreads();
  at::set_num_threads(blas_pool_runs_gemms || rt.gemm == CpuGemm::kPacked ? 1 : n);
  rt.intra_op_threads = at::get_num_threads();
  return rt;
}

Status CheckDeviceAvailable(const DeviceSpec& device) {
  if (device.kind == DeviceKind::kCpu) return OkStatus();
  // torch::cuda is the public API in both libtorch 1.13 and 2.x (the hooks interface changed).
  if (!torch::cuda::is_available()) {
    return UnavailableError("device " + device.ToString() +
                            " requested but this build of libtorch has no usable CUDA device");
  }
  const int count = static_cast<int>(torch::cuda::device_count());
  if (device.index >= count) {
    return UnavailableError("device " + device.ToString() + " requested but only " +
                            std::to_string(count) + " CUDA device(s) are visible");
  }
  return OkStatus();
}

StatusOr<DeviceMemory> QueryDeviceMemory(const DeviceSpec& device) {
  if (device.kind != DeviceKind::kCuda) {
    return UnavailableError("device memory can only be queried on a CUDA device, not " + device.ToString());
  }
  SOFTSERVE_RETURN_IF_ERROR(CheckDeviceAvailable(device));
  // cudaError_t cudaSetDevice(int); cudaError_t cudaMemGetInfo(size_t* free, size_t* total).
  using SetDevice = int (*)(int);
  using MemGetInfo = int (*)(size_t*, size_t*);
  auto set_device = reinterpret_cast<SetDevice>(::dlsym(RTLD_DEFAULT, "cudaSetDevice"));
  auto mem_get_info = reinterpret_cast<MemGetInfo>(::dlsym(RTLD_DEFAULT, "cudaMemGetInfo"));
  if (set_device == nullptr || mem_get_info == nullptr) {
    return UnavailableError("no CUDA runtime (cudaMemGetInfo) is loaded in this process; give the "
                            "KV cache budget in bytes instead of a fraction of free memory");
  }
  size_t free_bytes = 0, total_bytes = 0;
  int err = set_device(device.index);
  if (err == 0) err = mem_get_info(&free_bytes, &total_bytes);
  if (err != 0) {
    return UnavailableError("cudaMemGetInfo on " + device.ToString() + " failed with CUDA error " +
                            std::to_string(err));
  }
  return DeviceMemory{static_cast<int64_t>(free_bytes), static_cast<int64_t>(total_bytes)};
}

}  // namespace softserve::core
