// DevicePromptCache: soft prompts resident on the model's device, so that a prompt is copied
// to the device once, not on every admission (a tenant's requests reuse the same few prompts).
// A byte-bounded LRU keyed by the prompt's tenant, name and version (versions are never reused,
// so a key always means the same values; prompts of different tenants never share an entry).
//
// Eviction drops only the cache's reference: tensors are reference-counted, so a prompt that a
// Prefill in progress holds stays valid until that Prefill is done ("never touches a prompt in
// use"). A prompt larger than the whole budget is copied and returned but not kept.
// Where no copy is needed (float32 on the CPU: the tensor aliases the prompt's own values),
// Get returns the alias and caches nothing, since the alias lives only as long as the Prompt.
// Not thread-safe: the engine thread's runner owns it.
#ifndef SOFTSERVE_CORE_ENGINE_PROMPT_CACHE_H_
#define SOFTSERVE_CORE_ENGINE_PROMPT_CACHE_H_

#include <cstdint>
#include <list>
#include <map>
#include <string>

#include <ATen/core/Tensor.h>

#include "core/prompts/prompt.h"

namespace softserve::core {

struct PromptCacheStats {
  int64_t hits = 0;
  int64_t copies = 0;     // host -> device copies (misses)
  int64_t evictions = 0;
  int64_t bytes = 0;      // resident now
  int64_t entries = 0;
};

class DevicePromptCache {
 public:
  DevicePromptCache(int64_t max_bytes, at::TensorOptions options);

  // The prompt as a [rows, dim] tensor with the cache's options (device and dtype).
  at::Tensor Get(const Prompt& prompt);
  const PromptCacheStats& stats() const { return stats_; }
  void Clear();

 private:
  struct Entry {
    std::string key;
    at::Tensor tensor;
    int64_t bytes = 0;
  };
  const int64_t max_bytes_;
  const at::TensorOptions options_;
  std::list<Entry> lru_;  // most recently used first
  std::map<std::string, std::list<Entry>::iterator> index_;
  PromptCacheStats stats_;
};

}  // namespace softserve::core

#endif  // SOFTSERVE_CORE_ENGINE_PROMPT_CACHE_H_
