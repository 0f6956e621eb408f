// The dev metrics of PromptTrainer (the papers' evaluations) against Hugging Face's outputs in
// tests/data/t5-reference, with prompt a as the trained prompt, on the weights as a server
// loads them: exact match is 1 exactly for HF's greedy outputs, and rank classification picks
// HF's most likely candidate.
#include <gtest/gtest.h>

#include <vector>

#include "core/model/t5_model.h"
#include "core/training/trainer.h"
#include "tests/testing/reference_data.h"

namespace softserve::core {
namespace {

class DevMetricsTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    cases_ = std::make_unique<testing::ReferenceCases>(GetParam());
    auto model = T5Model::Load(testing::ReferenceModelDir(GetParam()), ModelOptions());
    ASSERT_TRUE(model.ok()) << model.status().ToString();
    model_ = std::move(model).value();
    PromptParameters a;
    a.prompt = cases_->Float("prompt.a");
    trainer_ = std::make_unique<PromptTrainer>(*model_, std::vector<TrainingExample>{{{37, 1}, {1}}}, a, TrainerOptions());
  }
  std::vector<int64_t> Tail(const std::string& name) const {
    std::vector<int64_t> ids = cases_->Ids(name);
    return std::vector<int64_t>(ids.begin() + 1, ids.end());  // without the decoder start token
  }
  std::unique_ptr<testing::ReferenceCases> cases_;
  std::unique_ptr<T5Model> model_;
  std::unique_ptr<PromptTrainer> trainer_;
};

TEST_P(DevMetricsTest, ExactMatchHoldsForHuggingFacesGreedyOutputsOnly) {
  std::vector<TrainingExample> right, wrong_last, wrong_first;
  for (int i = 0; i < 3; ++i) {
    const std::string row = std::to_string(i);
    TrainingExample e{cases_->Ids("generate.row" + row + ".input_ids"), Tail("prompt.a.row" + row + ".greedy")};
    right.push_back(e);
    TrainingExample last = e, first = e;
    last.target_ids.back() = last.target_ids.back() == 5 ? 6 : 5;
    first.target_ids.front() = first.target_ids.front() == 5 ? 6 : 5;
    wrong_last.push_back(last);
    wrong_first.push_back(first);
  }
  EXPECT_EQ(trainer_->ExactMatches(right), 3);
  EXPECT_EQ(trainer_->ExactMatches(wrong_last), 0);
  EXPECT_EQ(trainer_->ExactMatches(wrong_first), 0);
}

TEST_P(DevMetricsTest, RankClassificationPicksHuggingFacesMostLikelyCandidate) {
  const at::Tensor cand = cases_->Int("rank.candidates"), mask = cases_->Int("rank.candidates_mask");
  std::vector<std::vector<int64_t>> candidates;
  for (int64_t c = 0; c < cand.size(0); ++c) {
    std::vector<int64_t> ids;
    for (int64_t t = 0; t < cand.size(1); ++t) {
      if (mask[c][t].item<int64_t>() != 0) ids.push_back(cand[c][t].item<int64_t>());
    }
    candidates.push_back(ids);
  }
  const at::Tensor totals = cases_->Float("rank.total_logprob");
  const int64_t best = totals.argmax().item<int64_t>();
  const std::vector<int64_t> input = cases_->Ids("rank.input_ids");
  for (int64_t c = 0; c < static_cast<int64_t>(candidates.size()); ++c) {
    const TrainingExample e{input, candidates[static_cast<size_t>(c)]};
    EXPECT_EQ(trainer_->RankCorrect({e}, candidates), c == best ? 1 : 0) << "candidate " << c << ", HF's best " << best;
  }
}

INSTANTIATE_TEST_SUITE_P(References, DevMetricsTest, ::testing::ValuesIn(::softserve::testing::ReferenceModelNames()));

}  // namespace
}  // namespace softserve::core
