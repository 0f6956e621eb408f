// PgPromptStore against a real PostgreSQL (tests/testing/postgres_server.h): migrations when
// replicas start together, versions assigned in the database under concurrent uploads, quotas
// across replicas, tenant isolation, the change feed and NOTIFY, and outages.
#include "store/pg_prompt_store.h"

#include <gtest/gtest.h>
#include <poll.h>

#include <algorithm>
#include <set>
#include <thread>

#include "tests/testing/postgres_server.h"

namespace softserve::store {
namespace {

using core::NewPrompt;
using core::PromptKey;
using core::StatusCode;

NewPrompt Matrix(int64_t rows, int64_t dim, float base) {
  NewPrompt p;
  p.rows = rows;
  p.dim = dim;
  for (int64_t i = 0; i < rows * dim; ++i) p.values.push_back(base + 0.25f * static_cast<float>(i));
  p.format = core::PromptFormat::kPeft;
  p.note = "PEFT: test";
  return p;
}

class PgPromptStoreTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(pg_.ok()) << pg_.error(); }

  std::unique_ptr<PgPromptStore> OpenStore() {
    auto s = PgPromptStore::Open(pg_.url());
    EXPECT_TRUE(s.ok()) << s.status().ToString();
    return s.ok() ? std::move(s).value() : nullptr;
  }

  testing::PostgresServer pg_;
};

TEST(RedactConnectionUrlTest, HidesPasswordsInBothForms) {
  EXPECT_EQ(RedactConnectionUrl("postgresql://app:s3cret@db:5432/softserve"), "postgresql://app:***@db:5432/softserve");
  EXPECT_EQ(RedactConnectionUrl("postgres://app@db/x?password=s3cret&sslmode=require"),
            "postgres://app@db/x?password=***&sslmode=require");
  EXPECT_EQ(RedactConnectionUrl("host=db user=app password='s 3' dbname=x"), "host=db user=app password=*** dbname=x");
  EXPECT_EQ(RedactConnectionUrl("postgresql://db/x"), "postgresql://db/x");
}

// Four replicas starting at once against an empty database: each migration is applied once.
TEST_F(PgPromptStoreTest, ReplicasStartingTogetherMigrateOnce) {
  std::vector<std::thread> threads;
  std::vector<core::Status> results(4);
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&, i] { results[i] = PgPromptStore::Open(pg_.url()).status(); });
  }
  for (auto& t : threads) t.join();
  for (const auto& s : results) EXPECT_TRUE(s.ok()) << s.ToString();
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(*store->SchemaVersion(), static_cast<int64_t>(PgPromptStoreMigrations().size()));
  auto conn = PgConnection::Connect(pg_.url());
  ASSERT_TRUE(conn.ok());
  auto rows = (*conn)->Exec("SELECT count(*)::int8 FROM softserve_schema");
  ASSERT_TRUE(rows.ok()) << rows.status().ToString();
  EXPECT_EQ(rows->Int64(0, 0), static_cast<int64_t>(PgPromptStoreMigrations().size()));
}

// What one replica stores, another reads back exactly, with its metadata and checksum.
TEST_F(PgPromptStoreTest, AnotherReplicaReadsWhatOneStored) {
  auto a = OpenStore(), b = OpenStore();
  ASSERT_TRUE(a && b);
  NewPrompt m = Matrix(3, 4, -1.5f);
  auto put = a->Insert("alice", "sentiment", m, {});
  ASSERT_TRUE(put.ok()) << put.status().ToString();
  EXPECT_EQ((*put)->key().version, 1);
  auto got = b->Get(PromptKey{"alice", "sentiment", 0});
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ((*got)->values(), m.values);
  EXPECT_EQ((*got)->rows(), 3);
  EXPECT_EQ((*got)->dim(), 4);
  EXPECT_EQ((*got)->format(), core::PromptFormat::kPeft);
  EXPECT_EQ((*got)->source_note(), "PEFT: test");
  EXPECT_EQ((*got)->checksum(), (*put)->checksum());
  EXPECT_EQ((*got)->created_unix_ms(), (*put)->created_unix_ms());
  auto all = b->LoadAll();
  ASSERT_TRUE(all.ok()) << all.status().ToString();
  ASSERT_EQ(all->prompts.size(), 1u);
  EXPECT_EQ(all->prompts[0]->values(), m.values);
}

