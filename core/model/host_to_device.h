// Host values to the model's device for the per-step inputs (token ids, positions, row indices,
// sampling parameters). On CUDA they go through a pinned staging tensor with a non-blocking
// copy, so the copy is queued behind the work already on the stream instead of synchronizing
// with it (libtorch's caching host allocator keeps the staging memory until the copy is done).
// On the CPU the tensor is used as is.
#ifndef SOFTSERVE_CORE_MODEL_HOST_TO_DEVICE_H_
#define SOFTSERVE_CORE_MODEL_HOST_TO_DEVICE_H_

#include <cstdint>
#include <vector>

#include <ATen/core/Tensor.h>

namespace softserve::core {

at::Tensor ToDevice(const std::vector<int64_t>& values, const at::Device& device);
at::Tensor ToDevice(const std::vector<float>& values, const at::Device& device);
at::Tensor ToDevice(const std::vector<double>& values, const at::Device& device);

}  // namespace softserve::core

#endif  // SOFTSERVE_CORE_MODEL_HOST_TO_DEVICE_H_
