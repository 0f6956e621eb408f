// Optimizers for soft-prompt training, with the exact semantics the papers' code and the
// reference trajectories (testdata/prompt-training) use: PyTorch's AdamW, Hugging Face's
// Adafactor (Lester et al.'s settings: lr 0.3, no relative step, no parameter scaling, decay rate
// -0.8, update clipping 1.0, weight decay 1e-5) and the T5X Adafactor variant Lester et al.'s
// own code runs (unfactored below 128 x 128, decay not multiplied by lr).
//
// Each optimizer owns one state per parameter, in the order of the parameters given to Step;
// Step must always receive the same parameters in the same order. Updates are in place, in
// float32, on the parameters' device, with no autograd recording. Not thread-safe.
#ifndef SOFTSERVE_CORE_TRAINING_OPTIMIZERS_H_
#define SOFTSERVE_CORE_TRAINING_OPTIMIZERS_H_

#include <ATen/ATen.h>

#include <cstdint>
#include <memory>
#include <vector>

namespace softserve::core {

struct AdamWOptions {
  double lr = 0.3;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 1e-5;
};

struct AdafactorOptions {
  double lr = 0.3;
  double eps1 = 1e-30;          // added to g^2
  double clip_threshold = 1.0;  // the update's RMS is clipped to this
  double decay_rate = -0.8;     // rho_t = 1 - t^decay_rate
  double weight_decay = 1e-5;
  // T5X (google-research/prompt-tuning) instead of Hugging Face: a 2-D tensor is factored only
  // when both its dimensions are >= 128, and the decay is p *= 1 - weight_decay (not times lr).
  bool t5x = false;
};

class PromptOptimizer {
 public:
  virtual ~PromptOptimizer() = default;
  // One update of every parameter from its gradient (same shapes, float32).
  // REQUIRES: the same parameters, in the same order, at every call.
  virtual void Step(const std::vector<at::Tensor>& params, const std::vector<at::Tensor>& grads) = 0;
  virtual int64_t steps() const = 0;
};

std::unique_ptr<PromptOptimizer> NewAdamW(const AdamWOptions& options);
std::unique_ptr<PromptOptimizer> NewAdafactor(const AdafactorOptions& options);

}  // namespace softserve::core

#endif  // SOFTSERVE_CORE_TRAINING_OPTIMIZERS_H_
