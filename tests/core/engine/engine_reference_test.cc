// The engine over the real T5 against Hugging Face's generate() references: greedy and beam
// ids and beam scores, plain and soft-prompted, each request alone and in randomized mixes
// (different prompts, arrival orders and decoding modes sharing the batch). On the test device
// (tests/testing/reference_data.h): CPU in the regular suite, and CUDA under the CTest label
// `gpu` with the same float32 tolerances (skipped, saying so, where no CUDA device is).
#include <c10/core/InferenceMode.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <future>
#include <random>
#include <set>

#include "core/engine/cost.h"
#include "core/engine/engine.h"
#include "core/engine/t5_runner.h"
#include "core/common/file_util.h"
#include "core/prompts/prompt_formats.h"
#include "tests/testing/skip.h"
#include "tests/testing/peft_fixture.h"
#include "tests/testing/engine_testing.h"
#include "tests/testing/gated_runner.h"
#include "tests/testing/reference_data.h"
#include "tests/testing/t5_runner_testing.h"

namespace softserve::core {
namespace {

using ::softserve::testing::ReferenceCases;
using ::softserve::testing::ReferenceModelDir;

class EngineReferenceTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    if (const std::string why = testing::TestDeviceUnavailable(); !why.empty()) SOFTSERVE_SKIP() << why;
    cases_ = std::make_unique<ReferenceCases>(GetParam());
    auto model = T5Model::Load(ReferenceModelDir(GetParam()), testing::TestModelOptions());
    ASSERT_TRUE(model.ok()) << model.status().ToString();
    EngineLimits limits;
    limits.max_rows = 24;
    engine_ = std::make_unique<Engine>(testing::NewT5Runner(std::move(model).value(), limits), limits);
    for (const char* p : {"a", "b"}) {
      prompts_[p] = testing::PromptFromTensor(cases_->Float(std::string("prompt.") + p), p);
    }
  }

  std::vector<int64_t> Row(int i) const { return cases_->Ids("generate.row" + std::to_string(i) + ".input_ids"); }

  // Reference output ids without the leading decoder start token (softserve reports the
  // generated ids after the start token).
  std::vector<int64_t> Expected(const std::string& name) const {
    std::vector<int64_t> ids = cases_->Ids(name);
    return std::vector<int64_t>(ids.begin() + 1, ids.end());
  }

  static DecodingParams Greedy() {
    DecodingParams p;
    p.max_new_tokens = 12;
    return p;
  }
  static DecodingParams Beam4() {
    DecodingParams p;
    p.mode = DecodingMode::kBeam;
    p.num_beams = 4;
    p.length_penalty = 1.0;
    p.early_stopping = EarlyStopping::kHeuristic;
    p.max_new_tokens = 12;
    return p;
  }

  // One expected generation: input row, prompt ("" for none), mode, reference key.
  struct Case {
    int row;
    std::string prompt;
    bool beam;
    std::string key;
  };
  std::vector<Case> AllCases() const {
    std::vector<Case> out;
    for (int i = 0; i < 3; ++i) {
      const std::string r = "row" + std::to_string(i);
      out.push_back({i, "", false, "generate." + r + ".greedy"});
      out.push_back({i, "", true, "generate." + r + ".beam4"});
      for (const char* p : {"a", "b"}) {
        out.push_back({i, p, false, std::string("prompt.") + p + "." + r + ".greedy"});
        out.push_back({i, p, true, std::string("prompt.") + p + "." + r + ".beam4"});
      }
    }
    return out;
  }

  GenerationRequest Request(const Case& c) {
    GenerationRequest req;
    req.common.input_ids = Row(c.row);
    req.common.tenant = c.prompt.empty() ? "plain" : "tenant-" + c.prompt;
    if (!c.prompt.empty()) req.prompt = prompts_[c.prompt];
    req.params = c.beam ? Beam4() : Greedy();
    return req;
  }

  void ExpectMatches(const Case& c, const GenerationResult& r) {
    EXPECT_EQ(r.output_ids, Expected(c.key)) << c.key;
    if (c.beam) {
      const float expected = cases_->Float(c.key + "_score").item<float>();
      EXPECT_NEAR(r.score, expected, 1e-4) << c.key;
    }
  }

  std::unique_ptr<ReferenceCases> cases_;
  std::unique_ptr<Engine> engine_;
  std::map<std::string, PromptPtr> prompts_;
};

