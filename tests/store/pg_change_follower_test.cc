// Replicas' registries over one real PostgreSQL, kept in step by PgChangeFollower: uploads and
// deletes through one replica reach the other, a follower that starts late catches up by change
// id, and an outage leaves cached prompts servable and heals when PostgreSQL returns.
#include "store/pg_change_follower.h"

#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "tests/testing/postgres_server.h"

namespace softserve::store {
namespace {

using core::NewPrompt;
using core::PromptRegistry;
using core::StatusCode;
using Clock = std::chrono::steady_clock;

NewPrompt Matrix(float base) {
  NewPrompt p;
  p.rows = 2;
  p.dim = 3;
  for (int i = 0; i < 6; ++i) p.values.push_back(base + static_cast<float>(i));
  return p;
}

// Polls `pred` every 10 ms for up to 5 s; returns the seconds it took, or -1.
template <typename Pred>
double SecondsUntil(Pred pred) {
  const auto start = Clock::now();
  while (Clock::now() - start < std::chrono::seconds(5)) {
    if (pred()) return std::chrono::duration<double>(Clock::now() - start).count();
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return -1;
}

struct Replica {
  explicit Replica(const std::string& url, bool follow = true) {
    auto s = PgPromptStore::Open(url);
    EXPECT_TRUE(s.ok()) << s.status().ToString();
    store = std::move(s).value();
    registry = std::make_unique<PromptRegistry>(store.get(), PromptRegistry::kDefaultValueCacheBytes);
    EXPECT_TRUE(registry->Load().ok());
    if (follow) Follow(url);
  }
  void Follow(const std::string& url) {
    follower = std::make_unique<PgChangeFollower>(url, store.get(), registry.get(), std::chrono::milliseconds(500));
  }
  std::unique_ptr<PgPromptStore> store;
  std::unique_ptr<PromptRegistry> registry;
  std::unique_ptr<PgChangeFollower> follower;  // destroyed first
  ~Replica() { follower.reset(); }
};

class PgChangeFollowerTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(pg_.ok()) << pg_.error(); }
  testing::PostgresServer pg_;
};

TEST_F(PgChangeFollowerTest, UploadsAndDeletesReachTheOtherReplica) {
  Replica a(pg_.url()), b(pg_.url());
  auto created = a.registry->Create("alice", "task", Matrix(1.f));
  ASSERT_TRUE(created.ok()) << created.status().ToString();
  const double seen = SecondsUntil([&] { return b.registry->Get("alice", "task").ok(); });
  ASSERT_GE(seen, 0) << "the upload never reached replica b";
  EXPECT_LT(seen, 1.0);
  EXPECT_EQ((*b.registry->Get("alice", "task"))->values(), (*created)->values());
  EXPECT_EQ(b.registry->Usage("alice").prompts, 1);

  // The same name through both replicas at once: two versions, both everywhere.
  std::thread ta([&] { EXPECT_TRUE(a.registry->Create("alice", "task", Matrix(2.f)).ok()); });
  std::thread tb([&] { EXPECT_TRUE(b.registry->Create("alice", "task", Matrix(3.f)).ok()); });
  ta.join();
  tb.join();
  for (Replica* r : {&a, &b}) {
    EXPECT_GE(SecondsUntil([&] { return r->registry->Versions("alice", "task").size() == 3; }), 0);
  }
  EXPECT_EQ((*a.registry->Get("alice", "task"))->key().version, 3);
  EXPECT_EQ((*b.registry->Get("alice", "task"))->key().version, 3);

  int64_t deleted = 0;
  ASSERT_TRUE(b.registry->Delete("alice", "task", 0, &deleted).ok());
  EXPECT_EQ(deleted, 3);
  EXPECT_EQ(b.registry->Get("alice", "task").status().code(), StatusCode::kNotFound);
  const double gone = SecondsUntil([&] { return !a.registry->Get("alice", "task").ok(); });
  ASSERT_GE(gone, 0) << "the delete never reached replica a";
  EXPECT_LT(gone, 1.0);
  EXPECT_EQ(a.registry->Usage("alice").prompts, 0);
  EXPECT_EQ(a.registry->Get("mallory", "task").status().code(), StatusCode::kNotFound);
}

// Changes made before a follower starts (no notification will ever come for them) are read from
// the change feed after the id the registry loaded.
TEST_F(PgChangeFollowerTest, ALateFollowerCatchesUpByChangeId) {
  Replica a(pg_.url()), b(pg_.url(), /*follow=*/false);
  ASSERT_TRUE(a.registry->Create("alice", "x", Matrix(1.f)).ok());
  ASSERT_TRUE(a.registry->Create("alice", "y", Matrix(2.f)).ok());
  ASSERT_TRUE(a.registry->Create("bob", "x", Matrix(3.f)).ok());
  ASSERT_TRUE(a.registry->Delete("alice", "y").ok());
  EXPECT_FALSE(b.registry->Get("alice", "x").ok());
  b.Follow(pg_.url());
  EXPECT_GE(SecondsUntil([&] { return b.registry->Get("bob", "x").ok(); }), 0);
  EXPECT_TRUE(b.registry->Get("alice", "x").ok());
  EXPECT_EQ(b.registry->Get("alice", "y").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(b.registry->total_prompts(), 2);
}

// PostgreSQL down: prompts a replica has keep serving, writes are Unavailable and say why, the
// follower reports the outage; after a restart writes work again and reach the other replica.
TEST_F(PgChangeFollowerTest, AnOutageKeepsServingAndHeals) {
  Replica a(pg_.url()), b(pg_.url());
  ASSERT_TRUE(a.registry->Create("alice", "kept", Matrix(1.f)).ok());
  ASSERT_GE(SecondsUntil([&] { return b.registry->Get("alice", "kept").ok(); }), 0);
  ASSERT_TRUE(pg_.Stop()) << pg_.error();
  EXPECT_GE(SecondsUntil([&] { return !b.follower->connected(); }), 0) << "the outage was not noticed";
  EXPECT_TRUE(b.registry->Get("alice", "kept").ok());
  auto down = a.registry->Create("alice", "new", Matrix(2.f));
  EXPECT_EQ(down.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(down.status().message().find("unreachable"), std::string::npos) << down.status().message();
  EXPECT_EQ(b.registry->Delete("alice", "kept").code(), StatusCode::kUnavailable);
  EXPECT_TRUE(a.registry->Get("alice", "kept").ok()) << "a failed delete must not drop the prompt";
  ASSERT_TRUE(pg_.Start()) << pg_.error();
  ASSERT_TRUE(a.registry->Create("alice", "new", Matrix(2.f)).ok());
  EXPECT_GE(SecondsUntil([&] { return b.registry->Get("alice", "new").ok(); }), 0);
  EXPECT_TRUE(b.follower->connected());
  EXPECT_GT(b.follower->reconnects(), 0);
}

}  // namespace
}  // namespace softserve::store
