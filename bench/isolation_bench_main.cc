// softserve-isolation-bench: does one tenant's flood hurt another tenant's short requests?
// For each flood scenario it measures a quiet tenant's closed-loop latency (one request at a
// time: 8 input tokens, a 20-row prompt, 4 new tokens) on an idle engine and then beside the
// flood, on the real engine and model, and reports both tenants' p50/p99, the quiet tenant's
// queue time, the longest engine step while flooded and the target:
//   flooded p99 <= 2 x idle p99 + one (flooded) step.
// Flood scenarios, each kept at a constant level (closed loop) by the flooding tenant:
//   beam     4 beam-16 requests of 512 new tokens (all 64 rows)
//   long     32 requests with 480-token inputs and 32-row prompts (prefill-heavy)
//   calls    200 concurrent short requests (queue flood)
//   fanout   4 calls of 64 inputs each (one Generate with many inputs)
//   mixed    all of the above at once
//   train    a prompt-training job of the flooding tenant (engine background task: 24-token
//            inputs, 3-token targets, a 20-row prompt, batch 8, one example per slice, as the
//            TrainingService runs it); its "longest step" is the longest slice, its throughput
//            column is training examples/s
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <future>
#include <mutex>
#include <sstream>
#include <thread>

#include "bench/percentile.h"
#include "bench/bench_util.h"
#include "core/engine/engine.h"
#include "core/engine/t5_runner.h"
#include "core/training/trainer.h"
#include "tools/flags.h"

namespace softserve::bench {
namespace {

using namespace softserve::core;  // NOLINT: a main file
using Clock = std::chrono::steady_clock;

class StepTimes : public EngineObserver {
 public:
  void OnStep(const StepStats& s) override {
    std::lock_guard<std::mutex> l(mu_);
    if (!recording_) return;
    seconds_.push_back(s.seconds);
    tokens_ += s.new_tokens;
  }
  void Record(bool on) {
    std::lock_guard<std::mutex> l(mu_);
    recording_ = on;
    if (on) {
      seconds_.clear();
      tokens_ = 0;
    }
  }
  int64_t tokens() {
    std::lock_guard<std::mutex> l(mu_);
    return tokens_;
  }
  std::vector<double> seconds() {
    std::lock_guard<std::mutex> l(mu_);
    return seconds_;
  }

 private:
  std::mutex mu_;
  bool recording_ = false;
  std::vector<double> seconds_;
  int64_t tokens_ = 0;  // new tokens of every row (beams count each)
};

// One kind of flood request and how many the flooding tenant keeps in flight.
struct FloodKind {
  int concurrency;
  int input_tokens;
  int prompt_rows;
  int new_tokens;
  int beams;
  int inputs_per_call;
};

std::vector<FloodKind> Scenario(const std::string& name) {
  const FloodKind beam{4, 16, 0, 512, 16, 1}, long_inputs{32, 480, 32, 32, 0, 1}, calls{200, 16, 0, 16, 0, 1},
      fanout{4, 16, 0, 16, 0, 64};
  if (name == "beam") return {beam};
  if (name == "long") return {long_inputs};
  if (name == "calls") return {calls};
  if (name == "fanout") return {fanout};
  return {beam, long_inputs, calls, fanout};
}

// The flooding tenant: keeps `kind.concurrency` calls in flight until Stop, then cancels them.
class Flood {
 public:
  Flood(Engine* engine, const T5Config& config, std::vector<FloodKind> kinds) : engine_(engine), config_(config) {
    std::mt19937_64 rng(7);
    for (const FloodKind& k : kinds) {
      PromptPtr prompt = k.prompt_rows > 0 ? RandomPrompt(k.prompt_rows, config.d_model, 99, "flood") : nullptr;
      for (int c = 0; c < k.concurrency; ++c) Call(k, prompt);
    }
  }
  void Stop() {
    stopping_ = true;
    cancel_->store(true);
    std::unique_lock<std::mutex> l(mu_);
    cv_.wait(l, [&] { return outstanding_ == 0; });
  }
  int64_t tokens() const { return tokens_.load(); }
  std::vector<double> latencies() {
    std::lock_guard<std::mutex> l(mu_);
    return latencies_;
  }

