// Soft-prompt training against testdata/prompt-training (plain PyTorch autograd, independent of
// our code; tests/data/prompt-training/README.md): acceptance test 3 (optimizer replay: the stored
// gradients fed to our AdamW / Adafactor reproduce the stored parameters after each step) and
// test 5 (class-label initialisation), for every reference model.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "core/model/t5_model.h"
#include "core/training/optimizers.h"
#include "core/training/prompt_init.h"
#include "tests/testing/reference_data.h"

namespace softserve::core {
namespace {

using testing::ReferenceCases;

const std::vector<std::string>& ResidualNames() {
  static const std::vector<std::string> names = {"prompt",         "mlp.down.weight", "mlp.down.bias", "mlp.up.weight",
                                                 "mlp.up.bias",    "mlp.norm.weight", "mlp.norm.bias"};
  return names;
}

class TrainingReferenceTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    cases_ = std::make_unique<ReferenceCases>(ReferenceCases::InDir(testing::TestDataDir() + "/prompt-training/" + GetParam()));
  }

  // Test 3: start from the case's initial tensors, feed the stored gradients, compare every
  // parameter after every step: |a - e| <= 4e-6 * max(1, |e|) elementwise.
  void Replay(const std::string& traj, const std::string& init_prefix, const std::vector<std::string>& names,
              PromptOptimizer* optimizer) {
    std::vector<at::Tensor> params;
    for (const std::string& n : names) params.push_back(cases_->Float(init_prefix + n).clone());
    const int64_t steps = cases_->Float(traj + ".loss").numel() - 1;
    ASSERT_GE(steps, 1);
    for (int64_t k = 0; k < steps; ++k) {
      std::vector<at::Tensor> grads;
      for (const std::string& n : names) grads.push_back(cases_->Float(traj + ".grad." + n)[k]);
      optimizer->Step(params, grads);
      for (size_t i = 0; i < names.size(); ++i) {
        const at::Tensor e = cases_->Float(traj + "." + names[i])[k];
        const at::Tensor excess = (params[i] - e).abs() - 4e-6 * e.abs().clamp_min(1.0);
        EXPECT_LE(excess.max().item<double>(), 0.0)
            << traj << " " << names[i] << " after step " << k + 1 << ": max |a-e| "
            << (params[i] - e).abs().max().item<double>();
      }
    }
    EXPECT_EQ(optimizer->steps(), steps);
  }

  std::unique_ptr<ReferenceCases> cases_;
};

TEST_P(TrainingReferenceTest, AdamWReplaysThePromptTuningTrajectory) {
  auto adamw = NewAdamW(AdamWOptions());
  Replay("pt.adamw", "pt.", {"prompt"}, adamw.get());
}

TEST_P(TrainingReferenceTest, AdamWReplaysTheResidualTrajectoryOfAllSevenTensors) {
  auto adamw = NewAdamW(AdamWOptions());
  Replay("rpt.adamw", "rpt.", ResidualNames(), adamw.get());
}

TEST_P(TrainingReferenceTest, AdafactorReplaysHuggingFacesTrajectories) {
  auto pt = NewAdafactor(AdafactorOptions());
  Replay("pt.adafactor", "pt.", {"prompt"}, pt.get());
  if (cases_->Has("rpt.adafactor.loss")) {
    auto rpt = NewAdafactor(AdafactorOptions());  // 2-D weights factored, 1-D tensors not
    Replay("rpt.adafactor", "rpt.", ResidualNames(), rpt.get());
  }
}

TEST_P(TrainingReferenceTest, AdafactorT5xReplaysLestersOwnTrajectory) {
  if (!cases_->Has("pt.adafactor_t5x.loss")) GTEST_FAIL() << "pt.adafactor_t5x missing from the reference";
  AdafactorOptions o;
  o.t5x = true;
  auto t5x = NewAdafactor(o);
  Replay("pt.adafactor_t5x", "pt.", {"prompt"}, t5x.get());
}

// Test 5: each class label's row is the mean of its ids' rows of shared.weight (repeated ids
// count each time): |a - e| <= 1e-5. Rows past the labels come from the first 5000 rows.
TEST_P(TrainingReferenceTest, ClassLabelRowsAreTheMeansOfTheLabelsEmbeddings) {
  auto model = T5Model::Load(testing::ReferenceModelDir(GetParam()), ModelOptions());
  ASSERT_TRUE(model.ok()) << model.status().ToString();
  const at::Tensor embedding = (*model)->weights().embedding.to(at::kCPU, at::kFloat);
  const at::Tensor ids = cases_->Int("init.label_token_ids");
  const at::Tensor counts = cases_->Int("init.label_token_counts");
  std::vector<std::vector<int64_t>> labels;
  for (int64_t i = 0; i < ids.size(0); ++i) {
    std::vector<int64_t> label;
    for (int64_t j = 0; j < counts[i].item<int64_t>(); ++j) label.push_back(ids[i][j].item<int64_t>());
    labels.push_back(label);
  }
  const int64_t rows = cases_->Float("pt.prompt").size(0);
  auto prompt = ClassLabelInit(embedding, labels, rows, /*seed=*/3);
  ASSERT_TRUE(prompt.ok()) << prompt.status().ToString();
  ASSERT_EQ(prompt->size(0), rows);
  const at::Tensor expected = cases_->Float("init.class_label_rows");
  const at::Tensor got = prompt->slice(0, 0, expected.size(0));
  EXPECT_LE((got - expected).abs().max().item<double>(), 1e-5);
  // Every sampled row is one of the common-vocabulary rows, and no row repeats.
  const at::Tensor pool = embedding.slice(0, 0, std::min<int64_t>(kCommonVocabRows, embedding.size(0)));
  for (int64_t r = expected.size(0); r < rows; ++r) {
    EXPECT_TRUE(((pool - (*prompt)[r]).abs().sum(1) == 0).any().item<bool>()) << "row " << r;
  }
  EXPECT_EQ(ClassLabelInit(embedding, labels, 2, 0).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(ClassLabelInit(embedding, {{}}, 4, 0).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(ClassLabelInit(embedding, {{embedding.size(0)}}, 4, 0).status().code(), StatusCode::kInvalidArgument);
}

TEST(PromptInitTest, UniformAndSampledVocabularyAreSeededAndInRange) {
  const at::Tensor u = UniformPromptInit(4, 8, 7);
  EXPECT_LE(u.abs().max().item<double>(), 0.5);
  EXPECT_TRUE(at::equal(u, UniformPromptInit(4, 8, 7)));
  EXPECT_FALSE(at::equal(u, UniformPromptInit(4, 8, 8)));
  const at::Tensor table = at::arange(60, at::kFloat).reshape({20, 3});
  auto s = SampledVocabInit(table, 20, 1);
  ASSERT_TRUE(s.ok());
  EXPECT_TRUE(at::equal(std::get<0>(at::sort(s->select(1, 0))), table.select(1, 0)));  // a permutation
  EXPECT_EQ(SampledVocabInit(table, 21, 1).status().code(), StatusCode::kInvalidArgument);
}

INSTANTIATE_TEST_SUITE_P(References, TrainingReferenceTest,
                         ::testing::ValuesIn(::softserve::testing::ReferenceModelNames()));

}  // namespace
}  // namespace softserve::core