// A decode step reads the device once, whatever its mix of rows (greedy, sampled, beam): the
// chosen tokens, their log-probabilities and the beam candidates come back in one tensor. The
// greedy row still produces Hugging Face's ids.
TEST_P(EngineReferenceTest, ADecodeStepReadsTheDeviceOnce) {
  auto model = T5Model::Load(ReferenceModelDir(GetParam()), testing::TestModelOptions());
  ASSERT_TRUE(model.ok()) << model.status().ToString();
  T5Runner runner(std::move(model).value(), KvCacheShape{8, 64, 256});
  const std::vector<int64_t> in0 = Row(0), in1 = Row(1);
  PrefillItem greedy{&in0, nullptr, 1}, sampled{&in1, nullptr, 1}, beams{&in1, nullptr, 4};
  ASSERT_TRUE(runner.Prefill({greedy, sampled, beams}).ok());
  std::vector<RowSelection> selections(6);
  selections[1].kind = SelectKind::kSample;
  selections[1].temperature = 0.7;
  selections[1].top_k = 5;
  selections[1].uniform = 0.3;
  for (int r = 2; r < 6; ++r) selections[r] = {SelectKind::kTopCandidates, 8};
  const std::vector<int64_t> expected = Expected("generate.row0.greedy");
  std::vector<int64_t> feed(6, runner.config().decoder_start_token_id);
  for (size_t step = 0; step < expected.size(); ++step) {
    std::vector<RowOutput> out;
    const int64_t before = runner.device_to_host_transfers();
    ASSERT_TRUE(runner.Step(feed, selections, &out).ok());
    EXPECT_EQ(runner.device_to_host_transfers() - before, 1) << "step " << step;
    EXPECT_EQ(out[0].token, expected[step]) << "step " << step;
    ASSERT_EQ(out[2].candidates.size(), 8u);
    EXPECT_GE(out[2].candidates[0].logprob, out[2].candidates[7].logprob);
    feed[0] = expected[step];
    feed[1] = out[1].token;
    for (int r = 2; r < 6; ++r) feed[r] = out[r].candidates[0].token;
  }
}

TEST_P(EngineReferenceTest, EveryCaseAloneMatchesHuggingFace) {
  for (const Case& c : AllCases()) {
    auto r = testing::GenerateSync(engine_.get(), Request(c));
    ASSERT_TRUE(r.ok()) << c.key << ": " << r.status().ToString();
    ExpectMatches(c, *r);
  }
}

TEST_P(EngineReferenceTest, AllCasesSubmittedTogetherMatch) {
  std::vector<Case> cases = AllCases();
  std::vector<std::future<StatusOr<GenerationResult>>> futures;
  for (const Case& c : cases) futures.push_back(testing::GenerateAsync(engine_.get(), Request(c)));
  for (size_t i = 0; i < cases.size(); ++i) {
    auto r = futures[i].get();
    ASSERT_TRUE(r.ok()) << cases[i].key << ": " << r.status().ToString();
    ExpectMatches(cases[i], *r);
  }
}

// Prefill in chunks (T5RunnerOptions::prefill_chunk_tokens): every item alone, and a few
// items per encoder pass; all cases submitted together still give Hugging Face's outputs.
TEST_P(EngineReferenceTest, PrefillInChunksMatchesHuggingFace) {
  for (int64_t chunk_tokens : {1, 40}) {
    SCOPED_TRACE("prefill_chunk_tokens=" + std::to_string(chunk_tokens));
    auto model = T5Model::Load(ReferenceModelDir(GetParam()), testing::TestModelOptions());
    ASSERT_TRUE(model.ok()) << model.status().ToString();
    EngineLimits limits;
    limits.max_rows = 24;
    T5RunnerOptions options;
    options.prefill_chunk_tokens = chunk_tokens;
    Engine engine(testing::NewT5Runner(std::move(model).value(), limits, options), limits);
    std::vector<Case> cases = AllCases();
    std::vector<std::future<StatusOr<GenerationResult>>> futures;
    for (const Case& c : cases) futures.push_back(testing::GenerateAsync(&engine, Request(c)));
    for (size_t i = 0; i < cases.size(); ++i) {
      auto r = futures[i].get();
      ASSERT_TRUE(r.ok()) << cases[i].key << ": " << r.status().ToString();
      ExpectMatches(cases[i], *r);
    }
  }
}

TEST(PrefillChunkEndTest, ChunksHoldAtMostTheBudgetOfPaddedPositions) {
  const std::vector<int64_t> five(5), ten(10);
  const Prompt prompt(PromptKey{"t", "p", 1}, 3, 2, std::vector<float>(6), PromptFormat::kRaw, 0);
  // Encoder positions per item: 5, 10, 5 + 3 (prompt), 5, 10.
  const std::vector<PrefillItem> items = {{&five}, {&ten}, {&five, &prompt}, {&five}, {&ten}};
  EXPECT_EQ(PrefillChunkEnd(items, 0, 0), 5u);    // no budget: one pass
  EXPECT_EQ(PrefillChunkEnd(items, 0, 1), 1u);    // an item wider than the budget goes alone
  EXPECT_EQ(PrefillChunkEnd(items, 0, 19), 1u);   // 2 items padded to 10 = 20 > 19
  EXPECT_EQ(PrefillChunkEnd(items, 0, 20), 2u);
  EXPECT_EQ(PrefillChunkEnd(items, 0, 30), 3u);   // 3 x 10
  EXPECT_EQ(PrefillChunkEnd(items, 2, 24), 4u);   // 2 x 8; a third would be 3 x 10
  EXPECT_EQ(PrefillChunkEnd(items, 4, 1), 5u);
  EXPECT_EQ(PrefillChunkEnd(items, 1, 1000), 5u);
}

// The attention a GPU runs (scaled_dot_product_attention with T5's bias as additive mask on
// libtorch >= 2.1, batched matmuls before) forced onto this CPU: every case, batched and mixed,
// still gives Hugging Face's ids and beam scores. Debian 13's libtorch 2.6 build
// (scripts/check-libtorch2.sh) runs the SDPA kernel here; Debian 12's 1.13 the matmuls.
TEST_P(EngineReferenceTest, TheDeviceAttentionKernelMatchesHuggingFace) {
  struct Restore {
    ~Restore() { ForceDeviceAttentionForTesting(false); }
  } restore;
  const char* kernel = ForceDeviceAttentionForTesting(true);
  std::printf("device attention kernel: %s\n", kernel);
  std::vector<Case> cases = AllCases();
  std::vector<std::future<StatusOr<GenerationResult>>> futures;
  for (const Case& c : cases) futures.push_back(testing::GenerateAsync(engine_.get(), Request(c)));
  for (size_t i = 0; i < cases.size(); ++i) {
    auto r = futures[i].get();
    ASSERT_TRUE(r.ok()) << kernel << " " << cases[i].key << ": " << r.status().ToString();
    ExpectMatches(cases[i], *r);
  }
}

