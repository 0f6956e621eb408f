// PromptValueCache (LRU by bytes) and a registry over a shared store that holds only some
// prompts' values: descriptions listed, values read on first use, evicted by the budget, and an
// uncached prompt Unavailable while the store is down. The store here is a fake (logic only); the
// PostgreSQL store is tested for real in tests/store and tests/e2e.
#include "core/prompts/prompt_value_cache.h"

#include <gtest/gtest.h>

#include <map>

#include "core/prompts/prompt_registry.h"

namespace softserve::core {
namespace {

PromptPtr Make(const std::string& name, int64_t version, int64_t floats, float fill = 1.f) {
  return std::make_shared<const Prompt>(PromptKey{"t", name, version}, 1, floats, std::vector<float>(floats, fill),
                                        PromptFormat::kRaw, 0);
}

TEST(PromptValueCacheTest, EvictsTheLeastRecentlyUsedBeyondTheBudget) {
  PromptValueCache cache(100);  // bytes: 25 floats
  cache.Put(Make("a", 1, 10));
  cache.Put(Make("b", 1, 10));
  EXPECT_NE(cache.Find(PromptKey{"t", "a", 1}), nullptr);  // a is now the most recent
  cache.Put(Make("c", 1, 10));                             // 120 bytes: b goes
  EXPECT_EQ(cache.Find(PromptKey{"t", "b", 1}), nullptr);
  EXPECT_NE(cache.Find(PromptKey{"t", "a", 1}), nullptr);
  EXPECT_NE(cache.Find(PromptKey{"t", "c", 1}), nullptr);
  EXPECT_EQ(cache.bytes(), 80);
  cache.Put(Make("huge", 1, 30));  // larger than the whole budget: not kept, nothing evicted
  EXPECT_EQ(cache.Find(PromptKey{"t", "huge", 1}), nullptr);
  EXPECT_EQ(cache.entries(), 2);
  cache.Erase(PromptKey{"t", "a", 1});
  EXPECT_EQ(cache.bytes(), 40);
  EXPECT_EQ(cache.Find(PromptKey{"t", "a", 1}), nullptr);
  EXPECT_EQ(cache.Find(PromptKey{"u", "c", 1}), nullptr) << "keys include the tenant";
}

// A shared store in memory, that can be "down" and counts its reads.
class FakeSharedStore : public SharedPromptStore {
 public:
  StatusOr<PromptPtr> Fetch(const PromptKey& key) override {
    ++fetches;
    if (down) return UnavailableError("PostgreSQL unreachable at postgresql://host/db");
    auto it = prompts.find(key.name + "@" + std::to_string(key.version));
    if (it == prompts.end()) return NotFoundError("absent");
    return it->second;
  }
  StatusOr<PromptPtr> Insert(const std::string& tenant, const std::string& name, const NewPrompt& p,
                             const PromptQuota&) override {
    if (down) return UnavailableError("PostgreSQL unreachable");
    auto made = std::make_shared<const Prompt>(PromptKey{tenant, name, ++version}, p.rows, p.dim, p.values, p.format, 0);
    prompts[name + "@" + std::to_string(version)] = made;
    return PromptPtr(made);
  }
  StatusOr<std::vector<int64_t>> Delete(const std::string&, const std::string&, int64_t) override {
    return NotFoundError("unused");
  }
  StatusOr<SharedStoreLoad> LoadShared() override {
    SharedStoreLoad load;
    for (const auto& [k, p] : prompts) load.prompts.push_back(p->DescriptionOnly());
    return load;
  }
  std::map<std::string, PromptPtr> prompts;
  int64_t version = 0;
  int fetches = 0;
  bool down = false;
};

TEST(SharedRegistryTest, ValuesAreReadOnFirstUseWithinTheBudget) {
  FakeSharedStore store;
  {
    PromptRegistry writer(&store, PromptRegistry::kDefaultValueCacheBytes);
    for (const char* name : {"a", "b", "c"}) {
      NewPrompt p;
      p.rows = 2;
      p.dim = 8;  // 64 bytes each
      p.values.assign(16, name[0] - 'a' + 1.f);
      ASSERT_TRUE(writer.Create("t", name, std::move(p)).ok());
    }
  }
  PromptRegistry replica(&store, 150);  // room for two prompts' values
  ASSERT_TRUE(replica.Load().ok());
  EXPECT_EQ(replica.total_prompts(), 3);
  EXPECT_EQ(replica.total_bytes(), 3 * 64);
  auto page = replica.List("t", "", 10, "");
  ASSERT_TRUE(page.ok());
  ASSERT_EQ(page->prompts.size(), 3u);
  EXPECT_FALSE(page->prompts[0]->has_values()) << "a replica lists descriptions";
  EXPECT_EQ(store.fetches, 0);

  auto a = replica.Get("t", "a");
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  EXPECT_TRUE((*a)->has_values());
  EXPECT_EQ((*a)->values(), std::vector<float>(16, 1.f));
  EXPECT_EQ((*a)->checksum(), page->prompts[0]->checksum());
  EXPECT_TRUE(replica.Get("t", "a").ok());
  EXPECT_EQ(store.fetches, 1) << "a second use is served from memory";
  ASSERT_TRUE(replica.Get("t", "b").ok());
  ASSERT_TRUE(replica.Get("t", "c").ok());  // evicts a, the least recently used
  EXPECT_EQ(store.fetches, 3);
  EXPECT_LE(replica.value_cache()->bytes(), 150);

  store.down = true;
  EXPECT_TRUE(replica.Get("t", "c").ok()) << "a cached prompt serves while the store is down";
  auto missed = replica.Get("t", "a");
  EXPECT_EQ(missed.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(missed.status().message().find("not in this replica's memory"), std::string::npos) << missed.status().message();
  EXPECT_EQ(missed.status().message().find("postgresql://"), std::string::npos) << "no store address to clients";
  EXPECT_EQ(replica.Get("t", "zzz").status().code(), StatusCode::kNotFound) << "an unknown name is still NotFound";
  store.down = false;
  EXPECT_TRUE(replica.Get("t", "a").ok());
}

}  // namespace
}  // namespace softserve::core
