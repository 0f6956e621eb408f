// Background tasks on the engine thread (background.h): slices run when the engine is idle and,
// while it serves, within max_background_time_fraction of its time; tasks take turns; Finished
// is called exactly once with OK, Cancelled, Internal (a throwing slice) or Unavailable
// (shutdown). With a fake runner.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <future>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "core/engine/engine.h"
#include "tests/testing/engine_testing.h"
#include "tests/testing/fake_runner.h"

namespace softserve::core {
namespace {

using ::softserve::testing::FakeRunner;
using ::softserve::testing::GenerateAsync;

class Task : public BackgroundTask {
 public:
  // `slices` < 0: endless. `log`, if set, records this task's `name` at each slice.
  Task(int slices, std::chrono::microseconds each = std::chrono::microseconds(0), std::string name = "",
       std::vector<std::string>* log = nullptr, std::mutex* log_mu = nullptr)
      : slices_(slices), each_(each), name_(std::move(name)), log_(log), log_mu_(log_mu) {}

  bool RunSlice() override {
    const int n = ++ran;
    if (log_ != nullptr) {
      std::lock_guard<std::mutex> l(*log_mu_);
      log_->push_back(name_);
    }
    if (n == throw_at) throw std::runtime_error("slice bug");
    if (each_.count() > 0) std::this_thread::sleep_for(each_);
    slice_us += each_.count();
    return slices_ < 0 || n < slices_;
  }
  void Finished(const Status& s) override {
    std::lock_guard<std::mutex> l(mu_);
    ++finished_calls_;
    status_ = s;
    cv_.notify_all();
  }
  bool cancelled() const override { return cancel.load(); }

  Status Wait() {
    std::unique_lock<std::mutex> l(mu_);
    cv_.wait(l, [&] { return finished_calls_ > 0; });
    return status_;
  }
  int finished_calls() {
    std::lock_guard<std::mutex> l(mu_);
    return finished_calls_;
  }

  std::atomic<int> ran{0};
  std::atomic<bool> cancel{false};
  std::atomic<int64_t> slice_us{0};  // time the slices slept
  int throw_at = -1;