// Randomized mixes: shuffled order, staggered arrivals (some requests arrive while others are
// mid-generation), duplicates, and a batch limit small enough that requests wait and join as
// rows free up.
TEST_P(EngineReferenceTest, RandomizedMixesAndArrivalsMatch) {
  std::mt19937 rng(1234);
  for (int trial = 0; trial < 4; ++trial) {
    std::vector<Case> cases = AllCases();
    std::vector<Case> extra(cases.begin(), cases.begin() + 6);
    cases.insert(cases.end(), extra.begin(), extra.end());
    std::shuffle(cases.begin(), cases.end(), rng);
    std::vector<std::future<StatusOr<GenerationResult>>> futures;
    for (size_t i = 0; i < cases.size(); ++i) {
      futures.push_back(testing::GenerateAsync(engine_.get(), Request(cases[i])));
      if (rng() % 3 == 0) futures[i].wait();  // let the batch run on before the next arrives
    }
    for (size_t i = 0; i < cases.size(); ++i) {
      auto r = futures[i].get();
      ASSERT_TRUE(r.ok()) << cases[i].key << ": " << r.status().ToString();
      ExpectMatches(cases[i], *r);
    }
  }
}

class PreemptionCounter : public EngineObserver {
 public:
  void OnStep(const StepStats& s) override { preempted += s.preempted_jobs; }
  std::atomic<int64_t> preempted{0};
};

// Preemption by recompute: tenant "flood" fills a small batch with beam requests; the other
// tenants' requests arrive while it runs and take their share back by preempting its newest
// jobs. Every request, preempted or not, must still produce Hugging Face's ids and scores.
TEST_P(EngineReferenceTest, PreemptedAndRecomputedRequestsStillMatchHuggingFace) {
  auto model = T5Model::Load(ReferenceModelDir(GetParam()), testing::TestModelOptions());
  ASSERT_TRUE(model.ok());
  EngineLimits limits;
  limits.max_rows = 8;
  PreemptionCounter counter;
  auto gate = std::make_shared<testing::GatedRunner::Gate>();
  gate->Close();
  Engine engine(std::make_unique<testing::GatedRunner>(testing::NewT5Runner(std::move(model).value(), limits), gate),
                limits, &counter);
  std::vector<Case> flood, others;
  for (const Case& c : AllCases()) (c.beam ? flood : others).push_back(c);
  std::vector<std::future<StatusOr<GenerationResult>>> f_flood, f_others;
  for (const Case& c : flood) {
    GenerationRequest r = Request(c);
    r.common.tenant = "flood";
    f_flood.push_back(testing::GenerateAsync(&engine, std::move(r)));
  }
  // The flood holds all 8 rows (two beam-4 requests) and is two tokens in when the others
  // arrive; they take their share back at the next step.
  gate->Release(2);
  gate->WaitSteps(2);
  for (const Case& c : others) f_others.push_back(testing::GenerateAsync(&engine, Request(c)));
  gate->Open();
  for (size_t i = 0; i < flood.size(); ++i) {
    auto r = f_flood[i].get();
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    ExpectMatches(flood[i], *r);
  }
  for (size_t i = 0; i < others.size(); ++i) {
    auto r = f_others[i].get();
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    ExpectMatches(others[i], *r);
  }
  EXPECT_GT(counter.preempted.load(), 0) << "the workload did not exercise preemption";
}

class MaxRowsObserver : public EngineObserver {
 public:
  void OnStep(const StepStats& s) override {
    int64_t seen = max_rows.load();
    while (s.rows > seen && !max_rows.compare_exchange_weak(seen, s.rows)) {
    }
  }
  std::atomic<int64_t> max_rows{0};
};

