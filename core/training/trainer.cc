#include "core/training/trainer.h"

#include <ATen/core/Generator.h>
#include <ATen/CPUGeneratorImpl.h>
#include <c10/core/GradMode.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>

#include "core/common/file_util.h"
#include "core/common/json.h"
#include "core/training/prompt_init.h"
#include "core/model/safetensors.h"

namespace softserve::core {

at::Tensor PromptParameters::Served() const { return mlp ? FoldResidual(prompt, *mlp) : prompt; }

std::vector<at::Tensor> PromptParameters::Tensors() const {
  std::vector<at::Tensor> out = {prompt};
  if (mlp) {
    out.insert(out.end(), {mlp->down_weight, mlp->down_bias, mlp->up_weight, mlp->up_bias, mlp->norm_weight,
                           mlp->norm_bias});
  }
  return out;
}

PromptParameters PromptParameters::Clone() const {
  PromptParameters c;
  c.prompt = prompt.detach().clone();
  if (mlp) {
    c.mlp = ResidualMlp{mlp->down_weight.detach().clone(), mlp->down_bias.detach().clone(),
                        mlp->up_weight.detach().clone(),   mlp->up_bias.detach().clone(),
                        mlp->norm_weight.detach().clone(), mlp->norm_bias.detach().clone()};
  }
  return c;
}

ResidualMlp NewResidualMlp(int64_t d, int64_t bottleneck, uint64_t seed) {
  at::NoGradGuard no_grad;
  at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  auto uniform = [&gen](std::vector<int64_t> shape, int64_t fan_in) {
    const double bound = 1.0 / std::sqrt(static_cast<double>(fan_in));
    return at::empty(shape, at::kFloat).uniform_(-bound, bound, gen);
  };
  return ResidualMlp{uniform({bottleneck, d}, d), uniform({bottleneck}, d), uniform({d, bottleneck}, bottleneck),
                     uniform({d}, bottleneck),    at::ones({d}),          at::zeros({d})};
}

TrainingBatch MakeTrainingBatch(const std::vector<const TrainingExample*>& examples) {
  int64_t l = 0, t = 0;
  for (const TrainingExample* e : examples) {
    l = std::max<int64_t>(l, static_cast<int64_t>(e->input_ids.size()));
    t = std::max<int64_t>(t, static_cast<int64_t>(e->target_ids.size()));
  }
  const int64_t b = static_cast<int64_t>(examples.size());
  TrainingBatch batch{at::zeros({b, l}, at::kLong), at::zeros({b, l}, at::kLong), at::full({b, t}, -100, at::kLong)};
  for (int64_t i = 0; i < b; ++i) {
    const TrainingExample& e = *examples[static_cast<size_t>(i)];
    const int64_t n = static_cast<int64_t>(e.input_ids.size()), m = static_cast<int64_t>(e.target_ids.size());
    std::memcpy(batch.input_ids[i].data_ptr<int64_t>(), e.input_ids.data(), static_cast<size_t>(n) * sizeof(int64_t));
    batch.attention_mask[i].narrow(0, 0, n).fill_(1);
    std::memcpy(batch.labels[i].data_ptr<int64_t>(), e.target_ids.data(), static_cast<size_t>(m) * sizeof(int64_t));
  }
  return batch;
}

PromptTrainer::PromptTrainer(const T5Model& model, std::vector<TrainingExample> train, PromptParameters initial,
                             const TrainerOptions& options)
    : model_(model), train_(std::move(train)), params_(initial.Clone()), options_(options), rng_(options.seed) {
  dropout_.p = options.dropout;
  if (options.dropout > 0) dropout_.generator = at::make_generator<at::CPUGeneratorImpl>(options.seed + 2);
  if (options.optimizer == OptimizerKind::kAdamW) {
    AdamWOptions o;
    o.lr = options.lr;
    o.weight_decay = options.weight_decay;
    optimizer_ = NewAdamW(o);
  } else {
    AdafactorOptions o;
    o.lr = options.lr;
    o.weight_decay = options.weight_decay;
    optimizer_ = NewAdafactor(o);
  }
  order_.resize(train_.size());
  std::iota(order_.begin(), order_.end(), 0);
  if (options_.shuffle) std::shuffle(order_.begin(), order_.end(), rng_);
}

std::vector<const TrainingExample*> PromptTrainer::NextBatch() {
  std::vector<const TrainingExample*> batch;
  const size_t want = static_cast<size_t>(std::max<int64_t>(1, std::min<int64_t>(options_.batch_size,
                                                                                   static_cast<int64_t>(train_.size()))));
  while (batch.size() < want) {
    if (cursor_ == order_.size()) {  // a new epoch
      cursor_ = 0;
      ++epoch_;
      if (options_.shuffle) std::shuffle(order_.begin(), order_.end(), rng_);
    }
    batch.push_back(&train_[order_[cursor_++]]);
  }
  return batch;
}

StatusOr<PromptParameters> InitialParameters(const at::Tensor& embedding, const PromptInitSpec& spec) {
  PromptParameters p;
  const int64_t d = embedding.size(1);
  if (spec.rows < 1) return InvalidArgumentError("the prompt needs at least one row");
  if (spec.kind == "random") {
    p.prompt = UniformPromptInit(spec.rows, d, spec.seed);
  } else if (spec.kind == "vocab") {
    SOFTSERVE_ASSIGN_OR_RETURN(p.prompt, SampledVocabInit(embedding, spec.rows, spec.seed));
  } else if (spec.kind == "class-labels") {
    if (spec.class_label_ids.empty()) return InvalidArgumentError("class-labels initialisation needs the class labels");
    SOFTSERVE_ASSIGN_OR_RETURN(p.prompt, ClassLabelInit(embedding, spec.class_label_ids, spec.rows, spec.seed));
  } else if (spec.kind == "text") {
    SOFTSERVE_ASSIGN_OR_RETURN(p.prompt, TextPromptInit(embedding, spec.text_ids, spec.rows));
  } else {
    return InvalidArgumentError("unknown initialisation '" + spec.kind + "': random, vocab, class-labels or text");
  }
  p.prompt = p.prompt.to(at::kCPU, at::kFloat);
  if (spec.residual) {
    if (spec.bottleneck < 1) return InvalidArgumentError("the residual bottleneck must be >= 1");
    p.mlp = NewResidualMlp(d, spec.bottleneck, spec.seed + 1);
  }
  return p;
}

std::vector<at::Tensor> PromptTrainer::NewLeaves() const {
  std::vector<at::Tensor> leaves;
  for (const at::Tensor& t : params_.Tensors()) leaves.push_back(t.detach().requires_grad_(true));
  return leaves;
}

PromptParameters PromptTrainer::LiveOver(const std::vector<at::Tensor>& leaves) const {
  PromptParameters live;
  live.prompt = leaves[0];
  if (params_.mlp) live.mlp = ResidualMlp{leaves[1], leaves[2], leaves[3], leaves[4], leaves[5], leaves[6]};
  return live;
}

void PromptTrainer::ApplyStep(const std::vector<at::Tensor>& leaves) {
  std::vector<at::Tensor> params, grads;
  for (const at::Tensor& l : leaves) {
    grads.push_back(l.grad().detach());
    params.push_back(l.detach());  // shares storage with params_: updated in place
  }
  if (options_.max_grad_norm > 0) {
    double squares = 0;
    for (const at::Tensor& g : grads) squares += g.to(at::kDouble).pow(2).sum().item<double>();
    const double coef = options_.max_grad_norm / (std::sqrt(squares) + 1e-6);
    if (coef < 1) {
      for (at::Tensor& g : grads) g = g * coef;
    }
  }
  optimizer_->Step(params, grads);
  last_grads_ = std::move(grads);
  ++steps_;
}

double PromptTrainer::Step() {
  const TrainingBatch batch = MakeTrainingBatch(NextBatch());
  const std::vector<at::Tensor> leaves = NewLeaves();
  at::Tensor loss;
  {
    at::AutoGradMode grad(true);
    loss = PromptLoss(model_, LiveOver(leaves).Served(), batch, &dropout_).loss;
    loss.backward();
  }
  ApplyStep(leaves);
  return loss.item<double>();
}

std::optional<double> PromptTrainer::StepSlice(int64_t max_examples) {
  if (slice_batch_.empty()) {
    slice_batch_ = NextBatch();
    slice_next_ = 0;
    slice_tokens_ = 0;
    slice_loss_ = 0;
    for (const TrainingExample* e : slice_batch_) slice_tokens_ += static_cast<double>(e->target_ids.size());
    slice_leaves_ = NewLeaves();
  }
  const size_t end = std::min(slice_batch_.size(), slice_next_ + static_cast<size_t>(std::max<int64_t>(1, max_examples)));
  const std::vector<const TrainingExample*> part(slice_batch_.begin() + slice_next_, slice_batch_.begin() + end);
  double part_tokens = 0;
  for (const TrainingExample* e : part) part_tokens += static_cast<double>(e->target_ids.size());
  {
    at::AutoGradMode grad(true);
    const at::Tensor mean = PromptLoss(model_, LiveOver(slice_leaves_).Served(), MakeTrainingBatch(part), &dropout_).loss;
    (mean * (part_tokens / slice_tokens_)).backward();
    slice_loss_ += mean.item<double>() * part_tokens / slice_tokens_;
  }
  slice_next_ = end;
  if (slice_next_ < slice_batch_.size()) return std::nullopt;
  ApplyStep(slice_leaves_);
  slice_batch_.clear();
  slice_leaves_.clear();
  return slice_loss_;
}

void PromptTrainer::ForEachBatch(
    const std::vector<TrainingExample>& examples,
    const std::function<void(const at::Tensor& served, const std::vector<const TrainingExample*>&)>& f) const {
  at::NoGradGuard no_grad;
  const at::Tensor served = params_.Served();
  const size_t step = static_cast<size_t>(std::max<int64_t>(1, options_.batch_size));
  for (size_t begin = 0; begin < examples.size(); begin += step) {
    std::vector<const TrainingExample*> part;
    for (size_t i = begin; i < std::min(examples.size(), begin + step); ++i) part.push_back(&examples[i]);
    f(served, part);
  }
}

PromptTrainer::Evaluation PromptTrainer::Evaluate(const std::vector<TrainingExample>& examples) const {
  Evaluation e;
  ForEachBatch(examples, [&](const at::Tensor& served, const std::vector<const TrainingExample*>& part) {
    const PromptLossResult r = PromptLoss(model_, served, MakeTrainingBatch(part));
    e.nll += r.token_nll.sum().item<double>();
    e.exact_matches += r.argmax_is_label.all(1).sum().item<int64_t>();
    for (const TrainingExample* x : part) e.tokens += static_cast<double>(x->target_ids.size());
  });
  return e;
}

double PromptTrainer::Loss(const std::vector<TrainingExample>& examples) const { return Evaluate(examples).loss(); }

std::vector<std::vector<int64_t>> DistinctTargets(const std::vector<const std::vector<TrainingExample>*>& sets) {
  std::vector<std::vector<int64_t>> out;
  for (const auto* set : sets) {
    for (const TrainingExample& e : *set) {
      if (std::find(out.begin(), out.end(), e.target_ids) == out.end()) out.push_back(e.target_ids);
    }
  }
  return out;
}

int64_t PromptTrainer::ExactMatches(const std::vector<TrainingExample>& examples) const {
  return Evaluate(examples).exact_matches;
}

int64_t PromptTrainer::RankCorrect(const std::vector<TrainingExample>& examples,
                                   const std::vector<std::vector<int64_t>>& candidates) const {
  if (candidates.empty()) return 0;
  at::NoGradGuard no_grad;
  const at::Tensor served = params_.Served();
  int64_t correct = 0;
  for (const TrainingExample& e : examples) {
    std::vector<TrainingExample> pairs;
    for (const std::vector<int64_t>& c : candidates) pairs.push_back({e.input_ids, c});
    std::vector<const TrainingExample*> part;
    for (const TrainingExample& p : pairs) part.push_back(&p);
    const at::Tensor totals = PromptLoss(model_, served, MakeTrainingBatch(part)).token_nll.sum(1).to(at::kCPU);
    int64_t best = 0;
    for (int64_t i = 1; i < totals.size(0); ++i) {
      if (totals[i].item<double>() < totals[best].item<double>()) best = i;
    }
    correct += candidates[static_cast<size_t>(best)] == e.target_ids ? 1 : 0;
  }
  return correct;
}

namespace {

TensorToWrite F32(const std::string& name, const at::Tensor& t) {
  const at::Tensor c = t.detach().to(at::kCPU, at::kFloat).contiguous();
  TensorToWrite w{name, SafetensorsDtype::kF32, std::vector<int64_t>(c.sizes().begin(), c.sizes().end()), ""};
  w.bytes.assign(static_cast<const char*>(c.data_ptr()), static_cast<size_t>(c.numel()) * sizeof(float));
  return w;
}

std::string PeftConfig(int64_t rows, const T5Config& config, const std::string& base_model, const std::string& init) {
  // What PeftModel.save_pretrained() writes for prompt tuning of a seq2seq model.
  return "{\n  \"auto_mapping\": null,\n  \"base_model_name_or_path\": " + JsonValue::String(base_model).Serialize() +
         ",\n  \"inference_mode\": true,\n  \"num_attention_heads\": " + std::to_string(config.num_heads) +
         ",\n  \"num_layers\": " + std::to_string(config.num_layers) +
         ",\n  \"num_transformer_submodules\": 2,\n  \"num_virtual_tokens\": " + std::to_string(rows) +
         ",\n  \"peft_type\": \"PROMPT_TUNING\",\n  \"prompt_tuning_init\": " + JsonValue::String(init).Serialize() +
         ",\n  \"prompt_tuning_init_text\": null,\n  \"revision\": null,\n  \"task_type\": \"SEQ_2_SEQ_LM\",\n"
         "  \"token_dim\": " + std::to_string(config.d_model) + ",\n  \"tokenizer_kwargs\": null,\n"
         "  \"tokenizer_name_or_path\": null\n}\n";
}

}  // namespace

Status WritePromptOutputs(const std::string& dir, const PromptParameters& params, const std::string& base_model,
                          const std::string& init_kind, const T5Config& config) {
  at::NoGradGuard no_grad;
  SOFTSERVE_RETURN_IF_ERROR(MakeDirectories(dir));
  const at::Tensor served = params.Served().detach().to(at::kCPU, at::kFloat);
  SOFTSERVE_ASSIGN_OR_RETURN(std::string peft,
                             SerializeSafetensors({F32("prompt_embeddings", at::cat({served, served}, 0))}, {}));
  SOFTSERVE_RETURN_IF_ERROR(WriteFileDurably(JoinPath(dir, "adapter_model.safetensors"), peft));
  SOFTSERVE_RETURN_IF_ERROR(
      WriteFileDurably(JoinPath(dir, "adapter_config.json"), PeftConfig(served.size(0), config, base_model, init_kind)));
  if (!params.mlp) return OkStatus();
  const ResidualMlp& m = *params.mlp;
  SOFTSERVE_ASSIGN_OR_RETURN(
      std::string residual,
      SerializeSafetensors({F32("prompt", params.prompt), F32("mlp.down.weight", m.down_weight),
                            F32("mlp.down.bias", m.down_bias), F32("mlp.up.weight", m.up_weight),
                            F32("mlp.up.bias", m.up_bias), F32("mlp.norm.weight", m.norm_weight),
                            F32("mlp.norm.bias", m.norm_bias)},
                           {}));
  return WriteFileDurably(JoinPath(dir, "residual_prompt.safetensors"), residual);
}

}  // namespace softserve::core