// Two replicas uploading the same name at the same moment: every upload gets its own version.
TEST_F(PgPromptStoreTest, ConcurrentUploadsOfOneNameGetDistinctVersions) {
  auto a = OpenStore(), b = OpenStore();
  ASSERT_TRUE(a && b);
  std::vector<int64_t> versions;
  std::mutex mu;
  auto upload = [&](PgPromptStore* store, float base) {
    for (int i = 0; i < 10; ++i) {
      auto p = store->Insert("alice", "task", Matrix(2, 2, base + i), {});
      ASSERT_TRUE(p.ok()) << p.status().ToString();
      std::lock_guard<std::mutex> l(mu);
      versions.push_back((*p)->key().version);
    }
  };
  std::thread ta(upload, a.get(), 0.f), tb(upload, b.get(), 100.f);
  ta.join();
  tb.join();
  std::sort(versions.begin(), versions.end());
  ASSERT_EQ(versions.size(), 20u);
  for (int i = 0; i < 20; ++i) EXPECT_EQ(versions[i], i + 1);
  EXPECT_EQ((*a->Get(PromptKey{"alice", "task", 0}))->key().version, 20);
}

// Quotas hold across replicas: of ten concurrent uploads under a five-prompt quota, five land.
TEST_F(PgPromptStoreTest, QuotaHoldsAcrossReplicas) {
  auto a = OpenStore(), b = OpenStore();
  ASSERT_TRUE(a && b);
  core::PromptQuota quota;
  quota.max_prompts = 5;
  std::atomic<int> ok{0}, exhausted{0};
  auto upload = [&](PgPromptStore* store) {
    for (int i = 0; i < 5; ++i) {
      auto p = store->Insert("bob", "n" + std::to_string(i), Matrix(1, 2, 1.f), quota);
      if (p.ok()) {
        ++ok;
      } else {
        EXPECT_EQ(p.status().code(), StatusCode::kResourceExhausted) << p.status().ToString();
        EXPECT_NE(p.status().message().find("prompt count"), std::string::npos);
        ++exhausted;
      }
    }
  };
  std::thread ta(upload, a.get()), tb(upload, b.get());
  ta.join();
  tb.join();
  EXPECT_EQ(ok.load(), 5);
  EXPECT_EQ(exhausted.load(), 5);
  core::PromptQuota bytes;
  bytes.max_bytes = 16;
  auto big = a->Insert("carol", "x", Matrix(2, 3, 0.f), bytes);  // 24 bytes
  EXPECT_EQ(big.status().code(), StatusCode::kResourceExhausted);
}