// A KV cache budget of five rows: the runner holds five slots, the engine lowers its batch to
// them, never steps more rows, and every request (beam-4 ones included) still produces Hugging
// Face's ids while the others wait for free rows. A budget of three rows refuses beam-4 up front
// with a message naming the rows; the cache's memory never moves.
TEST_P(EngineReferenceTest, AKvCacheByteBudgetBoundsTheBatchAndKeepsOutputsExact) {
  auto model = T5Model::Load(ReferenceModelDir(GetParam()), testing::TestModelOptions());
  ASSERT_TRUE(model.ok());
  std::shared_ptr<const T5Model> shared = std::move(model).value();
  EngineLimits limits;
  limits.max_input_tokens = 1;
  for (int i = 0; i < 3; ++i) {
    limits.max_input_tokens = std::max<int64_t>(limits.max_input_tokens, Row(i).size());
  }
  limits.max_prompt_rows = std::max(prompts_["a"]->rows(), prompts_["b"]->rows());
  limits.max_new_tokens = 12;
  const int64_t slot = KvCacheSlotBytes(shared->config(), shared->scalar_type(), 12,
                                        limits.max_prompt_rows + limits.max_input_tokens);
  T5RunnerOptions options;
  options.kv_cache_bytes = 5 * slot + slot / 2;
  EngineLimits sized = limits;
  auto runner = T5Runner::Create(shared, options, &sized);
  ASSERT_TRUE(runner.ok()) << runner.status().ToString();
  EXPECT_EQ(sized.max_rows, 5);
  EXPECT_EQ((*runner)->kv_cache().CapacityBytes(), 5 * slot);
  const void* storage = (*runner)->kv_cache().self_k(0, 1).data_ptr();
  const T5Runner* raw = runner->get();
  MaxRowsObserver observer;
  {
    Engine engine(std::move(runner).value(), limits, &observer);  // limits.max_rows is 64
    EXPECT_EQ(engine.limits().max_rows, 5);
    std::vector<std::future<StatusOr<GenerationResult>>> futures;
    const std::vector<Case> cases = AllCases();
    for (const Case& c : cases) futures.push_back(testing::GenerateAsync(&engine, Request(c)));
    for (size_t i = 0; i < cases.size(); ++i) {
      auto r = futures[i].get();
      ASSERT_TRUE(r.ok()) << r.status().ToString();
      ExpectMatches(cases[i], *r);
    }
    EXPECT_LE(observer.max_rows.load(), 5);
    EXPECT_GE(observer.max_rows.load(), 4) << "the workload never filled the cache";
    EXPECT_EQ(raw->kv_cache().self_k(0, 1).data_ptr(), storage) << "the cache was reallocated";
  }

  options.kv_cache_bytes = 3 * slot;
  auto small = T5Runner::Create(shared, options, &limits);
  ASSERT_TRUE(small.ok()) << small.status().ToString();
  Engine engine(std::move(small).value(), limits);
  auto r = testing::GenerateSync(&engine, Request(AllCases()[1]));  // beam 4
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("needs 4 rows"), std::string::npos) << r.status().message();
  EXPECT_NE(r.status().message().find("allows 3 rows"), std::string::npos) << r.status().message();
}

// The KV cache options: a fraction of free memory is measured on CUDA and refused on CPU with a
// message that says what to give instead; contradictory or negative budgets and budgets that
// hold no row are refused before anything is allocated.
TEST(T5RunnerCreateTest, KvCacheBudgetOptions) {
  if (const std::string why = testing::TestDeviceUnavailable(); !why.empty()) SOFTSERVE_SKIP() << why;
  auto model = T5Model::Load(ReferenceModelDir("t5-tiny-v1_0"), testing::TestModelOptions());
  ASSERT_TRUE(model.ok());
  std::shared_ptr<const T5Model> shared = std::move(model).value();
  EngineLimits limits;
  T5RunnerOptions fraction;
  fraction.kv_cache_memory_fraction = 0.01;
  auto by_fraction = T5Runner::Create(shared, fraction, &limits);
  if (shared->options().device.kind == DeviceKind::kCpu) {
    ASSERT_FALSE(by_fraction.ok());
    EXPECT_EQ(by_fraction.status().code(), StatusCode::kUnavailable);
    EXPECT_NE(by_fraction.status().message().find("CUDA"), std::string::npos) << by_fraction.status().message();
  } else {
    ASSERT_TRUE(by_fraction.ok()) << by_fraction.status().ToString();
    EXPECT_GE((*by_fraction)->row_capacity(), 1);
    std::printf("1%% of free device memory holds %lld rows\n", static_cast<long long>((*by_fraction)->row_capacity()));
  }
  T5RunnerOptions both = fraction;
  both.kv_cache_bytes = 1 << 20;
  EXPECT_EQ(T5Runner::Create(shared, both, &limits).status().code(), StatusCode::kInvalidArgument);
  T5RunnerOptions negative;
  negative.kv_cache_bytes = -1;
  EXPECT_EQ(T5Runner::Create(shared, negative, &limits).status().code(), StatusCode::kInvalidArgument);
  T5RunnerOptions tiny;
  tiny.kv_cache_bytes = 1000;
  auto none = T5Runner::Create(shared, tiny, &limits);
  EXPECT_EQ(none.status().code(), StatusCode::kResourceExhausted);
  EXPECT_NE(none.status().message().find("holds no row"), std::string::npos) << none.status().message();
  EXPECT_EQ(limits.max_rows, 64) << "a failed Create must leave the limits alone";
}

// Case (e) in passes of one target each (max_score_bytes below two targets' working memory):
// the same totals as one batched pass.
TEST_P(EngineReferenceTest, RankScoringInBoundedPassesMatchesReference) {
  auto model = T5Model::Load(ReferenceModelDir(GetParam()), testing::TestModelOptions());
  ASSERT_TRUE(model.ok());
  EngineLimits limits;
  ScoreRequest req;
  req.common.input_ids = cases_->Ids("rank.input_ids");
  req.prompt = prompts_["a"];
  at::Tensor cands = cases_->Int("rank.candidates");
  at::Tensor mask = cases_->Int("rank.candidates_mask");
  int64_t widest = 0;
  for (int64_t c = 0; c < cands.size(0); ++c) {
    const int64_t len = mask[c].sum().item<int64_t>();
    std::vector<int64_t> t;
    for (int64_t i = 0; i < len; ++i) t.push_back(cands[c][i].item<int64_t>());
    req.targets.push_back(t);
    widest = std::max(widest, ScoringBytes((*model)->config(),
                                           prompts_["a"]->rows() + static_cast<int64_t>(req.common.input_ids.size()), len));
  }
  limits.max_score_bytes = widest;
  Engine engine(testing::NewT5Runner(std::move(model).value(), limits), limits);
  auto r = testing::ScoreSync(&engine, req);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  at::Tensor totals = cases_->Float("rank.total_logprob");
  for (size_t c = 0; c < req.targets.size(); ++c) {
    EXPECT_NEAR(r->total_logprobs[c], totals[c].item<double>(), 1e-3) << "candidate " << c;
  }
}