 private:
  void Call(const FloodKind& k, const PromptPtr& prompt) {
    auto left = std::make_shared<std::atomic<int>>(k.inputs_per_call);
    const auto start = Clock::now();
    for (int i = 0; i < k.inputs_per_call; ++i) {
      GenerationRequest r;
      r.common.tenant = "flood";
      r.common.cancel = cancel_;
      std::mt19937_64 rng(static_cast<uint64_t>(i) * 31 + 5);
      r.common.input_ids = RandomInput(k.input_tokens, config_.vocab_size, &rng);
      r.prompt = prompt;
      r.params.max_new_tokens = r.params.min_new_tokens = k.new_tokens;
      if (k.beams > 0) {
        r.params.mode = DecodingMode::kBeam;
        r.params.num_beams = k.beams;
      }
      {
        std::lock_guard<std::mutex> l(mu_);
        ++outstanding_;
      }
      engine_->Submit(std::move(r), [this, k, prompt, left, start](StatusOr<GenerationResult> g) {
        if (g.ok()) tokens_ += static_cast<int64_t>(g->output_ids.size());
        const bool call_done = --*left == 0;
        if (call_done && g.ok()) {
          std::lock_guard<std::mutex> l(mu_);
          latencies_.push_back(Seconds(start, Clock::now()));
        }
        if (call_done && !stopping_) Call(k, prompt);
        std::lock_guard<std::mutex> l(mu_);
        --outstanding_;
        cv_.notify_all();
      });
    }
  }

  Engine* engine_;
  const T5Config config_;
  CancelFlag cancel_ = NewCancelFlag();
  std::atomic<bool> stopping_{false};
  std::atomic<int64_t> tokens_{0};
  std::mutex mu_;
  std::condition_variable cv_;
  int outstanding_ = 0;
  std::vector<double> latencies_;
};

// The flooding tenant's training job: PromptTrainer slices as an engine background task, until
// Stop; records each slice's duration.
class TrainingFlood : public BackgroundTask {
 public:
  TrainingFlood(const T5Model& model, std::vector<TrainingExample> examples, PromptParameters initial)
      : trainer_(model, std::move(examples), std::move(initial), Options()) {}
  static TrainerOptions Options() {
    TrainerOptions o;
    o.batch_size = 8;
    return o;
  }
  bool RunSlice() override {
    const auto t0 = Clock::now();
    if (trainer_.StepSlice(1)) steps_++;
    std::lock_guard<std::mutex> l(mu_);
    if (recording_) slices_.push_back(Seconds(t0, Clock::now()));
    return true;
  }
  void Finished(const Status&) override { finished_.set_value(); }
  bool cancelled() const override { return stop_.load(); }
  void Record(bool on) {
    std::lock_guard<std::mutex> l(mu_);
    recording_ = on;
    if (on) slices_.clear();
  }
  std::vector<double> slices() {
    std::lock_guard<std::mutex> l(mu_);
    return slices_;
  }
  int64_t steps() const { return steps_.load(); }
  void Stop() {
    stop_ = true;
    finished_.get_future().wait();
  }

