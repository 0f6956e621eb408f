// Mutex, MutexLock and CondVar: std::mutex and std::condition_variable with clang's
// thread-safety annotations, so that SOFTSERVE_GUARDED_BY on state in core/ is checked by the
// compiler (core/ builds with libtorch alone, so it cannot use absl::Mutex as server/ does).
//
// Waiting is written as a loop at the call site, where the analysis sees the lock held:
//   MutexLock lock(&mu_);
//   while (queue_.empty()) cv_.Wait(&mu_);
#ifndef SOFTSERVE_CORE_COMMON_MUTEX_H_
#define SOFTSERVE_CORE_COMMON_MUTEX_H_

#include <chrono>
#include <condition_variable>
#include <mutex>

#include "core/common/thread_annotations.h"

namespace softserve::core {

class SOFTSERVE_CAPABILITY("mutex") Mutex {
 public:
  void Lock() SOFTSERVE_ACQUIRE() { mu_.lock(); }
  void Unlock() SOFTSERVE_RELEASE() { mu_.unlock(); }

 private:
  friend class CondVar;
  std::mutex mu_;
};

// Holds `mu` from construction to destruction.
class SOFTSERVE_SCOPED_CAPABILITY MutexLock {
 public:
  explicit MutexLock(Mutex* mu) SOFTSERVE_ACQUIRE(mu) : mu_(mu) { mu_->Lock(); }
  ~MutexLock() SOFTSERVE_RELEASE() { mu_->Unlock(); }
  MutexLock(const MutexLock&) = delete;
  MutexLock& operator=(const MutexLock&) = delete;

 private:
  Mutex* const mu_;
};

class CondVar {
 public:
  // Releases `mu`, waits for a notification (or a spurious wake-up), re-acquires `mu`.
  void Wait(Mutex* mu) SOFTSERVE_REQUIRES(mu) {
    std::unique_lock<std::mutex> lock(mu->mu_, std::adopt_lock);
    cv_.wait(lock);
    lock.release();
  }
  // As Wait, giving up after `timeout`. Returns false on timeout.
  template <typename Rep, typename Period>
  bool WaitFor(Mutex* mu, std::chrono::duration<Rep, Period> timeout) SOFTSERVE_REQUIRES(mu) {
    std::unique_lock<std::mutex> lock(mu->mu_, std::adopt_lock);
    const bool notified = cv_.wait_for(lock, timeout) == std::cv_status::no_timeout;
    lock.release();
    return notified;
  }
  void NotifyOne() { cv_.notify_one(); }
  void NotifyAll() { cv_.notify_all(); }

 private:
  std::condition_variable cv_;
};

}  // namespace softserve::core

#endif  // SOFTSERVE_CORE_COMMON_MUTEX_H_
