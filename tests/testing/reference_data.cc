#include "tests/testing/reference_data.h"

#include <ATen/ATen.h>

#include <cstdlib>

#include "core/common/file_util.h"
#include "core/model/tensor_convert.h"

namespace softserve::testing {

std::string TestDataDir() { return SOFTSERVE_TEST_DATA_DIR; }

core::DeviceSpec TestDevice() {
  const char* name = std::getenv("SOFTSERVE_TEST_DEVICE");
  auto spec = core::ParseDevice(name != nullptr && *name != '\0' ? name : "cpu");
  if (!spec.ok()) {
    ADD_FAILURE() << "SOFTSERVE_TEST_DEVICE: " << spec.status().ToString();
    return core::DeviceSpec{};
  }
  return *spec;
}

core::CpuGemm TestCpuGemm() {
  const char* v = std::getenv("SOFTSERVE_TEST_CPU_GEMM");
  if (v == nullptr || *v == '\0') return core::CpuGemm::kAuto;
  auto gemm = core::ParseCpuGemm(v);
  if (!gemm.ok()) {
    ADD_FAILURE() << "SOFTSERVE_TEST_CPU_GEMM: " << gemm.status().ToString();
    return core::CpuGemm::kAuto;
  }
  return *gemm;
}

core::ModelOptions TestModelOptions(core::DType dtype) {
  core::ModelOptions options;
  options.device = TestDevice();
  options.dtype = dtype;
  options.cpu_gemm = TestCpuGemm();
  return options;
}

std::string TestDeviceUnavailable() {
  const core::Status s = core::CheckDeviceAvailable(TestDevice());
  return s.ok() ? "" : "SKIPPED on this machine: " + s.message();
}

std::string ReferenceModelDir(const std::string& model) {
  return TestDataDir() + "/t5-reference/" + model;
}

ReferenceCases::ReferenceCases(const std::string& dir, int) : dir_(dir) {
  auto file = core::SafetensorsFile::Open(dir_ + "/cases.safetensors");
  if (!file.ok()) {
    ADD_FAILURE() << file.status().ToString();
    return;
  }
  cases_ = std::move(file).value();
  auto text = core::ReadFileToString(dir_ + "/cases.json");
  if (!text.ok()) {
    ADD_FAILURE() << text.status().ToString();
    return;
  }
  auto json = core::ParseJson(*text);
  if (!json.ok()) {
    ADD_FAILURE() << json.status().ToString();
    return;
  }
  json_ = std::move(json).value();
}

at::Tensor ReferenceCases::Float(const std::string& name) const {
  const core::TensorView* v = cases_ ? cases_->Find(name) : nullptr;
  if (v == nullptr) {
    ADD_FAILURE() << "reference tensor " << name << " missing";
    return at::Tensor();
  }
  auto t = core::FloatTensorFromView(*v, at::TensorOptions().dtype(at::kFloat), name);
  if (!t.ok()) {
    ADD_FAILURE() << t.status().ToString();
    return at::Tensor();
  }
  return *t;
}

at::Tensor ReferenceCases::Int(const std::string& name) const {
  const core::TensorView* v = cases_ ? cases_->Find(name) : nullptr;
  if (v == nullptr) {
    ADD_FAILURE() << "reference tensor " << name << " missing";
    return at::Tensor();
  }
  auto t = core::IntTensorFromView(*v, name);
  if (!t.ok()) {
    ADD_FAILURE() << t.status().ToString();
    return at::Tensor();
  }
  return *t;
}

std::vector<int64_t> ReferenceCases::Ids(const std::string& name) const {
  at::Tensor t = Int(name);
  if (!t.defined()) return {};
  t = t.reshape({-1}).contiguous();
  return std::vector<int64_t>(t.data_ptr<int64_t>(), t.data_ptr<int64_t>() + t.numel());
}

::testing::AssertionResult AllCloseRef(const at::Tensor& actual, const at::Tensor& expected,
                                       double atol, double rtol) {
  if (!actual.defined() || !expected.defined()) {
    return ::testing::AssertionFailure() << "undefined tensor";
  }
  if (actual.sizes() != expected.sizes()) {
    return ::testing::AssertionFailure()
           << "shape " << actual.sizes() << " != expected " << expected.sizes();
  }
  at::Tensor a = actual.detach().to(at::kCPU, at::kFloat);
  at::Tensor e = expected.detach().to(at::kCPU, at::kFloat);
  at::Tensor err = (a - e).abs();
  at::Tensor allowed = atol + rtol * e.abs();
  at::Tensor bad = err > allowed;
  if (!bad.any().item<bool>() && at::isfinite(a).all().item<bool>()) {
    return ::testing::AssertionSuccess() << "max abs error " << err.max().item<double>();
  }
  int64_t count = bad.sum().item<int64_t>();
  return ::testing::AssertionFailure()
         << count << " of " << a.numel() << " elements out of tolerance (atol " << atol
         << ", rtol " << rtol << "); max abs error " << err.max().item<double>();
}

}  // namespace softserve::testing
