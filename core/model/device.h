// Where and in which precision the model runs. Parsed from user-facing strings
// ("cpu", "cuda", "cuda:1"; "float32", "bfloat16"), kept free of libtorch types so that the
// server and CLI can validate flags without including torch.
#ifndef SOFTSERVE_CORE_MODEL_DEVICE_H_
#define SOFTSERVE_CORE_MODEL_DEVICE_H_

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
  // Intra-op threads for CPU math; 0 means one per hardware core. Set explicitly at load time
  // because libtorch may default to a single thread.
  int num_threads = 0;
};

// Applies options.num_threads to libtorch (process-wide) and returns the count in effect.
int ConfigureThreads(int num_threads);

// Returns Unavailable if the device is CUDA and this libtorch has no usable CUDA device.
Status CheckDeviceAvailable(const DeviceSpec& device);

}  // namespace softserve::core

#endif  // SOFTSERVE_CORE_MODEL_DEVICE_H_
