// Mutex, MutexLock and CondVar for server/: absl::Mutex and absl::CondVar with abseil's
// thread-safety annotations (checked by clang's -Wthread-safety in the sanitizer build), plus,
// in ThreadSanitizer builds only, the TSan mutex hooks around every lock, unlock and wait:
// Debian's abseil is built without TSan, so without them TSan could not see these locks and
// would report every access they guard as a race. Waiting is a loop at the call site, where the
// analysis sees the lock held:
//   MutexLock lock(&mu_);
//   while (tasks_.empty()) cv_.Wait(&mu_);
#ifndef SOFTSERVE_SERVER_SYNC_H_
#define SOFTSERVE_SERVER_SYNC_H_

#include <absl/base/thread_annotations.h>
#include <absl/synchronization/mutex.h>
#include <absl/time/time.h>

#if defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define SOFTSERVE_TSAN_HOOKS 1
#endif
#endif
#if defined(__SANITIZE_THREAD__)
#define SOFTSERVE_TSAN_HOOKS 1
#endif
#if SOFTSERVE_TSAN_HOOKS
#include <sanitizer/tsan_interface.h>
#endif

namespace softserve::server {

class ABSL_LOCKABLE Mutex {
 public:
  void Lock() ABSL_EXCLUSIVE_LOCK_FUNCTION() {
    BeforeLock();
    mu_.Lock();
    AfterLock();
  }
  void Unlock() ABSL_UNLOCK_FUNCTION() {
    BeforeUnlock();
    mu_.Unlock();
    AfterUnlock();
  }

 private:
  friend class CondVar;
#if SOFTSERVE_TSAN_HOOKS
  void BeforeLock() { __tsan_mutex_pre_lock(&mu_, 0); }
  void AfterLock() { __tsan_mutex_post_lock(&mu_, 0, 0); }
  void BeforeUnlock() { __tsan_mutex_pre_unlock(&mu_, 0); }
  void AfterUnlock() { __tsan_mutex_post_unlock(&mu_, 0); }
#else
  void BeforeLock() {}
  void AfterLock() {}
  void BeforeUnlock() {}
  void AfterUnlock() {}
#endif
  absl::Mutex mu_;
};

class ABSL_SCOPED_LOCKABLE MutexLock {
 public:
  explicit MutexLock(Mutex* mu) ABSL_EXCLUSIVE_LOCK_FUNCTION(mu) : mu_(mu) { mu_->Lock(); }
  ~MutexLock() ABSL_UNLOCK_FUNCTION() { mu_->Unlock(); }
  MutexLock(const MutexLock&) = delete;
  MutexLock& operator=(const MutexLock&) = delete;

 private:
  Mutex* const mu_;
};

class CondVar {
 public:
  // Releases `mu`, waits for a signal (or a spurious wake-up), re-acquires `mu`.
  void Wait(Mutex* mu) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    mu->BeforeUnlock();
    mu->AfterUnlock();
    cv_.Wait(&mu->mu_);
    mu->BeforeLock();
    mu->AfterLock();
  }
  // As Wait, giving up after `timeout`. Returns true on timeout.
  bool WaitWithTimeout(Mutex* mu, absl::Duration timeout) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    mu->BeforeUnlock();
    mu->AfterUnlock();
    const bool timed_out = cv_.WaitWithTimeout(&mu->mu_, timeout);
    mu->BeforeLock();
    mu->AfterLock();
    return timed_out;
  }
  void Signal() { cv_.Signal(); }
  void SignalAll() { cv_.SignalAll(); }

 private:
  absl::CondVar cv_;
};

}  // namespace softserve::server

#endif  // SOFTSERVE_SERVER_SYNC_H_
