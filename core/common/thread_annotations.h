// Clang thread-safety annotations (no-ops on other compilers). Prefixed SOFTSERVE_ because
// glog, pulled in by libtorch, owns the unprefixed macro names.
#ifndef SOFTSERVE_CORE_COMMON_THREAD_ANNOTATIONS_H_
#define SOFTSERVE_CORE_COMMON_THREAD_ANNOTATIONS_H_

#if defined(__clang__)
#define SOFTSERVE_THREAD_ANNOTATION(x) __attribute__((x))
#else
#define SOFTSERVE_THREAD_ANNOTATION(x)
#endif

// The member is read and written only while holding `mu`.
#define SOFTSERVE_GUARDED_BY(mu) SOFTSERVE_THREAD_ANNOTATION(guarded_by(mu))
// The caller must hold `mu`.
#define SOFTSERVE_REQUIRES(mu) SOFTSERVE_THREAD_ANNOTATION(requires_capability(mu))

#endif  // SOFTSERVE_CORE_COMMON_THREAD_ANNOTATIONS_H_
