// Soft-prompt training against testdata/prompt-training (plain PyTorch autograd, independent of
// our code; tests/data/prompt-training/README.md, "Acceptance tests and tolerances"), for every
// reference model: 1 (loss and gradients at the initial state), 2 (at every stored state of every
// trajectory), 3 (optimizer replay: the stored gradients fed to our AdamW / Adafactor reproduce
// the stored parameters), 4 (our whole loop, three steps) and 5 (class-label initialisation).
// Each on the model's plain weights (cpu_gemm torch) and, where the CPU runs it, on the weights
// packed for our kernel (as a server loads them; the backward of PackedMatmulWithGrad).
#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <string>
#include <vector>

#include "core/model/cpu_packed_gemm.h"
#include "core/model/t5_model.h"
#include "core/training/optimizers.h"
#include "core/training/prompt_init.h"
#include "core/training/prompt_loss.h"
#include "core/training/trainer.h"
#include "tests/testing/reference_data.h"

namespace softserve::core {
namespace {

using testing::ReferenceCases;

const std::vector<std::string>& ResidualNames() {
  static const std::vector<std::string> names = {"prompt",         "mlp.down.weight", "mlp.down.bias", "mlp.up.weight",
                                                 "mlp.up.bias",    "mlp.norm.weight", "mlp.norm.bias"};
  return names;
}

struct TrainingParam {
  std::string model;
  CpuGemm gemm;
};

void PrintTo(const TrainingParam& p, std::ostream* os) { *os << p.model << " on " << CpuGemmName(p.gemm) << " weights"; }

std::vector<TrainingParam> TrainingParams() {
  std::vector<TrainingParam> out;
  for (const std::string& m : testing::ReferenceModelNames()) {
    out.push_back({m, CpuGemm::kTorch});
    if (PackedGemmSupported()) out.push_back({m, CpuGemm::kPacked});
  }
  return out;
}

class TrainingReferenceTest : public ::testing::TestWithParam<TrainingParam> {
 protected:
  void SetUp() override {
    cases_ = std::make_unique<ReferenceCases>(ReferenceCases::InDir(testing::TestDataDir() + "/prompt-training/" + Name()));
  }
  const std::string& Name() const { return GetParam().model; }

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

  // The model with plain weights, or packed for our kernel.
  std::unique_ptr<T5Model> Model() const {
    ModelOptions o;
    o.cpu_gemm = GetParam().gemm;
    auto model = T5Model::Load(testing::ReferenceModelDir(Name()), o);
    EXPECT_TRUE(model.ok()) << model.status().ToString();
    if (model.ok()) {  // the weights really are in the layout asked for
      const Projection& head = (*model)->weights().lm_head;
      EXPECT_EQ(head.packed.defined(), GetParam().gemm == CpuGemm::kPacked);
      EXPECT_EQ(head.wt.defined(), GetParam().gemm != CpuGemm::kPacked);
    }
    return model.ok() ? std::move(model).value() : nullptr;
  }

  TrainingBatch Batch() const {
    return {cases_->Int("batch.input_ids"), cases_->Int("batch.attention_mask"), cases_->Int("batch.labels")};
  }
  // The batch as examples: inputs without padding, labels without -100.
  std::vector<TrainingExample> Examples() const {
    const TrainingBatch batch = Batch();
    std::vector<TrainingExample> examples;
    for (int64_t b = 0; b < batch.input_ids.size(0); ++b) {
      TrainingExample e;
      for (int64_t t = 0; t < batch.input_ids.size(1); ++t) {
        if (batch.attention_mask[b][t].item<int64_t>() != 0) e.input_ids.push_back(batch.input_ids[b][t].item<int64_t>());
      }
      for (int64_t t = 0; t < batch.labels.size(1); ++t) {
        if (batch.labels[b][t].item<int64_t>() != -100) e.target_ids.push_back(batch.labels[b][t].item<int64_t>());
      }
      examples.push_back(std::move(e));
    }
    return examples;
  }

  struct Evaluation {
    double loss = 0;
    std::vector<at::Tensor> grads;  // per parameter
    at::Tensor token_nll, folded;
  };