// Case (e): rank scoring with prompt a; totals within 1e-3, identical ranking, per-token
// log-probs within the float tolerance.
TEST_P(EngineReferenceTest, RankScoringMatchesReference) {
  ScoreRequest req;
  req.common.input_ids = cases_->Ids("rank.input_ids");
  req.prompt = prompts_["a"];
  at::Tensor cands = cases_->Int("rank.candidates");
  at::Tensor mask = cases_->Int("rank.candidates_mask");
  for (int64_t c = 0; c < cands.size(0); ++c) {
    const int64_t len = mask[c].sum().item<int64_t>();
    std::vector<int64_t> t;
    for (int64_t i = 0; i < len; ++i) t.push_back(cands[c][i].item<int64_t>());
    req.targets.push_back(t);
  }
  auto r = testing::ScoreSync(engine_.get(), req);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  at::Tensor totals = cases_->Float("rank.total_logprob");
  at::Tensor token_lp = cases_->Float("rank.token_logprobs");
  for (size_t c = 0; c < req.targets.size(); ++c) {
    EXPECT_NEAR(r->total_logprobs[c], totals[c].item<double>(), 1e-3) << "candidate " << c;
    for (size_t i = 0; i < req.targets[c].size(); ++i) {
      const double e = token_lp[c][i].item<double>();
      EXPECT_NEAR(r->token_logprobs[c][i], e, 1e-4 + 1e-4 * std::abs(e));
    }
  }
  std::vector<int64_t> order;
  for (const auto& v : cases_->json().Find("rank")->Find("order_best_first")->array()) order.push_back(v.int_value());
  EXPECT_EQ(r->best, order[0]);
  std::vector<int64_t> ours = {0, 1, 2};
  std::sort(ours.begin(), ours.end(), [&](int64_t a, int64_t b) { return r->total_logprobs[a] > r->total_logprobs[b]; });
  EXPECT_EQ(ours, order);
}

// Case (f): a residual checkpoint parsed and folded at upload generates HF's greedy ids.
TEST_P(EngineReferenceTest, ResidualPromptGeneratesReferenceIds) {
  auto bytes = ReadFileToString(cases_->dir() + "/residual_prompt.safetensors");
  ASSERT_TRUE(bytes.ok());
  PromptLimits limits;
  limits.d_model = 64;
  auto m = ParseResidualPrompt(*bytes, limits);
  ASSERT_TRUE(m.ok());
  auto prompt = std::make_shared<Prompt>(PromptKey{"t", "res", 1}, m->rows, m->dim, m->values, m->format, 0);
  for (int i : {0, 2}) {
    GenerationRequest req;
    req.common.input_ids = Row(i);
    req.prompt = prompt;
    req.params = Greedy();
    auto r = testing::GenerateSync(engine_.get(), req);
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->output_ids, Expected("residual.row" + std::to_string(i) + ".greedy")) << i;
  }
}

// A PEFT adapter (2N rows stored) around prompt a generates exactly prompt a's references.
TEST_P(EngineReferenceTest, PeftAdapterGeneratesPromptReferenceIds) {
  at::Tensor a = cases_->Float("prompt.a");
  PromptLimits limits;
  limits.d_model = 64;
  auto m = ParsePeftPrompt(testing::PeftAdapterConfig(a.size(0), 64), testing::PeftAdapterWeights(a), limits);
  ASSERT_TRUE(m.ok());
  auto prompt = std::make_shared<Prompt>(PromptKey{"t", "peft", 1}, m->rows, m->dim, m->values, m->format, 0);
  for (int i = 0; i < 3; ++i) {
    GenerationRequest req;
    req.common.input_ids = Row(i);
    req.prompt = prompt;
    req.params = Beam4();
    auto r = testing::GenerateSync(engine_.get(), req);
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->output_ids, Expected("prompt.a.row" + std::to_string(i) + ".beam4")) << i;
  }
}

// Lester et al. §6: one input, prompts {a, b, a} as three rows of one batch; each member equals
// its own reference and the vote goes to prompt a's output.
TEST_P(EngineReferenceTest, EnsembleMembersMatchReferencesAndVote) {
  EnsembleRequest e;
  e.common.input_ids = Row(0);
  e.prompts = {prompts_["a"], prompts_["b"], prompts_["a"]};
  e.params = Greedy();
  auto [promise, done] = testing::Completion<EnsembleResult>();
  engine_->SubmitEnsemble(e, done);
  auto r = promise->get_future().get();
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->members[0].output_ids, Expected("prompt.a.row0.greedy"));
  EXPECT_EQ(r->members[1].output_ids, Expected("prompt.b.row0.greedy"));
  EXPECT_EQ(r->members[2].output_ids, Expected("prompt.a.row0.greedy"));
  EXPECT_EQ(r->winner, 0);
  EXPECT_EQ(r->votes, Expected("prompt.a.row0.greedy") == Expected("prompt.b.row0.greedy") ? 3 : 2);
}

