// Decoding state machines with synthetic row outputs.
#include "core/engine/decoding.h"

#include <gtest/gtest.h>

namespace softserve::core {
namespace {

RowOutput Token(int64_t t, float lp = -1.0f) {
  RowOutput o;
  o.token = t;
  o.logprob = lp;
  return o;
}

TEST(DecodingTest, GreedyStopsAtEosAndReportsLogprobs) {
  DecodingParams p;
  p.max_new_tokens = 10;
  p.return_logprobs = true;
  auto d = SequenceDecoder::Create(p, SpecialTokens{1, 0});
  std::vector<int> reorder;
  std::vector<TokenChoice> emitted;
  std::vector<int64_t> inputs;
  d->Inputs(&inputs);
  EXPECT_EQ(inputs, std::vector<int64_t>{0});  // decoder start
  for (int64_t t : {7, 8, 1}) {
    RowOutput o = Token(t, -0.5f);
    d->Advance(&o, &reorder, &emitted);
  }
  ASSERT_TRUE(d->done());
  GenerationResult r = d->Result();
  EXPECT_EQ(r.output_ids, (std::vector<int64_t>{7, 8, 1}));
  EXPECT_EQ(r.token_logprobs.size(), 3u);
  EXPECT_DOUBLE_EQ(r.score, -1.5);
  EXPECT_EQ(r.finish_reason, FinishReason::kEos);
  EXPECT_EQ(emitted.size(), 3u);
}

TEST(DecodingTest, SamplingUniformsAreReproduciblePerSeed) {
  DecodingParams p;
  p.mode = DecodingMode::kSample;
  p.seed = 42;
  auto draw = [&](uint64_t seed) {
    p.seed = seed;
    auto d = SequenceDecoder::Create(p, SpecialTokens{});
    std::vector<double> u;
    for (int i = 0; i < 5; ++i) {
      std::vector<RowSelection> sel;
      d->Selections(&sel);
      EXPECT_EQ(sel[0].kind, SelectKind::kSample);
      EXPECT_GE(sel[0].uniform, 0.0);
      EXPECT_LT(sel[0].uniform, 1.0);
      u.push_back(sel[0].uniform);
    }
    return u;
  };
  EXPECT_EQ(draw(42), draw(42));
  EXPECT_NE(draw(42), draw(43));
}

// Two beams, eos = 1. Step 1: both beams identical; candidates from beam 0 only matter.
TEST(DecodingTest, BeamSearchKeepsBestHypothesesAndReorders) {
  DecodingParams p;
  p.mode = DecodingMode::kBeam;
  p.num_beams = 2;
  p.max_new_tokens = 3;
  p.early_stopping = EarlyStopping::kTrue;
  auto d = SequenceDecoder::Create(p, SpecialTokens{1, 0});
  std::vector<int> reorder;
  std::vector<TokenChoice> emitted;
  std::vector<RowOutput> out(2);
  out[0].candidates = {{5, -0.1f}, {6, -0.2f}, {1, -3.0f}, {7, -4.0f}};
  out[1].candidates = out[0].candidates;
  d->Advance(out.data(), &reorder, &emitted);
  EXPECT_TRUE(emitted.empty());  // beams do not stream
  std::vector<int64_t> inputs;
  d->Inputs(&inputs);
  EXPECT_EQ(inputs, (std::vector<int64_t>{5, 6}));
  EXPECT_EQ(reorder, (std::vector<int>{0, 0}));  // both continue beam 0
  // Step 2: beam 1 (…6) has the best continuation, then eos from beam 0 at rank 1.
  out[0].candidates = {{1, -0.05f}, {8, -2.0f}, {9, -2.5f}, {10, -3.0f}};
  out[1].candidates = {{11, -0.01f}, {1, -0.3f}, {12, -2.0f}, {13, -3.0f}};
  d->Advance(out.data(), &reorder, &emitted);
  EXPECT_FALSE(d->done());
  inputs.clear();
  d->Inputs(&inputs);
  EXPECT_EQ(inputs[0], 11);
  EXPECT_EQ(reorder[0], 1);
  // Step 3 finds a second finished hypothesis: early_stopping=true stops with 2 finished.
  out[0].candidates = {{1, -0.01f}, {14, -1.0f}, {15, -2.0f}, {16, -3.0f}};
  out[1].candidates = {{17, -1.0f}, {18, -2.0f}, {19, -2.5f}, {20, -3.0f}};
  d->Advance(out.data(), &reorder, &emitted);
  ASSERT_TRUE(d->done());
  GenerationResult r = d->Result();
  // Finished: [0,5] score (-0.1-0.05)/2 = -0.075 and [0,6,11] score (-0.2-0.01-0.01)/3 = -0.0733.
  EXPECT_EQ(r.output_ids, (std::vector<int64_t>{6, 11, 1}));
  EXPECT_NEAR(r.score, -0.22 / 3, 1e-6);
  EXPECT_EQ(r.finish_reason, FinishReason::kEos);
}

}  // namespace
}  // namespace softserve::core
