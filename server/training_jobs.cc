#include "server/training_jobs.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>

#include "core/engine/background.h"
#include "core/training/trainer.h"
#include "server/convert.h"
#include "server/prompt_service.h"
#include "server/request_id.h"
#include "server/upload_workers.h"

namespace softserve::server {
namespace {

using core::InvalidArgumentError;

int64_t UnixMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string Str(int64_t v) { return std::to_string(v); }

// The request's options with every default filled in, checked against the server's limits.
core::StatusOr<v1::TrainingOptions> ResolveOptions(const v1::TrainingOptions& in, int64_t train_examples,
                                                   const ServerConfig& config) {
  v1::TrainingOptions o = in;
  if (o.method().empty()) o.set_method("prompt");
  if (o.method() != "prompt" && o.method() != "residual") return InvalidArgumentError("options.method must be 'prompt' or 'residual'");
  if (o.prompt_length() == 0) o.set_prompt_length(20);
  if (o.prompt_length() < 0 || o.prompt_length() > config.engine.max_prompt_rows) {
    return InvalidArgumentError("options.prompt_length is " + Str(o.prompt_length()) + "; give 1-" +
                                Str(config.engine.max_prompt_rows) + " (max_prompt_rows)");
  }
  if (o.init().empty()) o.set_init("vocab");
  if (o.init() != "vocab" && o.init() != "random" && o.init() != "class-labels" && o.init() != "text") {
    return InvalidArgumentError("options.init must be 'vocab', 'random', 'class-labels' or 'text'");
  }
  if (o.bottleneck() == 0) o.set_bottleneck(800);
  if (o.bottleneck() < 0 || o.bottleneck() > 16384) return InvalidArgumentError("options.bottleneck must be 1-16384");
  if (o.optimizer().empty()) o.set_optimizer("adafactor");
  if (o.optimizer() != "adafactor" && o.optimizer() != "adamw") return InvalidArgumentError("options.optimizer must be 'adafactor' or 'adamw'");
  if (o.lr() == 0) o.set_lr(0.3);
  if (!(o.lr() > 0 && o.lr() <= 100)) return InvalidArgumentError("options.lr must be in (0, 100]");
  if (o.no_weight_decay()) o.set_weight_decay(0);
  else if (o.weight_decay() == 0) o.set_weight_decay(1e-5);
  if (!(o.weight_decay() >= 0 && o.weight_decay() < 1)) return InvalidArgumentError("options.weight_decay must be in [0, 1)");
  if (o.batch_size() == 0) o.set_batch_size(8);
  if (o.batch_size() < 0 || o.batch_size() > config.training.max_batch_size) {
    return InvalidArgumentError("options.batch_size must be 1-" + Str(config.training.max_batch_size) + " (max_training_batch_size)");
  }
  o.set_batch_size(static_cast<int32_t>(std::min<int64_t>(o.batch_size(), train_examples)));
  if (o.steps() < 0 || o.epochs() < 0 || o.eval_every() < 0 || o.patience() < 0) {
    return InvalidArgumentError("options.steps, epochs, eval_every and patience must be >= 0");
  }
  const int64_t per_epoch = (train_examples + o.batch_size() - 1) / o.batch_size();
  if (o.steps() == 0) {
    if (o.epochs() == 0) o.set_epochs(1);
    const int64_t steps = per_epoch * o.epochs();
    if (steps > config.training.max_steps) {
      return InvalidArgumentError(Str(o.epochs()) + " epochs are " + Str(steps) + " steps; the limit is " +
                                  Str(config.training.max_steps) + " (max_training_steps)");
    }
    o.set_steps(static_cast<int32_t>(steps));
  }
  if (o.steps() > config.training.max_steps) {
    return InvalidArgumentError("options.steps is " + Str(o.steps()) + "; the limit is " + Str(config.training.max_steps) +
                                " (max_training_steps)");
  }
  if (o.eval_every() == 0) o.set_eval_every(static_cast<int32_t>(per_epoch));
  if (!(o.dropout() >= 0 && o.dropout() < 1)) return InvalidArgumentError("options.dropout must be in [0, 1)");
  if (!(o.max_grad_norm() >= 0)) return InvalidArgumentError("options.max_grad_norm must be >= 0 (0 = no clipping)");
  if (o.dev_metric().empty()) o.set_dev_metric("loss");
  if (o.dev_metric() != "loss" && o.dev_metric() != "exact-match" && o.dev_metric() != "rank") {
    return InvalidArgumentError("options.dev_metric must be 'loss', 'exact-match' or 'rank'");
  }
  return o;
}

// Text is tokenized with eos appended (as Hugging Face does for inputs and labels); ids are used
// as given. InvalidArgument names the example.
core::StatusOr<std::vector<core::TrainingExample>> ToExamples(
    const google::protobuf::RepeatedPtrField<v1::TrainingExample>& in, const char* set, const ServiceContext& sc) {
  std::vector<core::TrainingExample> out;
  const int64_t vocab = sc.model_config.vocab_size;
  auto ids_of = [&](const v1::Input& input, const std::string& where,
                    int64_t max_tokens) -> core::StatusOr<std::vector<int64_t>> {
    std::vector<int64_t> ids;
    if (input.has_ids()) {
      ids.assign(input.ids().ids().begin(), input.ids().ids().end());
    } else if (input.input_case() == v1::Input::kText) {
      if (sc.tokenizer == nullptr) {
        return core::FailedPreconditionError(where + " is text, and this server has no tokenizer: send token ids");
      }
      SOFTSERVE_ASSIGN_OR_RETURN(ids, sc.tokenizer->Encode(input.text()));
    }
    if (ids.empty()) return InvalidArgumentError(where + " is empty");
    if (static_cast<int64_t>(ids.size()) > max_tokens) {
      return InvalidArgumentError(where + " has " + Str(static_cast<int64_t>(ids.size())) + " tokens; the limit is " + Str(max_tokens));
    }
    for (int64_t id : ids) {
      if (id < 0 || id >= vocab) return InvalidArgumentError(where + " has token id " + Str(id) + " outside the vocabulary [0, " + Str(vocab) + ")");
    }
    return ids;
  };
  for (int i = 0; i < in.size(); ++i) {
    const std::string where = std::string(set) + " example " + Str(i);
    core::TrainingExample e;
    SOFTSERVE_ASSIGN_OR_RETURN(e.input_ids, ids_of(in[i].input(), where + " input", sc.config->engine.max_input_tokens));
    SOFTSERVE_ASSIGN_OR_RETURN(e.target_ids, ids_of(in[i].target(), where + " target", sc.config->engine.max_target_tokens));
    out.push_back(std::move(e));
  }
  return out;
}

core::StatusOr<core::PromptParameters> InitialFor(const v1::TrainingOptions& o, const core::T5Model& model,
                                                  const core::Tokenizer* tokenizer) {
  core::PromptInitSpec spec;
  spec.kind = o.init();
  spec.rows = o.prompt_length();
  spec.seed = o.seed();
  spec.residual = o.method() == "residual";
  spec.bottleneck = o.bottleneck();
  if ((spec.kind == "class-labels" || spec.kind == "text") && tokenizer == nullptr) {
    return core::FailedPreconditionError("options.init '" + spec.kind + "' needs text, and this server has no tokenizer");
  }
  if (spec.kind == "class-labels") {
    if (o.class_labels().empty()) return InvalidArgumentError("options.init 'class-labels' needs options.class_labels");
    for (const std::string& label : o.class_labels()) {
      SOFTSERVE_ASSIGN_OR_RETURN(std::vector<int64_t> ids, tokenizer->Encode(label, /*add_eos=*/false));
      spec.class_label_ids.push_back(std::move(ids));
    }
  }
  if (spec.kind == "text") {
    SOFTSERVE_ASSIGN_OR_RETURN(spec.text_ids, tokenizer->Encode(o.init_text(), /*add_eos=*/false));
  }
  return core::InitialParameters(model.weights().embedding, spec);
}

// dev_metric "rank": the candidates, as targets are scored (text with eos): the class labels
// when given, else every distinct target of train and dev (at most 64).
core::StatusOr<std::vector<std::vector<int64_t>>> RankCandidates(const v1::TrainingOptions& o,
                                                                 const std::vector<core::TrainingExample>& train,
                                                                 const std::vector<core::TrainingExample>& dev,
                                                                 const ServiceContext& sc) {
  std::vector<std::vector<int64_t>> out;
  if (o.dev_metric() != "rank") return out;
  if (dev.empty()) return InvalidArgumentError("options.dev_metric 'rank' needs dev examples");
  if (!o.class_labels().empty()) {
    if (sc.tokenizer == nullptr) return core::FailedPreconditionError("options.class_labels are text, and this server has no tokenizer");
    for (const std::string& label : o.class_labels()) {
      SOFTSERVE_ASSIGN_OR_RETURN(std::vector<int64_t> ids, sc.tokenizer->Encode(label));
      out.push_back(std::move(ids));
    }
    return out;
  }
  out = core::DistinctTargets({&train, &dev});
  if (out.size() > 64) {
    return InvalidArgumentError("options.dev_metric 'rank' over the distinct targets: there are " + Str(static_cast<int64_t>(out.size())) +
                                ", more than 64 classes; give options.class_labels or use 'exact-match'");
  }
  return out;
}

}  // namespace

// One job: a background task of the engine (see the header).
class TrainingJob : public core::BackgroundTask, public std::enable_shared_from_this<TrainingJob> {
 public:
  struct Setup {
    std::string tenant;
    v1::TrainingJob view;  // id, prompt_name, options, counts, created
    std::vector<core::TrainingExample> train, dev;
    core::PromptParameters initial;
    int64_t examples_per_slice = 1;
    std::vector<std::vector<int64_t>> candidates;  // dev_metric "rank"
  };

