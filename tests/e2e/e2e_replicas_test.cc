// Two and three real server processes sharing one real PostgreSQL (--store-url): a prompt uploaded through
// one is served by the other with Hugging Face's outputs, the same name uploaded through both at
// once gets two versions, a delete through one is refused by the other, and no tenant reaches
// another's prompt through either replica; a PostgreSQL outage under traffic; kill -9 of a
// replica during an upload.
#include <gtest/gtest.h>

#include <chrono>
#include <future>
#include <thread>

#include <signal.h>

#include "store/pg_connection.h"
#include "tests/e2e/server_fixture.h"
#include "tests/testing/peft_fixture.h"
#include "tests/testing/postgres_server.h"
#include "tests/testing/reference_data.h"

namespace softserve {
namespace {

using client::PromptUpload;
namespace v1 = ::softserve::v1;
using Clock = std::chrono::steady_clock;

v1::GenerateRequest Request(const std::vector<int64_t>& ids, const std::string& prompt, bool beam) {
  v1::GenerateRequest r;
  r.add_inputs()->mutable_ids()->mutable_ids()->Add(ids.begin(), ids.end());
  r.mutable_prompt()->set_name(prompt);
  r.mutable_parameters()->set_max_new_tokens(12);
  if (beam) {
    r.mutable_parameters()->set_mode(v1::DECODING_MODE_BEAM);
    r.mutable_parameters()->set_num_beams(4);
  }
  return r;
}

// A replica of the tiny reference model on `pg`'s shared store.
testing::ServerOptions SharedStoreOptions(const testing::PostgresServer& pg) {
  testing::ServerOptions o{testing::ReferenceModelDir("t5-tiny-v1_0")};
  o.extra_args = {"--store-url", pg.url()};
  return o;
}

std::vector<int64_t> Tail(const std::vector<int64_t>& ids) { return {ids.begin() + 1, ids.end()}; }

// Seconds until `client` gets a status other than `while_code` for `req` (-1 after 10 s).
double SecondsUntilNot(client::Client* client, const v1::GenerateRequest& req, grpc::StatusCode while_code) {
  const auto start = Clock::now();
  while (Clock::now() - start < std::chrono::seconds(10)) {
    if (client->Generate(req).status.error_code() != while_code) {
      return std::chrono::duration<double>(Clock::now() - start).count();
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return -1;
}

TEST(E2eReplicasTest, ReplicasShareOnePostgresRegistry) {
  testing::PostgresServer pg;
  ASSERT_TRUE(pg.ok()) << pg.error();
  const std::string model = testing::ReferenceModelDir("t5-tiny-v1_0");
  testing::ReferenceCases cases("t5-tiny-v1_0");
  testing::ServerOptions o{model};
  o.extra_args = {"--store-url", pg.url()};
  testing::ServerProcess a(o), b(o), c(o);  // three replicas on one store
  auto alice_a = a.ClientFor("alice"), alice_b = b.ClientFor("alice"), alice_c = c.ClientFor("alice"),
       bob_a = a.ClientFor("bob"), bob_b = b.ClientFor("bob");

  PromptUpload raw;
  raw.name = "task-a";
  raw.bytes = testing::RawPromptFile(cases.Float("prompt.a"));
  auto up = alice_a->UploadPrompt(raw);
  ASSERT_TRUE(up.ok()) << up.status.error_message();
  EXPECT_EQ(up.value.version(), 1);

  const auto row0 = cases.Ids("generate.row0.input_ids");
  const double reached = SecondsUntilNot(alice_b.get(), Request(row0, "task-a", false), grpc::StatusCode::NOT_FOUND);
  ASSERT_GE(reached, 0) << "replica b never served the prompt uploaded through a";
  EXPECT_LT(reached, 1.0);
  EXPECT_GE(SecondsUntilNot(alice_c.get(), Request(row0, "task-a", false), grpc::StatusCode::NOT_FOUND), 0)
      << "replica c never served it";
  for (int i = 0; i < 3; ++i) {
    const std::string r = "row" + std::to_string(i);
    const auto ids = cases.Ids("generate." + r + ".input_ids");
    for (bool beam : {false, true}) {
      auto g = alice_b->Generate(Request(ids, "task-a", beam));
      ASSERT_TRUE(g.ok()) << g.status.error_message();
      const std::string key = "prompt.a." + r + (beam ? ".beam4" : ".greedy");
      EXPECT_EQ(std::vector<int64_t>(g.value.results(0).output_ids().begin(), g.value.results(0).output_ids().end()),
                Tail(cases.Ids(key)))
          << key;
    }
  }

  // Another tenant, through either replica: as if the prompt did not exist.
  for (auto* bob : {bob_a.get(), bob_b.get()}) {
    EXPECT_EQ(bob->Generate(Request(row0, "task-a", false)).status.error_code(), grpc::StatusCode::NOT_FOUND);
    v1::DeletePromptRequest del;
    del.set_name("task-a");
    EXPECT_EQ(bob->DeletePrompt(del).status.error_code(), grpc::StatusCode::NOT_FOUND);
  }

  // The same name through both replicas at once: two new versions, never one lost.
  auto fa = std::async(std::launch::async, [&] { return alice_a->UploadPrompt(raw); });
  auto fb = std::async(std::launch::async, [&] { return alice_b->UploadPrompt(raw); });
  auto ra = fa.get(), rb = fb.get();
  ASSERT_TRUE(ra.ok() && rb.ok()) << ra.status.error_message() << " / " << rb.status.error_message();
  EXPECT_NE(ra.value.version(), rb.value.version());
  EXPECT_EQ(std::max(ra.value.version(), rb.value.version()), 3);

  // Delete through b: a refuses new requests within a second.
  v1::DeletePromptRequest del;
  del.set_name("task-a");
  auto deleted = alice_b->DeletePrompt(del);
  ASSERT_TRUE(deleted.ok()) << deleted.status.error_message();
  const double refused = SecondsUntilNot(alice_a.get(), Request(row0, "task-a", false), grpc::StatusCode::OK);
  ASSERT_GE(refused, 0) << "replica a kept serving a prompt deleted through b";
  EXPECT_LT(refused, 1.0);
  EXPECT_GE(SecondsUntilNot(alice_c.get(), Request(row0, "task-a", false), grpc::StatusCode::OK), 0)
      << "replica c kept serving a prompt deleted through b";
  EXPECT_EQ(alice_a->Generate(Request(row0, "task-a", false)).status.error_code(), grpc::StatusCode::NOT_FOUND);
}

// PostgreSQL stopped under traffic: both replicas keep serving the prompt they have, uploads get
// UNAVAILABLE saying the store is unreachable, the gauge shows it; after a restart uploads work
// again and reach the other replica.
TEST(E2eReplicasTest, AStoreOutageKeepsInferenceAndHeals) {
  testing::PostgresServer pg;
  ASSERT_TRUE(pg.ok()) << pg.error();
  testing::ReferenceCases cases("t5-tiny-v1_0");
  testing::ServerOptions o = SharedStoreOptions(pg);
  testing::ServerProcess a(o), b(o);
  auto alice_a = a.ClientFor("alice"), alice_b = b.ClientFor("alice");
  PromptUpload raw;
  raw.name = "task-a";
  raw.bytes = testing::RawPromptFile(cases.Float("prompt.a"));
  ASSERT_TRUE(alice_a->UploadPrompt(raw).ok());
  const auto row0 = cases.Ids("generate.row0.input_ids");
  ASSERT_GE(SecondsUntilNot(alice_b.get(), Request(row0, "task-a", false), grpc::StatusCode::NOT_FOUND), 0);

  ASSERT_TRUE(pg.Stop()) << pg.error();
  auto gauge = [](testing::ServerProcess& s) {
    const std::string text = testing::HttpGet(s.metrics_port(), "/metrics");
    const size_t at = text.find("\nsoftserve_prompt_store_connected ");
    return at == std::string::npos ? -1 : std::atoi(text.c_str() + at + 34);
  };
  const auto start = Clock::now();
  while (gauge(b) != 0 && Clock::now() - start < std::chrono::seconds(10)) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_EQ(gauge(b), 0) << "the metric never showed the outage";
  auto info = alice_b->GetModelInfo();
  ASSERT_TRUE(info.ok()) << info.status.error_message();
  EXPECT_EQ(info.value.prompt_store(), "shared: unreachable");
  for (int i = 0; i < 5; ++i) {
    for (auto* c : {alice_a.get(), alice_b.get()}) {
      auto g = c->Generate(Request(row0, "task-a", false));
      ASSERT_TRUE(g.ok()) << "inference with a prompt the replica has failed: " << g.status.error_message();
      EXPECT_EQ(std::vector<int64_t>(g.value.results(0).output_ids().begin(), g.value.results(0).output_ids().end()),
                Tail(cases.Ids("prompt.a.row0.greedy")));
    }
  }
  raw.name = "task-new";
  auto refused = alice_a->UploadPrompt(raw);
  EXPECT_EQ(refused.status.error_code(), grpc::StatusCode::UNAVAILABLE) << "[" << refused.status.error_message() << "]";
  EXPECT_NE(refused.status.error_message().find("unreachable"), std::string::npos) << refused.status.error_message();

  v1::DeletePromptRequest del;
  del.set_name("task-a");
  auto not_deleted = alice_b->DeletePrompt(del);
  EXPECT_EQ(not_deleted.status.error_code(), grpc::StatusCode::UNAVAILABLE) << not_deleted.status.error_message();
  EXPECT_TRUE(alice_b->Generate(Request(row0, "task-a", false)).ok()) << "a refused delete must not drop the prompt";

  ASSERT_TRUE(pg.Start()) << pg.error();
  auto up = alice_a->UploadPrompt(raw);
  ASSERT_TRUE(up.ok()) << up.status.error_message();
  EXPECT_GE(SecondsUntilNot(alice_b.get(), Request(row0, "task-new", false), grpc::StatusCode::NOT_FOUND), 0)
      << "an upload after the outage never reached replica b";
  const auto healed = Clock::now();
  while (gauge(b) != 1 && Clock::now() - healed < std::chrono::seconds(10)) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_EQ(gauge(b), 1);
  EXPECT_EQ(alice_b->GetModelInfo().value.prompt_store(), "shared: connected");
}

// kill -9 of a replica in the middle of an upload: the client gets an error, and neither
// PostgreSQL, the other replica nor the restarted one holds anything of it (no version used).
TEST(E2eReplicasTest, AReplicaKilledDuringAnUploadLeavesNothing) {
  testing::PostgresServer pg;
  ASSERT_TRUE(pg.ok()) << pg.error();
  testing::ReferenceCases cases("t5-tiny-v1_0");
  testing::ServerOptions o = SharedStoreOptions(pg);
  auto a = std::make_unique<testing::ServerProcess>(o);
  testing::ServerProcess b(o);
  PromptUpload raw;
  raw.name = "half";
  raw.bytes = testing::RawPromptFile(cases.Float("prompt.a"));
  raw.chunk_bytes = 64;  // many chunks: the kill lands between two of them
  bool killed = false;
  const pid_t pid = a->pid();
  auto r = a->ClientFor("alice")->UploadPrompt(raw, [&](size_t sent, size_t) {
    if (!killed && sent > 0) {
      ::kill(pid, SIGKILL);
      killed = true;
    }
  });
  ASSERT_TRUE(killed);
  EXPECT_FALSE(r.ok()) << "an upload through a killed replica was acknowledged";

  auto conn = store::PgConnection::Connect(pg.url());
  ASSERT_TRUE(conn.ok()) << conn.status().ToString();
  for (const char* table : {"softserve_prompts", "softserve_changes"}) {
    auto rows = (*conn)->Exec(std::string("SELECT count(*)::int8 FROM ") + table + " WHERE name = 'half'");
    ASSERT_TRUE(rows.ok()) << rows.status().ToString();
    EXPECT_EQ(rows->Int64(0, 0), 0) << table;
  }
  const auto row0 = cases.Ids("generate.row0.input_ids");
  auto alice_b = b.ClientFor("alice");
  EXPECT_EQ(alice_b->Generate(Request(row0, "half", false)).status.error_code(), grpc::StatusCode::NOT_FOUND);

  a.reset();
  testing::ServerProcess restarted(o);
  auto again = restarted.ClientFor("alice")->UploadPrompt(raw);
  ASSERT_TRUE(again.ok()) << again.status.error_message();
  EXPECT_EQ(again.value.version(), 1) << "the killed upload used up a version";
  EXPECT_GE(SecondsUntilNot(alice_b.get(), Request(row0, "half", false), grpc::StatusCode::NOT_FOUND), 0);
}

// A replica started while PostgreSQL is down waits without listening (so not ready) and becomes
// ready, with the store's prompts, once PostgreSQL comes.
TEST(E2eReplicasTest, AReplicaStartedWhilePostgresIsDownWaitsThenServes) {
  testing::PostgresServer pg;
  ASSERT_TRUE(pg.ok()) << pg.error();
  testing::ReferenceCases cases("t5-tiny-v1_0");
  testing::ServerOptions o = SharedStoreOptions(pg);
  {
    testing::ServerProcess first(o);
    PromptUpload raw;
    raw.name = "task-a";
    raw.bytes = testing::RawPromptFile(cases.Float("prompt.a"));
    ASSERT_TRUE(first.ClientFor("alice")->UploadPrompt(raw).ok());
  }
  ASSERT_TRUE(pg.Stop()) << pg.error();
  const int port = testing::FreeLoopbackPort();
  o.extra_args.insert(o.extra_args.end(), {"--listen", "127.0.0.1:" + std::to_string(port)});
  std::unique_ptr<testing::ServerProcess> late;
  std::thread starter([&] { late = std::make_unique<testing::ServerProcess>(o); });  // returns once ready
  std::this_thread::sleep_for(std::chrono::seconds(3));
  client::ClientOptions co;
  co.target = "127.0.0.1:" + std::to_string(port);
  co.timeout = std::chrono::milliseconds(500);
  co.max_attempts = 1;
  auto probe = client::Client::Connect(co).value;
  EXPECT_FALSE(probe->Health("").ok()) << "the replica answered before its store was reachable";
  ASSERT_TRUE(pg.Start()) << pg.error();
  starter.join();
  ASSERT_NE(late, nullptr);
  auto g = late->ClientFor("alice")->Generate(Request(cases.Ids("generate.row0.input_ids"), "task-a", false));
  ASSERT_TRUE(g.ok()) << g.status.error_message();
  EXPECT_EQ(std::vector<int64_t>(g.value.results(0).output_ids().begin(), g.value.results(0).output_ids().end()),
            Tail(cases.Ids("prompt.a.row0.greedy")));
  EXPECT_NE(late->Log().find("retrying"), std::string::npos) << "the wait was not logged";
}

// A replica that keeps only some prompts' values in memory (--shared-prompt-cache-bytes) reads
// the others on first use; while PostgreSQL is down, the ones it holds serve and the others are
// UNAVAILABLE (not NOT_FOUND: they exist, this replica cannot read them now).
TEST(E2eReplicasTest, AnUncachedPromptIsUnavailableWhileTheStoreIsDown) {
  testing::PostgresServer pg;
  ASSERT_TRUE(pg.ok()) << pg.error();
  testing::ReferenceCases cases("t5-tiny-v1_0");
  testing::ServerOptions o = SharedStoreOptions(pg);
  testing::ServerProcess a(o);
  o.extra_args.insert(o.extra_args.end(), {"--shared-prompt-cache-bytes", "1500"});  // one 5x64 prompt
  testing::ServerProcess b(o);
  auto alice_a = a.ClientFor("alice"), alice_b = b.ClientFor("alice");
  PromptUpload raw;
  raw.bytes = testing::RawPromptFile(cases.Float("prompt.a"));
  for (const char* name : {"one", "two"}) {
    raw.name = name;
    ASSERT_TRUE(alice_a->UploadPrompt(raw).ok());
  }
  const auto row0 = cases.Ids("generate.row0.input_ids");
  const auto want = Tail(cases.Ids("prompt.a.row0.greedy"));
  for (const char* name : {"one", "two"}) {  // "two" last: it stays, "one" is evicted
    ASSERT_GE(SecondsUntilNot(alice_b.get(), Request(row0, name, false), grpc::StatusCode::NOT_FOUND), 0);
    auto g = alice_b->Generate(Request(row0, name, false));
    ASSERT_TRUE(g.ok()) << g.status.error_message();
    EXPECT_EQ(std::vector<int64_t>(g.value.results(0).output_ids().begin(), g.value.results(0).output_ids().end()), want);
  }
  ASSERT_TRUE(pg.Stop()) << pg.error();
  EXPECT_TRUE(alice_b->Generate(Request(row0, "two", false)).ok()) << "the prompt in memory must keep serving";
  auto cold = alice_b->Generate(Request(row0, "one", false));
  EXPECT_EQ(cold.status.error_code(), grpc::StatusCode::UNAVAILABLE) << cold.status.error_message();
  EXPECT_NE(cold.status.error_message().find("not in this replica's memory"), std::string::npos)
      << cold.status.error_message();
  EXPECT_EQ(alice_b->Generate(Request(row0, "never-uploaded", false)).status.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_TRUE(alice_a->Generate(Request(row0, "one", false)).ok()) << "replica a holds every prompt (default budget)";
  ASSERT_TRUE(pg.Start()) << pg.error();
  EXPECT_TRUE(alice_b->Generate(Request(row0, "one", false)).ok());
}

}  // namespace
}  // namespace softserve
