#include "core/model/tensor_convert.h"

#include <ATen/ATen.h>

#include <cstring>
#include <limits>

namespace softserve::core {
namespace {

bool SourceScalarType(SafetensorsDtype d, c10::ScalarType* out) {
  switch (d) {
    case SafetensorsDtype::kF64: *out = at::kDouble; return true;
    case SafetensorsDtype::kF32: *out = at::kFloat; return true;
    case SafetensorsDtype::kF16: *out = at::kHalf; return true;
    case SafetensorsDtype::kBF16: *out = at::kBFloat16; return true;
    case SafetensorsDtype::kI64: *out = at::kLong; return true;
    case SafetensorsDtype::kI32: *out = at::kInt; return true;
    case SafetensorsDtype::kI16: *out = at::kShort; return true;
    case SafetensorsDtype::kI8: *out = at::kChar; return true;
    case SafetensorsDtype::kU8: *out = at::kByte; return true;
    case SafetensorsDtype::kBool: *out = at::kBool; return true;
  }
  return false;
}

at::Tensor CopyToCpu(const TensorView& view, c10::ScalarType type) {
  at::Tensor t = at::empty(view.shape, at::TensorOptions().dtype(type));
  if (view.nbytes > 0) std::memcpy(t.data_ptr(), view.data, view.nbytes);  // data may be unaligned
  return t;
}

}  // namespace

c10::ScalarType ToScalarType(DType dtype) {
  switch (dtype) {
    case DType::kFloat32: return at::kFloat;
    case DType::kBFloat16: return at::kBFloat16;
    case DType::kFloat16: return at::kHalf;
  }
  return at::kFloat;
}

c10::Device ToTorchDevice(const DeviceSpec& device) {
  if (device.kind == DeviceKind::kCuda) {
    return c10::Device(c10::DeviceType::CUDA, static_cast<c10::DeviceIndex>(device.index));
  }
  return c10::Device(c10::DeviceType::CPU);
}

c10::TensorOptions ToTensorOptions(const ModelOptions& options) {
  return c10::TensorOptions().dtype(ToScalarType(options.dtype)).device(ToTorchDevice(options.device));
}

StatusOr<at::Tensor> FloatTensorFromView(const TensorView& view, const c10::TensorOptions& options,
                                         const std::string& what) {
  c10::ScalarType src;
  if (!SourceScalarType(view.dtype, &src) || !c10::isFloatingType(src)) {
    return InvalidArgumentError(what + ": tensor '" + view.name + "' has dtype " +
                                SafetensorsDtypeName(view.dtype) +
                                "; expected a floating type (F32, F16 or BF16)");
  }
  return CopyToCpu(view, src).to(options);
}

StatusOr<at::Tensor> IntTensorFromView(const TensorView& view, const std::string& what) {
  if (view.dtype != SafetensorsDtype::kI64 && view.dtype != SafetensorsDtype::kI32) {
    return InvalidArgumentError(what + ": tensor '" + view.name + "' has dtype " +
                                SafetensorsDtypeName(view.dtype) + "; expected I64 or I32");
  }
  c10::ScalarType src;
  SourceScalarType(view.dtype, &src);
  return CopyToCpu(view, src).to(at::kLong);
}

double MaskValue(const c10::TensorOptions& options) {
  switch (c10::typeMetaToScalarType(options.dtype())) {
    case at::kBFloat16: return static_cast<double>(std::numeric_limits<c10::BFloat16>::lowest());
    case at::kHalf: return static_cast<double>(std::numeric_limits<c10::Half>::lowest());
    case at::kDouble: return std::numeric_limits<double>::lowest();
    default: return static_cast<double>(std::numeric_limits<float>::lowest());
  }
}

std::string Float32Bytes(const at::Tensor& t) {
  at::Tensor c = t.detach().to(at::kCPU, at::kFloat).contiguous();
  return std::string(static_cast<const char*>(c.data_ptr()), c.numel() * sizeof(float));
}

}  // namespace softserve::core
