// Deadlines, cancellation, fairness, metrics, health and the SIGTERM drain of the running server.
#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <thread>

#include "tests/e2e/server_fixture.h"
#include "tests/testing/reference_data.h"

namespace softserve {
namespace {

namespace v1 = ::softserve::v1;
using Health = ::grpc::health::v1::HealthCheckResponse;

v1::GenerateRequest Long(int tokens, std::vector<int64_t> ids = {5, 6, 7, 1}) {
  v1::GenerateRequest r;
  r.add_inputs()->mutable_ids()->mutable_ids()->Add(ids.begin(), ids.end());
  r.mutable_parameters()->set_max_new_tokens(tokens);
  r.mutable_parameters()->set_min_new_tokens(tokens);
  return r;
}

testing::ServerOptions Options(std::vector<std::string> extra = {}) {
  testing::ServerOptions o;
  o.model_dir = testing::ReferenceModelDir("t5-tiny-v1_0");
  o.tenants = {{"heavy", "heavy-key"}, {"light", "light-key"}, {"ops", "ops-key", true}};
  o.extra_args = {"--max-new-tokens", "100000", "--max-tokens-in-flight", "100000000"};
  o.extra_args.insert(o.extra_args.end(), extra.begin(), extra.end());
  return o;
}

// Waits until ModelInfo reports no running rows (the engine freed them).
bool RowsDrain(client::Client& c) {
  for (int i = 0; i < 500; ++i) {
    auto info = c.GetModelInfo();
    if (info.ok() && info.value.running_rows() == 0 && info.value.queue_depth() == 0) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return false;
}

// Waits until a stream has delivered `n` messages or ended (a server that died ends it).
bool StreamReached(const std::atomic<int>& tokens, const std::atomic<bool>& ended, int n) {
  while (tokens < n && !ended) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  return tokens >= n;
}

TEST(E2eLifecycleTest, DeadlineExceededFreesTheRow) {
  testing::ServerProcess server(Options());
  auto c = server.ClientFor("heavy", std::chrono::milliseconds(300));
  auto r = c->Generate(Long(50000));
  EXPECT_EQ(r.status.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED) << r.status.error_message();
  EXPECT_TRUE(RowsDrain(*server.ClientFor("ops")));
}

TEST(E2eLifecycleTest, ClientCancellationFreesTheRowAtTheNextStep) {
  testing::ServerProcess server(Options());
  auto c = server.ClientFor("heavy");
  grpc::ClientContext context;
  std::atomic<int> tokens{0};
  std::atomic<bool> ended{false};
  std::thread t([&] {
    grpc::Status s = c->GenerateStream(Long(50000), [&](const v1::GenerateStreamResponse&) { ++tokens; }, &context);
    ended = true;
    EXPECT_EQ(s.error_code(), grpc::StatusCode::CANCELLED) << s.error_message() << "\n" << server.Log();
  });
  if (!StreamReached(tokens, ended, 5)) {
    t.join();
    FAIL() << "the stream ended before 5 tokens";
  }
  auto ops = server.ClientFor("ops");  // server-wide load is shown to admin keys only
  auto busy = ops->GetModelInfo();
  EXPECT_EQ(busy.value.running_rows(), 1);
  EXPECT_EQ(c->GetModelInfo().value.running_rows(), 0);
  context.TryCancel();
  t.join();
  EXPECT_TRUE(RowsDrain(*ops));
  EXPECT_LT(tokens.load(), 50000);
}

TEST(E2eLifecycleTest, LightTenantCompletesWhileHeavyTenantKeepsTheQueueFull) {
  testing::ServerProcess server(Options({"--max-batch-rows", "2"}));
  auto heavy = server.ClientFor("heavy", std::chrono::seconds(300));
  auto light = server.ClientFor("light", std::chrono::seconds(300));
  std::atomic<int> heavy_done{0};
  std::vector<std::thread> flood;
  for (int i = 0; i < 24; ++i) {
    flood.emplace_back([&] {
      EXPECT_TRUE(heavy->Generate(Long(400)).ok());
      ++heavy_done;
    });
  }
  // Let the flood fill the batch and the queue.
  auto ops = server.ClientFor("ops");
  for (int i = 0; i < 500; ++i) {
    auto info = ops->GetModelInfo();
    if (info.ok() && info.value.queue_depth() >= 10) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  auto r = light->Generate(Long(20));
  ASSERT_TRUE(r.ok()) << r.status.error_message();
  const int done_when_light_finished = heavy_done.load();
  for (auto& t : flood) t.join();
  // Two rows, 24 heavy requests of 400 tokens: FIFO would make light wait for all of them.
  EXPECT_LE(done_when_light_finished, 6) << "light waited behind the heavy tenant's backlog";
}

TEST(E2eLifecycleTest, MetricsAreServedWithTheirNames) {
  testing::ServerProcess server(Options());
  auto c = server.ClientFor("heavy");
  ASSERT_TRUE(c->Generate(Long(8)).ok());
  (void)server.ClientWithKey("bad")->Generate(Long(8));
  std::string text;
  for (int i = 0; i < 100 && text.find("softserve_registry_prompts") == std::string::npos; ++i) {
    text = testing::HttpGet(server.metrics_port(), "/metrics");
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  for (const char* name : {"softserve_requests_total{code=\"OK\",rpc=\"Generate\",tenant=\"heavy\"} 1",
                           "softserve_requests_total{code=\"UNAUTHENTICATED\",rpc=\"Generate\",tenant=\"-\"} 1",
                           "softserve_request_duration_seconds_bucket", "softserve_queue_duration_seconds_count",
                           "softserve_time_to_first_token_seconds_count", "softserve_batch_rows_bucket",
                           "softserve_batch_distinct_prompts_bucket", "softserve_generated_tokens_total",
                           "softserve_queue_depth_requests", "softserve_running_rows", "softserve_registry_prompts",
                           "softserve_step_duration_seconds_count", "softserve_kv_cache_usage_ratio",
                           "softserve_uploads_in_progress"}) {
    EXPECT_NE(text.find(name), std::string::npos) << name << " missing from:\n" << text.substr(0, 2000);
  }
  EXPECT_NE(testing::HttpGet(server.metrics_port(), "/other").find("404"), std::string::npos);
}

TEST(E2eLifecycleTest, SigtermDrainsRunningRequestsThenExitsZero) {
  testing::ServerProcess server(Options({"--drain-seconds", "60"}));
  auto c = server.ClientFor("heavy", std::chrono::seconds(120));
  EXPECT_EQ(server.ClientWithKey("")->Health("liveness").value.status(), Health::SERVING);
  std::atomic<int> tokens{0};
  std::atomic<bool> ended{false};
  std::promise<grpc::Status> running_status;
  std::thread runner([&] {
    running_status.set_value(c->GenerateStream(Long(3000), [&](const v1::GenerateStreamResponse&) { ++tokens; }));
    ended = true;
  });
  if (!StreamReached(tokens, ended, 10)) {
    runner.join();
    FAIL() << "the stream ended before 10 tokens: " << running_status.get_future().get().error_message();
  }
  auto exit_code = std::async(std::launch::async, [&] { return server.Terminate(120); });
  // While draining: NOT_SERVING, new work refused, the running request carries on.
  bool saw_not_serving = false;
  for (int i = 0; i < 1000 && !saw_not_serving; ++i) {
    auto h = server.ClientWithKey("", std::chrono::seconds(2))->Health();
    saw_not_serving = h.ok() && h.value.status() == Health::NOT_SERVING;
    if (!saw_not_serving) std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  EXPECT_TRUE(saw_not_serving);
  auto refused = c->Generate(Long(5));
  EXPECT_EQ(refused.status.error_code(), grpc::StatusCode::UNAVAILABLE) << refused.status.error_message();
  grpc::Status finished = running_status.get_future().get();
  runner.join();
  EXPECT_TRUE(finished.ok()) << finished.error_message();
  EXPECT_EQ(tokens.load(), 3001);  // 3000 tokens + the final message
  EXPECT_EQ(exit_code.get(), 0);
}

TEST(E2eLifecycleTest, DrainPastGraceCancelsWhatIsLeftAndStillExitsZero) {
  testing::ServerProcess server(Options({"--drain-seconds", "0.2"}));
  auto c = server.ClientFor("heavy", std::chrono::seconds(120));
  std::atomic<int> tokens{0};
  std::atomic<bool> ended{false};
  std::promise<grpc::Status> running_status;
  std::thread runner([&] {
    running_status.set_value(c->GenerateStream(Long(90000), [&](const v1::GenerateStreamResponse&) { ++tokens; }));
    ended = true;
  });
  if (!StreamReached(tokens, ended, 10)) {
    runner.join();
    FAIL() << "the stream ended before 10 tokens: " << running_status.get_future().get().error_message();
  }
  EXPECT_EQ(server.Terminate(60), 0);
  grpc::Status s = running_status.get_future().get();
  runner.join();
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAVAILABLE) << s.error_message();
}

}  // namespace
}  // namespace softserve