 private:
  PromptTrainer trainer_;  // engine thread only
  std::atomic<int64_t> steps_{0};
  std::atomic<bool> stop_{false};
  std::promise<void> finished_;
  std::mutex mu_;
  bool recording_ = false;
  std::vector<double> slices_;
};

std::shared_ptr<TrainingFlood> StartTraining(Engine* engine, const T5Model& model) {
  std::mt19937_64 rng(17);
  std::vector<TrainingExample> examples;
  for (int i = 0; i < 64; ++i) {
    examples.push_back({RandomInput(24, model.config().vocab_size, &rng), RandomInput(3, model.config().vocab_size, &rng)});
  }
  PromptInitSpec spec;
  spec.rows = 20;
  auto task = std::make_shared<TrainingFlood>(model, std::move(examples),
                                              InitialParameters(model.weights().embedding, spec).value());
  (void)engine->SubmitBackground(task);
  return task;
}

struct QuietRun {
  std::vector<double> latency, queue;
};

QuietRun Quiet(Engine* engine, const T5Config& config, int requests) {
  QuietRun run;
  const PromptPtr prompt = RandomPrompt(20, config.d_model, 3, "quiet");
  std::mt19937_64 rng(11);
  for (int i = 0; i < requests; ++i) {
    GenerationRequest r;
    r.common.tenant = "quiet";
    r.common.input_ids = RandomInput(8, config.vocab_size, &rng);
    r.prompt = prompt;
    r.params.max_new_tokens = r.params.min_new_tokens = 4;
    std::promise<StatusOr<GenerationResult>> done;
    const auto start = Clock::now();
    engine->Submit(std::move(r), [&](StatusOr<GenerationResult> g) { done.set_value(std::move(g)); });
    auto g = done.get_future().get();
    run.latency.push_back(Seconds(start, Clock::now()));
    run.queue.push_back(g.ok() ? g->queue_seconds : -1);
  }
  return run;
}

void RunScenario(std::shared_ptr<const T5Model> model, const std::string& name, bool preemption, int requests) {
  StepTimes steps;
  EngineLimits limits;
  limits.preemption = preemption;
  limits.max_tokens_in_flight = int64_t{1} << 40;
  limits.max_queue_tokens = limits.max_tenant_queue_tokens = int64_t{1} << 40;
  limits.max_queue = 1 << 20;
  std::unique_ptr<Engine> engine_owner = NewT5Engine(model, limits, &steps);
  Engine& engine = *engine_owner;
  const T5Config& config = model->config();
  Quiet(&engine, config, 3);  // warm-up
  const QuietRun idle = Quiet(&engine, config, requests);
  const bool training = name == "train";
  std::unique_ptr<Flood> flood = training ? nullptr : std::make_unique<Flood>(&engine, config, Scenario(name));
  std::shared_ptr<TrainingFlood> trainer = training ? StartTraining(&engine, *model) : nullptr;
  std::this_thread::sleep_for(std::chrono::seconds(2));  // the flood reaches its level
  const auto t0 = Clock::now();
  const int64_t steps0 = training ? trainer->steps() : 0;
  steps.Record(true);
  if (training) trainer->Record(true);
  const QuietRun flooded = Quiet(&engine, config, requests);
  steps.Record(false);
  std::vector<double> step = steps.seconds();
  // Rows' new tokens while the quiet tenant ran, less the quiet tenant's own: the flood's
  // decoding throughput (beams count each); for training, its examples/s.
  double flood_tps = static_cast<double>(steps.tokens() - 4 * requests) / Seconds(t0, Clock::now());
  if (training) {
    flood_tps = static_cast<double>(8 * (trainer->steps() - steps0)) / Seconds(t0, Clock::now());
    const std::vector<double> slices = trainer->slices();
    step.insert(step.end(), slices.begin(), slices.end());
    trainer->Stop();
  } else {
    flood->Stop();
  }
  const double max_step = step.empty() ? 0 : *std::max_element(step.begin(), step.end());
  const double idle99 = Percentile(idle.latency, 0.99), flood99 = Percentile(flooded.latency, 0.99);
  const double bound = 2 * idle99 + max_step;
  const std::vector<double> flood_lat = training ? std::vector<double>() : flood->latencies();
  std::printf("| %s | %s | %.1f / %.1f | %.1f / %.1f | %.1fx | %.1f | %.1f | %.1f | %s | %.1f / %.1f | %.0f |\n", name.c_str(),
              preemption ? "on" : "off", 1e3 * Percentile(idle.latency, 0.5), 1e3 * idle99,
              1e3 * Percentile(flooded.latency, 0.5), 1e3 * flood99, flood99 / idle99, 1e3 * Percentile(flooded.queue, 0.99),
              1e3 * max_step, 1e3 * bound, flood99 <= bound ? "**met**" : "not met", Percentile(flood_lat, 0.5),
              Percentile(flood_lat, 0.99), flood_tps);
  std::fflush(stdout);
}

int Main(int argc, char** argv) {
  std::string model_dir, config_path, cache = "var/bench-models", scenarios = "beam,long,calls,fanout,mixed";
  int64_t threads = 2, requests = 40;
  bool compare = false;
  tools::FlagParser flags("softserve-isolation-bench", "A quiet tenant's latency beside a flooding tenant, idle vs flooded.");
  flags.AddString("model-dir", &model_dir, "checkpoint directory (else --config)");
  flags.AddString("config", &config_path, "config.json of a random-weight model (cached in --cache)");
  flags.AddString("cache", &cache, "where random-weight models are kept");
  flags.AddString("scenarios", &scenarios, "comma-separated: beam, long, calls, fanout, mixed, train");
  flags.AddInt("threads", &threads, "CPU threads");
  flags.AddInt("requests", &requests, "quiet requests per measurement");
  flags.AddBool("compare-no-preemption", &compare, "also run each scenario with preemption off");
  if (int code = flags.ParseOrExitCode(argc, argv); code >= 0) return code;
  ModelOptions options{ParseDevice("cpu").value(), DType::kFloat32, static_cast<int>(threads)};
  auto model = model_dir.empty() ? LoadOrCreateRandomModel(config_path, cache, options) : T5Model::Load(model_dir, options);
  if (!model.ok()) return std::fprintf(stderr, "%s\n", model.status().ToString().c_str()), 1;
  std::shared_ptr<const T5Model> shared = std::move(model).value();
  std::printf("| flood | preemption | quiet idle p50 / p99 ms | quiet flooded p50 / p99 ms | p99 ratio | quiet queue p99 ms "
              "| longest step ms | target ms (2 x idle p99 + step) | target | flood call p50 / p99 s | flood rows' tok/s |\n"
              "|---|---|---|---|---|---|---|---|---|---|---|\n");
  std::stringstream list(scenarios);
  for (std::string name; std::getline(list, name, ',');) {
    RunScenario(shared, name, true, static_cast<int>(requests));
    if (compare) RunScenario(shared, name, false, static_cast<int>(requests));
  }
  return 0;
}

}  // namespace
}  // namespace softserve::bench

int main(int argc, char** argv) { return softserve::bench::Main(argc, argv); }