  TrainingJob(const ServiceContext* sc, const core::T5Model& model, Setup setup)
      : sc_(sc), model_(model), tenant_(std::move(setup.tenant)), options_(setup.view.options()),
        dev_(std::move(setup.dev)), candidates_(std::move(setup.candidates)),
        examples_per_slice_(setup.examples_per_slice), view_(std::move(setup.view)) {
    const v1::TrainingOptions& o = options_;
    core::TrainerOptions t;
    t.optimizer = o.optimizer() == "adamw" ? core::OptimizerKind::kAdamW : core::OptimizerKind::kAdafactor;
    t.lr = o.lr();
    t.weight_decay = o.weight_decay();
    t.batch_size = o.batch_size();
    t.shuffle = !o.no_shuffle();
    t.seed = o.seed();
    t.dropout = o.dropout();
    t.max_grad_norm = o.max_grad_norm();
    view_.set_state(v1::TRAINING_STATE_QUEUED);
    view_.set_total_steps(o.steps());
    trainer_ = std::make_unique<core::PromptTrainer>(model_, std::move(setup.train), std::move(setup.initial), t);
  }

  const std::string& tenant() const { return tenant_; }

  // Engine thread.
  bool RunSlice() override {
    if (!started_) {
      started_ = true;
      start_ = std::chrono::steady_clock::now();
      Publish([](v1::TrainingJob* v) { v->set_state(v1::TRAINING_STATE_RUNNING); });
    }
    if (evaluating_) return EvaluateSlice();
    const std::optional<double> loss = trainer_->StepSlice(examples_per_slice_);
    if (!loss) return true;
    const int64_t step = trainer_->steps();
    sc_->metrics->RecordTrainingStep(options_.batch_size());
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
    const double examples = static_cast<double>(step) * options_.batch_size();
    Publish([&](v1::TrainingJob* v) {
      v->set_step(step);
      v->set_epoch(trainer_->epoch());
      v->set_loss(*loss);
      v->set_examples_per_second(seconds > 0 ? examples / seconds : 0);
      if (dev_.empty()) v->set_best_step(step);
    });
    if (!std::isfinite(*loss)) throw std::runtime_error("the training loss is not finite; lower options.lr");
    const bool last = step >= options_.steps();
    if (!dev_.empty() && (last || step % options_.eval_every() == 0)) {
      evaluating_ = true;
      eval_next_ = 0;
      eval_nll_ = eval_tokens_ = 0;
      return true;
    }
    return !last;
  }

