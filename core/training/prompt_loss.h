// The training objective of prompt tuning and Residual Prompt Tuning on the frozen T5, as
// Hugging Face computes it (tests/data/prompt-training/README.md, "Conventions"): the prompt
// rows are prepended raw to every input's token embeddings and always attended; labels are
// right-padded with -100; decoder_input_ids = [0] + labels[:-1] (-100 -> 0); the loss is the mean
// of -log softmax(logits)[label] over every label token of the batch. Differentiable in the
// prompt (and the residual MLP); the model's weights get no gradient (t5_model.h), plain or
// packed.
#ifndef SOFTSERVE_CORE_TRAINING_PROMPT_LOSS_H_
#define SOFTSERVE_CORE_TRAINING_PROMPT_LOSS_H_

#include <ATen/ATen.h>

#include "core/model/t5_model.h"

namespace softserve::core {

struct TrainingBatch {
  at::Tensor input_ids;       // [B, L] int64, right-padded with 0
  at::Tensor attention_mask;  // [B, L] 1 real / 0 padding (token positions only)
  at::Tensor labels;          // [B, T] int64 targets incl. eos, right-padded with -100
};

struct PromptLossResult {
  at::Tensor loss;       // scalar float32
  at::Tensor token_nll;  // [B, T] float32, 0 at -100 (detached)
  // [B, T] bool (detached): the logits' argmax at each position is the label (true at -100).
  // A row is all true exactly when greedy decoding reproduces its label sequence: each greedy
  // choice, given the label tokens before it, is the next label token.
  at::Tensor argmax_is_label;
};

// Loss of `batch` with `prompt` [N, d] (float32) as every row's soft prompt; with `dropout`
// (t5_model.h; may be null) the frozen model runs in train mode while the prompt records.
PromptLossResult PromptLoss(const T5Model& model, const at::Tensor& prompt, const TrainingBatch& batch,
                            const Dropout* dropout = nullptr);

// The residual reparameterization (Razdaibiedina et al. 2023; FORMATS.md section 2), one MLP
// shared by all rows: P' = P + LayerNorm(ReLU(P W_down^T + b_down) W_up^T + b_up), LayerNorm
// over d with eps 1e-5. Tensors under FORMATS.md's names (torch Linear convention).
struct ResidualMlp {
  at::Tensor down_weight, down_bias;  // [b, d], [b]
  at::Tensor up_weight, up_bias;      // [d, b], [d]
  at::Tensor norm_weight, norm_bias;  // [d], [d]
};
at::Tensor FoldResidual(const at::Tensor& prompt, const ResidualMlp& mlp);

}  // namespace softserve::core

#endif  // SOFTSERVE_CORE_TRAINING_PROMPT_LOSS_H_