// Lester et al. §7: nearest vocabulary tokens by cosine similarity, checked against a direct
// double-precision computation over the checkpoint's embedding table.
TEST_P(EngineReferenceTest, ExplainFindsNearestTokensByCosine) {
  ExplainRequest req;
  req.prompt = prompts_["b"];
  req.top_k = 3;
  auto [promise, done] = testing::Completion<ExplainResult>();
  engine_->SubmitExplain(req, done);
  auto r = promise->get_future().get();
  ASSERT_TRUE(r.ok());
  auto weights = SafetensorsFile::Open(cases_->dir() + "/model.safetensors");
  ASSERT_TRUE(weights.ok());
  const TensorView* emb = (*weights)->Find("shared.weight");
  const float* e = reinterpret_cast<const float*>(emb->data);
  const auto& p = prompts_["b"]->values();
  const int64_t v = emb->shape[0], d = emb->shape[1];
  ASSERT_EQ(r->positions.size(), 3u);
  for (int64_t row = 0; row < 3; ++row) {
    std::vector<std::pair<double, int64_t>> sims;
    for (int64_t t = 0; t < v; ++t) {
      double dot = 0, np = 0, ne = 0;
      for (int64_t k = 0; k < d; ++k) {
        dot += double(p[row * d + k]) * e[t * d + k];
        np += double(p[row * d + k]) * p[row * d + k];
        ne += double(e[t * d + k]) * e[t * d + k];
      }
      sims.push_back({dot / std::sqrt(np * ne), t});
    }
    std::sort(sims.rbegin(), sims.rend());
    ASSERT_EQ(r->positions[row].size(), 3u);
    for (int k = 0; k < 3; ++k) {
      EXPECT_EQ(r->positions[row][k].token, sims[k].second);
      EXPECT_NEAR(r->positions[row][k].similarity, sims[k].first, 1e-5);
    }
  }
}

// Sampling: reproducible for a seed regardless of batch company; top_k = 1 is greedy (HF's
// reference ids); streamed tokens equal the final output.
TEST_P(EngineReferenceTest, SamplingIsReproducibleAndTopOneIsGreedy) {
  GenerationRequest req;
  req.common.input_ids = Row(2);
  req.prompt = prompts_["b"];
  req.params.mode = DecodingMode::kSample;
  req.params.max_new_tokens = 12;
  req.params.temperature = 1.5;
  req.params.top_p = 0.9;
  req.params.seed = 7;
  auto alone = testing::GenerateSync(engine_.get(), req);
  ASSERT_TRUE(alone.ok());
  std::vector<std::future<StatusOr<GenerationResult>>> crowd;
  for (const Case& c : AllCases()) crowd.push_back(testing::GenerateAsync(engine_.get(), Request(c)));
  auto again = testing::GenerateAsync(engine_.get(), req);
  for (auto& f : crowd) ASSERT_TRUE(f.get().ok());
  auto with_company = again.get();
  ASSERT_TRUE(with_company.ok());
  EXPECT_EQ(alone->output_ids, with_company->output_ids);
  req.params.seed = 8;
  bool differs = false;
  for (uint64_t seed = 8; seed < 14 && !differs; ++seed) {
    req.params.seed = seed;
    auto other = testing::GenerateSync(engine_.get(), req);
    ASSERT_TRUE(other.ok());
    differs = other->output_ids != alone->output_ids;
  }
  EXPECT_TRUE(differs) << "six different seeds all gave the same sample";

  req.params.top_k = 1;
  req.params.top_p = 1.0;
  std::vector<int64_t> streamed;
  req.on_token = [&](const TokenChoice& c) { streamed.push_back(c.token); };
  auto top1 = testing::GenerateSync(engine_.get(), req);
  ASSERT_TRUE(top1.ok());
  EXPECT_EQ(top1->output_ids, Expected("prompt.b.row2.greedy"));
  EXPECT_EQ(streamed, top1->output_ids);
}

// Top-n alternatives: at the first step (decoder input [0], which HF's teacher-forced
// `decoder.logits` share with generation) they are the n largest of log_softmax(HF's logits),
// best first; streamed and returned alike; the chosen greedy token is the first of them.
TEST_P(EngineReferenceTest, TopLogprobsOfTheFirstStepAreHuggingFacesLargest) {
  const at::Tensor logits = cases_->Float("decoder.logits");  // [3, T, V]
  for (int i = 0; i < 3; ++i) {
    GenerationRequest req;
    req.common.input_ids = Row(i);
    req.params = Greedy();
    req.params.top_logprobs = 5;
    std::vector<std::vector<TokenLogprob>> streamed;
    req.on_token = [&](const TokenChoice& c) { streamed.push_back(c.top); };
    auto r = testing::GenerateSync(engine_.get(), req);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    ASSERT_EQ(r->top_logprobs.size(), r->output_ids.size());
    const at::Tensor lp = at::log_softmax(logits[i][0].to(at::kDouble), -1);
    auto [values, indices] = at::topk(lp, 5);
    ASSERT_EQ(r->top_logprobs[0].size(), 5u);
    for (int k = 0; k < 5; ++k) {
      EXPECT_EQ(r->top_logprobs[0][k].token, indices[k].item<int64_t>()) << "row " << i << " rank " << k;
      EXPECT_NEAR(r->top_logprobs[0][k].logprob, values[k].item<double>(), 1e-4) << "row " << i << " rank " << k;
    }
    for (size_t t = 0; t < r->output_ids.size(); ++t) {
      EXPECT_EQ(r->top_logprobs[t][0].token, r->output_ids[t]) << t;
      EXPECT_GE(r->top_logprobs[t][0].logprob, r->top_logprobs[t][4].logprob) << t;
      EXPECT_EQ(streamed[t].size(), 5u);
      EXPECT_EQ(streamed[t][0].token, r->top_logprobs[t][0].token);
    }
  }
  // Beam search has no per-token alternatives; the count is bounded.
  GenerationRequest beam;
  beam.common.input_ids = Row(0);
  beam.params = Beam4();
  beam.params.top_logprobs = 2;
  EXPECT_EQ(testing::GenerateSync(engine_.get(), beam).status().code(), StatusCode::kInvalidArgument);
  GenerationRequest many;
  many.common.input_ids = Row(0);
  many.params = Greedy();
  many.params.top_logprobs = 21;
  EXPECT_EQ(testing::GenerateSync(engine_.get(), many).status().code(), StatusCode::kInvalidArgument);
}

