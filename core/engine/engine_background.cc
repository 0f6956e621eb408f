// Background slices between serving iterations (engine.h, "Background work"; background.h).
#include <algorithm>
#include <chrono>
#include <exception>
#include <string>

#include "core/engine/engine.h"
#include "core/engine/engine_job.h"

namespace softserve::core {

Status Engine::SubmitBackground(std::shared_ptr<BackgroundTask> task) {
  if (task == nullptr) return InvalidArgumentError("no background task");
  {
    MutexLock lock(&mu_);
    if (stopping_) return UnavailableError("the server is shutting down");
    background_.push_back(std::move(task));
    ++background_count_;
  }
  cv_.NotifyOne();
  return OkStatus();
}

void Engine::EarnBackgroundTime(double serving_seconds) {
  if (background_count_.load() == 0) return;  // nothing waits for it
  const double f = std::clamp(limits_.max_background_time_fraction, 0.0, 0.9);
  // The bank holds at least two slices, so that a slice can always be earned.
  const double cap = std::max(1.0, 2 * background_slice_seconds_);
  background_credit_ = std::min(background_credit_ + serving_seconds * f / (1 - f), cap);
}

void Engine::MaybeRunBackground() {
  if (background_count_.load() == 0) return;  // the common case: no lock taken per iteration
  std::shared_ptr<BackgroundTask> task;
  bool idle = false;
  {
    MutexLock lock(&mu_);
    if (background_.empty() || stopping_) return;
    idle = queue_.empty() && running_.empty() && scoring_.empty();
    // Under load only a whole slice's worth of earned time starts one: a slice started on a
    // sliver of credit would delay requests by a full slice each time the credit turns positive.
    if (!idle && (background_credit_ <= 0 || background_credit_ < background_slice_seconds_)) return;
    task = std::move(background_.front());
    background_.pop_front();
  }
  Status status;
  bool more = false;
  if (task->cancelled()) {
    status = CancelledError("the background task was cancelled");
  } else {
    const TimePoint start = Clock::now();
    try {
      more = task->RunSlice();
    } catch (const std::exception& e) {
      status = InternalError(std::string("a background slice threw: ") + e.what());
    } catch (...) {
      status = InternalError("a background slice threw a non-standard exception");
    }
    const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
    // An idle engine gives background work all the time it has: the fraction is owed only for
    // stretches without idle time, so what was earned before is dropped.
    background_credit_ = idle ? 0 : background_credit_ - seconds;
    background_slice_seconds_ = background_slice_seconds_ == 0 ? seconds : 0.8 * background_slice_seconds_ + 0.2 * seconds;
  }
  if (status.ok() && more) {
    MutexLock lock(&mu_);
    background_.push_back(std::move(task));  // tasks take turns
    return;
  }
  --background_count_;  // before Finished: whoever it wakes sees the count without the task
  auto finished = [&] { task->Finished(status); };
  SafeCall(finished);
}

void Engine::FinishBackground(const Status& status) {
  std::deque<std::shared_ptr<BackgroundTask>> tasks;
  {
    MutexLock lock(&mu_);
    tasks.swap(background_);
  }
  for (auto& task : tasks) {
    --background_count_;
    auto finished = [&] { task->Finished(status); };
    SafeCall(finished);
  }
}

}  // namespace softserve::core
