// Helpers for driving an Engine from tests: synchronous and future-based submission, and
// prompts built from reference tensors.
#ifndef SOFTSERVE_TESTS_TESTING_ENGINE_TESTING_H_
#define SOFTSERVE_TESTS_TESTING_ENGINE_TESTING_H_

#include <ATen/ATen.h>

#include <future>
#include <memory>
#include <string>

#include "core/engine/engine.h"
#include "core/prompts/prompt.h"

namespace softserve::testing {

inline core::PromptPtr PromptFromTensor(const at::Tensor& t, const std::string& name,
                                        const std::string& tenant = "test") {
  at::Tensor c = t.to(at::kFloat).contiguous();
  std::vector<float> values(c.data_ptr<float>(), c.data_ptr<float>() + c.numel());
  return std::make_shared<core::Prompt>(core::PromptKey{tenant, name, 1}, c.size(0), c.size(1),
                                        std::move(values), core::PromptFormat::kRaw, 0);
}

template <typename T>
std::pair<std::shared_ptr<std::promise<core::StatusOr<T>>>, core::DoneCallback<T>> Completion() {
  auto promise = std::make_shared<std::promise<core::StatusOr<T>>>();
  return {promise, [promise](core::StatusOr<T> r) { promise->set_value(std::move(r)); }};
}

inline std::future<core::StatusOr<core::GenerationResult>> GenerateAsync(
    core::Engine* engine, core::GenerationRequest req) {
  auto [promise, done] = Completion<core::GenerationResult>();
  auto future = promise->get_future();
  engine->Submit(std::move(req), done);
  return future;
}

inline core::StatusOr<core::GenerationResult> GenerateSync(core::Engine* engine,
                                                            core::GenerationRequest req) {
  return GenerateAsync(engine, std::move(req)).get();
}

inline core::StatusOr<core::ScoreResult> ScoreSync(core::Engine* engine, core::ScoreRequest req) {
  auto [promise, done] = Completion<core::ScoreResult>();
  auto future = promise->get_future();
  engine->SubmitScore(std::move(req), done);
  return future.get();
}

}  // namespace softserve::testing

#endif  // SOFTSERVE_TESTS_TESTING_ENGINE_TESTING_H_