  // Engine thread, once.
  void Finished(const core::Status& status) override {
    if (!status.ok()) {
      trainer_.reset();
      if (status.code() == core::StatusCode::kCancelled) {
        Publish([](v1::TrainingJob* v) { v->set_state(v1::TRAINING_STATE_CANCELLED); });
      } else {
        Fail(status.code() == core::StatusCode::kUnavailable
                 ? core::UnavailableError("the server shut down before the job ended; start it again")
                 : status);
      }
      return;
    }
    const core::PromptParameters& kept = best_.prompt.defined() ? best_ : trainer_->parameters();
    at::Tensor served = kept.Served().detach().to(at::kCPU, at::kFloat).contiguous();
    trainer_.reset();
    auto self = shared_from_this();
    sc_->upload_workers->Post([self, served] { self->Register(served); });
  }

  bool cancelled() const override { return cancel_.load(); }
  void RequestCancel() { cancel_ = true; }

  v1::TrainingJob Snapshot() const {
    std::lock_guard<std::mutex> lock(mu_);
    return view_;
  }
  bool Ended() const {
    std::lock_guard<std::mutex> lock(mu_);
    return TrainingJobEnded(view_);
  }

  uint64_t AddWatcher(std::function<void(const v1::TrainingJob&)> f) {
    v1::TrainingJob now;
    uint64_t id;
    {
      std::lock_guard<std::mutex> lock(mu_);
      id = next_watcher_++;
      watchers_[id] = f;
      now = view_;
    }
    f(now);
    return id;
  }
  void RemoveWatcher(uint64_t id) {
    std::lock_guard<std::mutex> lock(mu_);
    watchers_.erase(id);
  }