// Every query is scoped by tenant: another tenant's name is NotFound for reads and deletes, and
// its prompt stays.
TEST_F(PgPromptStoreTest, TenantsNeverSeeEachOthersPrompts) {
  auto store = OpenStore();
  ASSERT_TRUE(store);
  ASSERT_TRUE(store->Insert("alice", "secret", Matrix(1, 2, 7.f), {}).ok());
  EXPECT_EQ(store->Get(PromptKey{"mallory", "secret", 0}).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(store->Get(PromptKey{"mallory", "secret", 1}).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(store->Delete("mallory", "secret", 0).status().code(), StatusCode::kNotFound);
  EXPECT_TRUE(store->Get(PromptKey{"alice", "secret", 1}).ok());
  EXPECT_EQ(store->Insert("../x", "a", Matrix(1, 1, 0.f), {}).status().code(), StatusCode::kInvalidArgument);
}

// Deleted versions are never reused, and deletes appear in the change feed in order, with NOTIFY.
TEST_F(PgPromptStoreTest, DeletesRaiseTheHighWaterAndFeedTheChanges) {
  auto store = OpenStore();
  ASSERT_TRUE(store);
  auto listener = PgConnection::Connect(pg_.url());
  ASSERT_TRUE(listener.ok());
  ASSERT_TRUE((*listener)->Exec(std::string("LISTEN ") + PgPromptStore::kChannel).ok());
  ASSERT_TRUE(store->Insert("alice", "t", Matrix(1, 2, 0.f), {}).ok());  // v1
  ASSERT_TRUE(store->Insert("alice", "t", Matrix(1, 2, 1.f), {}).ok());  // v2
  auto removed = store->Delete("alice", "t", 2);
  ASSERT_TRUE(removed.ok()) << removed.status().ToString();
  EXPECT_EQ(*removed, std::vector<int64_t>{2});
  EXPECT_EQ((*store->Insert("alice", "t", Matrix(1, 2, 2.f), {}))->key().version, 3);
  EXPECT_EQ(*store->Delete("alice", "t", 0), (std::vector<int64_t>{1, 3}));
  EXPECT_EQ((*store->Insert("alice", "t", Matrix(1, 2, 3.f), {}))->key().version, 4);
  EXPECT_EQ(store->Delete("alice", "t", 9).status().code(), StatusCode::kNotFound);

  auto changes = store->ChangesSince(0, 100);
  ASSERT_TRUE(changes.ok()) << changes.status().ToString();
  std::vector<std::pair<int64_t, bool>> seen;
  for (size_t i = 0; i < changes->size(); ++i) {
    if (i > 0) {
      EXPECT_GT((*changes)[i].change_id, (*changes)[i - 1].change_id);
    }
    seen.emplace_back((*changes)[i].key.version, (*changes)[i].deleted);
  }
  const std::vector<std::pair<int64_t, bool>> expected = {{1, false}, {2, false}, {2, true}, {3, false},
                                                          {1, true},  {3, true},  {4, false}};
  EXPECT_EQ(seen, expected);
  auto tail = store->ChangesSince(changes->at(4).change_id, 100);
  ASSERT_TRUE(tail.ok());
  EXPECT_EQ(tail->size(), 2u);
  auto load = store->LoadAll();
  ASSERT_TRUE(load.ok());
  EXPECT_EQ(load->last_change_id, changes->back().change_id);
  ASSERT_EQ(load->deleted_high_water.size(), 1u);
  EXPECT_EQ(load->deleted_high_water[0], (std::pair<std::string, int64_t>{"alice", 3}));

  // The listener got one notification per change, carrying its id.
  std::set<std::string> got;
  for (int i = 0; i < 50 && got.size() < changes->size(); ++i) {
    pollfd p{(*listener)->socket(), POLLIN, 0};
    ::poll(&p, 1, 100);
    auto n = (*listener)->TakeNotifications(PgPromptStore::kChannel);
    ASSERT_TRUE(n.ok()) << n.status().ToString();
    got.insert(n->begin(), n->end());
  }
  std::set<std::string> ids;
  for (const auto& c : *changes) ids.insert(std::to_string(c.change_id));
  EXPECT_EQ(got, ids);
}

// PostgreSQL down: calls fail with Unavailable saying so (and never print the password); when it
// is back, the same store object reconnects and works.
TEST_F(PgPromptStoreTest, AnOutageIsUnavailableThenRecovers) {
  auto store = OpenStore();
  ASSERT_TRUE(store);
  ASSERT_TRUE(store->Insert("alice", "t", Matrix(1, 2, 0.f), {}).ok());
  ASSERT_TRUE(pg_.Stop()) << pg_.error();
  auto put = store->Insert("alice", "t", Matrix(1, 2, 1.f), {});
  EXPECT_EQ(put.status().code(), StatusCode::kUnavailable) << put.status().ToString();
  EXPECT_NE(put.status().message().find("unreachable"), std::string::npos) << put.status().message();
  EXPECT_EQ(store->Get(PromptKey{"alice", "t", 1}).status().code(), StatusCode::kUnavailable);
  const std::string with_password = "postgresql://softserve:hunter2@127.0.0.1:" + std::to_string(pg_.port()) +
                                    "/postgres?connect_timeout=2";
  auto down = PgPromptStore::Open(with_password);
  EXPECT_EQ(down.status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(down.status().message().find("hunter2"), std::string::npos) << down.status().message();
  ASSERT_TRUE(pg_.Start()) << pg_.error();
  auto again = store->Insert("alice", "t", Matrix(1, 2, 1.f), {});
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ((*again)->key().version, 2);
  EXPECT_TRUE(store->Get(PromptKey{"alice", "t", 2}).ok());
}

}  // namespace
}  // namespace softserve::store