  // Loss and gradients at `params`: the prompt alone (1 tensor), or the 7 residual tensors.
  Evaluation Evaluate(const T5Model& model, const std::vector<at::Tensor>& params) const {
    std::vector<at::Tensor> leaves;
    for (const at::Tensor& p : params) leaves.push_back(p.detach().clone().requires_grad_(true));
    Evaluation e;
    at::Tensor prompt = leaves[0];
    if (leaves.size() == 7) {
      prompt = FoldResidual(leaves[0], {leaves[1], leaves[2], leaves[3], leaves[4], leaves[5], leaves[6]});
      e.folded = prompt.detach();
    }
    PromptLossResult r = PromptLoss(model, prompt, Batch());
    r.loss.backward();
    e.loss = r.loss.item<double>();
    e.token_nll = r.token_nll;
    for (const at::Tensor& l : leaves) e.grads.push_back(l.grad().detach().clone());
    return e;
  }

  static void ExpectLoss(double a, double e, const std::string& what) {
    EXPECT_LE(std::abs(a - e), 1e-5 * std::max(1.0, std::abs(e))) << what << ": " << a << " vs " << e;
  }
  static void ExpectGrad(const at::Tensor& a, const at::Tensor& e, const std::string& what) {
    const double err = (a - e).abs().max().item<double>(), scale = e.abs().max().item<double>();
    EXPECT_LE(err, 1e-4 * scale) << what << ": max |a-e| " << err << ", max |e| " << scale;
  }
  std::vector<at::Tensor> Initial(const std::string& prefix, const std::vector<std::string>& names) const {
    std::vector<at::Tensor> out;
    for (const std::string& n : names) out.push_back(cases_->Float(prefix + n));
    return out;
  }