 private:

  // A few dev examples' forward pass; the last slice of an evaluation records it and decides
  // about early stopping. Returns whether the job goes on.
  bool EvaluateSlice() {
    const size_t end = std::min(dev_.size(), eval_next_ + static_cast<size_t>(4 * examples_per_slice_));
    const std::vector<core::TrainingExample> part(dev_.begin() + eval_next_, dev_.begin() + end);
    const core::PromptTrainer::Evaluation e = trainer_->Evaluate(part);  // loss and exact matches, one pass
    eval_nll_ += e.nll;
    eval_tokens_ += e.tokens;
    if (options_.dev_metric() == "exact-match") eval_right_ += e.exact_matches;
    if (options_.dev_metric() == "rank") eval_right_ += trainer_->RankCorrect(part, candidates_);
    eval_next_ = end;
    if (eval_next_ < dev_.size()) return true;
    evaluating_ = false;
    const double dev_loss = eval_nll_ / eval_tokens_;
    const double accuracy = static_cast<double>(eval_right_) / static_cast<double>(dev_.size());
    eval_right_ = 0;
    const int64_t step = trainer_->steps();
    const bool by_loss = options_.dev_metric() == "loss";
    const bool better = !best_.prompt.defined() || (by_loss ? dev_loss < best_dev_loss_ : accuracy > best_accuracy_);
    if (better) {
      best_ = trainer_->parameters().Clone();
      best_dev_loss_ = dev_loss;
      best_accuracy_ = accuracy;
      bad_evals_ = 0;
    } else {
      ++bad_evals_;
    }
    Publish([&](v1::TrainingJob* v) {
      v->set_dev_loss(dev_loss);
      v->set_best_dev_loss(best_dev_loss_);
      if (!by_loss) {
        v->set_dev_accuracy(accuracy);
        v->set_best_dev_accuracy(best_accuracy_);
      }
      if (better) v->set_best_step(step);
    });
    const bool patience_out = options_.patience() > 0 && bad_evals_ >= options_.patience();
    return step < options_.steps() && !patience_out;
  }