 private:
  const int slices_;
  const std::chrono::microseconds each_;
  const std::string name_;
  std::vector<std::string>* log_;
  std::mutex* log_mu_;
  std::mutex mu_;
  std::condition_variable cv_;
  int finished_calls_ = 0;
  Status status_;
};

class EngineBackgroundTest : public ::testing::Test {
 protected:
  void Start(EngineLimits limits = {}) {
    shared_ = std::make_shared<FakeRunner::Shared>();
    engine_ = std::make_unique<Engine>(std::make_unique<FakeRunner>(shared_), limits);
  }
  GenerationRequest Req(int max_new) {
    GenerationRequest r;
    r.common.input_ids = {2};
    r.common.tenant = "t";
    r.params.max_new_tokens = max_new;
    return r;
  }
  std::shared_ptr<FakeRunner::Shared> shared_;
  std::unique_ptr<Engine> engine_;
};

TEST_F(EngineBackgroundTest, IdleEngineRunsTasksInTurnsToTheEnd) {
  Start();
  std::vector<std::string> log;
  std::mutex log_mu;
  // Submitted while the engine serves nothing, in order: a's first slice may run before b arrives.
  auto a = std::make_shared<Task>(4, std::chrono::microseconds(0), "a", &log, &log_mu);
  auto b = std::make_shared<Task>(2, std::chrono::microseconds(0), "b", &log, &log_mu);
  ASSERT_TRUE(engine_->SubmitBackground(a).ok());
  ASSERT_TRUE(engine_->SubmitBackground(b).ok());
  EXPECT_TRUE(a->Wait().ok());
  EXPECT_TRUE(b->Wait().ok());
  EXPECT_EQ(a->ran, 4);
  EXPECT_EQ(b->ran, 2);
  EXPECT_EQ(a->finished_calls(), 1);
  EXPECT_EQ(b->finished_calls(), 1);
  // Turns: once both are queued, b never waits for more than one slice of a.
  std::lock_guard<std::mutex> l(log_mu);
  const size_t first_b = std::find(log.begin(), log.end(), "b") - log.begin();
  ASSERT_LT(first_b, log.size());
  EXPECT_LE(first_b, 2u) << "b waited behind a";
  EXPECT_EQ(log[first_b + 1], "a");
  EXPECT_EQ(engine_->background_tasks(), 0);
}

// With no time fraction, background work waits for the engine to be idle: no slice runs between
// a request's admission and its completion.
TEST_F(EngineBackgroundTest, WithoutATimeFractionSlicesWaitForIdle) {
  EngineLimits limits;
  limits.max_background_time_fraction = 0;
  Start(limits);
  {
    std::lock_guard<std::mutex> l(shared_->mu);
    shared_->gated = true;
  }
  auto task = std::make_shared<Task>(-1);
  std::promise<int> ran_at_done;  // read in the done callback, on the engine thread
  engine_->Submit(Req(20), [&](StatusOr<GenerationResult> r) { ran_at_done.set_value(r.ok() ? task->ran.load() : -1); });
  {
    std::unique_lock<std::mutex> l(shared_->mu);
    shared_->cv.wait(l, [&] { return shared_->rows == 1; });  // admitted, in its first step
  }
  ASSERT_TRUE(engine_->SubmitBackground(task).ok());
  {
    std::lock_guard<std::mutex> l(shared_->mu);
    shared_->gated = false;
    shared_->cv.notify_all();
  }
  // The request's 20 steps ran with the task queued, and no slice among them.
  EXPECT_EQ(ran_at_done.get_future().get(), 0);
  while (task->ran < 5) std::this_thread::yield();  // then it runs, the engine being idle
  task->cancel = true;
  EXPECT_EQ(task->Wait().code(), StatusCode::kCancelled);
}

// Under constant load, background work gets its time fraction, no more (within one slice).
TEST_F(EngineBackgroundTest, UnderLoadSlicesGetTheirTimeFraction) {
  EngineLimits limits;
  limits.max_background_time_fraction = 0.2;
  Start(limits);
  {
    std::lock_guard<std::mutex> l(shared_->mu);
    shared_->step_time = std::chrono::microseconds(2000);
  }
  auto task = std::make_shared<Task>(-1, std::chrono::microseconds(3000));
  const auto start = Clock::now();
  auto f = GenerateAsync(engine_.get(), Req(150));  // ~0.3 s of steps
  {
    std::unique_lock<std::mutex> l(shared_->mu);
    shared_->cv.wait(l, [&] { return shared_->rows == 1; });
  }
  ASSERT_TRUE(engine_->SubmitBackground(task).ok());
  ASSERT_TRUE(f.get().ok());
  const double total = std::chrono::duration<double>(Clock::now() - start).count();
  const double background = static_cast<double>(task->slice_us.load()) * 1e-6;
  EXPECT_GT(task->ran, 0) << "background work starved under load";
  // 0.2 of the engine's time at most, plus the slice that may overdraw the credit.
  EXPECT_LE(background, 0.2 * total + 0.003) << background << " s of " << total << " s";
  task->cancel = true;
  EXPECT_EQ(task->Wait().code(), StatusCode::kCancelled);
}

TEST_F(EngineBackgroundTest, AThrowingSliceFailsOnlyItsTask) {
  Start();
  auto bad = std::make_shared<Task>(10);
  bad->throw_at = 2;
  auto good = std::make_shared<Task>(3);
  ASSERT_TRUE(engine_->SubmitBackground(bad).ok());
  ASSERT_TRUE(engine_->SubmitBackground(good).ok());
  const Status s = bad->Wait();
  EXPECT_EQ(s.code(), StatusCode::kInternal);
  EXPECT_NE(s.message().find("slice bug"), std::string::npos) << s.ToString();
  EXPECT_TRUE(good->Wait().ok());
  // Requests are unaffected.
  EXPECT_TRUE(GenerateAsync(engine_.get(), Req(3)).get().ok());
}

TEST_F(EngineBackgroundTest, ShutdownEndsTasksWithUnavailable) {
  Start();
  auto task = std::make_shared<Task>(-1, std::chrono::microseconds(100));
  ASSERT_TRUE(engine_->SubmitBackground(task).ok());
  while (task->ran < 2) std::this_thread::yield();
  engine_->Shutdown(Clock::now());
  EXPECT_EQ(task->Wait().code(), StatusCode::kUnavailable);
  EXPECT_EQ(task->finished_calls(), 1);
  EXPECT_EQ(engine_->SubmitBackground(std::make_shared<Task>(1)).code(), StatusCode::kUnavailable);
}

}  // namespace
}  // namespace softserve::core
