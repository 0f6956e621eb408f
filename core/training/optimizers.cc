#include "core/training/optimizers.h"

#include <c10/core/GradMode.h>

#include <cmath>

namespace softserve::core {
namespace {

// torch.optim.AdamW, single-tensor path: decoupled decay on the old parameter, then the
// bias-corrected Adam step with eps added after dividing sqrt(v) by sqrt(1 - beta2^t).
class AdamW : public PromptOptimizer {
 public:
  explicit AdamW(const AdamWOptions& o) : o_(o) {}

  void Step(const std::vector<at::Tensor>& params, const std::vector<at::Tensor>& grads) override {
    at::NoGradGuard no_grad;
    ++t_;
    if (m_.empty()) {
      for (const at::Tensor& p : params) {
        m_.push_back(at::zeros_like(p));
        v_.push_back(at::zeros_like(p));
      }
    }
    const double bias1 = 1 - std::pow(o_.beta1, static_cast<double>(t_));
    const double bias2_sqrt = std::sqrt(1 - std::pow(o_.beta2, static_cast<double>(t_)));
    for (size_t i = 0; i < params.size(); ++i) {
      at::Tensor p = params[i];
      const at::Tensor& g = grads[i];
      p.mul_(1 - o_.lr * o_.weight_decay);
      m_[i].lerp_(g, 1 - o_.beta1);
      v_[i].mul_(o_.beta2).addcmul_(g, g, 1 - o_.beta2);
      const at::Tensor denom = (v_[i].sqrt() / bias2_sqrt).add_(o_.eps);
      p.addcdiv_(m_[i], denom, -(o_.lr / bias1));
    }
  }
  int64_t steps() const override { return t_; }

 private:
  AdamWOptions o_;
  int64_t t_ = 0;
  std::vector<at::Tensor> m_, v_;
};

// Hugging Face's transformers.optimization.Adafactor with scale_parameter, relative_step and
// warmup_init off and no first moment; or the T5X variant (AdafactorOptions::t5x).
class Adafactor : public PromptOptimizer {
 public:
  explicit Adafactor(const AdafactorOptions& o) : o_(o) {}

  void Step(const std::vector<at::Tensor>& params, const std::vector<at::Tensor>& grads) override {
    at::NoGradGuard no_grad;
    ++t_;
    if (state_.empty()) {
      for (const at::Tensor& p : params) state_.push_back(NewState(p));
    }
    const double rho = 1 - std::pow(static_cast<double>(t_), o_.decay_rate);
    for (size_t i = 0; i < params.size(); ++i) {
      at::Tensor p = params[i];
      const at::Tensor& g = grads[i];
      State& s = state_[i];
      const at::Tensor sq = g * g + o_.eps1;
      at::Tensor update;
      if (s.factored) {
        s.row.mul_(rho).add_(sq.mean(-1), 1 - rho);
        s.col.mul_(rho).add_(sq.mean(-2), 1 - rho);
        const at::Tensor r = (s.row / s.row.mean(-1, /*keepdim=*/true)).rsqrt_().unsqueeze(-1);
        const at::Tensor c = s.col.unsqueeze(-2).rsqrt();
        update = at::mul(r, c).mul_(g);
      } else {
        s.full.mul_(rho).add_(sq, 1 - rho);
        update = s.full.rsqrt().mul_(g);
      }
      const at::Tensor rms = update.norm() / std::sqrt(static_cast<double>(update.numel()));
      update.div_((rms / o_.clip_threshold).clamp_(1.0));
      update.mul_(o_.lr);
      if (o_.t5x) {
        p.mul_(1 - o_.weight_decay);
      } else if (o_.weight_decay != 0) {
        p.add_(p, -o_.weight_decay * o_.lr);
      }
      p.add_(-update);
    }
  }
  int64_t steps() const override { return t_; }

 private:
  struct State {
    bool factored = false;
    at::Tensor row, col, full;
  };

  State NewState(const at::Tensor& p) const {
    State s;
    s.factored = p.dim() >= 2 && (!o_.t5x || (p.size(-1) >= 128 && p.size(-2) >= 128));
    if (s.factored) {
      std::vector<int64_t> rows(p.sizes().begin(), p.sizes().end() - 1);
      std::vector<int64_t> cols(p.sizes().begin(), p.sizes().end() - 2);
      cols.push_back(p.size(-1));
      s.row = at::zeros(rows, p.options());
      s.col = at::zeros(cols, p.options());
    } else {
      s.full = at::zeros_like(p);
    }
    return s;
  }

  AdafactorOptions o_;
  int64_t t_ = 0;
  std::vector<State> state_;
};

}  // namespace

std::unique_ptr<PromptOptimizer> NewAdamW(const AdamWOptions& options) { return std::make_unique<AdamW>(options); }

std::unique_ptr<PromptOptimizer> NewAdafactor(const AdafactorOptions& options) {
  return std::make_unique<Adafactor>(options);
}

}  // namespace softserve::core
