#include "core/prompts/prompt_value_cache.h"

namespace softserve::core {

std::string PromptValueCache::KeyOf(const PromptKey& key) {
  return key.tenant + '\0' + key.name + '\0' + std::to_string(key.version);
}

PromptPtr PromptValueCache::Find(const PromptKey& key) {
  std::lock_guard<std::mutex> l(mu_);
  auto it = index_.find(KeyOf(key));
  if (it == index_.end()) return nullptr;
  lru_.splice(lru_.begin(), lru_, it->second);
  return *it->second;
}

void PromptValueCache::Put(const PromptPtr& prompt) {
  if (prompt == nullptr || !prompt->has_values() || prompt->bytes() > budget_) return;
  std::lock_guard<std::mutex> l(mu_);
  const std::string key = KeyOf(prompt->key());
  if (auto it = index_.find(key); it != index_.end()) {
    lru_.splice(lru_.begin(), lru_, it->second);
    return;
  }
  lru_.push_front(prompt);
  index_[key] = lru_.begin();
  bytes_ += prompt->bytes();
  while (bytes_ > budget_) {
    const PromptPtr& victim = lru_.back();
    bytes_ -= victim->bytes();
    index_.erase(KeyOf(victim->key()));
    lru_.pop_back();
  }
}

void PromptValueCache::Erase(const PromptKey& key) {
  std::lock_guard<std::mutex> l(mu_);
  auto it = index_.find(KeyOf(key));
  if (it == index_.end()) return;
  bytes_ -= (*it->second)->bytes();
  lru_.erase(it->second);
  index_.erase(it);
}

int64_t PromptValueCache::bytes() const {
  std::lock_guard<std::mutex> l(mu_);
  return bytes_;
}

int64_t PromptValueCache::entries() const {
  std::lock_guard<std::mutex> l(mu_);
  return static_cast<int64_t>(lru_.size());
}

}  // namespace softserve::core