  // Upload worker: the durable, atomic registry write.
  void Register(const at::Tensor& served) {
    const v1::TrainingJob v = Snapshot();
    core::NewPrompt prompt;
    prompt.rows = served.size(0);
    prompt.dim = served.size(1);
    prompt.values.assign(served.data_ptr<float>(), served.data_ptr<float>() + served.numel());
    for (float x : prompt.values) {
      if (!std::isfinite(x) || std::abs(x) > sc_->prompt_limits.max_abs_value) {
        return Fail(core::FailedPreconditionError("the trained prompt has a value that is not finite or beyond max_prompt_abs_value; lower options.lr"));
      }
    }
    prompt.format = v.options().method() == "residual" ? core::PromptFormat::kResidual : core::PromptFormat::kRaw;
    std::string kept;
    if (!dev_.empty()) {
      kept = ", kept step " + Str(v.best_step()) + " (dev loss " + std::to_string(v.best_dev_loss());
      if (v.options().dev_metric() != "loss") kept += ", dev " + v.options().dev_metric() + " " + std::to_string(v.best_dev_accuracy());
      kept += ")";
    }
    prompt.note = "trained by softserve (job " + v.id() + "): " + v.options().method() + " tuning, " + Str(v.step()) +
                  " steps, " + v.options().optimizer() + " lr " + std::to_string(v.options().lr()) + kept;
    const TenantConfig* t = sc_->auth->Find(tenant_);
    core::PromptQuota quota;
    if (t != nullptr) {
      quota.max_prompts = t->max_prompts;
      quota.max_bytes = t->max_prompt_bytes;
    }
    auto stored = sc_->registry->Create(tenant_, v.prompt_name(), std::move(prompt), quota);
    if (!stored.ok()) {
      const core::Status s = stored.status().code() == core::StatusCode::kResourceExhausted ||
                                     stored.status().code() == core::StatusCode::kInvalidArgument
                                 ? stored.status()
                                 : PublicStoreError(stored.status());
      return Fail(s.WithPrefix("registering the trained prompt"));
    }
    Publish([&](v1::TrainingJob* out) {
      ToProto(**stored, /*include_values=*/false, out->mutable_prompt());
      out->set_state(v1::TRAINING_STATE_SUCCEEDED);
    });
  }

  void Fail(const core::Status& s) {
    Publish([&](v1::TrainingJob* v) {
      v->set_state(v1::TRAINING_STATE_FAILED);
      v->set_error_code(static_cast<int32_t>(s.code()));
      v->set_error_message(s.message());
    });
  }

  // Applies `change` to the public view, then tells the watchers (outside the lock), and the
  // metrics when the job ended.
  void Publish(const std::function<void(v1::TrainingJob*)>& change) {
    v1::TrainingJob now;
    std::vector<std::function<void(const v1::TrainingJob&)>> watchers;
    {
      std::lock_guard<std::mutex> lock(mu_);
      change(&view_);
      view_.set_updated_unix_ms(UnixMs());
      now = view_;
      for (const auto& [id, w] : watchers_) watchers.push_back(w);
    }
    for (const auto& w : watchers) w(now);
    switch (now.state()) {
      case v1::TRAINING_STATE_SUCCEEDED: sc_->metrics->RecordTrainingJobEnded("succeeded"); break;
      case v1::TRAINING_STATE_FAILED: sc_->metrics->RecordTrainingJobEnded("failed"); break;
      case v1::TRAINING_STATE_CANCELLED: sc_->metrics->RecordTrainingJobEnded("cancelled"); break;
      default: break;
    }
  }

  const ServiceContext* sc_;
  const core::T5Model& model_;
  const std::string tenant_;
  const v1::TrainingOptions options_;  // resolved; also in view_
  const std::vector<core::TrainingExample> dev_;
  const std::vector<std::vector<int64_t>> candidates_;
  const int64_t examples_per_slice_;
  std::atomic<bool> cancel_{false};

  // Engine thread only.
  std::unique_ptr<core::PromptTrainer> trainer_;
  bool started_ = false;
  std::chrono::steady_clock::time_point start_;
  bool evaluating_ = false;
  size_t eval_next_ = 0;
  double eval_nll_ = 0, eval_tokens_ = 0;
  int64_t eval_right_ = 0;
  core::PromptParameters best_;
  double best_dev_loss_ = 0, best_accuracy_ = 0;
  int64_t bad_evals_ = 0;

