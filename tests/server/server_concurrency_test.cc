// The server's shared state under concurrent callers: the per-tenant budgets and the upload
// workers. Run in the regular suite and under ThreadSanitizer (scripts/check-sanitizers.sh),
// which checks every lock through server/sync.h's annotated absl::Mutex.
#include <atomic>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "server/service_context.h"
#include "server/upload_workers.h"

namespace softserve::server {
namespace {

TenantConfig Tenant(const std::string& name, int64_t max_inflight, int64_t max_tokens, int64_t max_uploads) {
  TenantConfig t;
  t.name = name;
  t.max_inflight = max_inflight;
  t.max_inflight_tokens = max_tokens;
  t.max_uploads = max_uploads;
  return t;
}

// Many threads take and release slots of two tenants: a tenant never holds more calls or tokens
// than its limits, and everything is released at the end.
TEST(ServerConcurrencyTest, InflightBudgetsHoldUnderContention) {
  InflightLimiter limiter;
  const TenantConfig a = Tenant("a", 3, 100, 1), b = Tenant("b", 5, 1000, 1);
  std::atomic<int> held_a{0}, held_b{0}, max_a{0}, max_b{0}, granted{0}, refused{0};
  auto worker = [&](const TenantConfig& t, std::atomic<int>& held, std::atomic<int>& max_held) {
    for (int i = 0; i < 2000; ++i) {
      auto slot = limiter.Acquire(t, 30);
      if (!slot.ok()) {
        EXPECT_EQ(slot.status().code(), core::StatusCode::kResourceExhausted);
        ++refused;
        continue;
      }
      ++granted;
      const int now = ++held;
      int seen = max_held.load();
      while (now > seen && !max_held.compare_exchange_weak(seen, now)) {
      }
      --held;  // before the slot goes
    }
  };
  std::vector<std::thread> threads;
  for (int i = 0; i < 4; ++i) threads.emplace_back(worker, std::cref(a), std::ref(held_a), std::ref(max_a));
  for (int i = 0; i < 4; ++i) threads.emplace_back(worker, std::cref(b), std::ref(held_b), std::ref(max_b));
  for (auto& t : threads) t.join();
  EXPECT_LE(max_a.load(), 3);  // 100 tokens / 30 per call also allow 3
  EXPECT_LE(max_b.load(), 5);
  EXPECT_GT(granted.load(), 0);
  EXPECT_EQ(granted.load() + refused.load(), 8 * 2000);
  EXPECT_EQ(limiter.InFlight("a"), 0);
  EXPECT_EQ(limiter.InFlight("b"), 0);
}

TEST(ServerConcurrencyTest, UploadSlotsHoldTheTenantAndServerLimits) {
  UploadLimiter limiter(3);
  const TenantConfig a = Tenant("a", 1, 1, 2), b = Tenant("b", 1, 1, 2);
  std::atomic<int> held{0}, held_a{0}, max_total{0}, max_a{0};
  auto bump = [](std::atomic<int>& counter, std::atomic<int>& max_seen) {
    const int now = ++counter;
    int seen = max_seen.load();
    while (now > seen && !max_seen.compare_exchange_weak(seen, now)) {
    }
  };
  auto worker = [&](const TenantConfig& t) {
    for (int i = 0; i < 2000; ++i) {
      auto slot = limiter.Acquire(t);
      if (!slot.ok()) continue;
      bump(held, max_total);
      if (t.name == "a") bump(held_a, max_a);
      if (t.name == "a") --held_a;
      --held;
    }
  };
  std::vector<std::thread> threads;
  for (int i = 0; i < 3; ++i) threads.emplace_back(worker, std::cref(a));
  for (int i = 0; i < 3; ++i) threads.emplace_back(worker, std::cref(b));
  for (auto& t : threads) t.join();
  EXPECT_LE(max_total.load(), 3);
  EXPECT_LE(max_a.load(), 2);
  // Everything was released: a fresh tenant gets its full allowance.
  auto first = limiter.Acquire(a), second = limiter.Acquire(a);
  EXPECT_TRUE(first.ok() && second.ok());
  EXPECT_EQ(limiter.Acquire(a).status().code(), core::StatusCode::kResourceExhausted);
}

// Tasks posted from many threads run exactly once, on the workers, and Stop (called twice, from
// two threads) runs what was posted before returning.
TEST(ServerConcurrencyTest, UploadWorkersRunEveryTaskOnce) {
  std::vector<std::atomic<int>> runs(4000);
  {
    UploadWorkers workers(2);
    std::vector<std::thread> posters;
    for (int p = 0; p < 4; ++p) {
      posters.emplace_back([&, p] {
        for (int i = 0; i < 1000; ++i) workers.Post([&runs, n = p * 1000 + i] { ++runs[n]; });
      });
    }
    for (auto& t : posters) t.join();
    std::thread stopper([&] { workers.Stop(); });
    workers.Stop();
    stopper.join();
    workers.Post([&runs] { ++runs[0]; });  // after Stop: runs on this thread
  }
  EXPECT_EQ(runs[0].load(), 2);
  for (size_t i = 1; i < runs.size(); ++i) ASSERT_EQ(runs[i].load(), 1) << i;
}

}  // namespace
}  // namespace softserve::server
