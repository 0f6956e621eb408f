// A ModelRunner decorator that holds the engine thread before each Step until the test releases
// it, so that tests over the real T5Runner can make requests arrive at a chosen step.
#ifndef SOFTSERVE_TESTS_TESTING_GATED_RUNNER_H_
#define SOFTSERVE_TESTS_TESTING_GATED_RUNNER_H_

#include <condition_variable>
#include <memory>
#include <mutex>

#include "core/engine/model_runner.h"

namespace softserve::testing {

class GatedRunner : public core::ModelRunner {
 public:
  struct Gate {
    std::mutex mu;
    std::condition_variable cv;
    bool closed = false;
    int64_t released = 0;  // steps allowed while closed
    int64_t steps = 0;     // steps taken
    int64_t rows = 0;      // rows in the last step

    void Close() {
      std::lock_guard<std::mutex> l(mu);
      closed = true;
    }
    void Release(int64_t n) {
      std::lock_guard<std::mutex> l(mu);
      released += n;
      cv.notify_all();
    }
    void Open() {
      std::lock_guard<std::mutex> l(mu);
      closed = false;
      cv.notify_all();
    }
    // Blocks until `n` steps in total have run.
    void WaitSteps(int64_t n) {
      std::unique_lock<std::mutex> l(mu);
      cv.wait(l, [&] { return steps >= n; });
    }
  };

  GatedRunner(std::unique_ptr<core::ModelRunner> inner, std::shared_ptr<Gate> gate)
      : inner_(std::move(inner)), gate_(std::move(gate)) {}

  const core::T5Config& config() const override { return inner_->config(); }
  std::string Describe() const override { return inner_->Describe(); }
  int64_t num_rows() const override { return inner_->num_rows(); }
  int64_t row_capacity() const override { return inner_->row_capacity(); }
  core::Status Prefill(const std::vector<core::PrefillItem>& items) override { return inner_->Prefill(items); }
  core::Status Step(const std::vector<int64_t>& tokens, const std::vector<core::RowSelection>& selections,
                    std::vector<core::RowOutput>* outputs) override {
    {
      std::unique_lock<std::mutex> l(gate_->mu);
      gate_->cv.wait(l, [&] { return !gate_->closed || gate_->released > 0; });
      if (gate_->closed) --gate_->released;
    }
    core::Status s = inner_->Step(tokens, selections, outputs);
    std::lock_guard<std::mutex> l(gate_->mu);
    ++gate_->steps;
    gate_->rows = static_cast<int64_t>(tokens.size());
    gate_->cv.notify_all();
    return s;
  }
  core::Status Compact(const std::vector<int64_t>& keep) override { return inner_->Compact(keep); }
  core::Status CopyHistory(const std::vector<int64_t>& dst, const std::vector<int64_t>& src) override {
    return inner_->CopyHistory(dst, src);
  }
  core::Status Permute(const std::vector<int64_t>& order) override { return inner_->Permute(order); }
  core::Status Reset() override { return inner_->Reset(); }
  core::StatusOr<std::vector<core::ScoreOutput>> Score(const std::vector<core::ScoreItem>& items) override {
    return inner_->Score(items);
  }
  core::StatusOr<core::ExplainResult> Explain(const core::Prompt& prompt, int top_k) override {
    return inner_->Explain(prompt, top_k);
  }

 private:
  std::unique_ptr<core::ModelRunner> inner_;
  std::shared_ptr<Gate> gate_;
};

}  // namespace softserve::testing

#endif  // SOFTSERVE_TESTS_TESTING_GATED_RUNNER_H_
