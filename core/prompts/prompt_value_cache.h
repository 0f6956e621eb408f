// PromptValueCache: a byte-bounded LRU of prompts with their values, keyed by tenant, name and
// version, for a replica of a shared store that does not hold every prompt in memory.
// Eviction only drops the cache's reference: a request holding a prompt keeps it valid, so
// memory is bounded by the budget plus the prompts of requests in flight. A prompt larger than
// the whole budget is returned to its caller but not kept. Thread-safe.
#ifndef SOFTSERVE_CORE_PROMPTS_PROMPT_VALUE_CACHE_H_
#define SOFTSERVE_CORE_PROMPTS_PROMPT_VALUE_CACHE_H_

#include <cstdint>
#include <list>
#include <map>
#include <mutex>
#include <string>

#include "core/prompts/prompt.h"

namespace softserve::core {

class PromptValueCache {
 public:
  explicit PromptValueCache(int64_t budget_bytes) : budget_(budget_bytes) {}

  // The cached prompt, made most recently used; null when absent.
  PromptPtr Find(const PromptKey& key);
  // Adds (or refreshes) a prompt with values, evicting the least recently used beyond the budget.
  void Put(const PromptPtr& prompt);
  void Erase(const PromptKey& key);

  int64_t bytes() const;
  int64_t entries() const;
  int64_t budget() const { return budget_; }

 private:
  static std::string KeyOf(const PromptKey& key);

  const int64_t budget_;
  mutable std::mutex mu_;
  std::list<PromptPtr> lru_;  // most recent first
  std::map<std::string, std::list<PromptPtr>::iterator> index_;
  int64_t bytes_ = 0;
};

}  // namespace softserve::core

#endif  // SOFTSERVE_CORE_PROMPTS_PROMPT_VALUE_CACHE_H_