// The logits after `fed` (decoder start token first) for one encoded row, recomputed by the
// model's teacher-forced pass (no KV cache), as float64 on the CPU.
at::Tensor LastLogits(const T5Model& model, const at::Tensor& states, const at::Tensor& encoder_mask,
                      const std::vector<int64_t>& fed) {
  const at::Device device = encoder_mask.device();
  const at::Tensor dec = at::tensor(fed).unsqueeze(0).to(device);
  const at::Tensor mask = at::ones({1, static_cast<int64_t>(fed.size())}, at::kBool).to(device);
  return model.DecodeTeacherForced(states, encoder_mask, dec, mask)[0][-1].to(at::kCPU, at::kDouble).clone();
}

// Repetition penalty, against an independent greedy loop: no KV cache, the whole decoder input
// recomputed each step by the model's teacher-forced pass (checked against HF's logits
// elsewhere), and HF's RepetitionPenaltyLogitsProcessor written out here from its definition:
// for every distinct token of the decoder input, score / p if positive, score * p if not.
TEST_P(EngineReferenceTest, RepetitionPenaltyFollowsHuggingFacesDefinition) {
  auto loaded = T5Model::Load(ReferenceModelDir(GetParam()), testing::TestModelOptions());
  ASSERT_TRUE(loaded.ok());
  const T5Model& model = **loaded;
  c10::InferenceMode guard;
  const double penalty = 3.0;
  bool penalty_changed_something = false;
  for (int i = 0; i < 3; ++i) {
    EncoderBatch batch = model.EmbedRows({EncoderRow{at::Tensor(), Row(i)}});
    const at::Tensor states = model.Encode(batch);
    std::vector<int64_t> fed = {0};
    std::vector<int64_t> expected;
    for (int step = 0; step < 12; ++step) {
      at::Tensor scores = LastLogits(model, states, batch.mask, fed);
      for (int64_t t : std::set<int64_t>(fed.begin(), fed.end())) {
        const double v = scores[t].item<double>();
        scores[t] = v < 0 ? v * penalty : v / penalty;
      }
      const int64_t next = scores.argmax().item<int64_t>();
      expected.push_back(next);
      fed.push_back(next);
      if (next == 1) break;
    }
    GenerationRequest req;
    req.common.input_ids = Row(i);
    req.params = Greedy();
    req.params.repetition_penalty = penalty;
    auto r = testing::GenerateSync(engine_.get(), req);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(r->output_ids, expected) << "row " << i;
    penalty_changed_something = penalty_changed_something || expected != Expected("generate.row" + std::to_string(i) + ".greedy");
  }
  EXPECT_TRUE(penalty_changed_something) << "a penalty of 3 changed no row: the test shows nothing";
  GenerationRequest bad;
  bad.common.input_ids = Row(0);
  bad.params = Greedy();
  bad.params.repetition_penalty = 0;
  EXPECT_EQ(testing::GenerateSync(engine_.get(), bad).status().code(), StatusCode::kInvalidArgument);
}

