// `softserve train start|get|watch|cancel|list`: prompt-training jobs on the server
// (TrainingService). Examples come from JSONL files with softserve-train's rows:
// {"input": "...", "target": "..."} (tokenized by the server, eos appended) or
// {"input_ids": [...], "target_ids": [...]} (used as given).
#include <google/protobuf/util/json_util.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <memory>
#include <string>

#include "client/cli_common.h"

namespace softserve::client {
namespace {

using nlohmann::json;

// One JSONL row into `out`; false with a reason in *why.
bool ParseExample(const std::string& line, v1::TrainingExample* out, std::string* why) {
  const json row = json::parse(line, nullptr, /*allow_exceptions=*/false);
  if (row.is_discarded() || !row.is_object()) return *why = "not a JSON object", false;
  auto fill = [&](const char* text_key, const char* ids_key, v1::Input* input) {
    if (auto t = row.find(text_key); t != row.end() && t->is_string()) {
      input->set_text(t->get<std::string>());
      return true;
    }
    if (auto ids = row.find(ids_key); ids != row.end() && ids->is_array()) {
      for (const json& id : *ids) {
        if (!id.is_number_integer()) return false;
        input->mutable_ids()->add_ids(id.get<int64_t>());
      }
      return true;
    }
    return false;
  };
  if (!fill("input", "input_ids", out->mutable_input())) return *why = "needs \"input\" text or \"input_ids\"", false;
  if (!fill("target", "target_ids", out->mutable_target())) return *why = "needs \"target\" text or \"target_ids\"", false;
  return true;
}

bool ReadExamples(const std::string& path, google::protobuf::RepeatedPtrField<v1::TrainingExample>* out) {
  std::ifstream in(path);
  if (!in) {
    std::fprintf(stderr, "softserve: cannot read %s\n", path.c_str());
    return false;
  }
  std::string line, why;
  for (int n = 1; std::getline(in, line); ++n) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    if (!ParseExample(line, out->Add(), &why)) {
      std::fprintf(stderr, "softserve: %s line %d: %s\n", path.c_str(), n, why.c_str());
      return false;
    }
  }
  return true;
}

const char* StateName(v1::TrainingState s) {
  switch (s) {
    case v1::TRAINING_STATE_QUEUED: return "queued";
    case v1::TRAINING_STATE_RUNNING: return "running";
    case v1::TRAINING_STATE_SUCCEEDED: return "succeeded";
    case v1::TRAINING_STATE_FAILED: return "failed";
    case v1::TRAINING_STATE_CANCELLED: return "cancelled";
    default: return "unknown";
  }
}

void PrintJob(const v1::TrainingJob& j, bool as_json) {
  if (as_json) {
    std::string line;
    (void)google::protobuf::util::MessageToJsonString(j, &line);
    std::printf("%s\n", line.c_str());
    return;
  }
  std::printf("%s %s: %s, step %lld/%lld, loss %.4f", j.id().c_str(), j.prompt_name().c_str(), StateName(j.state()),
              (long long)j.step(), (long long)j.total_steps(), j.loss());
  if (j.dev_examples() > 0) std::printf(", dev loss %.4f (kept: %.4f, step %lld)", j.dev_loss(), j.best_dev_loss(), (long long)j.best_step());
  if (j.options().dev_metric() != "loss" && j.dev_examples() > 0) {
    std::printf(", dev %s %.3f (kept: %.3f)", j.options().dev_metric().c_str(), j.dev_accuracy(), j.best_dev_accuracy());
  }
  if (j.examples_per_second() > 0) std::printf(", %.1f examples/s", j.examples_per_second());
  if (j.state() == v1::TRAINING_STATE_SUCCEEDED) std::printf("; registered %s@%lld", j.prompt().name().c_str(), (long long)j.prompt().version());
  if (j.state() == v1::TRAINING_STATE_FAILED) std::printf("; %s", j.error_message().c_str());
  std::printf("\n");
  std::fflush(stdout);
}

// Watches until the job ends; exit status 0 only when it succeeded.
int Watch(Client& client, const std::string& id, bool as_json) {
  v1::TrainingJobRef ref;
  ref.set_id(id);
  v1::TrainingJob last;
  const grpc::Status s = client.WatchTrainingJob(
      ref, [&](const v1::TrainingJob& j) { PrintJob(last = j, as_json); }, std::chrono::hours(24 * 7));
  if (!s.ok()) return PrintStatus(s);
  return last.state() == v1::TRAINING_STATE_SUCCEEDED ? 0 : 1;
}

struct StartFlags {
  std::string name, data, dev, init_prompt;
  std::vector<std::string> class_labels;
  v1::TrainingOptions o;
  bool watch = false;
};

void AddStart(CLI::App* train, const Globals& g, std::vector<Command>* commands) {
  auto f = std::make_shared<StartFlags>();
  auto* start = train->add_subcommand("start", "start a job: train a prompt on the served model, registered as NAME's next version");
  start->add_option("--name", f->name, "the prompt the job trains")->required();
  start->add_option("--data", f->data, "training examples, JSONL")->required();
  start->add_option("--dev", f->dev, "dev examples, JSONL (the best dev-loss prompt is kept)");
  start->add_option("--init-prompt", f->init_prompt, "start from this prompt NAME[@VERSION] instead of --init");
  start->add_option_function<std::string>("--method", [f](const std::string& v) { f->o.set_method(v); }, "prompt (default) or residual");
  start->add_option_function<int>("--prompt-length", [f](int v) { f->o.set_prompt_length(v); }, "rows (default 20)");
  start->add_option_function<std::string>("--init", [f](const std::string& v) { f->o.set_init(v); }, "vocab (default), random, class-labels or text");
  start->add_option("--class-labels", f->class_labels, "labels for --init class-labels")->delimiter(',');
  start->add_option_function<std::string>("--init-text", [f](const std::string& v) { f->o.set_init_text(v); }, "text for --init text");
  start->add_option_function<int>("--bottleneck", [f](int v) { f->o.set_bottleneck(v); }, "residual MLP width (default 800)");
  start->add_option_function<std::string>("--optimizer", [f](const std::string& v) { f->o.set_optimizer(v); }, "adafactor (default) or adamw");
  start->add_option_function<double>("--lr", [f](double v) { f->o.set_lr(v); }, "learning rate (default 0.3)");
  start->add_option_function<double>("--weight-decay", [f](double v) {
    f->o.set_weight_decay(v);
    f->o.set_no_weight_decay(v == 0);
  }, "default 1e-5");
  start->add_option_function<int>("--steps", [f](int v) { f->o.set_steps(v); }, "optimizer steps");
  start->add_option_function<int>("--epochs", [f](int v) { f->o.set_epochs(v); }, "passes over the data (default 1, when --steps is not given)");
  start->add_option_function<int>("--batch-size", [f](int v) { f->o.set_batch_size(v); }, "default 8");
  start->add_flag_function("--no-shuffle", [f](int64_t) { f->o.set_no_shuffle(true); }, "file order every epoch");
  start->add_option_function<uint64_t>("--seed", [f](uint64_t v) { f->o.set_seed(v); }, "seed");
  start->add_option_function<double>("--dropout", [f](double v) { f->o.set_dropout(v); },
                                     "train-mode dropout of the frozen model (the papers' 0.1; default 0)");
  start->add_option_function<double>("--max-grad-norm", [f](double v) { f->o.set_max_grad_norm(v); },
                                     "clip gradients to this global norm (default 0: off)");
  start->add_option_function<int>("--eval-every", [f](int v) { f->o.set_eval_every(v); }, "dev evaluation every K steps (default: each epoch)");
  start->add_option_function<int>("--patience", [f](int v) { f->o.set_patience(v); }, "stop after P evaluations without a better dev metric");
  start->add_option_function<std::string>("--dev-metric", [f](const std::string& v) { f->o.set_dev_metric(v); },
                                          "loss (default), exact-match or rank (over --class-labels, else the distinct targets)");
  start->add_flag("--watch", f->watch, "follow the job until it ends");
  commands->push_back({start, [f, &g](Client& client) {
    v1::TrainPromptRequest req;
    req.set_prompt_name(f->name);
    if (!ReadExamples(f->data, req.mutable_train())) return 2;
    if (!f->dev.empty() && !ReadExamples(f->dev, req.mutable_dev())) return 2;
    *req.mutable_options() = f->o;
    for (const std::string& l : f->class_labels) req.mutable_options()->add_class_labels(l);
    if (!f->init_prompt.empty()) *req.mutable_init_prompt() = ParsePromptRef(f->init_prompt);
    auto r = client.TrainPrompt(req);
    if (!r.ok()) return PrintStatus(r.status);
    PrintJob(r.value, g.json);
    return f->watch ? Watch(client, r.value.id(), g.json) : 0;
  }});
}

}  // namespace

