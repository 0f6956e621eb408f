// A T5Runner for engine tests over the real model, with its KV cache sized by T5Runner::Create.
#ifndef SOFTSERVE_TESTS_TESTING_T5_RUNNER_TESTING_H_
#define SOFTSERVE_TESTS_TESTING_T5_RUNNER_TESTING_H_

#include <memory>
#include <stdexcept>

#include "core/engine/engine.h"
#include "core/engine/t5_runner.h"

namespace softserve::testing {

// Throws (gtest reports it as the test's failure) when the cache cannot be planned or allocated.
inline std::unique_ptr<core::T5Runner> NewT5Runner(std::shared_ptr<const core::T5Model> model,
                                                   const core::EngineLimits& limits,
                                                   const core::T5RunnerOptions& options = {}) {
  core::EngineLimits sized = limits;
  auto runner = core::T5Runner::Create(std::move(model), options, &sized);
  if (!runner.ok()) throw std::runtime_error("T5Runner::Create: " + runner.status().ToString());
  return std::move(runner).value();
}

}  // namespace softserve::testing

#endif  // SOFTSERVE_TESTS_TESTING_T5_RUNNER_TESTING_H_
