// SOFTSERVE_TARGET_CLONES: an AVX2 clone of a function beside the default one, chosen at load
// time by an ifunc resolver, for the few CPU kernels of our own (SOFTSERVE_TARGET_CLONES_AVX512
// adds an AVX-512 one). Empty under ThreadSanitizer: the resolver runs before its runtime is up
// and crashes on its hooks.
#ifndef SOFTSERVE_CORE_MODEL_TARGET_CLONES_H_
#define SOFTSERVE_CORE_MODEL_TARGET_CLONES_H_

#if defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define SOFTSERVE_NO_CLONES 1
#endif
#endif
#if defined(__SANITIZE_THREAD__) || defined(SOFTSERVE_NO_CLONES)
#define SOFTSERVE_TARGET_CLONES
#define SOFTSERVE_TARGET_CLONES_AVX512
#else
#define SOFTSERVE_TARGET_CLONES __attribute__((target_clones("avx2", "default")))
// For code written in 16-float vectors, which only AVX-512 holds in one register.
#define SOFTSERVE_TARGET_CLONES_AVX512 __attribute__((target_clones("avx512f", "avx2", "default")))
#endif

#endif  // SOFTSERVE_CORE_MODEL_TARGET_CLONES_H_