// Hugging Face's beam search for one input, written out from the reference README's description
// ("Beam search (HF at this commit, batch 1, 4 beams)"), with no KV cache: every beam's decoder
// input is recomputed by the teacher-forced pass. `penalty` applies HF's
// RepetitionPenaltyLogitsProcessor to each beam's log-probabilities before its score is added
// (HF runs the processors on log_softmax in beam search). Returns the ids after the start token
// and the sequence score.
std::pair<std::vector<int64_t>, double> ReferenceBeam4(const T5Model& model, const at::Tensor& states,
                                                       const at::Tensor& mask, double penalty) {
  constexpr int kBeams = 4;
  constexpr size_t kMaxLen = 13;  // the start token and max_new_tokens = 12
  constexpr int64_t kEos = 1;
  struct Candidate {
    double score;
    int beam;
    int64_t token;
  };
  std::vector<std::vector<int64_t>> beams(kBeams, std::vector<int64_t>{0});
  std::vector<double> scores = {0, -1e9, -1e9, -1e9};
  std::vector<std::pair<double, std::vector<int64_t>>> hyps;  // (length-normalized score, tokens)
  auto fourth_best = [&] {
    std::vector<double> s;
    for (const auto& h : hyps) s.push_back(h.first);
    std::sort(s.rbegin(), s.rend());
    return s.size() < kBeams ? -INFINITY : s[kBeams - 1];
  };
  bool done = false;
  while (!done && beams[0].size() < kMaxLen) {
    std::vector<Candidate> cands;
    for (int b = 0; b < kBeams; ++b) {
      at::Tensor lp = at::log_softmax(LastLogits(model, states, mask, beams[b]), -1);
      for (int64_t t : std::set<int64_t>(beams[b].begin(), beams[b].end())) {
        const double v = lp[t].item<double>();
        lp[t] = v < 0 ? v * penalty : v / penalty;
      }
      auto [values, indices] = at::topk(lp + scores[b], 2 * kBeams);
      for (int k = 0; k < 2 * kBeams; ++k) cands.push_back({values[k].item<double>(), b, indices[k].item<int64_t>()});
    }
    std::stable_sort(cands.begin(), cands.end(), [](const Candidate& a, const Candidate& b) { return a.score > b.score; });
    cands.resize(2 * kBeams);
    const size_t cur_len = beams[0].size();
    std::vector<std::vector<int64_t>> next;
    std::vector<double> next_scores;
    for (int rank = 0; rank < 2 * kBeams && next.size() < kBeams; ++rank) {
      const Candidate& c = cands[rank];
      if (c.token == kEos) {
        if (rank < kBeams) hyps.push_back({c.score / static_cast<double>(beams[c.beam].size()), beams[c.beam]});
        continue;
      }
      next.push_back(beams[c.beam]);
      next.back().push_back(c.token);
      next_scores.push_back(c.score);
    }
    done = hyps.size() >= kBeams && fourth_best() >= cands[0].score / static_cast<double>(cur_len + 1);
    beams = std::move(next);
    scores = std::move(next_scores);
  }
  if (!done) {
    for (int b = 0; b < kBeams; ++b) hyps.push_back({scores[b] / static_cast<double>(beams[b].size()), beams[b]});
  }
  auto best = std::max_element(hyps.begin(), hyps.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  std::vector<int64_t> ids(best->second.begin() + 1, best->second.end());
  if (best->second.size() < kMaxLen) ids.push_back(kEos);
  return {ids, best->first};
}

// Beam search with a repetition penalty, against the loop above. The loop is first checked to
// reproduce Hugging Face's stored beam outputs and scores without a penalty, so what it computes
// with one is HF's algorithm, not ours.
TEST_P(EngineReferenceTest, BeamRepetitionPenaltyFollowsHuggingFacesBeamSearch) {
  auto loaded = T5Model::Load(ReferenceModelDir(GetParam()), testing::TestModelOptions());
  ASSERT_TRUE(loaded.ok());
  const T5Model& model = **loaded;
  c10::InferenceMode guard;
  bool penalty_changed_something = false;
  for (int i = 0; i < 3; ++i) {
    const std::string row = "generate.row" + std::to_string(i);
    EncoderBatch batch = model.EmbedRows({EncoderRow{at::Tensor(), Row(i)}});
    const at::Tensor states = model.Encode(batch);
    auto [plain_ids, plain_score] = ReferenceBeam4(model, states, batch.mask, 1.0);
    ASSERT_EQ(plain_ids, Expected(row + ".beam4")) << "the written-out beam search is not HF's: row " << i;
    ASSERT_NEAR(plain_score, cases_->Float(row + ".beam4_score").item<double>(), 1e-4) << i;
    for (double penalty : {1.5, 3.0}) {
      auto [ids, score] = ReferenceBeam4(model, states, batch.mask, penalty);
      GenerationRequest req;
      req.common.input_ids = Row(i);
      req.params = Beam4();
      req.params.repetition_penalty = penalty;
      auto r = testing::GenerateSync(engine_.get(), req);
      ASSERT_TRUE(r.ok()) << r.status().ToString();
      EXPECT_EQ(r->output_ids, ids) << "row " << i << " penalty " << penalty;
      EXPECT_NEAR(r->score, score, 1e-4) << "row " << i << " penalty " << penalty;
      penalty_changed_something = penalty_changed_something || ids != plain_ids;
    }
  }
  EXPECT_TRUE(penalty_changed_something) << "no penalty changed a beam output: the test shows nothing";
}

// min_new_tokens masks eos: generation continues past where HF's greedy stopped, and the
// tokens before that point are HF's.
TEST_P(EngineReferenceTest, MinNewTokensSuppressesEarlyEos) {
  for (int i = 0; i < 3; ++i) {
    std::vector<int64_t> ref = Expected("generate.row" + std::to_string(i) + ".greedy");
    if (ref.back() != 1) continue;  // only rows where HF stopped at eos
    GenerationRequest req;
    req.common.input_ids = Row(i);
    req.params = Greedy();
    req.params.min_new_tokens = 12;
    auto r = testing::GenerateSync(engine_.get(), req);
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->output_ids.size(), 12u);
    for (size_t k = 0; k + 1 < ref.size(); ++k) EXPECT_EQ(r->output_ids[k], ref[k]);
    EXPECT_NE(r->output_ids[ref.size() - 1], 1);
  }
}

INSTANTIATE_TEST_SUITE_P(References, EngineReferenceTest,
                         ::testing::ValuesIn(::softserve::testing::ReferenceModelNames()));

}  // namespace
}  // namespace softserve::core
