#include "core/model/spin_pool.h"

#include <chrono>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define SOFTSERVE_CPU_RELAX() _mm_pause()
#else
#define SOFTSERVE_CPU_RELAX() std::this_thread::yield()
#endif

namespace softserve::core {

SpinPool::SpinPool(int threads) {
  for (int i = 1; i < threads; ++i) workers_.emplace_back([this] { WorkerLoop(); });
}

SpinPool::~SpinPool() {
  {
    std::lock_guard<std::mutex> lock(sleep_mu_);
    stop_.store(true);
  }
  wake_.notify_all();
  for (std::thread& t : workers_) t.join();
}

void SpinPool::Work() {
  for (int64_t i = next_.fetch_add(1); i < n_; i = next_.fetch_add(1)) {
    task_(context_, i);
    pending_.fetch_sub(1, std::memory_order_release);
  }
}

void SpinPool::Run(int64_t n, Task task, void* context) {
  std::unique_lock<std::mutex> lock(run_mu_, std::try_to_lock);
  if (!lock.owns_lock() || workers_.empty() || n <= 1) {
    for (int64_t i = 0; i < n; ++i) task(context, i);
    return;
  }
  // Odd generation: workers that wake now see no product. Then wait for any worker still reading
  // the previous one (it finds nothing left to claim and leaves).
  generation_.fetch_add(1);
  while (inside_.load() != 0) SOFTSERVE_CPU_RELAX();
  task_ = task;
  context_ = context;
  n_ = n;
  next_.store(0);
  pending_.store(n);
  generation_.fetch_add(1);  // even: published
  if (sleepers_.load() > 0) {
    { std::lock_guard<std::mutex> sleep_lock(sleep_mu_); }
    wake_.notify_all();
  }
  Work();
  while (pending_.load(std::memory_order_acquire) != 0) SOFTSERVE_CPU_RELAX();
}

void SpinPool::WorkerLoop() {
  uint64_t seen = 0;  // the generation before any product (this thread may start after the first one)
  for (;;) {
    // Wait for a published product newer than the last one this worker looked at.
    const auto spin_until = std::chrono::steady_clock::now() + std::chrono::microseconds(kSpinMicros);
    uint64_t g = generation_.load();
    for (int spins = 0; (g == seen || (g & 1) != 0) && !stop_.load(std::memory_order_relaxed); ++spins) {
      if ((spins & 255) == 255 && std::chrono::steady_clock::now() > spin_until) {
        std::unique_lock<std::mutex> lock(sleep_mu_);
        sleepers_.fetch_add(1);
        wake_.wait(lock, [&] {
          const uint64_t now = generation_.load();
          return stop_.load() || (now != seen && (now & 1) == 0);
        });
        sleepers_.fetch_sub(1);
      } else {
        SOFTSERVE_CPU_RELAX();
      }
      g = generation_.load();
    }
    if (stop_.load()) return;
    seen = g;
    inside_.fetch_add(1);
    if (generation_.load() == seen) Work();  // else Run is writing a newer product: look again
    inside_.fetch_sub(1);
  }
}

namespace {
std::mutex g_pool_mu;
std::shared_ptr<SpinPool> g_pool;  // guarded by g_pool_mu; null: no pool
}  // namespace

void SetCpuWorkerThreads(int threads) {
  std::shared_ptr<SpinPool> pool = threads > 1 ? std::make_shared<SpinPool>(threads) : nullptr;
  std::lock_guard<std::mutex> lock(g_pool_mu);
  g_pool.swap(pool);
}

int CpuWorkerThreads() {
  const std::shared_ptr<SpinPool> pool = CpuWorkerPool();
  return pool == nullptr ? 1 : pool->threads();
}

std::shared_ptr<SpinPool> CpuWorkerPool() {
  std::lock_guard<std::mutex> lock(g_pool_mu);
  return g_pool;
}

}  // namespace softserve::core