  std::unique_ptr<ReferenceCases> cases_;
};

// Test 1: loss and gradients at the initial state, (a) prompt tuning and (b) residual.
TEST_P(TrainingReferenceTest, LossAndGradientsAtTheInitialStateMatchAutograd) {
  auto model = Model();
  ASSERT_NE(model, nullptr);
  Evaluation pt = Evaluate(*model, {cases_->Float("pt.prompt")});
  ExpectLoss(pt.loss, cases_->Float("pt.loss").item<double>(), "pt.loss");
  ExpectGrad(pt.grads[0], cases_->Float("pt.grad.prompt"), "pt.grad.prompt");
  const at::Tensor nll = cases_->Float("pt.token_nll");
  EXPECT_LE(((pt.token_nll - nll).abs() - 5e-5 * nll.abs().clamp_min(1.0)).max().item<double>(), 0.0);
  Evaluation rpt = Evaluate(*model, Initial("rpt.", ResidualNames()));
  const at::Tensor folded = cases_->Float("rpt.prompt_folded");
  EXPECT_LE(((rpt.folded - folded).abs() - 1e-5 * folded.abs().clamp_min(1.0)).max().item<double>(), 0.0);
  ExpectLoss(rpt.loss, cases_->Float("rpt.loss").item<double>(), "rpt.loss");
  for (size_t i = 0; i < ResidualNames().size(); ++i) {
    ExpectGrad(rpt.grads[i], cases_->Float("rpt.grad." + ResidualNames()[i]), "rpt.grad." + ResidualNames()[i]);
  }
}

struct Trajectory {
  std::string name, prefix;
  bool residual;
};

std::vector<Trajectory> Trajectories(const ReferenceCases& cases) {
  std::vector<Trajectory> out = {{"pt.adamw", "pt.", false}, {"rpt.adamw", "rpt.", true}, {"pt.adafactor", "pt.", false}};
  if (cases.Has("rpt.adafactor.loss")) out.push_back({"rpt.adafactor", "rpt.", true});
  if (cases.Has("pt.adafactor_t5x.loss")) out.push_back({"pt.adafactor_t5x", "pt.", false});
  return out;
}

// Test 2: loss and gradients at every stored state k = 1..S of every trajectory.
TEST_P(TrainingReferenceTest, LossAndGradientsAtEveryStoredStateMatchAutograd) {
  auto model = Model();
  ASSERT_NE(model, nullptr);
  for (const Trajectory& t : Trajectories(*cases_)) {
    const std::vector<std::string> names = t.residual ? ResidualNames() : std::vector<std::string>{"prompt"};
    const at::Tensor losses = cases_->Float(t.name + ".loss");
    const int64_t steps = losses.numel() - 1;
    for (int64_t k = 1; k <= steps; ++k) {
      std::vector<at::Tensor> params;
      for (const std::string& n : names) params.push_back(cases_->Float(t.name + "." + n)[k - 1]);
      Evaluation e = Evaluate(*model, params);
      ExpectLoss(e.loss, losses[k].item<double>(), t.name + ".loss[" + std::to_string(k) + "]");
      if (k == steps) continue;
      for (size_t i = 0; i < names.size(); ++i) {
        ExpectGrad(e.grads[i], cases_->Float(t.name + ".grad." + names[i])[k],
                   t.name + ".grad." + names[i] + "[" + std::to_string(k) + "]");
      }
    }
  }
}

// Test 4: the whole loop (model, autograd, optimizer) for S steps from the initial parameters:
// parameters within 0.005, losses within 0.0005 of the stored ones.
TEST_P(TrainingReferenceTest, ThreeStepsOfOurLoopFollowTheStoredTrajectories) {
  auto model = Model();
  ASSERT_NE(model, nullptr);
  for (const Trajectory& t : Trajectories(*cases_)) {
    const std::vector<std::string> names = t.residual ? ResidualNames() : std::vector<std::string>{"prompt"};
    std::unique_ptr<PromptOptimizer> optimizer;
    if (t.name.find("adamw") != std::string::npos) {
      optimizer = NewAdamW(AdamWOptions());
    } else {
      AdafactorOptions o;
      o.t5x = t.name.find("t5x") != std::string::npos;
      optimizer = NewAdafactor(o);
    }
    std::vector<at::Tensor> params;
    for (const at::Tensor& p : Initial(t.prefix, names)) params.push_back(p.clone());
    const at::Tensor losses = cases_->Float(t.name + ".loss");
    const int64_t steps = losses.numel() - 1;
    for (int64_t k = 0; k < steps; ++k) {
      Evaluation e = Evaluate(*model, params);
      if (k > 0) {
        EXPECT_LE(std::abs(e.loss - losses[k].item<double>()), 0.0005) << t.name << " loss at state " << k;
      }
      optimizer->Step(params, e.grads);
      for (size_t i = 0; i < names.size(); ++i) {
        const double err = (params[i] - cases_->Float(t.name + "." + names[i])[k]).abs().max().item<double>();
        EXPECT_LE(err, 0.005) << t.name << " " << names[i] << " after step " << k + 1;
      }
    }
    const double final_loss = Evaluate(*model, params).loss;
    EXPECT_LE(std::abs(final_loss - losses[steps].item<double>()), 0.0005) << t.name << " final loss";
  }
}

// Test 4 again through PromptTrainer's sliced steps (as a server interleaves training with
// serving): the reference batch in one step, run one example per slice (their target lengths
// differ, so the slices' weights matter) with accumulated gradients, gives the stored gradient
// and follows the stored trajectories (the t5x variant is not a trainer option).
TEST_P(TrainingReferenceTest, SlicedTrainerStepsFollowTheStoredTrajectories) {
  auto model = Model();
  ASSERT_NE(model, nullptr);
  const std::vector<TrainingExample> examples = Examples();
  ASSERT_GE(examples.size(), 3u) << "the batch must span several slices";
  for (const Trajectory& t : Trajectories(*cases_)) {
    if (t.name.find("t5x") != std::string::npos) continue;
    const std::vector<std::string> names = t.residual ? ResidualNames() : std::vector<std::string>{"prompt"};
    const std::vector<at::Tensor> init = Initial(t.prefix, names);
    PromptParameters start;
    start.prompt = init[0];
    if (t.residual) start.mlp = ResidualMlp{init[1], init[2], init[3], init[4], init[5], init[6]};
    TrainerOptions options;
    options.optimizer = t.name.find("adamw") != std::string::npos ? OptimizerKind::kAdamW : OptimizerKind::kAdafactor;
    options.batch_size = static_cast<int64_t>(examples.size());
    options.shuffle = false;
    PromptTrainer trainer(*model, examples, start, options);
    const at::Tensor losses = cases_->Float(t.name + ".loss");
    for (int64_t k = 0; k + 1 < losses.numel(); ++k) {
      std::optional<double> loss;
      int slices = 0;
      while (!loss) {
        loss = trainer.StepSlice(1);
        ++slices;
      }
      EXPECT_EQ(slices, static_cast<int>(examples.size()));
      EXPECT_LE(std::abs(*loss - losses[k].item<double>()), 0.0005) << t.name << " loss at state " << k;
      const std::vector<at::Tensor> now = trainer.parameters().Tensors();
      for (size_t i = 0; i < names.size(); ++i) {
        if (k == 0) {  // from the stored initial state: the accumulated gradient is the batch's
          ExpectGrad(trainer.last_gradients()[i], cases_->Float(t.name + ".grad." + names[i])[0],
                     t.name + " sliced gradient of " + names[i]);
        }
        const double err = (now[i] - cases_->Float(t.name + "." + names[i])[k]).abs().max().item<double>();
        EXPECT_LE(err, 0.005) << t.name << " " << names[i] << " after step " << k + 1;
      }
    }
  }
}

// Dropout (t5_model.h). No reference run can share our masks, so: p = 1 drops every sublayer,
// the embeddings and both final norms' outputs, which leaves logits of 0 everywhere: the loss is
// exactly log(V) and the prompt's gradient 0 (analytic); p = 0.1 is reproducible per seed,
// differs between seeds and from no dropout; evaluations run without it.
TEST_P(TrainingReferenceTest, DropoutDropsEverythingAtOneAndIsSeededBelow) {
  auto model = Model();
  ASSERT_NE(model, nullptr);
  const TrainingBatch batch = Batch();
  auto loss = [&](double p, uint64_t seed, at::Tensor* grad = nullptr) {
    at::Tensor prompt = cases_->Float("pt.prompt").clone().requires_grad_(true);
    Dropout d;
    d.p = p;
    d.generator = at::make_generator<at::CPUGeneratorImpl>(seed);
    PromptLossResult r = PromptLoss(*model, prompt, batch, p > 0 ? &d : nullptr);
    r.loss.backward();
    if (grad != nullptr) *grad = prompt.grad();
    return r.loss.item<double>();
  };
  at::Tensor grad;
  EXPECT_NEAR(loss(1.0, 1, &grad), std::log(static_cast<double>(model->config().vocab_size)), 1e-5);
  EXPECT_EQ(grad.abs().max().item<double>(), 0.0);
  const double none = loss(0, 0), a = loss(0.1, 7), again = loss(0.1, 7), b = loss(0.1, 8);
  EXPECT_EQ(a, again);
  EXPECT_NE(a, b);
  EXPECT_NE(a, none);
  ExpectLoss(none, cases_->Float("pt.adamw.loss")[0].item<double>(), "no dropout");
  // A trainer with dropout evaluates without it.
  const std::vector<TrainingExample> examples = Examples();
  PromptParameters start;
  start.prompt = cases_->Float("pt.prompt");
  TrainerOptions options;
  options.dropout = 0.1;
  options.batch_size = static_cast<int64_t>(examples.size());
  PromptTrainer trainer(*model, examples, start, options);
  ExpectLoss(trainer.Loss(examples), none, "evaluation of a trainer with dropout");
}

// Gradient clipping, against torch.nn.utils.clip_grad_norm_'s definition applied to the stored
// gradient of the residual method's first step (7 tensors: the norm is over all of them).
TEST_P(TrainingReferenceTest, GradientClippingScalesTheStoredGradientsByTheGlobalNorm) {
  auto model = Model();
  ASSERT_NE(model, nullptr);
  const std::vector<at::Tensor> init = Initial("rpt.", ResidualNames());
  double squares = 0;
  for (const std::string& n : ResidualNames()) squares += cases_->Float("rpt.adamw.grad." + n)[0].to(at::kDouble).pow(2).sum().item<double>();
  const double norm = std::sqrt(squares);
  for (const double max_norm : {norm / 10, norm * 10}) {
    PromptParameters start;
    start.prompt = init[0];
    start.mlp = ResidualMlp{init[1], init[2], init[3], init[4], init[5], init[6]};
    TrainerOptions options;
    options.optimizer = OptimizerKind::kAdamW;
    options.batch_size = 64;
    options.shuffle = false;
    options.max_grad_norm = max_norm;
    PromptTrainer trainer(*model, Examples(), start, options);
    trainer.Step();
    const double coef = std::min(1.0, max_norm / (norm + 1e-6));
    for (size_t i = 0; i < ResidualNames().size(); ++i) {
      ExpectGrad(trainer.last_gradients()[i], cases_->Float("rpt.adamw.grad." + ResidualNames()[i])[0] * coef,
                 "clipped " + ResidualNames()[i] + " at max norm " + std::to_string(max_norm));
    }
  }
}

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
  auto model = T5Model::Load(testing::ReferenceModelDir(Name()), ModelOptions());
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

INSTANTIATE_TEST_SUITE_P(References, TrainingReferenceTest, ::testing::ValuesIn(TrainingParams()),
                         [](const ::testing::TestParamInfo<TrainingParam>& info) {
                           std::string name = info.param.model + (info.param.gemm == CpuGemm::kPacked ? "_packed" : "_plain");
                           for (char& c : name) c = std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
                           return name;
                         });

}  // namespace
}  // namespace softserve::core
