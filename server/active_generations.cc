#include "server/active_generations.h"

namespace softserve::server {

ActiveGenerations::Registration::~Registration() {
  std::lock_guard<std::mutex> lock(owner_->mu_);
  owner_->calls_.erase(it_);
}

std::unique_ptr<ActiveGenerations::Registration> ActiveGenerations::Register(const std::string& tenant,
                                                                             const std::string& request_id,
                                                                             core::CancelFlag end_early) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = calls_.emplace(std::make_pair(tenant, request_id), std::move(end_early));
  return std::make_unique<Registration>(this, it);
}

int64_t ActiveGenerations::EndEarly(const std::string& tenant, const std::string& request_id) {
  std::lock_guard<std::mutex> lock(mu_);
  auto [begin, end] = calls_.equal_range(std::make_pair(tenant, request_id));
  int64_t n = 0;
  for (auto it = begin; it != end; ++it, ++n) it->second->store(true);
  return n;
}

int64_t ActiveGenerations::size() {
  std::lock_guard<std::mutex> lock(mu_);
  return static_cast<int64_t>(calls_.size());
}

}  // namespace softserve::server
