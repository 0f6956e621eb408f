// SpinPool: a few worker threads that run the tiles of one CPU product at a time, and spin
// between products instead of sleeping.
//
// Why not libtorch's OpenMP pool: a decode step is ~40 products of 30-1500 us with a little
// serial work between them. libgomp's workers go to sleep after ~100 spins whenever the process
// has more OpenMP threads than CPUs (every thread that ever ran a parallel libtorch operator keeps
// a team), and on a virtual machine waking a sleeping vCPU costs tens of microseconds, paid on
// every product. These workers spin for kSpinMicros after each product (the gap to the next one
// is far shorter within a step), then sleep until the next product arrives.
//
// Threading: Run may be called from any thread. One product runs on the pool at a time; a caller
// that finds the pool busy runs its product alone on its own thread (correct, just not parallel).
// The destructor joins the workers; no Run may be in progress then.
#ifndef SOFTSERVE_CORE_MODEL_SPIN_POOL_H_
#define SOFTSERVE_CORE_MODEL_SPIN_POOL_H_

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace softserve::core {

class SpinPool {
 public:
  // How long a worker spins for the next product before sleeping.
  static constexpr int64_t kSpinMicros = 200;

  // threads counts the caller: threads - 1 workers (none for threads <= 1).
  explicit SpinPool(int threads);
  ~SpinPool();
  SpinPool(const SpinPool&) = delete;
  SpinPool& operator=(const SpinPool&) = delete;

  int threads() const { return static_cast<int>(workers_.size()) + 1; }

  // Calls task(context, i) exactly once for every i in [0, n), on the caller and the workers,
  // and returns when all calls have returned. task must not throw.
  using Task = void (*)(void* context, int64_t i);
  void Run(int64_t n, Task task, void* context);

 private:
  void WorkerLoop();
  void Work();  // claims and runs tasks of the current product until none is left

  std::vector<std::thread> workers_;
  std::mutex run_mu_;  // one product at a time

  // The product: written by Run only while generation_ is odd and no worker is inside_.
  Task task_ = nullptr;
  void* context_ = nullptr;
  int64_t n_ = 0;
  std::atomic<int64_t> next_{0};     // next index to claim
  std::atomic<int64_t> pending_{0};  // indices not finished yet

  std::atomic<uint64_t> generation_{0};  // even: a product is published; odd: Run is writing one
  std::atomic<int> inside_{0};           // workers reading the current product
  std::atomic<int> sleepers_{0};
  std::atomic<bool> stop_{false};
  std::mutex sleep_mu_;
  std::condition_variable wake_;
};

// The process's pool for the CPU kernels of our own (packed products, decode attention, RMS
// norm): `threads` counting the caller, 1 for none. ConfigureCpuRuntime (device.h) sets it; not
// while a kernel is running (model load time).
void SetCpuWorkerThreads(int threads);
int CpuWorkerThreads();
// The pool, or null when there is none.
std::shared_ptr<SpinPool> CpuWorkerPool();

// Calls f(begin, end) on consecutive chunks of [0, n) of `grain` indices (the last one shorter)
// on the process's pool, or f(0, n) on the caller when there is no pool or only one chunk.
template <class F>
void ParallelFor(int64_t n, int64_t grain, const F& f) {
  const int64_t chunks = grain <= 0 ? 1 : (n + grain - 1) / grain;
  const std::shared_ptr<SpinPool> pool = chunks > 1 ? CpuWorkerPool() : nullptr;
  if (pool == nullptr) {
    if (n > 0) f(int64_t{0}, n);
    return;
  }
  struct Chunks {
    const F* f;
    int64_t n, grain;
  } ctx{&f, n, grain};
  pool->Run(
      chunks,
      [](void* p, int64_t i) {
        const auto* c = static_cast<const Chunks*>(p);
        const int64_t begin = i * c->grain;
        (*c->f)(begin, begin + c->grain < c->n ? begin + c->grain : c->n);
      },
      &ctx);
}

}  // namespace softserve::core

#endif  // SOFTSERVE_CORE_MODEL_SPIN_POOL_H_
