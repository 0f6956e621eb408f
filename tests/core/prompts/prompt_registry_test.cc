#include "core/prompts/prompt_registry.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/testing/temp_dir.h"

#include <atomic>
#include <cstdlib>
#include <thread>

#include "core/common/file_util.h"

namespace softserve::core {
namespace {

NewPrompt Matrix(int64_t rows, int64_t dim, float fill) {
  NewPrompt p;
  p.rows = rows;
  p.dim = dim;
  p.values.assign(rows * dim, fill);
  return p;
}

class PromptRegistryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    registry_ = Open();
  }
  std::unique_ptr<PromptRegistry> Open() {
    auto store = PromptStore::Open(dir_);
    EXPECT_TRUE(store.ok());
    auto r = std::make_unique<PromptRegistry>(std::move(store).value());
    auto report = r->Load();
    EXPECT_TRUE(report.ok());
    return r;
  }
  testing::ScopedTempDir temp_{"softserve_registry_test"};
  const std::string dir_ = temp_.path();
  std::unique_ptr<PromptRegistry> registry_;
};

TEST_F(PromptRegistryTest, CreateGetVersionsAndLatest) {
  auto v1 = registry_->Create("acme", "sentiment", Matrix(3, 4, 1.f));
  ASSERT_TRUE(v1.ok()) << v1.status().ToString();
  EXPECT_EQ((*v1)->key().version, 1);
  auto v2 = registry_->Create("acme", "sentiment", Matrix(5, 4, 2.f));
  ASSERT_TRUE(v2.ok());
  EXPECT_EQ((*v2)->key().version, 2);
  EXPECT_EQ((*registry_->Get("acme", "sentiment"))->values()[0], 2.f);  // latest by default
  EXPECT_EQ((*registry_->Get("acme", "sentiment", 1))->rows(), 3);
  EXPECT_EQ(registry_->Get("acme", "sentiment", 3).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(registry_->Get("acme", "nope").status().code(), StatusCode::kNotFound);
  // Another tenant's namespace is separate.
  EXPECT_EQ(registry_->Get("other", "sentiment").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(registry_->Versions("acme", "sentiment").size(), 2u);
  EXPECT_EQ(registry_->Usage("acme").prompts, 2);
  EXPECT_EQ(registry_->Usage("acme").bytes, (3 + 5) * 4 * 4);
  EXPECT_NE((*v1)->checksum(), (*v2)->checksum());
}

TEST_F(PromptRegistryTest, RejectsUnsafeNames) {
  for (const std::string& bad : std::vector<std::string>{"", "../etc", "a/b", ".hidden", "-dash", "sp ace", "é", std::string(101, 'a'),
                                std::string("nul\0x", 5)}) {
    auto r = registry_->Create("acme", bad, Matrix(1, 4, 0.f));
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << "accepted name: " << bad;
    EXPECT_EQ(registry_->Create(bad, "ok", Matrix(1, 4, 0.f)).status().code(), StatusCode::kInvalidArgument);
  }
  EXPECT_TRUE(registry_->Create("acme", std::string(100, 'a'), Matrix(1, 4, 0.f)).ok());
  EXPECT_TRUE(registry_->Create("t-1", "A.b_c-9", Matrix(1, 4, 0.f)).ok());
  NewPrompt inconsistent = Matrix(2, 4, 0.f);
  inconsistent.values.pop_back();
  EXPECT_EQ(registry_->Create("acme", "x", inconsistent).status().code(), StatusCode::kInvalidArgument);
}

TEST_F(PromptRegistryTest, QuotasSayWhichLimit) {
  PromptQuota q;
  q.max_prompts = 2;
  ASSERT_TRUE(registry_->Create("acme", "a", Matrix(1, 4, 0.f), q).ok());
  ASSERT_TRUE(registry_->Create("acme", "b", Matrix(1, 4, 0.f), q).ok());
  auto over = registry_->Create("acme", "c", Matrix(1, 4, 0.f), q);
  EXPECT_EQ(over.status().code(), StatusCode::kResourceExhausted);
  EXPECT_NE(over.status().message().find("quota is 2"), std::string::npos);
  PromptQuota bytes;
  bytes.max_bytes = 100;
  auto big = registry_->Create("beta", "a", Matrix(10, 4, 0.f), bytes);  // 160 bytes
  EXPECT_EQ(big.status().code(), StatusCode::kResourceExhausted);
  EXPECT_NE(big.status().message().find("100 bytes"), std::string::npos);
  EXPECT_EQ(registry_->Usage("beta").prompts, 0);  // nothing changed
}

TEST_F(PromptRegistryTest, ListPagesByNameWithPrefix) {
  for (const char* n : {"b1", "a1", "a3", "a2", "c1"}) ASSERT_TRUE(registry_->Create("acme", n, Matrix(1, 4, 0.f)).ok());
  ASSERT_TRUE(registry_->Create("acme", "a2", Matrix(1, 4, 7.f)).ok());  // a2 has two versions
  auto p1 = registry_->List("acme", "a", 2, "");
  ASSERT_TRUE(p1.ok());
  ASSERT_EQ(p1->prompts.size(), 2u);
  EXPECT_EQ(p1->prompts[0]->key().name, "a1");
  EXPECT_EQ(p1->prompts[1]->key().name, "a2");
  EXPECT_EQ(p1->prompts[1]->key().version, 2);  // latest shown
  ASSERT_FALSE(p1->next_page_token.empty());
  auto p2 = registry_->List("acme", "a", 2, p1->next_page_token);
  ASSERT_TRUE(p2.ok());
  ASSERT_EQ(p2->prompts.size(), 1u);
  EXPECT_EQ(p2->prompts[0]->key().name, "a3");
  EXPECT_TRUE(p2->next_page_token.empty());
  auto all = registry_->List("acme", "", 100, "");
  EXPECT_EQ(all->prompts.size(), 5u);
  EXPECT_TRUE(registry_->List("nobody", "", 10, "")->prompts.empty());
  EXPECT_EQ(registry_->List("acme", "", 0, "").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(registry_->List("acme", "", 10, "zz-not-hex").status().code(), StatusCode::kInvalidArgument);
}

TEST_F(PromptRegistryTest, DeletedPromptStaysValidForItsUsersThenIsFreed) {
  auto created = registry_->Create("acme", "p", Matrix(2, 4, 3.f));
  ASSERT_TRUE(created.ok());
  PromptPtr in_use = *created;  // what a running request holds
  std::weak_ptr<const Prompt> watch = in_use;
  created = Status(StatusCode::kUnknown, "drop");
  ASSERT_TRUE(registry_->Delete("acme", "p").ok());
  EXPECT_EQ(registry_->Get("acme", "p").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(in_use->values()[7], 3.f);  // still readable by its request
  EXPECT_FALSE(watch.expired());
  in_use.reset();  // the request finishes
  EXPECT_TRUE(watch.expired());  // memory released
  EXPECT_EQ(registry_->Delete("acme", "p").code(), StatusCode::kNotFound);
  EXPECT_EQ(registry_->total_prompts(), 0);
}

TEST_F(PromptRegistryTest, VersionsAreNeverReusedEvenAcrossRestarts) {
  ASSERT_TRUE(registry_->Create("acme", "p", Matrix(1, 4, 1.f)).ok());
  ASSERT_TRUE(registry_->Create("acme", "p", Matrix(1, 4, 2.f)).ok());
  ASSERT_TRUE(registry_->Delete("acme", "p", 2).ok());
  EXPECT_EQ((*registry_->Create("acme", "p", Matrix(1, 4, 3.f)))->key().version, 3);
  ASSERT_TRUE(registry_->Delete("acme", "p").ok());
  registry_ = Open();  // restart
  auto again = registry_->Create("acme", "p", Matrix(1, 4, 4.f));
  ASSERT_TRUE(again.ok());
  EXPECT_EQ((*again)->key().version, 4);
}

// Deletes leave no per-name residue: after a tenant creates and deletes many names, its store
// directory holds one high-water file, and no deleted version number comes back.
TEST_F(PromptRegistryTest, DeletesLeaveOnlyOneHighWaterFilePerTenant) {
  for (int i = 0; i < 300; ++i) {
    const std::string name = "gone-" + std::to_string(i);
    ASSERT_TRUE(registry_->Create("acme", name, Matrix(1, 4, 1.f)).ok());
    ASSERT_TRUE(registry_->Delete("acme", name).ok());
  }
  ASSERT_TRUE(registry_->Create("acme", "kept", Matrix(1, 4, 1.f)).ok());
  const std::string tenant_dir = dir_ + "/t-" + std::string("61636d65");  // hex("acme")
  auto entries = ListDirectory(tenant_dir);
  ASSERT_TRUE(entries.ok());
  EXPECT_THAT(*entries, ::testing::UnorderedElementsAre("deleted-high-water", "p-6b657074"));  // hex("kept")
  registry_ = Open();
  // Every name created after a delete starts above the tenant's highest deleted version (300).
  EXPECT_EQ((*registry_->Get("acme", "kept"))->key().version, 301);
  auto again = registry_->Create("acme", "gone-0", Matrix(1, 4, 2.f));
  ASSERT_TRUE(again.ok());
  EXPECT_EQ((*again)->key().version, 301);
}

// Stores written before the compaction kept a "deleted" tombstone per name: they are folded
// into the tenant's high-water file at load and removed.
TEST_F(PromptRegistryTest, OldPerNameTombstonesAreCompactedAtLoad) {
  const std::string name_dir = dir_ + "/t-61636d65/p-6f6c64";  // acme / old
  ASSERT_TRUE(MakeDirectories(name_dir).ok());
  ASSERT_TRUE(WriteFileDurably(name_dir + "/deleted", "7").ok());
  registry_ = Open();
  EXPECT_FALSE(PathExists(name_dir));
  auto p = registry_->Create("acme", "old", Matrix(1, 4, 1.f));
  ASSERT_TRUE(p.ok());
  EXPECT_EQ((*p)->key().version, 8);
  registry_ = Open();
  EXPECT_EQ((*registry_->Create("acme", "other", Matrix(1, 4, 1.f)))->key().version, 8);
}

TEST_F(PromptRegistryTest, RestartReloadsEverythingIdentically) {
  NewPrompt m = Matrix(3, 4, 0.f);
  for (size_t i = 0; i < m.values.size(); ++i) m.values[i] = 0.25f * static_cast<float>(i) - 1.f;
  m.format = PromptFormat::kPeft;
  m.note = "from PEFT";
  auto before = registry_->Create("acme", "p", m);
  ASSERT_TRUE(before.ok());
  registry_ = Open();
  auto after = registry_->Get("acme", "p");
  ASSERT_TRUE(after.ok());
  EXPECT_EQ((*after)->values(), (*before)->values());
  EXPECT_EQ((*after)->checksum(), (*before)->checksum());
  EXPECT_EQ((*after)->format(), PromptFormat::kPeft);
  EXPECT_EQ((*after)->source_note(), "from PEFT");
  EXPECT_EQ((*after)->created_unix_ms(), (*before)->created_unix_ms());
}

TEST_F(PromptRegistryTest, ReadersNeverBlockOrSeeTornStateDuringWrites) {
  ASSERT_TRUE(registry_->Create("acme", "stable", Matrix(2, 4, 1.f)).ok());
  std::atomic<bool> stop{false};
  std::atomic<int64_t> reads{0}, bad{0};
  std::vector<std::thread> readers;
  for (int r = 0; r < 3; ++r) {
    readers.emplace_back([&] {
      while (!stop) {
        auto p = registry_->Get("acme", "stable");
        if (!p.ok() || (*p)->values()[0] != 1.f) ++bad;
        auto churn = registry_->Get("acme", "churn");
        if (churn.ok() && (*churn)->values().size() != static_cast<size_t>((*churn)->rows() * 4)) ++bad;
        ++reads;
      }
    });
  }
  for (int i = 0; i < 200; ++i) {
    ASSERT_TRUE(registry_->Create("acme", "churn", Matrix(1 + i % 5, 4, float(i))).ok());
    if (i % 3 == 0) {
      ASSERT_TRUE(registry_->Delete("acme", "churn").ok());
    }
  }
  stop = true;
  for (auto& t : readers) t.join();
  EXPECT_EQ(bad.load(), 0);
  EXPECT_GT(reads.load(), 0);
}

}  // namespace
}  // namespace softserve::core
