#include "core/model/host_to_device.h"

#include <ATen/ATen.h>

namespace softserve::core {
namespace {

template <typename T>
at::Tensor Stage(const std::vector<T>& values, at::ScalarType type, const at::Device& device) {
  at::Tensor host = at::tensor(values, at::TensorOptions().dtype(type));
  if (device.is_cpu()) return host;
  if (device.is_cuda()) return host.pin_memory().to(device, /*non_blocking=*/true);
  return host.to(device);
}

}  // namespace

at::Tensor ToDevice(const std::vector<int64_t>& values, const at::Device& device) {
  return Stage(values, at::kLong, device);
}
at::Tensor ToDevice(const std::vector<float>& values, const at::Device& device) {
  return Stage(values, at::kFloat, device);
}
at::Tensor ToDevice(const std::vector<double>& values, const at::Device& device) {
  return Stage(values, at::kDouble, device);
}

}  // namespace softserve::core
