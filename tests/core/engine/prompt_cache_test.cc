// The device-resident prompt cache: one copy per prompt, LRU eviction within its byte budget,
// entries per tenant, evicted tensors still valid for their holders; and the runner copying a
// prompt once across admissions. Runs on the CPU in bfloat16, where a copy is real.
#include "core/engine/prompt_cache.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include "core/engine/t5_runner.h"
#include "tests/testing/engine_testing.h"
#include "tests/testing/reference_data.h"

namespace softserve::core {
namespace {

const at::TensorOptions kBf16 = at::TensorOptions().dtype(at::kBFloat16);

PromptPtr MakePrompt(const std::string& tenant, const std::string& name, float value, int64_t rows = 4) {
  return testing::PromptFromTensor(at::full({rows, 8}, value), name, tenant);
}

int64_t Bytes(int64_t rows) { return rows * 8 * 2; }  // bfloat16

TEST(DevicePromptCacheTest, CopiesOncePerPromptAndReturnsItsValues) {
  DevicePromptCache cache(1 << 20, kBf16);
  PromptPtr a = MakePrompt("t", "a", 1.5f);
  at::Tensor first = cache.Get(*a);
  at::Tensor second = cache.Get(*a);
  EXPECT_EQ(cache.stats().copies, 1);
  EXPECT_EQ(cache.stats().hits, 1);
  EXPECT_EQ(first.scalar_type(), at::kBFloat16);
  EXPECT_TRUE(at::equal(second, at::full({4, 8}, 1.5f, kBf16)));
  EXPECT_EQ(cache.stats().bytes, Bytes(4));
}

TEST(DevicePromptCacheTest, EvictsTheLeastRecentlyUsedWithinItsBudget) {
  DevicePromptCache cache(2 * Bytes(4), kBf16);
  PromptPtr a = MakePrompt("t", "a", 1), b = MakePrompt("t", "b", 2), c = MakePrompt("t", "c", 3);
  cache.Get(*a);
  cache.Get(*b);
  cache.Get(*a);                        // a is now the most recent
  at::Tensor held_b = cache.Get(*b);    // ... then b
  cache.Get(*c);                        // evicts a
  EXPECT_EQ(cache.stats().evictions, 1);
  EXPECT_LE(cache.stats().bytes, 2 * Bytes(4));
  EXPECT_EQ(cache.stats().entries, 2);
  const int64_t copies = cache.stats().copies;
  cache.Get(*b);
  EXPECT_EQ(cache.stats().copies, copies);  // b stayed
  cache.Get(*a);
  EXPECT_EQ(cache.stats().copies, copies + 1);  // a was evicted
  EXPECT_TRUE(at::equal(held_b, at::full({4, 8}, 2.0f, kBf16)));
}

TEST(DevicePromptCacheTest, AnEvictedPromptStaysValidForWhoHoldsIt) {
  DevicePromptCache cache(Bytes(4), kBf16);
  PromptPtr a = MakePrompt("t", "a", 7), b = MakePrompt("t", "b", 9);
  at::Tensor held = cache.Get(*a);
  cache.Get(*b);  // evicts a from the cache, not from its holder
  EXPECT_EQ(cache.stats().evictions, 1);
  EXPECT_TRUE(at::equal(held, at::full({4, 8}, 7.0f, kBf16)));
}

TEST(DevicePromptCacheTest, TenantsNeverShareAnEntryAndOversizedPromptsAreNotKept) {
  DevicePromptCache cache(Bytes(4), kBf16);
  PromptPtr mine = MakePrompt("alice", "task", 1), theirs = MakePrompt("bob", "task", 2);
  EXPECT_TRUE(at::equal(cache.Get(*mine), at::full({4, 8}, 1.0f, kBf16)));
  EXPECT_TRUE(at::equal(cache.Get(*theirs), at::full({4, 8}, 2.0f, kBf16)));
  EXPECT_EQ(cache.stats().copies, 2);
  PromptPtr big = MakePrompt("alice", "big", 3, 64);
  EXPECT_TRUE(at::equal(cache.Get(*big), at::full({64, 8}, 3.0f, kBf16)));
  EXPECT_EQ(cache.stats().entries, 1);
  EXPECT_LE(cache.stats().bytes, Bytes(4));
}

TEST(DevicePromptCacheTest, Float32OnTheCpuNeedsNoCopy) {
  DevicePromptCache cache(1 << 20, at::TensorOptions().dtype(at::kFloat));
  PromptPtr a = MakePrompt("t", "a", 1);
  EXPECT_EQ(cache.Get(*a).data_ptr<float>(), a->values().data());
  EXPECT_EQ(cache.stats().copies, 0);
  EXPECT_EQ(cache.stats().entries, 0);
}

// Admitting requests with the same prompt again and again copies it to the device once.
TEST(DevicePromptCacheTest, TheRunnerCopiesAPromptOnceAcrossAdmissions) {
  ModelOptions options;
  options.dtype = DType::kBFloat16;
  auto model = T5Model::Load(testing::ReferenceModelDir("t5-tiny-v1_0"), options);
  ASSERT_TRUE(model.ok()) << model.status().ToString();
  T5Runner runner(std::move(model).value(), KvCacheShape{8, 16, 32});
  const PromptPtr p = testing::PromptFromTensor(at::full({3, runner.config().d_model}, 0.25f), "a", "t");
  const std::vector<int64_t> ids = {5, 6, 7, 1};
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(runner.Prefill({PrefillItem{&ids, p.get(), 1}}).ok());
  }
  EXPECT_EQ(runner.prompt_cache_stats().copies, 1);
  EXPECT_EQ(runner.prompt_cache_stats().hits, 2);
}

}  // namespace
}  // namespace softserve::core
