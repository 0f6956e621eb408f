#include "core/engine/prompt_cache.h"

#include <ATen/ATen.h>

namespace softserve::core {

DevicePromptCache::DevicePromptCache(int64_t max_bytes, at::TensorOptions options)
    : max_bytes_(max_bytes), options_(options) {}

at::Tensor DevicePromptCache::Get(const Prompt& prompt) {
  const at::Tensor host = at::from_blob(const_cast<float*>(prompt.values().data()),
                                        {prompt.rows(), prompt.dim()}, at::kFloat);
  if (options_.device().is_cpu() && options_.dtype() == at::kFloat) return host;  // no copy needed
  const std::string key = prompt.key().ToString();
  if (auto it = index_.find(key); it != index_.end()) {
    lru_.splice(lru_.begin(), lru_, it->second);
    ++stats_.hits;
    return it->second->tensor;
  }
  at::Tensor tensor = host.to(options_, /*non_blocking=*/false, /*copy=*/true);
  ++stats_.copies;
  const int64_t bytes = tensor.numel() * static_cast<int64_t>(tensor.element_size());
  if (bytes > max_bytes_) return tensor;
  while (stats_.bytes + bytes > max_bytes_ && !lru_.empty()) {
    stats_.bytes -= lru_.back().bytes;
    index_.erase(lru_.back().key);
    lru_.pop_back();
    ++stats_.evictions;
  }
  lru_.push_front(Entry{key, tensor, bytes});
  index_[key] = lru_.begin();
  stats_.bytes += bytes;
  stats_.entries = static_cast<int64_t>(lru_.size());
  return tensor;
}

void DevicePromptCache::Clear() {
  lru_.clear();
  index_.clear();
  stats_.bytes = 0;
  stats_.entries = 0;
}

}  // namespace softserve::core
