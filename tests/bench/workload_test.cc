#include "bench/workload.h"

#include <gtest/gtest.h>

#include <set>

namespace softserve::bench {
namespace {

TEST(WorkloadTest, DeterministicWithinRangesAndCoversTasks) {
  WorkloadSpec spec;
  spec.tasks = 8;
  spec.requests = 400;
  auto a = GenerateWorkload(spec, 32128);
  auto b = GenerateWorkload(spec, 32128);
  ASSERT_EQ(a.size(), 400u);
  std::set<int> tasks;
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].input, b[i].input);
    EXPECT_EQ(a[i].task, b[i].task);
    EXPECT_GE(static_cast<int>(a[i].input.size()), spec.input_min);
    EXPECT_LE(static_cast<int>(a[i].input.size()), spec.input_max);
    EXPECT_EQ(a[i].input.back(), 1);
    EXPECT_GE(a[i].output_tokens, spec.output_min);
    EXPECT_LE(a[i].output_tokens, spec.output_max);
    EXPECT_EQ(a[i].arrival_s, 0.0);  // closed loop
    tasks.insert(a[i].task);
  }
  EXPECT_EQ(tasks.size(), 8u);
  spec.seed = 2;
  EXPECT_NE(GenerateWorkload(spec, 32128)[0].input, a[0].input);
}

TEST(WorkloadTest, PoissonArrivalsHaveTheRequestedRate) {
  WorkloadSpec spec;
  spec.arrival = Arrival::kPoisson;
  spec.rate_per_s = 20;
  spec.requests = 4000;
  auto items = GenerateWorkload(spec, 1000);
  for (size_t i = 1; i < items.size(); ++i) EXPECT_GE(items[i].arrival_s, items[i - 1].arrival_s);
  const double rate = items.size() / items.back().arrival_s;
  EXPECT_NEAR(rate, 20.0, 1.5);
}

}  // namespace
}  // namespace softserve::bench
