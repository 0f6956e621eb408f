// The batched sampler against Hugging Face's warpers: tests/data/sampling-warpers (a copy of
// ../shared/testdata/sampling-warpers; its README gives the semantics and tolerances): every
// stage's filtered set exactly, its finite scores within 1e-6, the probabilities within 1e-6,
// the kept counts and the inverse-CDF draws exactly. All twelve rows run as one batch, each
// with its own parameters, as the engine runs a step's sampled rows.
#include "core/engine/sampler.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include "tests/testing/reference_data.h"

namespace softserve::core {
namespace {

using testing::ReferenceCases;

class SamplerReferenceTest : public ::testing::Test {
 protected:
  SamplerReferenceTest() : cases_(ReferenceCases::InDir(testing::TestDataDir() + "/sampling-warpers")) {
    for (const JsonValue& c : cases_.json().Find("cases")->array()) {
      const JsonValue& p = *c.Find("params");
      SamplingParams s;
      s.temperature = p.Find("temperature")->number();
      s.top_k = p.Find("top_k")->int_value();
      s.top_p = p.Find("top_p")->number();
      s.min_p = p.Find("min_p")->number();
      s.typical_p = p.Find("typical_p")->number();
      s.min_tokens_to_keep = p.Find("min_tokens_to_keep")->int_value();
      params_.push_back(s);
    }
    logits_ = cases_.Float("logits");
    batch_ = MakeSamplingBatch(params_, logits_.size(1), at::kCPU);
  }

  // Filtered sets equal, finite values within 1e-6.
  static ::testing::AssertionResult SameScores(const at::Tensor& actual, const at::Tensor& expected) {
    const at::Tensor a_inf = actual.isneginf(), e_inf = expected.isneginf();
    if (!at::equal(a_inf, e_inf)) {
      return ::testing::AssertionFailure() << "filtered sets differ in " << (a_inf != e_inf).sum().item<int64_t>()
                                           << " entries (rows " << (a_inf != e_inf).any(1).nonzero().view(-1) << ")";
    }
    const at::Tensor diff = (actual - expected).masked_fill(e_inf, 0).abs().max();
    if (diff.item<double>() > 1e-6) return ::testing::AssertionFailure() << "max |diff| " << diff.item<double>();
    return ::testing::AssertionSuccess();
  }

  ReferenceCases cases_;
  std::vector<SamplingParams> params_;
  at::Tensor logits_;
  SamplingBatch batch_;
};

TEST_F(SamplerReferenceTest, EveryStageMatchesHuggingFace) {
  at::Tensor s = ApplyTemperature(logits_, batch_);
  EXPECT_TRUE(SameScores(s, cases_.Float("scores_after_temperature"))) << "temperature";
  s = ApplyTopK(s, batch_);
  EXPECT_TRUE(SameScores(s, cases_.Float("scores_after_top_k"))) << "top-k";
  s = ApplyTopP(s, batch_);
  EXPECT_TRUE(SameScores(s, cases_.Float("scores_after_top_p"))) << "top-p";
  s = ApplyMinP(s, batch_);
  EXPECT_TRUE(SameScores(s, cases_.Float("scores_after_min_p"))) << "min-p";
  s = ApplyTypical(s, batch_);
  EXPECT_TRUE(SameScores(s, cases_.Float("expected_scores"))) << "typical";
  EXPECT_TRUE(at::equal(s.isfinite().sum(1), cases_.Int("kept_count")));
}

TEST_F(SamplerReferenceTest, ProbabilitiesMatchHuggingFace) {
  const at::Tensor probs = at::softmax(WarpScores(logits_, batch_), 1);
  const at::Tensor expected = cases_.Float("expected_probs");
  EXPECT_TRUE(at::equal(probs == 0, expected == 0));
  EXPECT_LE((probs - expected).abs().max().item<double>(), 1e-6);
}

// Five draws per row: column j of `uniforms` for every row at once.
TEST_F(SamplerReferenceTest, DrawsMatchTheDocumentedInverseCdf) {
  const at::Tensor uniforms = cases_.Float("uniforms");
  const at::Tensor expected = cases_.Int("expected_tokens");
  for (int64_t j = 0; j < uniforms.size(1); ++j) {
    const at::Tensor tokens = SampleTokens(logits_, batch_, uniforms.select(1, j).contiguous());
    EXPECT_TRUE(at::equal(tokens, expected.select(1, j))) << "draw " << j << ": " << tokens << " vs "
                                                         << expected.select(1, j);
  }
}

// A row's result does not depend on what else is in the batch: each row alone gives the same
// warped scores as the twelve together.
TEST_F(SamplerReferenceTest, EachRowAloneMatchesTheBatch) {
  const at::Tensor together = WarpScores(logits_, batch_);
  for (int64_t r = 0; r < logits_.size(0); ++r) {
    const SamplingBatch one = MakeSamplingBatch({params_[r]}, logits_.size(1), at::kCPU);
    EXPECT_TRUE(SameScores(WarpScores(logits_.narrow(0, r, 1), one), together.narrow(0, r, 1))) << "row " << r;
  }
}

TEST(SamplerTest, AFilteredTokenIsNeverDrawnEvenAtTheTopOfTheCdf) {
  at::Tensor probs = at::zeros({1, 8});
  probs[0][2] = 0.5;
  probs[0][5] = 0.5;
  const at::Tensor u = at::full({1}, 0.999999999, at::kDouble);
  EXPECT_EQ(DrawInverseCdf(probs, u).item<int64_t>(), 5);
  EXPECT_EQ(DrawInverseCdf(probs, at::zeros({1}, at::kDouble)).item<int64_t>(), 2);
}

}  // namespace
}  // namespace softserve::core
