// Access to the Hugging Face reference vectors under tests/data/t5-reference (copied from
// ../shared/testdata/t5-reference; see its README for names, shapes and tolerances), and the
// tolerance checks those vectors come with. Expected values come only from these files.
#ifndef SOFTSERVE_TESTS_TESTING_REFERENCE_DATA_H_
#define SOFTSERVE_TESTS_TESTING_REFERENCE_DATA_H_

#include <ATen/core/Tensor.h>
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "core/common/json.h"
#include "core/model/device.h"
#include "core/model/safetensors.h"

namespace softserve::testing {

// The device the reference suites run on: SOFTSERVE_TEST_DEVICE ("cpu" when unset; CTest runs
// the engine reference suite a second time with "cuda" under the label `gpu`).
core::DeviceSpec TestDevice();
// The CPU GEMM the reference suites use: SOFTSERVE_TEST_CPU_GEMM ("auto" when unset; CTest runs
// the model and engine reference suites a second time with "torch", libtorch's own BLAS).
core::CpuGemm TestCpuGemm();
// Model options for the test device, CPU GEMM (and `dtype`).
core::ModelOptions TestModelOptions(core::DType dtype = core::DType::kFloat32);
// Empty when the test device is usable; otherwise why not, for GTEST_SKIP (a GPU suite on a
// machine without a GPU skips with this message instead of failing).
std::string TestDeviceUnavailable();

// The two reference models.
inline const std::vector<std::string>& ReferenceModelNames() {
  static const std::vector<std::string> kNames = {"t5-tiny-v1_0", "t5-tiny-v1_1"};
  return kNames;
}

std::string TestDataDir();
std::string ReferenceModelDir(const std::string& model);

// cases.safetensors and cases.json of one reference model.
class ReferenceCases {
 public:
  explicit ReferenceCases(const std::string& model) : ReferenceCases(ReferenceModelDir(model), 0) {}
  // cases.safetensors and cases.json of any reference directory (e.g. sampling-warpers).
  static ReferenceCases InDir(const std::string& dir) { return ReferenceCases(dir, 0); }

  bool Has(const std::string& name) const { return cases_->Find(name) != nullptr; }
  // CPU float32 / int64 tensors; fail the test (ADD_FAILURE) and return empty if absent.
  at::Tensor Float(const std::string& name) const;
  at::Tensor Int(const std::string& name) const;
  // The I64 tensor as a flat id list, e.g. generate.row0.greedy.
  std::vector<int64_t> Ids(const std::string& name) const;
  const core::JsonValue& json() const { return json_; }
  const std::string& dir() const { return dir_; }

 private:
  ReferenceCases(const std::string& dir, int);
  std::string dir_;
  std::unique_ptr<core::SafetensorsFile> cases_;
  core::JsonValue json_;
};

// |actual - expected| <= atol + rtol * |expected| elementwise (the README's fp32 rule).
// Both tensors are compared on CPU in float32; shapes must match.
::testing::AssertionResult AllCloseRef(const at::Tensor& actual, const at::Tensor& expected,
                                       double atol = 1e-4, double rtol = 1e-4);

}  // namespace softserve::testing

#endif  // SOFTSERVE_TESTS_TESTING_REFERENCE_DATA_H_
