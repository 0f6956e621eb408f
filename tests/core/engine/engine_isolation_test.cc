// Tenants cannot hurt each other through the engine: preemption gives an arriving tenant its
// share at once and loses nothing of the preempted work; a runner that fails or throws in any
// operation on chosen rows costs only the requests of those rows; scoring runs in bounded
// passes; queue budgets count cost per tenant; callbacks never run under the queue mutex.
// Every expected output comes from the same requests run on a clean engine (no faults, no
// preemption): isolation must not change what anyone gets.
#include <gtest/gtest.h>

#include <future>
#include <map>
#include <thread>

#include "core/engine/cost.h"
#include "core/engine/engine.h"
#include "tests/testing/engine_testing.h"
#include "tests/testing/fake_runner.h"

namespace softserve::core {
namespace {

using ::softserve::testing::FakeRunner;
using ::softserve::testing::GenerateAsync;
using ::softserve::testing::GenerateSync;
using Future = std::future<StatusOr<GenerationResult>>;

GenerationRequest Req(int64_t first_id, int max_new, const std::string& tenant, int beams = 0) {
  GenerationRequest r;
  r.common.input_ids = {first_id, 7, 9};
  r.common.tenant = tenant;
  r.params.max_new_tokens = max_new;
  if (beams > 0) {
    r.params.mode = DecodingMode::kBeam;
    r.params.num_beams = beams;
  }
  return r;
}

struct Harness {
  explicit Harness(EngineLimits limits = {}, int eos_after = 4) {
    shared = std::make_shared<FakeRunner::Shared>();
    engine = std::make_unique<Engine>(std::make_unique<FakeRunner>(shared, 50, eos_after), limits);
  }
  template <typename F>
  void With(F f) {
    std::lock_guard<std::mutex> l(shared->mu);
    f(*shared);
    shared->cv.notify_all();
  }
  template <typename Pred>
  void WaitFor(Pred pred) {
    std::unique_lock<std::mutex> l(shared->mu);
    shared->cv.wait(l, [&] { return pred(*shared); });
  }
  std::shared_ptr<FakeRunner::Shared> shared;
  std::unique_ptr<Engine> engine;
};

// Outputs of the requests run one at a time on a clean engine.
std::vector<std::vector<int64_t>> CleanOutputs(const std::vector<GenerationRequest>& reqs, EngineLimits limits = {}) {
  Harness clean(limits);
  std::vector<std::vector<int64_t>> out;
  for (const auto& r : reqs) {
    auto g = GenerateSync(clean.engine.get(), r);
    EXPECT_TRUE(g.ok()) << g.status().ToString();
    out.push_back(g.ok() ? g->output_ids : std::vector<int64_t>{});
  }
  return out;
}

TEST(EngineIsolationTest, ArrivingTenantGetsItsShareByPreemptionAndTheFloodLosesNothing) {
  EngineLimits limits;
  limits.max_rows = 16;
  Harness h(limits);
  std::vector<GenerationRequest> flood;
  for (int i = 0; i < 4; ++i) flood.push_back(Req(2 * i + 2, 60, "flood", 4));  // 4 x 4 beams = 16 rows
  const GenerationRequest quiet = Req(30, 5, "quiet");
  const auto expected = CleanOutputs(flood);
  const auto expected_quiet = CleanOutputs({quiet});

  h.With([](FakeRunner::Shared& s) { s.gated = true; });
  std::vector<Future> f;
  for (const auto& r : flood) f.push_back(GenerateAsync(h.engine.get(), r));
  h.With([](FakeRunner::Shared& s) { s.released_steps = 3; });
  h.WaitFor([](const FakeRunner::Shared& s) { return s.steps == 3 && s.rows == 16; });
  auto q = GenerateAsync(h.engine.get(), quiet);
  // Enough steps for the quiet request, far fewer than one flood request needs (60).
  h.With([](FakeRunner::Shared& s) { s.released_steps = 12; });
  ASSERT_EQ(q.wait_for(std::chrono::seconds(30)), std::future_status::ready);
  auto rq = q.get();
  ASSERT_TRUE(rq.ok()) << rq.status().ToString();
  EXPECT_EQ(rq->output_ids, expected_quiet[0]);
  for (auto& x : f) EXPECT_NE(x.wait_for(std::chrono::seconds(0)), std::future_status::ready);
  h.With([](FakeRunner::Shared& s) {
    EXPECT_GE(s.recomputed_rows, 0);
    EXPECT_LE(s.max_rows_seen, 16);
    s.gated = false;
  });
  for (size_t i = 0; i < f.size(); ++i) {
    auto r = f[i].get();
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(r->output_ids, expected[i]) << "flood request " << i << " changed by preemption";
  }
  h.With([](FakeRunner::Shared& s) { EXPECT_GE(s.recomputed_rows, 4); });  // one beam job came back
}

// While a heavy tenant holds most rows, a light tenant's rows are stepped alone (priority
// steps); both still get exactly their clean outputs, and the heavy one keeps progressing.
TEST(EngineIsolationTest, ALightTenantsRowsAreSteppedAloneWhileAHeavyOneRuns) {
  EngineLimits limits;
  limits.max_rows = 8;
  limits.max_new_tokens = 100000;
  limits.max_tokens_in_flight = limits.max_queue_tokens = limits.max_tenant_queue_tokens = int64_t{1} << 30;
  Harness h(limits);
  // Long enough (for the fake runner) that the flood is still running whatever the scheduling.
  std::vector<GenerationRequest> flood = {Req(2, 5000, "flood", 3), Req(4, 5000, "flood", 3)};
  std::vector<GenerationRequest> quiet;
  for (int i = 0; i < 5; ++i) quiet.push_back(Req(20 + 2 * i, 6, "quiet"));
  const auto expected_flood = CleanOutputs(flood, limits);
  const auto expected_quiet = CleanOutputs(quiet, limits);
  std::vector<Future> f;
  for (const auto& r : flood) f.push_back(GenerateAsync(h.engine.get(), r));
  h.WaitFor([](const FakeRunner::Shared& s) { return s.rows == 6 && s.steps >= 3; });
  for (size_t i = 0; i < quiet.size(); ++i) {
    auto r = GenerateSync(h.engine.get(), quiet[i]);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(r->output_ids, expected_quiet[i]);
  }
  int64_t one_row_steps = 0;
  h.With([&](FakeRunner::Shared& s) {
    for (int64_t rows : s.rows_per_step) one_row_steps += rows == 1;
  });
  EXPECT_GT(one_row_steps, 5) << "no priority steps: the light tenant's rows always waited for the flood's";
  for (size_t i = 0; i < f.size(); ++i) {
    auto r = f[i].get();
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->output_ids, expected_flood[i]) << "flood request " << i;
  }
  // With priority steps off, every step carries every row.
  limits.priority_steps = false;
  Harness off(limits);
  auto g = GenerateAsync(off.engine.get(), flood[0]);
  off.WaitFor([](const FakeRunner::Shared& s) { return s.steps >= 3; });
  ASSERT_TRUE(GenerateSync(off.engine.get(), quiet[0]).ok());
  EXPECT_TRUE(g.get().ok());
  off.With([](FakeRunner::Shared& s) {
    for (int64_t rows : s.rows_per_step) EXPECT_NE(rows, 1);
  });
}

struct FaultCase {
  FakeRunner::Op op;
  bool throws;
  bool beams;
  const char* name;
};

class EngineFaultTest : public ::testing::TestWithParam<FaultCase> {};

// Several tenants' requests run together; one tenant's request carries the poisoned rows. The
// poisoned operation fails (or throws) whenever it touches those rows. The engine must keep
// serving, never fail a clean request, and give each clean request exactly the clean output.
TEST_P(EngineFaultTest, OnlyTheRequestWhoseRowsFailGetsTheError) {
  const FaultCase c = GetParam();
  Harness h;
  const int beams = c.beams ? 3 : 0;
  std::vector<GenerationRequest> reqs;
  for (int i = 0; i < 6; ++i) reqs.push_back(Req(2 * i + 2, 9 + i, "tenant" + std::to_string(i % 3), beams));
  reqs.push_back(Req(3, 14, "tenant0", beams));  // odd: finishes early (compaction moves rows)
  const GenerationRequest poison = Req(44, 12, "mallory", beams);
  const auto expected = CleanOutputs(reqs);
  h.With([&](FakeRunner::Shared& s) {
    s.poison_first_ids = {44};
    s.poison_op = c.op;
    s.poison_throws = c.throws;
    s.gated = true;
  });
  std::vector<Future> f;
  for (const auto& r : reqs) f.push_back(GenerateAsync(h.engine.get(), r));
  auto bad = GenerateAsync(h.engine.get(), poison);
  h.With([](FakeRunner::Shared& s) { s.gated = false; });
  for (size_t i = 0; i < f.size(); ++i) {
    auto r = f[i].get();
    ASSERT_TRUE(r.ok()) << c.name << ": clean request " << i << " failed: " << r.status().ToString();
    EXPECT_EQ(r->output_ids, expected[i]) << c.name << ": clean request " << i;
  }
  auto b = bad.get();
  if (c.op == FakeRunner::Op::kStep || c.op == FakeRunner::Op::kPrefill) {
    ASSERT_FALSE(b.ok()) << c.name;
    EXPECT_EQ(b.status().code(), StatusCode::kInternal);
    EXPECT_NE(b.status().message().find("injected"), std::string::npos) << b.status().message();
  }
  // The engine still serves, with the fault switched off.
  h.With([](FakeRunner::Shared& s) { s.poison_op = FakeRunner::Op::kNone; });
  auto after = GenerateSync(h.engine.get(), reqs[0]);
  ASSERT_TRUE(after.ok()) << after.status().ToString();
  EXPECT_EQ(after->output_ids, expected[0]);
}

INSTANTIATE_TEST_SUITE_P(
    Faults, EngineFaultTest,
    ::testing::Values(FaultCase{FakeRunner::Op::kStep, false, false, "step_error"},
                      FaultCase{FakeRunner::Op::kStep, true, false, "step_throws"},
                      FaultCase{FakeRunner::Op::kStep, true, true, "step_throws_beams"},
                      FaultCase{FakeRunner::Op::kPrefill, false, false, "prefill_error"},
                      FaultCase{FakeRunner::Op::kPrefill, true, true, "prefill_throws_beams"},
                      FaultCase{FakeRunner::Op::kCompact, false, false, "compact_error"},
                      FaultCase{FakeRunner::Op::kCompact, true, true, "compact_throws_beams"},
                      FaultCase{FakeRunner::Op::kCopyHistory, false, true, "copy_error_beams"},
                      FaultCase{FakeRunner::Op::kCopyHistory, true, true, "copy_throws_beams"},
                      FaultCase{FakeRunner::Op::kPermute, false, true, "permute_error_beams"},
                      FaultCase{FakeRunner::Op::kPermute, true, false, "permute_throws"}),
    [](const ::testing::TestParamInfo<FaultCase>& info) { return std::string(info.param.name); });

TEST(EngineIsolationTest, AScoringFailureFailsOnlyItsRequest) {
  for (bool throws : {false, true}) {
    Harness h;
    h.With([&](FakeRunner::Shared& s) {
      s.poison_first_ids = {44};
      s.poison_op = FakeRunner::Op::kScore;
      s.poison_throws = throws;
    });
    ScoreRequest good, bad;
    good.common = {"a", {5, 6}};
    good.targets = {{3, 1}, {4, 5, 1}};
    bad.common = {"b", {44, 6}};
    bad.targets = {{3, 1}};
    auto [gp, gdone] = softserve::testing::Completion<ScoreResult>();
    auto [bp, bdone] = softserve::testing::Completion<ScoreResult>();
    h.engine->SubmitScore(bad, bdone);
    h.engine->SubmitScore(good, gdone);
    auto g = gp->get_future().get();
    ASSERT_TRUE(g.ok()) << g.status().ToString();
    EXPECT_DOUBLE_EQ(g->total_logprobs[1], -3.0);  // the fake's score: -(target length)
    EXPECT_EQ(bp->get_future().get().status().code(), StatusCode::kInternal);
  }
}

TEST(EngineIsolationTest, AThrowingCallbackDoesNotStopTheEngine) {
  Harness h;
  h.engine->Submit(Req(2, 3, "a"), [](StatusOr<GenerationResult>) { throw std::runtime_error("caller bug"); });
  auto r = GenerateSync(h.engine.get(), Req(4, 3, "b"));
  EXPECT_TRUE(r.ok()) << r.status().ToString();
}

TEST(EngineIsolationTest, AFailingResetIsRetriedAndServingResumes) {
  Harness h;
  h.With([](FakeRunner::Shared& s) {
    s.fail_next_step = true;
    s.fail_resets = 2;
  });
  auto first = GenerateSync(h.engine.get(), Req(2, 6, "a"));
  EXPECT_FALSE(first.ok());  // its step failed and the runner could not be reset at once
  auto later = GenerateSync(h.engine.get(), Req(2, 6, "a"));
  EXPECT_TRUE(later.ok()) << later.status().ToString();
  h.With([](FakeRunner::Shared& s) { EXPECT_GE(s.resets, 3); });
}

class CountingObserver : public EngineObserver {
 public:
  void OnStep(const StepStats& s) override {
    std::lock_guard<std::mutex> l(mu);
    if (s.scored_targets > 0) passes.push_back(s.scored_targets);
  }
  std::mutex mu;
  std::vector<int64_t> passes;
};

TEST(EngineIsolationTest, ScoringRunsInBoundedPassesAndSmallRequestsDoNotWaitForBigOnes) {
  T5Config config;
  config.vocab_size = 50;
  config.d_model = 8;
  const int64_t unit = ScoringBytes(config, 2, 2);
  EngineLimits limits;
  limits.max_score_bytes = 3 * unit;  // three two-token targets per pass
  CountingObserver observer;
  auto shared = std::make_shared<FakeRunner::Shared>();
  Engine engine(std::make_unique<FakeRunner>(shared), limits, &observer);
  ScoreRequest big, small;
  big.common = {"big", {5, 6}};
  for (int i = 0; i < 30; ++i) big.targets.push_back({3, 1});
  small.common = {"small", {5, 6}};
  small.targets = {{4, 1}};
  std::atomic<int> big_done{0};
  auto [bp, bdone] = softserve::testing::Completion<ScoreResult>();
  auto [sp, sdone] = softserve::testing::Completion<ScoreResult>();
  // Hold the engine in a decode step so that both scoring requests are admitted together.
  {
    std::lock_guard<std::mutex> l(shared->mu);
    shared->gated = true;
  }
  auto holder = softserve::testing::GenerateAsync(&engine, Req(2, 1, "holder"));
  {
    std::unique_lock<std::mutex> l(shared->mu);
    shared->cv.wait(l, [&] { return shared->rows == 1; });
  }
  engine.SubmitScore(big, [&, bdone = bdone](StatusOr<ScoreResult> r) {
    ++big_done;
    bdone(std::move(r));
  });
  int big_done_when_small_finished = -1;
  engine.SubmitScore(small, [&, sdone = sdone](StatusOr<ScoreResult> r) {
    big_done_when_small_finished = big_done.load();
    sdone(std::move(r));
  });
  {
    std::lock_guard<std::mutex> l(shared->mu);
    shared->gated = false;
    shared->cv.notify_all();
  }
  EXPECT_TRUE(holder.get().ok());
  ASSERT_TRUE(sp->get_future().get().ok());
  EXPECT_EQ(big_done_when_small_finished, 0) << "the small request waited for the big one";
  auto b = bp->get_future().get();
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->total_logprobs.size(), 30u);
  // A single target that cannot fit any pass is refused up front, naming the limit.
  ScoreRequest huge;
  huge.common = {"big", {5, 6}};
  huge.targets = {std::vector<int64_t>(200, 3)};
  auto rejected = softserve::testing::ScoreSync(&engine, huge);
  EXPECT_EQ(rejected.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(rejected.status().message().find("max_score_bytes"), std::string::npos) << rejected.status().message();
  engine.Shutdown(Clock::now());  // every OnStep has run
  std::lock_guard<std::mutex> l(observer.mu);
  int64_t total = 0;
  for (int64_t p : observer.passes) {
    EXPECT_LE(p, 3);
    total += p;
  }
  EXPECT_EQ(total, 31);
}

TEST(EngineIsolationTest, QueueBudgetsCountTokensPerTenant) {
  EngineLimits limits;
  limits.max_rows = 1;
  limits.max_tenant_queue_tokens = 100;
  limits.max_queue_tokens = 150;
  Harness h(limits);
  h.With([](FakeRunner::Shared& s) { s.gated = true; });
  auto running = GenerateAsync(h.engine.get(), Req(2, 20, "flood"));  // admitted, holds the row
  h.WaitFor([](const FakeRunner::Shared& s) { return s.rows == 1; });
  // Each queued request costs 3 input + 20 new = 23 tokens: four fit the tenant's 100.
  std::vector<Future> queued;
  for (int i = 0; i < 4; ++i) queued.push_back(GenerateAsync(h.engine.get(), Req(2, 20, "flood")));
  auto over = GenerateSync(h.engine.get(), Req(2, 20, "flood"));
  EXPECT_EQ(over.status().code(), StatusCode::kResourceExhausted);
  EXPECT_NE(over.status().message().find("max_tenant_queue_tokens"), std::string::npos) << over.status().message();
  // Another tenant still gets in: one tenant cannot fill the queue...
  auto other = GenerateAsync(h.engine.get(), Req(4, 20, "quiet"));
  // ...but the global budget (150) holds: 92 + 23 = 115 queued, one more of 46 tokens is over.
  auto global = GenerateSync(h.engine.get(), Req(4, 43, "third"));
  EXPECT_EQ(global.status().code(), StatusCode::kResourceExhausted);
  EXPECT_NE(global.status().message().find("max_queue_tokens"), std::string::npos) << global.status().message();
  // A request that could never fit the tenant budget is a client error, not a retry.
  auto never = GenerateSync(h.engine.get(), Req(2, 120, "flood"));
  EXPECT_EQ(never.status().code(), StatusCode::kInvalidArgument);
  h.With([](FakeRunner::Shared& s) { s.gated = false; });
  EXPECT_TRUE(running.get().ok());
  EXPECT_TRUE(other.get().ok());
  for (auto& q : queued) EXPECT_TRUE(q.get().ok());
}

TEST(EngineIsolationTest, RejectionCallbacksRunOutsideTheQueueMutex) {
  EngineLimits limits;
  limits.max_queue = 1;
  limits.max_rows = 1;
  Harness h(limits);
  h.With([](FakeRunner::Shared& s) { s.gated = true; });
  auto holder = GenerateAsync(h.engine.get(), Req(2, 5, "a"));
  h.WaitFor([](const FakeRunner::Shared& s) { return s.rows == 1; });
  auto waiting = GenerateAsync(h.engine.get(), Req(2, 5, "a"));  // fills the queue
  // The rejection's callback submits again; under the queue mutex this would deadlock.
  std::promise<Status> nested;
  auto nested_future = nested.get_future();
  Engine* engine = h.engine.get();
  std::thread t([&] {
    engine->Submit(Req(2, 5, "a"), [&](StatusOr<GenerationResult> r) {
      EXPECT_EQ(r.status().code(), StatusCode::kResourceExhausted);
      engine->Submit(Req(2, 5, "a"), [&](StatusOr<GenerationResult> r2) { nested.set_value(r2.status()); });
    });
  });
  ASSERT_EQ(nested_future.wait_for(std::chrono::seconds(30)), std::future_status::ready) << "deadlock";
  EXPECT_EQ(nested_future.get().code(), StatusCode::kResourceExhausted);
  t.join();
  h.With([](FakeRunner::Shared& s) { s.gated = false; });
  EXPECT_TRUE(holder.get().ok());
  EXPECT_TRUE(waiting.get().ok());
}

TEST(EngineIsolationTest, BusySecondsTellsAStuckStepFromAnIdleEngine) {
  Harness h;
  EXPECT_EQ(h.engine->busy_seconds(), 0.0);
  h.With([](FakeRunner::Shared& s) { s.gated = true; });
  auto f = GenerateAsync(h.engine.get(), Req(2, 3, "a"));
  h.WaitFor([](const FakeRunner::Shared& s) { return s.rows == 1; });
  const TimePoint start = Clock::now();
  while (Clock::now() - start < std::chrono::milliseconds(50)) std::this_thread::yield();
  EXPECT_GE(h.engine->busy_seconds(), 0.04);  // blocked inside a step
  h.With([](FakeRunner::Shared& s) { s.gated = false; });
  EXPECT_TRUE(f.get().ok());
  for (int i = 0; i < 1000 && h.engine->busy_seconds() != 0.0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  EXPECT_EQ(h.engine->busy_seconds(), 0.0);
}

}  // namespace
}  // namespace softserve::core
