// A soft-prompt training loop on the frozen T5: prompt tuning (Lester et al. 2021) or Residual
// Prompt Tuning (Razdaibiedina et al. 2023), mini-batches of (input ids, target ids) examples,
// the loss of prompt_loss.h, and an optimizer of optimizers.h. The model is only read (plain or
// packed weights: t5_model.h). Not thread-safe; one trainer per thread.
#ifndef SOFTSERVE_CORE_TRAINING_TRAINER_H_
#define SOFTSERVE_CORE_TRAINING_TRAINER_H_

#include <ATen/ATen.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "core/common/status.h"
#include "core/model/t5_model.h"
#include "core/training/optimizers.h"
#include "core/training/prompt_loss.h"

namespace softserve::core {

struct TrainingExample {
  std::vector<int64_t> input_ids;   // used as given (eos included when wanted)
  std::vector<int64_t> target_ids;  // likewise
};

enum class PromptMethod { kPrompt, kResidual };
enum class OptimizerKind { kAdafactor, kAdamW };

struct TrainerOptions {
  OptimizerKind optimizer = OptimizerKind::kAdafactor;
  double lr = 0.3;
  double weight_decay = 1e-5;
  int64_t batch_size = 8;
  bool shuffle = true;  // each epoch in a new order (seeded); false: file order
  uint64_t seed = 0;
  // Train-mode dropout of the frozen model in training steps (t5_model.h; the papers' 0.1; 0 for
  // exact runs), masks seeded from `seed`; evaluations run without it.
  double dropout = 0;
  // Gradient clipping by the global norm over every trainable tensor, as
  // torch.nn.utils.clip_grad_norm_ (and Hugging Face's Trainer, max_grad_norm 1.0): when the norm
  // exceeds this, every gradient is scaled by max_grad_norm / (norm + 1e-6). 0 = off (the
  // papers' setting; Adafactor clips its updates itself).
  double max_grad_norm = 0;
};

// What training changes: the prompt P [N, d] and, for the residual method, its MLP.
struct PromptParameters {
  at::Tensor prompt;
  std::optional<ResidualMlp> mlp;

  // The prompt a server serves: P, or the fold P + LayerNorm(MLP(P)).
  at::Tensor Served() const;
  // Every trainable tensor: P, then (residual) the MLP's six in FORMATS.md's order.
  std::vector<at::Tensor> Tensors() const;
  PromptParameters Clone() const;
};

// How a prompt starts, for the CLI's --init and the training service: the kind (Lester et al.
// section 2.1 / 3.2 and PEFT's TEXT), with the token ids it needs tokenized by the caller.
struct PromptInitSpec {
  std::string kind = "vocab";  // "random", "vocab", "class-labels" or "text"
  int64_t rows = 20;
  uint64_t seed = 0;
  std::vector<std::vector<int64_t>> class_label_ids;  // class-labels: each label's ids, no eos
  std::vector<int64_t> text_ids;                       // text: the text's ids, no eos
  bool residual = false;                               // also a residual MLP (seeded seed + 1)
  int64_t bottleneck = 800;
};

// The initial parameters, float32 on the CPU. InvalidArgument for an unknown kind, labels or
// text that do not fit, or more rows than the vocabulary has for "vocab".
StatusOr<PromptParameters> InitialParameters(const at::Tensor& embedding, const PromptInitSpec& spec);

// Every distinct target of `sets`, in first-seen order: rank classification's candidates when
// no class labels are given.
std::vector<std::vector<int64_t>> DistinctTargets(const std::vector<const std::vector<TrainingExample>*>& sets);

// A residual MLP as torch initialises nn.Linear (weights and biases uniform in +-1/sqrt(fan_in))
// and nn.LayerNorm (weight 1, bias 0), reproducibly for a seed.
ResidualMlp NewResidualMlp(int64_t d, int64_t bottleneck, uint64_t seed);

// Right-padded tensors of some examples (inputs with 0, labels with -100).
TrainingBatch MakeTrainingBatch(const std::vector<const TrainingExample*>& examples);

class PromptTrainer {
 public:
  // REQUIRES: `train` non-empty, every example with non-empty input and target ids in the
  // vocabulary, initial.prompt [N, d_model] float32 on the model's device.
  PromptTrainer(const T5Model& model, std::vector<TrainingExample> train, PromptParameters initial,
                const TrainerOptions& options);

