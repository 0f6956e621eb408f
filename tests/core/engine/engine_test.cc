// The engine's contract with a fake runner (no weights): callbacks exactly once, precise
// rejections, limits, cancellation and deadlines that free rows, failure isolation, fairness,
// continuous batching and shutdown.
#include "core/engine/engine.h"

#include <gtest/gtest.h>

#include <functional>
#include <future>
#include <thread>

#include "tests/testing/engine_testing.h"
#include "tests/testing/fake_runner.h"

namespace softserve::core {
namespace {

using ::softserve::testing::FakeRunner;
using ::softserve::testing::GenerateAsync;
using ::softserve::testing::GenerateSync;

class EngineTest : public ::testing::Test {
 public:
  void Start(EngineLimits limits = {}) {
    shared_ = std::make_shared<FakeRunner::Shared>();
    engine_ = std::make_unique<Engine>(std::make_unique<FakeRunner>(shared_), limits);
  }
  GenerationRequest Req(std::vector<int64_t> ids, int max_new = 6, const std::string& tenant = "t") {
    GenerationRequest r;
    r.common.input_ids = std::move(ids);
    r.common.tenant = tenant;
    r.params.max_new_tokens = max_new;
    return r;
  }
  void Gate() {
    std::lock_guard<std::mutex> l(shared_->mu);
    shared_->gated = true;
  }
  void Release(int64_t steps) {
    std::lock_guard<std::mutex> l(shared_->mu);
    shared_->released_steps += steps;
    shared_->cv.notify_all();
  }
  void Ungate() {
    std::lock_guard<std::mutex> l(shared_->mu);
    shared_->gated = false;
    shared_->cv.notify_all();
  }
  template <typename Pred>
  void WaitFor(Pred pred) {
    std::unique_lock<std::mutex> l(shared_->mu);
    shared_->cv.wait(l, [&] { return pred(*shared_); });
  }

