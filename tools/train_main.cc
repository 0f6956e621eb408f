// softserve-train: trains a soft prompt on the frozen model (prompt tuning, or Residual Prompt
// Tuning with --method residual) from JSON-lines examples and writes a PEFT adapter directory
// that softserve (and Hugging Face PEFT) serves. docs/TRAINING.md describes every option.
#include <signal.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "core/common/file_util.h"
#include "core/common/json.h"
#include "core/model/safetensors.h"
#include "core/model/t5_model.h"
#include "core/model/tensor_convert.h"
#include "core/tokenizer/tokenizer.h"
#include "core/training/prompt_init.h"
#include "core/training/trainer.h"
#include "tools/flags.h"

namespace softserve {
namespace {

using core::Status;
using core::StatusOr;

std::atomic<bool> g_interrupted{false};

struct Options {
  std::string model, data, dev, out, method = "prompt", init = "random", class_labels, init_text;
  std::string optimizer = "adafactor", device = "cpu", dtype = "float32", cpu_gemm = "torch", dev_metric = "loss";
  int64_t prompt_length = 100, bottleneck = 800, steps = 0, epochs = 0, batch_size = 8, seed = 0;
  int64_t eval_every = 0, patience = 0;
  double lr = 0.3, weight_decay = 1e-5, dropout = 0, max_grad_norm = 0;
  bool no_shuffle = false, json = false;
};

void AddFlags(tools::FlagParser* f, Options* o) {
  f->AddString("model", &o->model, "Hugging Face T5 checkpoint directory (with spiece.model for text data)");
  f->AddString("data", &o->data, "training examples, JSON lines: {\"input\", \"target\"} or {\"input_ids\", \"target_ids\"}");
  f->AddString("dev", &o->dev, "development examples (same format) for evaluation and early stopping");
  f->AddString("out", &o->out, "output directory: a PEFT adapter (and residual_prompt.safetensors)");
  f->AddString("method", &o->method, "prompt (prompt tuning) or residual (Residual Prompt Tuning)");
  f->AddInt("prompt-length", &o->prompt_length, "prompt rows N");
  f->AddString("init", &o->init, "random, vocab, class-labels, text, or a safetensors FILE (prompt [N, d] and, "
                                 "for residual, the MLP tensors)");
  f->AddString("class-labels", &o->class_labels, "comma-separated class labels for --init class-labels and --dev-metric rank");
  f->AddString("init-text", &o->init_text, "text for --init text (its token embeddings, repeated to N rows)");
  f->AddInt("bottleneck", &o->bottleneck, "residual MLP bottleneck size");
  f->AddString("optimizer", &o->optimizer, "adafactor (Hugging Face semantics) or adamw (PyTorch semantics)");
  f->AddDouble("lr", &o->lr, "learning rate");
  f->AddDouble("weight-decay", &o->weight_decay, "weight decay");
  f->AddInt("steps", &o->steps, "optimizer steps (or give --epochs)");
  f->AddInt("epochs", &o->epochs, "passes over the data (when --steps is 0)");
  f->AddInt("batch-size", &o->batch_size, "examples per step (larger than the data: all of it every step)");
  f->AddBool("no-shuffle", &o->no_shuffle, "keep the file order");
  f->AddDouble("max-grad-norm", &o->max_grad_norm, "clip gradients to this global norm (torch's clip_grad_norm_; 0: off)");
  f->AddDouble("dropout", &o->dropout, "train-mode dropout of the frozen model in [0, 1) (the papers' 0.1; 0 for exact runs)");
  f->AddInt("seed", &o->seed, "random seed (initialisation, MLP, shuffling)");
  f->AddInt("eval-every", &o->eval_every, "evaluate the dev loss every K steps (0: at the end)");
  f->AddInt("patience", &o->patience, "stop after this many evaluations without a better dev metric (0: never)");
  f->AddString("dev-metric", &o->dev_metric,
               "what picks the kept prompt: loss (lowest), exact-match (greedy output = target) or rank "
               "(rank classification over --class-labels, else the distinct targets)");
  f->AddString("device", &o->device, "cpu, cuda or cuda:N");
  f->AddString("dtype", &o->dtype, "float32 or bfloat16 (the model's; the prompt trains in float32)");
  f->AddString("cpu-gemm", &o->cpu_gemm,
               "CPU float32 products, as the server's flag: torch (default here: 13 vs 10 examples/s on 2 vCPUs), "
               "or auto / packed (the server's layout, PackedMatmulWithGrad) / onednn");
  f->AddBool("json", &o->json, "one JSON line per step and evaluation on stdout instead of a progress line");
}

StatusOr<std::vector<int64_t>> IdsOf(const core::JsonValue& row, const char* ids_key, const char* text_key,
                                     const core::Tokenizer* tok) {
  if (const core::JsonValue* ids = row.Find(ids_key); ids != nullptr && ids->is_array()) {
    std::vector<int64_t> out;
    for (const core::JsonValue& v : ids->array()) {
      if (!v.is_int()) return core::InvalidArgumentError(std::string(ids_key) + " must hold integers");
      out.push_back(v.int_value());
    }
    return out;
  }
  const core::JsonValue* text = row.Find(text_key);
  if (text == nullptr || !text->is_string()) {
    return core::InvalidArgumentError(std::string("each row needs \"") + text_key + "\" or \"" + ids_key + "\"");
  }
  if (tok == nullptr) return core::FailedPreconditionError("text rows need the model's spiece.model");
  return tok->Encode(text->string_value(), /*add_eos=*/true);
}

StatusOr<std::vector<core::TrainingExample>> LoadExamples(const std::string& path, const core::Tokenizer* tok,
                                                          int64_t vocab) {
  SOFTSERVE_ASSIGN_OR_RETURN(std::string text, core::ReadFileToString(path));
  std::vector<core::TrainingExample> out;
  std::istringstream lines(text);
  std::string line;
  for (int n = 1; std::getline(lines, line); ++n) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    const std::string where = path + ":" + std::to_string(n) + ": ";
    auto row = core::ParseJson(line);
    if (!row.ok() || !row->is_object()) return core::InvalidArgumentError(where + "not a JSON object");
    core::TrainingExample e;
    auto in = IdsOf(*row, "input_ids", "input", tok);
    auto target = IdsOf(*row, "target_ids", "target", tok);
    if (!in.ok()) return in.status().WithPrefix(where);
    if (!target.ok()) return target.status().WithPrefix(where);
    for (int64_t id : *in) if (id < 0 || id >= vocab) return core::InvalidArgumentError(where + "id outside the vocabulary");
    for (int64_t id : *target) if (id < 0 || id >= vocab) return core::InvalidArgumentError(where + "id outside the vocabulary");
    if (in->empty() || target->empty()) return core::InvalidArgumentError(where + "empty input or target");
    out.push_back({std::move(in).value(), std::move(target).value()});
  }
  if (out.empty()) return core::InvalidArgumentError(path + " holds no examples");
  return out;
}

// --init FILE: `prompt` and, for the residual method, the MLP under FORMATS.md's names.
StatusOr<core::PromptParameters> FromFile(const Options& o, int64_t d) {
  SOFTSERVE_ASSIGN_OR_RETURN(auto file, core::SafetensorsFile::Open(o.init));
  auto tensor = [&](const std::string& name) -> StatusOr<at::Tensor> {
    const core::TensorView* view = file->Find(name);
    if (view == nullptr) return core::InvalidArgumentError(o.init + " has no tensor '" + name + "'");
    return core::FloatTensorFromView(*view, at::TensorOptions().dtype(at::kFloat), o.init + " " + name);
  };
  core::PromptParameters p;
  SOFTSERVE_ASSIGN_OR_RETURN(p.prompt, tensor("prompt"));
  if (p.prompt.dim() != 2 || p.prompt.size(1) != d) {
    return core::InvalidArgumentError(o.init + ": prompt must be [N, " + std::to_string(d) + "]");
  }
  if (o.method == "residual") {
    core::ResidualMlp m;
    SOFTSERVE_ASSIGN_OR_RETURN(m.down_weight, tensor("mlp.down.weight"));
    SOFTSERVE_ASSIGN_OR_RETURN(m.down_bias, tensor("mlp.down.bias"));
    SOFTSERVE_ASSIGN_OR_RETURN(m.up_weight, tensor("mlp.up.weight"));
    SOFTSERVE_ASSIGN_OR_RETURN(m.up_bias, tensor("mlp.up.bias"));
    SOFTSERVE_ASSIGN_OR_RETURN(m.norm_weight, tensor("mlp.norm.weight"));
    SOFTSERVE_ASSIGN_OR_RETURN(m.norm_bias, tensor("mlp.norm.bias"));
    p.mlp = m;
  }
  return p;
}

StatusOr<core::PromptParameters> Initial(const Options& o, const core::T5Model& model, const core::Tokenizer* tok) {
  if (o.init != "random" && o.init != "vocab" && o.init != "class-labels" && o.init != "text") {
    return FromFile(o, model.config().d_model);
  }
  core::PromptInitSpec spec;
  spec.kind = o.init;
  spec.rows = o.prompt_length;
  spec.seed = static_cast<uint64_t>(o.seed);
  spec.residual = o.method == "residual";
  spec.bottleneck = o.bottleneck;
  if ((o.init == "class-labels" || o.init == "text") && tok == nullptr) {
    return core::FailedPreconditionError("--init " + o.init + " needs the model's spiece.model");
  }
  if (o.init == "class-labels") {
    std::istringstream in(o.class_labels);
    for (std::string label; std::getline(in, label, ',');) {
      SOFTSERVE_ASSIGN_OR_RETURN(std::vector<int64_t> ids, tok->Encode(label, /*add_eos=*/false));
      spec.class_label_ids.push_back(std::move(ids));
    }
    if (spec.class_label_ids.empty()) return core::InvalidArgumentError("--init class-labels needs --class-labels \"a,b,...\"");
  }
  if (o.init == "text") {
    SOFTSERVE_ASSIGN_OR_RETURN(spec.text_ids, tok->Encode(o.init_text, /*add_eos=*/false));
  }
  return core::InitialParameters(model.weights().embedding, spec);
}

Status Check(const Options& o) {
  if (o.model.empty() || o.data.empty() || o.out.empty()) return core::InvalidArgumentError("--model, --data and --out are required");
  if (o.method != "prompt" && o.method != "residual") return core::InvalidArgumentError("--method must be prompt or residual");
  if (o.optimizer != "adafactor" && o.optimizer != "adamw") return core::InvalidArgumentError("--optimizer must be adafactor or adamw");
  if (!(o.dropout >= 0 && o.dropout < 1)) return core::InvalidArgumentError("--dropout must be in [0, 1)");
  if (!(o.max_grad_norm >= 0)) return core::InvalidArgumentError("--max-grad-norm must be >= 0 (0: off)");
  if (o.dev_metric != "loss" && o.dev_metric != "exact-match" && o.dev_metric != "rank") {
    return core::InvalidArgumentError("--dev-metric must be loss, exact-match or rank");
  }
  if (o.prompt_length < 1 || o.bottleneck < 1 || o.batch_size < 1 || o.steps < 0 || o.epochs < 0) {
    return core::InvalidArgumentError("--prompt-length, --bottleneck and --batch-size must be >= 1, --steps and --epochs >= 0");
  }
  return core::OkStatus();
}

void Report(const Options& o, int64_t step, int64_t total, double loss, double examples_per_s, double dev,
            double accuracy) {
  if (o.json) {
    core::JsonValue line = core::JsonValue::MakeObject();
    line.Add("step", core::JsonValue::Int(step));
    line.Add("loss", core::JsonValue::Number(loss));
    line.Add("lr", core::JsonValue::Number(o.lr));
    line.Add("examples_per_second", core::JsonValue::Number(examples_per_s));
    if (dev >= 0) line.Add("dev_loss", core::JsonValue::Number(dev));
    if (accuracy >= 0) line.Add("dev_" + o.dev_metric, core::JsonValue::Number(accuracy));
    std::printf("%s\n", line.Serialize().c_str());
    std::fflush(stdout);
    return;
  }
  std::string dev_text;
  if (dev >= 0) dev_text = "  dev loss " + std::to_string(dev);
  if (accuracy >= 0) dev_text += "  dev " + o.dev_metric + " " + std::to_string(accuracy);
  std::fprintf(stderr, "\rstep %lld/%lld  loss %.4f  %.1f examples/s%s", static_cast<long long>(step),
               static_cast<long long>(total), loss, examples_per_s, dev_text.c_str());
}

struct Loaded {
  std::unique_ptr<core::T5Model> model;
  std::unique_ptr<core::Tokenizer> tokenizer;
  std::vector<core::TrainingExample> train, dev;
};

StatusOr<Loaded> Load(const Options& o) {
  Loaded l;
  core::ModelOptions mo;
  SOFTSERVE_ASSIGN_OR_RETURN(mo.device, core::ParseDevice(o.device));
  SOFTSERVE_ASSIGN_OR_RETURN(mo.dtype, core::ParseDType(o.dtype));
  SOFTSERVE_ASSIGN_OR_RETURN(mo.cpu_gemm, core::ParseCpuGemm(o.cpu_gemm));
  SOFTSERVE_ASSIGN_OR_RETURN(l.model, core::T5Model::Load(o.model, mo));
  const std::string spm = core::JoinPath(o.model, "spiece.model");
  if (core::PathExists(spm)) {
    SOFTSERVE_ASSIGN_OR_RETURN(l.tokenizer, core::Tokenizer::Load(spm));
  }
  const int64_t vocab = l.model->config().vocab_size;
  SOFTSERVE_ASSIGN_OR_RETURN(l.train, LoadExamples(o.data, l.tokenizer.get(), vocab));
  if (!o.dev.empty()) {
    SOFTSERVE_ASSIGN_OR_RETURN(l.dev, LoadExamples(o.dev, l.tokenizer.get(), vocab));
  }
  return l;
}

// Rank classification's candidates: --class-labels (tokenized as targets are, eos appended),
// else the distinct targets of the data.
StatusOr<std::vector<std::vector<int64_t>>> RankCandidates(const Options& o, const Loaded& l) {
  if (o.dev_metric != "rank") return std::vector<std::vector<int64_t>>();
  if (o.class_labels.empty()) return core::DistinctTargets({&l.train, &l.dev});
  if (l.tokenizer == nullptr) return core::FailedPreconditionError("--class-labels need the model's spiece.model");
  std::vector<std::vector<int64_t>> out;
  std::istringstream in(o.class_labels);
  for (std::string label; std::getline(in, label, ',');) {
    SOFTSERVE_ASSIGN_OR_RETURN(std::vector<int64_t> ids, l.tokenizer->Encode(label));
    out.push_back(std::move(ids));
  }
  return out;
}

// The loop: steps, periodic dev evaluation with early stopping, Ctrl-C; the best prompt (by the
// dev metric when there is a dev set, else the last) goes to --out.
int Train(const Options& o, Loaded& l, core::PromptParameters initial) {
  core::TrainerOptions to;
  to.optimizer = o.optimizer == "adamw" ? core::OptimizerKind::kAdamW : core::OptimizerKind::kAdafactor;
  to.lr = o.lr;
  to.weight_decay = o.weight_decay;
  to.batch_size = o.batch_size;
  to.shuffle = !o.no_shuffle;
  to.seed = static_cast<uint64_t>(o.seed);
  to.dropout = o.dropout;
  to.max_grad_norm = o.max_grad_norm;
  const int64_t per_epoch = (static_cast<int64_t>(l.train.size()) + o.batch_size - 1) / o.batch_size;
  const int64_t total = o.steps > 0 ? o.steps : std::max<int64_t>(1, o.epochs) * per_epoch;
  auto candidates = RankCandidates(o, l);
  if (!candidates.ok()) return std::fprintf(stderr, "softserve-train: %s\n", candidates.status().ToString().c_str()), 2;
  core::PromptTrainer trainer(*l.model, l.train, std::move(initial), to);
  core::PromptParameters best = trainer.parameters().Clone();
  double best_score = 0;  // higher is better: -loss, or an accuracy
  bool have_best = false;
  int64_t since_best = 0;
  const auto start = std::chrono::steady_clock::now();
  while (trainer.steps() < total && !g_interrupted.load()) {
    const double loss = trainer.Step();
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    double dev = -1, accuracy = -1;
    const bool evaluate = !l.dev.empty() && ((o.eval_every > 0 && trainer.steps() % o.eval_every == 0) || trainer.steps() == total);
    if (evaluate) {
      const core::PromptTrainer::Evaluation e = trainer.Evaluate(l.dev);  // loss and exact matches, one pass
      dev = e.loss();
      const double n = static_cast<double>(l.dev.size());
      if (o.dev_metric == "exact-match") accuracy = static_cast<double>(e.exact_matches) / n;
      if (o.dev_metric == "rank") accuracy = static_cast<double>(trainer.RankCorrect(l.dev, *candidates)) / n;
      const double score = o.dev_metric == "loss" ? -dev : accuracy;
      if (!have_best || score > best_score) {
        best_score = score, best = trainer.parameters().Clone(), since_best = 0, have_best = true;
      } else {
        ++since_best;
      }
    }
    Report(o, trainer.steps(), total, loss, static_cast<double>(trainer.steps() * std::min<int64_t>(o.batch_size, l.train.size())) / seconds, dev, accuracy);
    if (o.patience > 0 && since_best >= o.patience) break;
  }
  if (!o.json) std::fprintf(stderr, "\n");
  if (l.dev.empty()) best = trainer.parameters().Clone();
  const std::string init = o.init == "text" ? "TEXT" : o.init == "vocab" || o.init == "class-labels" ? "SAMPLE_VOCAB" : "RANDOM";
  if (Status s = core::WritePromptOutputs(o.out, best, o.model, init, l.model->config()); !s.ok()) {
    std::fprintf(stderr, "softserve-train: %s\n", s.ToString().c_str());
    return 1;
  }
  std::fprintf(stderr, "softserve-train: %lld steps; prompt written to %s%s\n", static_cast<long long>(trainer.steps()),
               o.out.c_str(), g_interrupted.load() ? " (interrupted: the best so far)" : "");
  return 0;
}

int Main(int argc, char** argv) {
  Options o;
  tools::FlagParser flags("softserve-train", "Trains a soft prompt on the frozen model and writes a PEFT adapter.");
  AddFlags(&flags, &o);
  if (int code = flags.ParseOrExitCode(argc, argv); code >= 0) return code;
  auto fail = [](const Status& s) {
    std::fprintf(stderr, "softserve-train: %s\n", s.ToString().c_str());
    return 2;
  };
  if (Status s = Check(o); !s.ok()) return fail(s);
  auto loaded = Load(o);
  if (!loaded.ok()) return fail(loaded.status());
  auto initial = Initial(o, *loaded->model, loaded->tokenizer.get());
  if (!initial.ok()) return fail(initial.status());
  ::signal(SIGINT, [](int) { g_interrupted.store(true); });
  return Train(o, *loaded, std::move(initial).value());
}

}  // namespace
}  // namespace softserve

int main(int argc, char** argv) { return softserve::Main(argc, argv); }