  mutable std::mutex mu_;
  v1::TrainingJob view_;
  std::map<uint64_t, std::function<void(const v1::TrainingJob&)>> watchers_;
  uint64_t next_watcher_ = 1;
};

bool TrainingJobEnded(const v1::TrainingJob& j) {
  return j.state() == v1::TRAINING_STATE_SUCCEEDED || j.state() == v1::TRAINING_STATE_FAILED ||
         j.state() == v1::TRAINING_STATE_CANCELLED;
}

TrainingJobs::TrainingJobs(const ServiceContext* sc, std::shared_ptr<const core::T5Model> model)
    : sc_(sc), model_(std::move(model)) {}

TrainingJobs::~TrainingJobs() = default;

core::StatusOr<v1::TrainingJob> TrainingJobs::Start(const Caller& caller, const v1::TrainPromptRequest& request) {
  const TrainingLimits& limits = sc_->config->training;
  if (request.prompt_name().empty()) return InvalidArgumentError("prompt_name is empty: name the prompt the job trains");
  if (request.train_size() == 0) return InvalidArgumentError("no training examples: give at least one in `train`");
  if (request.train_size() + request.dev_size() > limits.max_examples) {
    return InvalidArgumentError(Str(request.train_size() + request.dev_size()) + " examples; the limit is " +
                                Str(limits.max_examples) + " (max_training_examples)");
  }
  v1::TrainingOptions requested = request.options();
  core::PromptPtr start;
  if (request.has_init_prompt() && !request.init_prompt().name().empty()) {
    const v1::PromptRef& ref = request.init_prompt();
    auto found = sc_->registry->Get(caller.name(), ref.name(), ref.version());
    if (!found.ok()) return found.status().WithPrefix("init_prompt");
    start = *found;
    if (requested.prompt_length() != 0 && requested.prompt_length() != start->rows()) {
      return InvalidArgumentError("options.prompt_length is " + Str(requested.prompt_length()) + " but init_prompt " +
                                  ref.name() + " has " + Str(start->rows()) + " rows; leave it 0");
    }
    requested.set_prompt_length(static_cast<int32_t>(start->rows()));
    requested.set_init("prompt:" + ref.name() + "@" + Str(start->key().version));
  }
  const std::string init_kind = requested.init();
  if (start) requested.set_init("random");  // (the MLP's init; the prompt's is replaced below)
  SOFTSERVE_ASSIGN_OR_RETURN(v1::TrainingOptions options, ResolveOptions(requested, request.train_size(), *sc_->config));
  SOFTSERVE_ASSIGN_OR_RETURN(auto train, ToExamples(request.train(), "train", *sc_));
  SOFTSERVE_ASSIGN_OR_RETURN(auto dev, ToExamples(request.dev(), "dev", *sc_));
  SOFTSERVE_ASSIGN_OR_RETURN(core::PromptParameters initial, InitialFor(options, *model_, sc_->tokenizer));
  SOFTSERVE_ASSIGN_OR_RETURN(std::vector<std::vector<int64_t>> candidates, RankCandidates(options, train, dev, *sc_));
  if (start) {
    options.set_init(init_kind);
    initial.prompt = at::from_blob(const_cast<float*>(start->values().data()), {start->rows(), start->dim()}, at::kFloat).clone();
  }

  TrainingJob::Setup setup;
  setup.tenant = caller.name();
  setup.view.set_id("train-" + NewRequestId().substr(0, 16));
  setup.view.set_prompt_name(request.prompt_name());
  *setup.view.mutable_options() = options;
  setup.view.set_train_examples(request.train_size());
  setup.view.set_dev_examples(request.dev_size());
  setup.view.set_created_unix_ms(UnixMs());
  setup.view.set_updated_unix_ms(setup.view.created_unix_ms());
  setup.train = std::move(train);
  setup.dev = std::move(dev);
  setup.initial = std::move(initial);
  setup.examples_per_slice = limits.examples_per_slice;
  setup.candidates = std::move(candidates);
  const std::string id = setup.view.id();
  auto job = std::make_shared<TrainingJob>(sc_, *model_, std::move(setup));
  {
    std::lock_guard<std::mutex> lock(mu_);
    int64_t mine = 0, all = 0;
    for (const auto& [tenant, jobs] : jobs_) {
      for (const auto& [jid, j] : jobs) {
        if (j->Ended()) continue;
        ++all;
        if (tenant == caller.name()) ++mine;
      }
    }
    if (mine >= caller.tenant->max_training_jobs) {
      return core::ResourceExhaustedError("the tenant's training jobs (max_training_jobs) are " + Str(caller.tenant->max_training_jobs) +
                                          "; wait for one to end or cancel it");
    }
    if (all >= limits.max_jobs) {
      return core::ResourceExhaustedError("the server runs its most training jobs (" + Str(limits.max_jobs) + ", max_training_jobs); try later");
    }
    jobs_[caller.name()][id] = job;
  }
  if (core::Status s = sc_->engine->SubmitBackground(job); !s.ok()) {
    std::lock_guard<std::mutex> lock(mu_);
    jobs_[caller.name()].erase(id);
    return s;
  }
  Forget(caller.name());
  return job->Snapshot();
}

std::shared_ptr<TrainingJob> TrainingJobs::Find(const std::string& tenant, const std::string& id) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto t = jobs_.find(tenant);
  if (t == jobs_.end()) return nullptr;
  auto j = t->second.find(id);
  return j == t->second.end() ? nullptr : j->second;
}

