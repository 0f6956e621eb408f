// SpinPool (spin_pool.h): every index runs exactly once, with the workers spinning, asleep, or
// busy with another caller's product, and the pool torn down cleanly (ThreadSanitizer runs this).
#include "core/model/spin_pool.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <string>
#include <utility>
#include <thread>
#include <vector>

namespace softserve::core {
namespace {

struct Counts {
  std::vector<std::atomic<int>> hits;
  explicit Counts(int64_t n) : hits(n) {}
};

void Hit(void* context, int64_t i) { static_cast<Counts*>(context)->hits[i].fetch_add(1); }

void ExpectEachOnce(const Counts& c) {
  for (size_t i = 0; i < c.hits.size(); ++i) ASSERT_EQ(c.hits[i].load(), 1) << "index " << i;
}

TEST(SpinPoolTest, RunsEveryIndexExactlyOnce) {
  SpinPool pool(3);
  EXPECT_EQ(pool.threads(), 3);
  for (int64_t n : {0, 1, 2, 3, 7, 64, 1000}) {
    for (int rep = 0; rep < 50; ++rep) {
      Counts c(n);
      pool.Run(n, &Hit, &c);
      ExpectEachOnce(c);
    }
  }
}

// How many of 40 one-millisecond tasks ran on a thread other than the caller.
int TasksOnWorkers(SpinPool& pool) {
  struct Ctx {
    std::thread::id caller = std::this_thread::get_id();
    std::atomic<int> total{0}, elsewhere{0};
  } ctx;
  pool.Run(
      40,
      [](void* p, int64_t) {
        auto* c = static_cast<Ctx*>(p);
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
        c->total.fetch_add(1);
        if (std::this_thread::get_id() != c->caller) c->elsewhere.fetch_add(1);
      },
      &ctx);
  EXPECT_EQ(ctx.total.load(), 40);
  return ctx.elsewhere.load();
}

TEST(SpinPoolTest, WorkersTakeAShareOfLongTasks) {
  SpinPool pool(2);  // its worker may not even have started yet
  EXPECT_GT(TasksOnWorkers(pool), 0) << "the worker ran none of 40 one-millisecond tasks";
}

TEST(SpinPoolTest, SleepingWorkersWakeForTheNextProduct) {
  SpinPool pool(3);
  for (int rep = 0; rep < 3; ++rep) {
    // Longer than the spin: the workers are asleep when the product arrives.
    std::this_thread::sleep_for(std::chrono::microseconds(SpinPool::kSpinMicros * 5));
    EXPECT_GT(TasksOnWorkers(pool), 0) << "no sleeping worker woke for 40 one-millisecond tasks";
    Counts c(100);
    std::this_thread::sleep_for(std::chrono::microseconds(SpinPool::kSpinMicros * 5));
    pool.Run(100, &Hit, &c);
    ExpectEachOnce(c);
  }
}

TEST(SpinPoolTest, ConcurrentCallersEachGetTheirWholeProduct) {
  SpinPool pool(2);
  std::vector<std::thread> callers;
  std::atomic<int> failures{0};
  for (int t = 0; t < 4; ++t) {
    callers.emplace_back([&] {
      for (int rep = 0; rep < 200; ++rep) {
        Counts c(33);
        pool.Run(33, &Hit, &c);
        for (auto& h : c.hits) {
          if (h.load() != 1) failures.fetch_add(1);
        }
      }
    });
  }
  for (std::thread& t : callers) t.join();
  EXPECT_EQ(failures.load(), 0);
}

TEST(SpinPoolTest, OneThreadRunsOnTheCaller) {
  SpinPool pool(1);
  EXPECT_EQ(pool.threads(), 1);
  Counts c(10);
  pool.Run(10, &Hit, &c);
  ExpectEachOnce(c);
}

TEST(ParallelForTest, CoversEveryIndexOnceInChunksOnTheProcessPool) {
  const int configured = CpuWorkerThreads();
  for (int threads : {1, 3}) {
    SetCpuWorkerThreads(threads);
    EXPECT_EQ(CpuWorkerThreads(), threads);
    EXPECT_EQ(CpuWorkerPool() == nullptr, threads == 1);
    for (auto shape : {std::pair<int64_t, int64_t>{0, 4}, {1, 4}, {5, 4}, {64, 4}, {65, 64}, {1000, 7}, {9, 0}}) {
      const int64_t n = shape.first, grain = shape.second;  // (clang cannot capture structured bindings)
      SCOPED_TRACE("threads=" + std::to_string(threads) + " n=" + std::to_string(n) + " grain=" + std::to_string(grain));
      Counts c(n);
      std::atomic<int> chunks{0}, oversized{0};
      ParallelFor(n, grain, [&](int64_t begin, int64_t end) {
        chunks.fetch_add(1);
        if (threads > 1 && grain > 0 && end - begin > grain) oversized.fetch_add(1);  // no pool: one call
        for (int64_t i = begin; i < end; ++i) c.hits[i].fetch_add(1);
      });
      ExpectEachOnce(c);
      EXPECT_EQ(oversized.load(), 0);
      if (grain > 0) {
        EXPECT_EQ(chunks.load(), threads == 1 || n <= grain ? (n > 0 ? 1 : 0) : (n + grain - 1) / grain);
      }
    }
  }
  SetCpuWorkerThreads(configured);
}

}  // namespace
}  // namespace softserve::core