  std::shared_ptr<FakeRunner::Shared> shared_;
  std::unique_ptr<Engine> engine_;
};

TEST_F(EngineTest, GeneratesUntilEosOrMaxTokens) {
  Start();
  auto eos = GenerateSync(engine_.get(), Req({3, 4}, 10));  // odd first id: eos after 4 tokens
  ASSERT_TRUE(eos.ok());
  EXPECT_EQ(eos->output_ids.size(), 4u);
  EXPECT_EQ(eos->output_ids.back(), 1);
  EXPECT_EQ(eos->finish_reason, FinishReason::kEos);
  GenerationRequest at_least = Req({3, 4}, 10);
  at_least.params.min_new_tokens = 8;
  auto longer = GenerateSync(engine_.get(), std::move(at_least));
  ASSERT_TRUE(longer.ok());
  // Eos is suppressed for the first 8 tokens and chosen as soon as it is allowed.
  EXPECT_EQ(longer->output_ids.size(), 9u);
  EXPECT_EQ(longer->output_ids.back(), 1);
  auto max = GenerateSync(engine_.get(), Req({2, 4}, 7));
  ASSERT_TRUE(max.ok());
  EXPECT_EQ(max->output_ids.size(), 7u);
  EXPECT_EQ(max->finish_reason, FinishReason::kMaxTokens);
  EXPECT_GE(max->total_seconds, max->queue_seconds);
}

TEST_F(EngineTest, RejectsBadRequestsSynchronouslyWithPreciseCodes) {
  EngineLimits limits;
  limits.max_input_tokens = 4;
  limits.max_new_tokens = 8;
  Start(limits);
  auto code = [&](GenerationRequest r) { return GenerateSync(engine_.get(), std::move(r)).status(); };
  EXPECT_EQ(code(Req({})).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(code(Req({1, 2, 3, 4, 5})).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(code(Req({1, 50})).code(), StatusCode::kInvalidArgument);  // vocab is 50
  EXPECT_EQ(code(Req({1, -1})).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(code(Req({1}, 0)).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(code(Req({1}, 9)).code(), StatusCode::kInvalidArgument);
  GenerationRequest beam = Req({1});
  beam.params.mode = DecodingMode::kBeam;
  beam.params.num_beams = 99;
  EXPECT_EQ(code(beam).code(), StatusCode::kInvalidArgument);
  GenerationRequest stream_beam = Req({1});
  stream_beam.params.mode = DecodingMode::kBeam;
  stream_beam.on_token = [](const TokenChoice&) {};
  EXPECT_EQ(code(stream_beam).code(), StatusCode::kInvalidArgument);
  GenerationRequest hot = Req({1});
  hot.params.mode = DecodingMode::kSample;
  hot.params.temperature = 0;
  EXPECT_EQ(code(hot).code(), StatusCode::kInvalidArgument);
  hot.params.temperature = 1;
  hot.params.top_p = 1.5;
  EXPECT_EQ(code(hot).code(), StatusCode::kInvalidArgument);
  GenerationRequest narrow = Req({1});
  narrow.prompt = std::make_shared<Prompt>(PromptKey{"t", "p", 1}, 2, 4, std::vector<float>(8, 0.f),
                                           PromptFormat::kRaw, 0);
  Status s = code(narrow);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("d_model is 8"), std::string::npos);
  GenerationRequest late = Req({1});
  late.common.deadline = Clock::now() - std::chrono::seconds(1);
  EXPECT_EQ(code(late).code(), StatusCode::kDeadlineExceeded);
}

TEST_F(EngineTest, FullQueueAnswersResourceExhausted) {
  EngineLimits limits;
  limits.max_queue = 2;
  limits.max_rows = 1;
  Start(limits);
  Gate();
  auto running = GenerateAsync(engine_.get(), Req({2}, 3));
  WaitFor([](const FakeRunner::Shared& s) { return s.rows == 1; });  // admitted, step gated
  auto q1 = GenerateAsync(engine_.get(), Req({2}, 3));
  auto q2 = GenerateAsync(engine_.get(), Req({2}, 3));
  auto over = GenerateSync(engine_.get(), Req({2}, 3));
  EXPECT_EQ(over.status().code(), StatusCode::kResourceExhausted);
  EXPECT_NE(over.status().message().find("queue is full"), std::string::npos);
  Ungate();
  EXPECT_TRUE(running.get().ok());
  EXPECT_TRUE(q1.get().ok());
  EXPECT_TRUE(q2.get().ok());
}

TEST_F(EngineTest, CancellationFreesTheRowAtTheNextStep) {
  Start();
  Gate();
  GenerationRequest r = Req({2}, 100);
  r.common.cancel = NewCancelFlag();
  CancelFlag flag = r.common.cancel;
  std::atomic<int> streamed{0};
  r.on_token = [&](const TokenChoice&) { ++streamed; };
  auto f = GenerateAsync(engine_.get(), std::move(r));
  Release(3);
  WaitFor([](const FakeRunner::Shared& s) { return s.steps == 3; });
  flag->store(true);
  Ungate();
  auto result = f.get();
  EXPECT_EQ(result.status().code(), StatusCode::kCancelled);
  WaitFor([](const FakeRunner::Shared& s) { return s.rows == 0; });
  EXPECT_LT(streamed.load(), 100);
  EXPECT_TRUE(GenerateSync(engine_.get(), Req({2}, 2)).ok());  // the engine carries on
}

TEST_F(EngineTest, DeadlineWhileGeneratingEndsTheRequest) {
  Start();
  Gate();
  GenerationRequest r = Req({2}, 100);
  const TimePoint deadline = Clock::now() + std::chrono::milliseconds(20);
  r.common.deadline = deadline;
  auto f = GenerateAsync(engine_.get(), std::move(r));
  Release(1);
  WaitFor([](const FakeRunner::Shared& s) { return s.steps == 1; });
  while (Clock::now() <= deadline) std::this_thread::yield();
  Ungate();
  EXPECT_EQ(f.get().status().code(), StatusCode::kDeadlineExceeded);
  WaitFor([](const FakeRunner::Shared& s) { return s.rows == 0; });
}

TEST_F(EngineTest, AStopCallbackEndsTheGenerationWithThatTokenAndFreesTheRow) {
  Start();
  GenerationRequest r = Req({2}, 50);
  int seen = 0;
  r.stop = [&](int64_t) { return ++seen == 3; };
  auto result = GenerateSync(engine_.get(), std::move(r));
  ASSERT_TRUE(result.ok());
  EXPECT_EQ(result->output_ids.size(), 3u);
  EXPECT_EQ(result->finish_reason, FinishReason::kStopSequence);
  WaitFor([](const FakeRunner::Shared& s) { return s.rows == 0; });
  // A callback that throws counts as "go on".
  GenerationRequest throws = Req({2}, 5);
  throws.stop = [](int64_t) -> bool { throw std::runtime_error("bug"); };
  auto full = GenerateSync(engine_.get(), std::move(throws));
  ASSERT_TRUE(full.ok());
  EXPECT_EQ(full->output_ids.size(), 5u);
  EXPECT_EQ(full->finish_reason, FinishReason::kMaxTokens);
  // Beam search cannot stop on its tokens.
  GenerationRequest beam = Req({2}, 5);
  beam.params.mode = DecodingMode::kBeam;
  beam.stop = [](int64_t) { return false; };
  EXPECT_EQ(GenerateSync(engine_.get(), std::move(beam)).status().code(), StatusCode::kInvalidArgument);
}

// A greedy generation of up to 100 tokens, then a 2-beam one, each ended early by what `arm`
// sets up on the request: `arm` returns what makes the end due, called once a few steps have run
// (the engine gated). Both complete OK with `reason` and the tokens so far; beam search returns
// its best hypothesis without an eos it never wrote.
void ExpectEarlyEnd(EngineTest* t, Engine* engine, FinishReason reason,
                    const std::function<std::function<void()>(GenerationRequest*)>& arm) {
  for (const bool beam : {false, true}) {
    t->Gate();
    GenerationRequest r = t->Req({2}, 100);
    if (beam) {
      r.params.mode = DecodingMode::kBeam;
      r.params.num_beams = 2;
    }
    const std::function<void()> fire = arm(&r);
    int64_t before = 0;
    t->WaitFor([&](const FakeRunner::Shared& s) { return before = s.steps, true; });
    auto f = GenerateAsync(engine, std::move(r));
    t->Release(3);
    t->WaitFor([&](const FakeRunner::Shared& s) { return s.steps == before + 3; });
    fire();
    t->Ungate();
    auto result = f.get();
    ASSERT_TRUE(result.ok()) << result.status().ToString();
    EXPECT_EQ(result->finish_reason, reason) << "beam " << beam;
    EXPECT_GE(result->output_ids.size(), beam ? 2u : 3u);
    EXPECT_LT(result->output_ids.size(), 100u);
    if (beam) {
      EXPECT_NE(result->output_ids.back(), 1);
    }
    t->WaitFor([](const FakeRunner::Shared& s) { return s.rows == 0; });
  }
}

TEST_F(EngineTest, ATimeLimitReturnsWhatWasGeneratedSoFar) {
  Start();
  ExpectEarlyEnd(this, engine_.get(), FinishReason::kTimeLimit, [](GenerationRequest* r) {
    const TimePoint limit = Clock::now() + std::chrono::milliseconds(20);
    r->time_limit = limit;
    r->common.deadline = limit + std::chrono::seconds(60);
    return [limit] {
      while (Clock::now() <= limit) std::this_thread::yield();
    };
  });
}

// A generation queued behind the only row, ended early by what `arm` sets up on it; `arm`
// returns what makes the end due (called while the engine is gated). It completes OK with
// `reason` and no tokens; the running one is unaffected.
void ExpectQueuedEarlyEnd(EngineTest* t, FinishReason reason,
                          const std::function<std::function<void()>(GenerationRequest*)>& arm) {
  EngineLimits limits;
  limits.max_rows = 1;
  t->Start(limits);
  t->Gate();
  auto running = GenerateAsync(t->engine_.get(), t->Req({2}, 3));
  t->WaitFor([](const FakeRunner::Shared& s) { return s.rows == 1; });  // holds the only row
  GenerationRequest queued = t->Req({2}, 3);
  const std::function<void()> fire = arm(&queued);
  auto q = GenerateAsync(t->engine_.get(), std::move(queued));
  fire();
  t->Ungate();
  auto result = q.get();
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  EXPECT_EQ(result->finish_reason, reason);
  EXPECT_TRUE(result->output_ids.empty());
  EXPECT_GE(result->queue_seconds, 0.0);
  EXPECT_TRUE(running.get().ok());
}

TEST_F(EngineTest, ATimeLimitThatPassesInTheQueueReturnsNoTokens) {
  ExpectQueuedEarlyEnd(this, FinishReason::kTimeLimit, [](GenerationRequest* r) {
    const TimePoint limit = Clock::now() + std::chrono::milliseconds(10);
    r->time_limit = limit;
    return [limit] {
      while (Clock::now() <= limit) std::this_thread::yield();
    };
  });
}

// end_early: the caller's "stop now, keep what you have" ends a running generation (greedy and
// beam) with FinishReason::kCancelled and status OK; the rows are freed.
TEST_F(EngineTest, EndEarlyReturnsWhatWasGeneratedWithCancelled) {
  Start();
  ExpectEarlyEnd(this, engine_.get(), FinishReason::kCancelled, [](GenerationRequest* r) {
    r->end_early = NewCancelFlag();
    return [flag = r->end_early] { flag->store(true); };
  });
}

TEST_F(EngineTest, EndEarlyWhileQueuedReturnsNoTokens) {
  ExpectQueuedEarlyEnd(this, FinishReason::kCancelled, [](GenerationRequest* r) {
    r->end_early = NewCancelFlag();
    r->end_early->store(true);
    return [] {};
  });
}

TEST_F(EngineTest, AFailedStepIsRetriedAndNoRequestIsLost) {
  Start();
  const std::vector<int64_t> expect_a = GenerateSync(engine_.get(), Req({2}, 12))->output_ids;
  const std::vector<int64_t> expect_b = GenerateSync(engine_.get(), Req({4}, 12))->output_ids;
  Gate();
  // A one-token blocker holds the engine so that a and b are admitted together after it.
  auto blocker = GenerateAsync(engine_.get(), Req({2}, 1));
  WaitFor([](const FakeRunner::Shared& s) { return s.rows == 1; });
  auto a = GenerateAsync(engine_.get(), Req({2}, 12));
  auto b = GenerateAsync(engine_.get(), Req({4}, 12));
  Release(1);
  EXPECT_TRUE(blocker.get().ok());
  WaitFor([](const FakeRunner::Shared& s) { return s.rows == 2; });
  {
    std::lock_guard<std::mutex> l(shared_->mu);
    shared_->fail_next_step = true;  // one transient failure (e.g. a momentary out-of-memory)
  }
  Ungate();
  // Both are retried (recomputed from their tokens) and finish as if nothing had happened.
  auto ra = a.get(), rb = b.get();
  ASSERT_TRUE(ra.ok()) << ra.status().ToString();
  ASSERT_TRUE(rb.ok()) << rb.status().ToString();
  EXPECT_EQ(ra->output_ids, expect_a);
  EXPECT_EQ(rb->output_ids, expect_b);
  std::lock_guard<std::mutex> l(shared_->mu);
  EXPECT_GE(shared_->resets, 1);
  EXPECT_GE(shared_->recomputed_rows, 2);
}

TEST_F(EngineTest, FailingPrefillFailsOnlyTheBadRequest) {
  Start();
  Gate();
  {
    std::lock_guard<std::mutex> l(shared_->mu);
    shared_->fail_prefill_first_ids.insert(44);
  }
  auto blocker = GenerateAsync(engine_.get(), Req({2}, 2));  // holds the engine while others queue
  WaitFor([](const FakeRunner::Shared& s) { return s.rows == 1; });
  auto good1 = GenerateAsync(engine_.get(), Req({6}, 3));
  auto bad = GenerateAsync(engine_.get(), Req({44}, 3));
  auto good2 = GenerateAsync(engine_.get(), Req({8}, 3));
  Ungate();
  EXPECT_TRUE(blocker.get().ok());
  EXPECT_TRUE(good1.get().ok());
  auto b = bad.get();
  EXPECT_EQ(b.status().code(), StatusCode::kInternal);
  EXPECT_NE(b.status().message().find("injected prefill"), std::string::npos);
  EXPECT_TRUE(good2.get().ok());
}

TEST_F(EngineTest, ContinuousBatchingAdmitsWhileOthersRun) {
  EngineLimits limits;
  limits.max_rows = 4;
  Start(limits);
  Gate();  // all twelve are waiting before the first step runs
  std::vector<std::future<StatusOr<GenerationResult>>> futures;
  for (int i = 0; i < 12; ++i) futures.push_back(GenerateAsync(engine_.get(), Req({2 * i + 2}, 3 + i % 5)));
  Ungate();
  for (auto& f : futures) EXPECT_TRUE(f.get().ok());
  std::lock_guard<std::mutex> l(shared_->mu);
  EXPECT_EQ(shared_->max_rows_seen, 4);
  // 57 tokens in 4 rows, refilled as rows finish: far fewer steps than one at a time.
  EXPECT_LT(shared_->steps, 30);
}

TEST_F(EngineTest, LightTenantCompletesWhileHeavyTenantFloods) {
  EngineLimits limits;
  limits.max_rows = 2;
  limits.max_queue = 1000;
  Start(limits);
  Gate();
  std::vector<std::future<StatusOr<GenerationResult>>> heavy;
  for (int i = 0; i < 200; ++i) heavy.push_back(GenerateAsync(engine_.get(), Req({2}, 5, "heavy")));
  auto light = GenerateAsync(engine_.get(), Req({2}, 5, "light"));
  // Enough steps for a handful of jobs, far fewer than the heavy backlog needs.
  Release(40);
  ASSERT_EQ(light.wait_for(std::chrono::seconds(30)), std::future_status::ready);
  EXPECT_TRUE(light.get().ok());
  int heavy_done = 0;
  for (auto& f : heavy) heavy_done += f.wait_for(std::chrono::seconds(0)) == std::future_status::ready;
  EXPECT_LT(heavy_done, 50);  // the light tenant did not wait for the heavy backlog
  Ungate();
  for (auto& f : heavy) EXPECT_TRUE(f.get().ok());
}

TEST_F(EngineTest, BeamRowsAndStreamingTokens) {
  Start();
  GenerationRequest beam = Req({2}, 5);
  beam.params.mode = DecodingMode::kBeam;
  beam.params.num_beams = 3;
  auto b = GenerateSync(engine_.get(), std::move(beam));
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->output_ids.size(), 5u);
  std::vector<int64_t> streamed;
  GenerationRequest g = Req({3}, 10);
  g.on_token = [&](const TokenChoice& c) { streamed.push_back(c.token); };
  auto r = GenerateSync(engine_.get(), std::move(g));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(streamed, r->output_ids);
}

TEST_F(EngineTest, ShutdownDrainsRunningWorkThenRefuses) {
  Start();
  auto running = GenerateAsync(engine_.get(), Req({2}, 20));
  std::thread stopper([&] { engine_->Shutdown(Clock::now() + std::chrono::seconds(30)); });
  stopper.join();
  EXPECT_TRUE(running.get().ok());  // finished within the grace period
  EXPECT_FALSE(engine_->accepting());
  EXPECT_EQ(GenerateSync(engine_.get(), Req({2}, 2)).status().code(), StatusCode::kUnavailable);
}

TEST_F(EngineTest, ShutdownPastGraceFailsWhatIsLeft) {
  Start();
  Gate();
  auto running = GenerateAsync(engine_.get(), Req({2}, 20));
  WaitFor([](const FakeRunner::Shared& s) { return s.rows == 1; });
  std::thread stopper([&] { engine_->Shutdown(Clock::now()); });
  while (engine_->accepting()) std::this_thread::yield();  // the stop is registered
  Ungate();
  stopper.join();
  EXPECT_EQ(running.get().status().code(), StatusCode::kUnavailable);
}

TEST_F(EngineTest, EnsembleVotesAndScoringSums) {
  Start();
  auto p1 = std::make_shared<Prompt>(PromptKey{"t", "a", 1}, 1, 8, std::vector<float>(8, 0.f), PromptFormat::kRaw, 0);
  auto p2 = std::make_shared<Prompt>(PromptKey{"t", "b", 1}, 1, 8, std::vector<float>(8, 1.f), PromptFormat::kRaw, 0);
  EnsembleRequest e;
  e.common.input_ids = {2};
  e.prompts = {p1, p2, p1};
  e.params.max_new_tokens = 4;
  auto [promise, done] = softserve::testing::Completion<EnsembleResult>();
  engine_->SubmitEnsemble(e, done);
  auto r = promise->get_future().get();
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->members.size(), 3u);
  EXPECT_EQ(r->members[0].output_ids, r->members[2].output_ids);  // same prompt, same output
  EXPECT_EQ(r->winner, 0);
  EXPECT_EQ(r->votes, 2);
  e.targets = {{5, 1}, {5, 6, 7, 1}};
  auto [sp, sdone] = softserve::testing::Completion<EnsembleResult>();
  engine_->SubmitEnsemble(e, sdone);
  auto s = sp->get_future().get();
  ASSERT_TRUE(s.ok());
  ASSERT_EQ(s->summed_logprobs.size(), 2u);
  // Fake scores: -(len) - 0.5 per prompt, summed over three prompts.
  EXPECT_DOUBLE_EQ(s->summed_logprobs[0], 3 * -2.5);
  EXPECT_EQ(s->best, 0);
}

}  // namespace
}  // namespace softserve::core