core::StatusOr<v1::TrainingJob> TrainingJobs::Get(const std::string& tenant, const std::string& id) const {
  auto job = Find(tenant, id);
  if (job == nullptr) return core::NotFoundError("no training job '" + id + "' for this tenant");
  return job->Snapshot();
}

core::StatusOr<v1::TrainingJob> TrainingJobs::Cancel(const std::string& tenant, const std::string& id) {
  auto job = Find(tenant, id);
  if (job == nullptr) return core::NotFoundError("no training job '" + id + "' for this tenant");
  job->RequestCancel();
  return job->Snapshot();
}

std::vector<v1::TrainingJob> TrainingJobs::List(const std::string& tenant) const {
  std::vector<std::shared_ptr<TrainingJob>> jobs;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto t = jobs_.find(tenant);
    if (t != jobs_.end()) {
      for (const auto& [id, j] : t->second) jobs.push_back(j);
    }
  }
  std::vector<v1::TrainingJob> out;
  for (const auto& j : jobs) out.push_back(j->Snapshot());
  std::sort(out.begin(), out.end(), [](const v1::TrainingJob& a, const v1::TrainingJob& b) {
    return a.created_unix_ms() != b.created_unix_ms() ? a.created_unix_ms() > b.created_unix_ms() : a.id() > b.id();
  });
  return out;
}

int64_t TrainingJobs::active_jobs() const {
  std::lock_guard<std::mutex> lock(mu_);
  int64_t n = 0;
  for (const auto& [tenant, jobs] : jobs_) {
    for (const auto& [id, j] : jobs) n += j->Ended() ? 0 : 1;
  }
  return n;
}

void TrainingJobs::Forget(const std::string& tenant) {
  std::lock_guard<std::mutex> lock(mu_);
  auto& jobs = jobs_[tenant];
  std::vector<std::pair<int64_t, std::string>> old;  // (updated, id) of ended jobs
  for (const auto& [id, j] : jobs) {
    if (j->Ended()) old.push_back({j->Snapshot().updated_unix_ms(), id});
  }
  const int64_t keep = sc_->config->training.max_ended_jobs_kept;
  if (static_cast<int64_t>(old.size()) <= keep) return;
  std::sort(old.begin(), old.end());
  for (size_t i = 0; i + keep < old.size(); ++i) jobs.erase(old[i].second);
}

namespace {

class JobWatch : public TrainingJobs::Watch {
 public:
  JobWatch(std::shared_ptr<TrainingJob> job, uint64_t id) : job_(std::move(job)), id_(id) {}
  ~JobWatch() override { job_->RemoveWatcher(id_); }

 private:
  std::shared_ptr<TrainingJob> job_;
  uint64_t id_;
};

}  // namespace

core::StatusOr<std::unique_ptr<TrainingJobs::Watch>> TrainingJobs::WatchJob(
    const std::string& tenant, const std::string& id, std::function<void(const v1::TrainingJob&)> on_change) {
  auto job = Find(tenant, id);
  if (job == nullptr) return core::NotFoundError("no training job '" + id + "' for this tenant");
  const uint64_t watcher = job->AddWatcher(std::move(on_change));
  return std::unique_ptr<Watch>(new JobWatch(job, watcher));
}

}  // namespace softserve::server