  // One optimizer step on the next batch (epochs wrap around); returns that batch's loss before
  // the step.
  double Step();
  // The same step in slices, for interleaving with other work on one thread (a server's engine):
  // each call runs the forward and backward of at most `max_examples` examples of the current
  // batch, accumulating gradients so that they are the whole batch's mean (each slice's mean
  // loss is weighted by its share of the batch's target tokens); the call that finishes the
  // batch applies the optimizer and returns the batch's loss (nullopt before that). Do not call
  // Step() while a sliced step is half done.
  std::optional<double> StepSlice(int64_t max_examples);
  bool InSlicedStep() const { return !slice_batch_.empty(); }
  // Mean token loss over `examples` at the current parameters, in batches, without gradients.
  double Loss(const std::vector<TrainingExample>& examples) const;
  // Dev metrics at the current parameters, without gradients (the papers' evaluations):
  // how many `examples` greedy decoding answers with exactly their target ids (eos included;
  // one teacher-forced pass: see PromptLossResult::argmax_is_label), and how many rank
  // classification gets right: of `candidates` (each as scored, eos included), the one with the
  // highest total log-likelihood given the input (the first on ties) equals the target.
  int64_t ExactMatches(const std::vector<TrainingExample>& examples) const;
  // Loss and ExactMatches from one forward pass: the summed token NLL, the target tokens and the
  // exact matches of `examples`.
  struct Evaluation {
    double nll = 0, tokens = 0;
    int64_t exact_matches = 0;
    double loss() const { return tokens > 0 ? nll / tokens : 0; }
  };
  Evaluation Evaluate(const std::vector<TrainingExample>& examples) const;
  int64_t RankCorrect(const std::vector<TrainingExample>& examples, const std::vector<std::vector<int64_t>>& candidates) const;

  const PromptParameters& parameters() const { return params_; }
  // The gradients the last step applied (after clipping), in Tensors() order (empty before the
  // first step).
  const std::vector<at::Tensor>& last_gradients() const { return last_grads_; }
  int64_t steps() const { return steps_; }
  int64_t epoch() const { return epoch_; }

 private:
  std::vector<const TrainingExample*> NextBatch();
  // Runs `f` on `examples` in batches of options_.batch_size, without gradients, with the served
  // prompt of the current parameters.
  void ForEachBatch(const std::vector<TrainingExample>& examples,
                    const std::function<void(const at::Tensor& served, const std::vector<const TrainingExample*>&)>& f) const;
  // Leaves that share storage with params_ (requiring grad), and the live parameters over them.
  std::vector<at::Tensor> NewLeaves() const;
  PromptParameters LiveOver(const std::vector<at::Tensor>& leaves) const;
  // Applies the optimizer with the leaves' gradients.
  void ApplyStep(const std::vector<at::Tensor>& leaves);

  const T5Model& model_;
  std::vector<TrainingExample> train_;
  PromptParameters params_;
  TrainerOptions options_;
  std::unique_ptr<PromptOptimizer> optimizer_;
  std::vector<size_t> order_;
  size_t cursor_ = 0;
  int64_t steps_ = 0, epoch_ = 0;
  std::mt19937_64 rng_;
  // A sliced step in progress: its batch, the next example, its target tokens, its loss so far.
  std::vector<const TrainingExample*> slice_batch_;
  size_t slice_next_ = 0;
  double slice_tokens_ = 0, slice_loss_ = 0;
  std::vector<at::Tensor> slice_leaves_;
  std::vector<at::Tensor> last_grads_;
  Dropout dropout_;
};

// Writes what serves: a PEFT prompt-tuning adapter directory (adapter_config.json and
// adapter_model.safetensors with `prompt_embeddings` [2N, d], SEQ_2_SEQ_LM's layout, the served
// prompt in both halves), and for the residual method also residual_prompt.safetensors (P and
// the MLP under FORMATS.md's names). Files are written durably; `dir` is created.
Status WritePromptOutputs(const std::string& dir, const PromptParameters& params, const std::string& base_model,
                          const std::string& init_kind, const T5Config& config);

}  // namespace softserve::core

#endif  // SOFTSERVE_CORE_TRAINING_TRAINER_H_