void AddTrainingCommands(CLI::App* app, const Globals& g, std::vector<Command>* commands) {
  auto* train = app->add_subcommand("train", "train soft prompts on the server (jobs)");
  train->require_subcommand(1);
  AddStart(train, g, commands);
  auto id = std::make_shared<std::string>();
  auto* get = train->add_subcommand("get", "show a job");
  auto* watch = train->add_subcommand("watch", "follow a job until it ends (exit 0 when it succeeded)");
  auto* cancel = train->add_subcommand("cancel", "cancel a job (nothing is registered)");
  for (CLI::App* c : {get, watch, cancel}) c->add_option("id", *id, "the job id")->required();
  auto ref = [id] {
    v1::TrainingJobRef r;
    r.set_id(*id);
    return r;
  };
  commands->push_back({get, [ref, &g](Client& client) {
    auto r = client.GetTrainingJob(ref());
    if (!r.ok()) return PrintStatus(r.status);
    PrintJob(r.value, g.json);
    return 0;
  }});
  commands->push_back({watch, [id, &g](Client& client) { return Watch(client, *id, g.json); }});
  commands->push_back({cancel, [ref, &g](Client& client) {
    auto r = client.CancelTrainingJob(ref());
    if (!r.ok()) return PrintStatus(r.status);
    PrintJob(r.value, g.json);
    return 0;
  }});
  auto* list = train->add_subcommand("list", "your jobs, newest first");
  commands->push_back({list, [&g](Client& client) {
    auto r = client.ListTrainingJobs(v1::ListTrainingJobsRequest());
    if (!r.ok()) return PrintStatus(r.status);
    for (const v1::TrainingJob& j : r.value.jobs()) PrintJob(j, g.json);
    return 0;
  }});
}

}  // namespace softserve::client
