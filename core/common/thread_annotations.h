// Clang thread-safety annotations (no-ops on other compilers). Prefixed SOFTSERVE_ because
// glog, pulled in by libtorch, owns the unprefixed macro names. They are checked: CI builds
// with clang and -Wthread-safety -Werror=thread-safety (scripts/check-sanitizers.sh).
#ifndef SOFTSERVE_CORE_COMMON_THREAD_ANNOTATIONS_H_
#define SOFTSERVE_CORE_COMMON_THREAD_ANNOTATIONS_H_

#if defined(__clang__)
#define SOFTSERVE_THREAD_ANNOTATION(x) __attribute__((x))
#else
#define SOFTSERVE_THREAD_ANNOTATION(x)
#endif

// A type that is a lock (core/common/mutex.h).
#define SOFTSERVE_CAPABILITY(name) SOFTSERVE_THREAD_ANNOTATION(capability(name))
// An RAII type that holds a lock for its lifetime.
#define SOFTSERVE_SCOPED_CAPABILITY SOFTSERVE_THREAD_ANNOTATION(scoped_lockable)
// The member is read and written only while holding `mu`.
#define SOFTSERVE_GUARDED_BY(mu) SOFTSERVE_THREAD_ANNOTATION(guarded_by(mu))
// The caller must hold `mu`.
#define SOFTSERVE_REQUIRES(...) SOFTSERVE_THREAD_ANNOTATION(requires_capability(__VA_ARGS__))
// The caller must not hold `mu` (the function takes it).
#define SOFTSERVE_EXCLUDES(...) SOFTSERVE_THREAD_ANNOTATION(locks_excluded(__VA_ARGS__))
#define SOFTSERVE_ACQUIRE(...) SOFTSERVE_THREAD_ANNOTATION(acquire_capability(__VA_ARGS__))
#define SOFTSERVE_RELEASE(...) SOFTSERVE_THREAD_ANNOTATION(release_capability(__VA_ARGS__))

#endif  // SOFTSERVE_CORE_COMMON_THREAD_ANNOTATIONS_H_
