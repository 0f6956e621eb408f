#include "core/training/prompt_loss.h"

#include <vector>

namespace softserve::core {

PromptLossResult PromptLoss(const T5Model& model, const at::Tensor& prompt, const TrainingBatch& batch,
                            const Dropout* dropout) {
  const at::Device device = model.tensor_options().device();
  const at::Tensor ids = batch.input_ids.to(at::kCPU, at::kLong);
  const at::Tensor mask = batch.attention_mask.to(at::kCPU, at::kLong);
  const at::Tensor p = prompt.to(model.tensor_options().dtype());
  std::vector<EncoderRow> rows;
  for (int64_t i = 0; i < ids.size(0); ++i) {
    const int64_t len = mask[i].sum().item<int64_t>();
    const at::Tensor row = ids[i].slice(0, 0, len).contiguous();
    rows.push_back({p, std::vector<int64_t>(row.data_ptr<int64_t>(), row.data_ptr<int64_t>() + len)});
  }
  const EncoderBatch encoder = model.EmbedRows(rows);
  const at::Tensor states = model.Encode(encoder, dropout);
  // Hugging Face's _shift_right: decoder start 0, then the labels without the last, -100 -> 0.
  const at::Tensor labels = batch.labels.to(device, at::kLong);
  const at::Tensor valid = labels != -100;
  at::Tensor decoder_ids = at::zeros_like(labels);
  decoder_ids.slice(1, 1).copy_(labels.slice(1, 0, labels.size(1) - 1).clamp_min(0));
  const at::Tensor logits = model.DecodeTeacherForced(states, encoder.mask, decoder_ids, valid, dropout).to(at::kFloat);
  const at::Tensor logp = at::log_softmax(logits, -1);
  const at::Tensor nll = -logp.gather(2, labels.clamp_min(0).unsqueeze(2)).squeeze(2) * valid.to(at::kFloat);
  PromptLossResult out;
  out.loss = nll.sum() / valid.sum().to(at::kFloat);
  out.token_nll = nll.detach();
  out.argmax_is_label = (logits.detach().argmax(-1) == labels) | valid.logical_not();
  return out;
}

at::Tensor FoldResidual(const at::Tensor& prompt, const ResidualMlp& mlp) {
  const at::Tensor z = at::linear(prompt, mlp.down_weight, mlp.down_bias);
  const at::Tensor u = at::linear(at::relu(z), mlp.up_weight, mlp.up_bias);
  return prompt + at::layer_norm(u, {prompt.size(-1)}, mlp.norm_weight, mlp.norm_bias, 1e-5);
}

}  // namespace softserve::core
