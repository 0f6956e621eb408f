// Low-priority work the engine thread runs between serving iterations (Engine::SubmitBackground):
// prompt training on the model being served, in slices of bounded cost.
//
// When a slice runs (engine.h, "Background work"): whenever the engine has no request queued or
// running, and, while it serves, for at most EngineLimits::max_background_time_fraction of its
// time (earned by serving iterations, paid by slices), so that background work can neither take
// the engine from requests for longer than one slice at a time nor starve under constant load.
// Tasks take turns, one slice each.
#ifndef SOFTSERVE_CORE_ENGINE_BACKGROUND_H_
#define SOFTSERVE_CORE_ENGINE_BACKGROUND_H_

#include "core/common/status.h"

namespace softserve::core {

class BackgroundTask {
 public:
  virtual ~BackgroundTask() = default;
  // One slice, on the engine thread; keep it short (it delays requests that arrive meanwhile).
  // Returns true while the task has more to do.
  virtual bool RunSlice() = 0;
  // Called exactly once, on the engine thread, when the task will not run again: OK when
  // RunSlice returned false, Cancelled when cancelled() said so (checked before each slice),
  // Internal when a slice threw (the message says what), Unavailable when the engine shut down.
  // Must not block.
  virtual void Finished(const Status& status) = 0;
  // Read on the engine thread before each slice; may be set from any thread.
  virtual bool cancelled() const { return false; }
};

}  // namespace softserve::core

#endif  // SOFTSERVE_CORE_ENGINE_BACKGROUND_H_
