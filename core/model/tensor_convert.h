// Conversions between softserve's plain types and libtorch: safetensors views to tensors,
// DeviceSpec/DType to torch options. Only included by .cc files that already use ATen.
#ifndef SOFTSERVE_CORE_MODEL_TENSOR_CONVERT_H_
#define SOFTSERVE_CORE_MODEL_TENSOR_CONVERT_H_

#include <ATen/core/Tensor.h>
#include <c10/core/TensorOptions.h>

#include <string>

#include "core/common/status.h"
#include "core/model/device.h"
#include "core/model/safetensors.h"

namespace softserve::core {

c10::ScalarType ToScalarType(DType dtype);
c10::Device ToTorchDevice(const DeviceSpec& device);
c10::TensorOptions ToTensorOptions(const ModelOptions& options);

// Copies a floating-point view (F32/F16/BF16/F64) into a new tensor of `options`' dtype on its
// device. Returns InvalidArgument (naming `what` and the tensor) for integer or bool dtypes.
StatusOr<at::Tensor> FloatTensorFromView(const TensorView& view, const c10::TensorOptions& options,
                                         const std::string& what);
// Copies an I64/I32 view into a new CPU int64 tensor; InvalidArgument for other dtypes.
StatusOr<at::Tensor> IntTensorFromView(const TensorView& view, const std::string& what);

// The additive mask value for excluded attention positions: the lowest finite value of the
// options' dtype (torch.finfo(dtype).min, as Hugging Face uses).
double MaskValue(const c10::TensorOptions& options);

// Float32 little-endian bytes of a tensor (moved to CPU and converted first), for writing.
std::string Float32Bytes(const at::Tensor& t);

}  // namespace softserve::core

#endif  // SOFTSERVE_CORE_MODEL_TENSOR_CONVERT_H_
