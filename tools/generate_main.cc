// softserve-generate: the offline generator. Loads a Hugging Face T5 checkpoint, optionally a
// soft prompt, and runs one generation (greedy, beam or sampling) and optional target scoring
// through the same engine the server uses. Bad arguments and bad files give a one-line error
// and a non-zero exit (2: usage, 1: runtime).
#include <cstdio>
#include <future>
#include <iostream>
#include <optional>

#include "core/common/file_util.h"
#include "core/common/json.h"
#include "core/engine/engine.h"
#include "core/engine/t5_runner.h"
#include "core/model/random_checkpoint.h"
#include "core/model/t5_model.h"
#include "core/prompts/prompt_formats.h"
#include "core/tokenizer/tokenizer.h"
#include "tools/flags.h"

namespace softserve::tools {
namespace {

using namespace softserve::core;  // NOLINT: a main file

struct Options {
  std::string model, text, input_ids, prompt, score_target_ids, tokenizer;
  std::string device = "cpu", dtype = "float32", early_stopping = "false";
  int64_t max_new_tokens = 20, num_beams = 1, top_k = 0, seed = 0, threads = 0;
  double length_penalty = 1.0, temperature = 1.0, top_p = 1.0;
  bool sample = false, json = false, logprobs = false;
};

int Fail(int code, const std::string& msg) {
  std::fprintf(stderr, "softserve-generate: %s\n", msg.c_str());
  return code;
}

StatusOr<DecodingParams> ToParams(const Options& o) {
  DecodingParams p;
  p.max_new_tokens = static_cast<int>(o.max_new_tokens);
  p.return_logprobs = o.logprobs;
  if (o.sample) {
    if (o.num_beams > 1) return InvalidArgumentError("--sample and --num-beams > 1 exclude each other");
    p.mode = DecodingMode::kSample;
    p.temperature = o.temperature;
    p.top_k = static_cast<int>(o.top_k);
    p.top_p = o.top_p;
    p.seed = static_cast<uint64_t>(o.seed);
  } else if (o.num_beams > 1) {
    p.mode = DecodingMode::kBeam;
    p.num_beams = static_cast<int>(o.num_beams);
    p.length_penalty = o.length_penalty;
    if (o.early_stopping == "true") p.early_stopping = EarlyStopping::kTrue;
    else if (o.early_stopping == "never") p.early_stopping = EarlyStopping::kNever;
    else if (o.early_stopping == "false") p.early_stopping = EarlyStopping::kHeuristic;
    else return InvalidArgumentError("--early-stopping must be true, false or never");
  } else if (o.num_beams < 1) {
    return InvalidArgumentError("--num-beams must be >= 1");
  }
  return p;
}

JsonValue IdsJson(const std::vector<int64_t>& ids) {
  JsonValue a = JsonValue::MakeArray();
  for (int64_t id : ids) a.mutable_array().push_back(JsonValue::Int(id));
  return a;
}

int Run(int argc, char** argv) {
  Options o;
  FlagParser flags("softserve-generate",
                   "Generates with a T5 checkpoint (Hugging Face layout), optionally soft-prompted.");
  flags.AddString("model", &o.model, "checkpoint directory (config.json + model.safetensors[.index.json])");
  flags.AddString("text", &o.text, "input text, tokenized with T5's conventions (eos appended)");
  flags.AddString("input-ids", &o.input_ids, "input token ids, used exactly as given, e.g. 3,4,5");
  flags.AddString("prompt", &o.prompt, "soft prompt: safetensors [p, d_model], residual checkpoint, or PEFT adapter dir");
  flags.AddInt("max-new-tokens", &o.max_new_tokens, "tokens to generate at most");
  flags.AddInt("num-beams", &o.num_beams, "beam search width (1 = greedy)");
  flags.AddDouble("length-penalty", &o.length_penalty, "beam search length penalty");
  flags.AddString("early-stopping", &o.early_stopping, "beam search stop rule: true, false or never");
  flags.AddBool("sample", &o.sample, "sample instead of greedy");
  flags.AddDouble("temperature", &o.temperature, "sampling temperature");
  flags.AddInt("top-k", &o.top_k, "sampling top-k (0 = off)");
  flags.AddDouble("top-p", &o.top_p, "sampling nucleus top-p (1 = off)");
  flags.AddInt("seed", &o.seed, "sampling seed");
  flags.AddString("score-target-ids", &o.score_target_ids, "targets to score, e.g. \"1,2;3,4\" (eos as given)");
  flags.AddBool("logprobs", &o.logprobs, "report per-token log-probabilities");
  flags.AddBool("json", &o.json, "print one JSON object {output_ids, text, scores}");
  flags.AddString("tokenizer", &o.tokenizer, "SentencePiece model (default: <model>/spiece.model)");
  flags.AddString("device", &o.device, "cpu, cuda or cuda:N");
  flags.AddString("dtype", &o.dtype, "float32 or bfloat16");
  flags.AddInt("threads", &o.threads, "intra-op threads (0 = one per core)");
  if (int code = flags.ParseOrExitCode(argc, argv); code >= 0) return code;
  if (o.model.empty()) return Fail(2, "--model is required");
  if (flags.IsSet("text") == flags.IsSet("input-ids")) return Fail(2, "give exactly one of --text and --input-ids");
  auto params = ToParams(o);
  if (!params.ok()) return Fail(2, params.status().message());

  ModelOptions mo;
  auto device = ParseDevice(o.device);
  if (!device.ok()) return Fail(2, device.status().message());
  auto dtype = ParseDType(o.dtype);
  if (!dtype.ok()) return Fail(2, dtype.status().message());
  mo.device = *device;
  mo.dtype = *dtype;
  mo.num_threads = static_cast<int>(o.threads);

  // Tokenizer: needed for --text, used for output text when present.
  const std::string tok_path = o.tokenizer.empty() ? JoinPath(o.model, "spiece.model") : o.tokenizer;
  std::unique_ptr<Tokenizer> tokenizer;
  if (flags.IsSet("text") || !o.tokenizer.empty() || PathExists(tok_path)) {
    auto t = Tokenizer::Load(tok_path);
    if (!t.ok()) return Fail(1, t.status().ToString());
    tokenizer = std::move(t).value();
  }

  auto model = T5Model::Load(o.model, mo);
  if (!model.ok()) return Fail(1, model.status().ToString());
  if (IsRandomCheckpoint(o.model) && !o.json) {
    std::fprintf(stderr, "softserve-generate: note: %s holds RANDOM weights; output is meaningless\n",
                 o.model.c_str());
  }
  const T5Config config = (*model)->config();

  GenerationRequest req;
  req.params = *params;
  if (flags.IsSet("text")) {
    auto ids = tokenizer->Encode(o.text);
    if (!ids.ok()) return Fail(2, ids.status().message());
    req.common.input_ids = std::move(ids).value();
  } else {
    auto ids = ParseIdList(o.input_ids);
    if (!ids.ok()) return Fail(2, "--input-ids: " + ids.status().message());
    req.common.input_ids = std::move(ids).value();
  }
  if (!o.prompt.empty()) {
    PromptLimits limits;
    limits.d_model = config.d_model;
    limits.max_rows = 4096;
    limits.serving_dtype = mo.dtype;
    auto m = LoadPromptFromPath(o.prompt, limits);
    if (!m.ok()) return Fail(1, "--prompt: " + m.status().message());
    req.prompt = std::make_shared<Prompt>(PromptKey{"local", "prompt", 1}, m->rows, m->dim,
                                          std::move(m->values), m->format, 0, m->note);
  }
  std::vector<std::vector<int64_t>> targets;
  if (!o.score_target_ids.empty()) {
    auto t = ParseIdLists(o.score_target_ids);
    if (!t.ok()) return Fail(2, "--score-target-ids: " + t.status().message());
    targets = std::move(t).value();
  }

  // One request: limits (and the KV cache) sized to exactly what it needs.
  EngineLimits limits;
  limits.max_input_tokens = std::max<int64_t>(1, static_cast<int64_t>(req.common.input_ids.size()));
  limits.max_prompt_rows = std::max<int64_t>(1, req.prompt ? req.prompt->rows() : 0);
  limits.max_new_tokens = std::max(1, req.params.max_new_tokens);
  limits.max_rows = std::max(1, req.params.num_beams);
  limits.max_tokens_in_flight = int64_t{1} << 40;
  limits.max_target_tokens = 1 << 16;
  limits.max_score_targets = 1 << 16;
  auto runner = T5Runner::Create(std::move(model).value(), T5RunnerOptions{}, &limits);
  if (!runner.ok()) return Fail(1, runner.status().ToString());
  Engine engine(std::move(runner).value(), limits);

  std::promise<StatusOr<GenerationResult>> gen_promise;
  ScoreRequest score_req;
  score_req.common.input_ids = req.common.input_ids;
  score_req.prompt = req.prompt;
  score_req.targets = targets;
  engine.Submit(std::move(req), [&](StatusOr<GenerationResult> r) { gen_promise.set_value(std::move(r)); });
  StatusOr<GenerationResult> gen = gen_promise.get_future().get();
  if (!gen.ok()) return Fail(1, gen.status().ToString());
  std::vector<double> scores;
  if (!targets.empty()) {
    std::promise<StatusOr<ScoreResult>> score_promise;
    engine.SubmitScore(std::move(score_req),
                       [&](StatusOr<ScoreResult> r) { score_promise.set_value(std::move(r)); });
    auto scored = score_promise.get_future().get();
    if (!scored.ok()) return Fail(1, scored.status().ToString());
    scores = scored->total_logprobs;
  }

  std::optional<std::string> text;
  if (tokenizer) {
    auto t = tokenizer->Decode(gen->output_ids);
    if (!t.ok()) return Fail(1, t.status().ToString());
    text = *t;
  }
  if (o.json) {
    JsonValue out = JsonValue::MakeObject();
    out.Add("output_ids", IdsJson(gen->output_ids));
    out.Add("text", text ? JsonValue::String(*text) : JsonValue());
    JsonValue s = JsonValue::MakeArray();
    for (double v : scores) s.mutable_array().push_back(JsonValue::Number(v));
    out.Add("scores", std::move(s));
    out.Add("sequence_score", JsonValue::Number(gen->score));
    out.Add("finish_reason", JsonValue::String(FinishReasonName(gen->finish_reason)));
    if (o.logprobs) {
      JsonValue lp = JsonValue::MakeArray();
      for (float v : gen->token_logprobs) lp.mutable_array().push_back(JsonValue::Number(v));
      out.Add("token_logprobs", std::move(lp));
    }
    std::printf("%s\n", out.Serialize().c_str());
    return 0;
  }
  if (text) std::printf("%s\n", text->c_str());
  std::printf("ids:");
  for (int64_t id : gen->output_ids) std::printf(" %lld", static_cast<long long>(id));
  std::printf("\nfinish: %s  score: %.6f\n", FinishReasonName(gen->finish_reason), gen->score);
  for (size_t i = 0; i < scores.size(); ++i) std::printf("target %zu log-likelihood: %.6f\n", i, scores[i]);
  return 0;
}

}  // namespace
}  // namespace softserve::tools

int main(int argc, char** argv) {
  try {
    return softserve::tools::Run(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "softserve-generate: internal error: %s\n", e.what());
    return 1;
  }
}
