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
  const double f = std::clamp(limits_.max_background_time_fraction, 0.0, 0.9);
  background_credit_ = std::min(background_credit_ + serving_seconds * f / (1 - f), 1.0);
}

void Engine::MaybeRunBackground() {
  std::shared_ptr<BackgroundTask> task;
  bool idle = false;
  {
    MutexLock lock(&mu_);
    if (background_.empty() || stopping_) return;
    idle = queue_.empty() && running_.empty() && scoring_.empty();
    if (!idle && background_credit_ <= 0) return;
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
    if (!idle) background_credit_ -= std::chrono::duration<double>(Clock::now() - start).count();
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
