// softserve-serving-bench: what mixing tasks in one batch buys. On one model and one seeded
// workload it compares (a) mixed-task continuous batching (softserve), (b) per-task batching
// (only requests with the same prompt share a batch, as a server that cannot mix must do),
// (c) one request at a time — for several task counts — and (a) with 10,000 registered prompts.
// Reports generated tokens/s, requests/s, p50/p99 latency and mean batch occupancy.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <thread>

#include "bench/percentile.h"
#include "bench/bench_util.h"
#include "bench/workload.h"
#include "core/common/file_util.h"
#include "core/common/json.h"
#include "core/engine/engine.h"
#include "core/engine/t5_runner.h"
#include "core/prompts/prompt_registry.h"
#include "tools/flags.h"

namespace softserve::bench {
namespace {

using namespace softserve::core;  // NOLINT: a main file
using Clock = std::chrono::steady_clock;

class StepCollector : public EngineObserver {
 public:
  void OnStep(const StepStats& s) override {
    std::lock_guard<std::mutex> l(mu_);
    ++steps_;
    rows_ += s.rows;
    distinct_ += s.distinct_prompts;
  }
  double mean_rows() const { return steps_ ? double(rows_) / steps_ : 0; }
  double mean_distinct() const { return steps_ ? double(distinct_) / steps_ : 0; }
  int64_t steps() const { return steps_; }

 private:
  std::mutex mu_;
  int64_t steps_ = 0, rows_ = 0, distinct_ = 0;
};

struct RunResult {
  double seconds = 0;
  int64_t tokens = 0;
  std::vector<double> latencies;
  double mean_rows = 0, mean_distinct = 0;
  int failures = 0;
};

RunResult Run(std::shared_ptr<const T5Model> model, BatchPolicy policy, int64_t max_rows,
              const WorkloadSpec& spec, const std::vector<WorkItem>& items, const PromptRegistry& registry) {
  StepCollector steps;
  EngineLimits limits;
  limits.max_rows = max_rows;
  limits.batch_policy = policy;
  limits.max_queue = 1 << 20;
  limits.max_tokens_in_flight = int64_t{1} << 40;
  std::unique_ptr<Engine> engine_owner = NewT5Engine(model, limits, &steps);
  Engine& engine = *engine_owner;

  RunResult result;
  std::mutex mu;
  std::condition_variable cv;
  size_t next = 0, done = 0;
  const auto t0 = Clock::now();
  std::function<void(size_t)> submit = [&](size_t i) {
    const WorkItem& w = items[i];
    GenerationRequest req;
    req.common.tenant = "bench";
    req.common.input_ids = w.input;
    auto prompt = registry.Get("bench", "task-" + std::to_string(w.task));  // per request, as served
    req.prompt = prompt.ok() ? *prompt : nullptr;
    req.params.max_new_tokens = req.params.min_new_tokens = w.output_tokens;
    const auto start = Clock::now();
    engine.Submit(std::move(req), [&, start](StatusOr<GenerationResult> r) {
      size_t follow_up = items.size();
      {
        std::lock_guard<std::mutex> l(mu);
        result.latencies.push_back(Seconds(start, Clock::now()));
        if (r.ok()) result.tokens += static_cast<int64_t>(r->output_ids.size());
        else ++result.failures;
        ++done;
        if (spec.arrival == Arrival::kClosedLoop && next < items.size()) follow_up = next++;
      }
      cv.notify_all();
      if (follow_up < items.size()) submit(follow_up);  // closed loop: the client sends its next
    });
  };
  if (spec.arrival == Arrival::kClosedLoop) {
    std::vector<size_t> first;
    {
      std::lock_guard<std::mutex> l(mu);
      while (next < items.size() && static_cast<int>(next) < spec.concurrency) first.push_back(next++);
    }
    for (size_t i : first) submit(i);
  } else {
    for (size_t i = 0; i < items.size(); ++i) {
      std::this_thread::sleep_until(t0 + std::chrono::duration_cast<Clock::duration>(
                                             std::chrono::duration<double>(items[i].arrival_s)));
      submit(i);
    }
  }
  std::unique_lock<std::mutex> l(mu);
  cv.wait(l, [&] { return done == items.size(); });
  result.seconds = Seconds(t0, Clock::now());
  result.mean_rows = steps.mean_rows();
  result.mean_distinct = steps.mean_distinct();
  return result;
}

double TimeRegistryLoad(const std::string& dir, int prompts, int64_t dim, int64_t rows) {
  // The marker lives beside the store, not in it: the store reports any file of its own that it
  // does not recognise.
  const std::string marker = dir + ".complete";
  if (!PathExists(marker)) {
    auto store = PromptStore::Open(dir).value();
    for (int i = 0; i < prompts; ++i) {
      Prompt p(PromptKey{"bench", "task-" + std::to_string(i), 1}, rows, dim,
               std::vector<float>(rows * dim, 0.01f * static_cast<float>(i % 100)), PromptFormat::kRaw, 0);
      const std::string path = store->PathOf(p.key());
      (void)MakeDirectories(path.substr(0, path.find_last_of('/')));
      (void)WriteFileDurably(path, SerializePromptRecord(p));
    }
    (void)WriteFileDurably(marker, "");
  }
  PromptRegistry reg(PromptStore::Open(dir).value());
  const auto t0 = Clock::now();
  auto report = reg.Load();
  const double s = Seconds(t0, Clock::now());
  std::printf("registry start-up: loaded %lld prompts from %s in %.2f s (%zu skipped)\n",
              static_cast<long long>(reg.total_prompts()), dir.c_str(), s, report.ok() ? report->skipped.size() : 0);
  return s;
}

int Main(int argc, char** argv) {
  std::string config = "bench/configs/t5-small.json", cache_dir, task_counts = "1,8,64,512", arrival = "closed-loop",
              json_out, policies = "mixed,per-task,one-at-a-time";
  int64_t threads = 2, requests = 384, concurrency = 64, max_rows = 64, prompt_rows = 20, seed = 1;
  // Length ranges with the means of ../shared/BASELINES.md's workload (64 in, 32 out).
  int64_t input_min = 48, input_max = 80, output_min = 16, output_max = 48, registered = 10000, registry_repeats = 2;
  double rate = 10;
  tools::FlagParser flags("softserve-serving-bench", "Mixed-task vs per-task vs one-at-a-time serving.");
  flags.AddString("config", &config, "HF config.json of the model shape (random weights)");
  flags.AddString("cache-dir", &cache_dir, "random checkpoint cache (default var/bench-models/<name>-random)");
  flags.AddString("tasks", &task_counts, "task counts to run");
  flags.AddString("policies", &policies, "which of mixed, per-task, one-at-a-time to run");
  flags.AddString("arrival", &arrival, "closed-loop or poisson");
  flags.AddInt("requests", &requests, "requests per run");
  flags.AddInt("concurrency", &concurrency, "closed loop: outstanding requests");
  flags.AddDouble("rate", &rate, "poisson: arrivals per second");
  flags.AddInt("max-rows", &max_rows, "engine batch rows for mixed and per-task");
  flags.AddInt("prompt-rows", &prompt_rows, "soft prompt length");
  flags.AddInt("input-min", &input_min, "shortest input");
  flags.AddInt("input-max", &input_max, "longest input");
  flags.AddInt("output-min", &output_min, "fewest new tokens");
  flags.AddInt("output-max", &output_max, "most new tokens");
  flags.AddInt("registered", &registered, "prompts registered for the large-registry run (0 = skip)");
  flags.AddInt("registry-repeats", &registry_repeats, "alternations of the small- and large-registry runs");
  flags.AddInt("threads", &threads, "CPU threads");
  flags.AddInt("seed", &seed, "workload seed");
  flags.AddString("json", &json_out, "also write the figures to this JSON file");
  if (int code = flags.ParseOrExitCode(argc, argv); code >= 0) return code;
  WorkloadSpec spec;
  auto tasks = tools::ParseIdList(task_counts);
  if (!tasks.ok() || !ParseArrival(arrival, &spec.arrival)) {
    std::fprintf(stderr, "bad --tasks or --arrival\n");
    return 2;
  }
  std::string name = config.substr(config.find_last_of('/') + 1);
  name = name.substr(0, name.find('.'));
  if (cache_dir.empty()) cache_dir = "var/bench-models/" + name + "-random";
  ModelOptions mo;
  mo.num_threads = static_cast<int>(threads);
  auto loaded = LoadOrCreateRandomModel(config, cache_dir, mo);
  if (!loaded.ok()) {
    std::fprintf(stderr, "%s\n", loaded.status().ToString().c_str());
    return 1;
  }
  std::shared_ptr<const T5Model> model = std::move(loaded).value();
  const int64_t d = model->config().d_model;
  spec.requests = static_cast<int>(requests);
  spec.concurrency = static_cast<int>(concurrency);
  spec.rate_per_s = rate;
  spec.input_min = static_cast<int>(input_min);
  spec.input_max = static_cast<int>(input_max);
  spec.output_min = static_cast<int>(output_min);
  spec.output_max = static_cast<int>(output_max);
  spec.seed = static_cast<uint64_t>(seed);
  std::printf("model %s shape (random weights), %lld-row prompts; %lld requests, inputs %lld..%lld, outputs %lld..%lld tokens, %s%s\n\n",
              name.c_str(), (long long)prompt_rows, (long long)requests, (long long)input_min, (long long)input_max,
              (long long)output_min, (long long)output_max, arrival.c_str(),
              spec.arrival == Arrival::kClosedLoop ? (" with " + std::to_string(concurrency) + " clients").c_str() : "");
  std::printf("| tasks | policy | tokens/s | requests/s | p50 latency s | p99 latency s | mean batch rows | mean prompts per step |\n");
  std::printf("|---|---|---|---|---|---|---|---|\n");
  JsonValue rows_json = JsonValue::MakeArray();
  auto report = [&](int64_t n, const std::string& policy, const RunResult& r) {
    std::printf("| %lld | %s | %.1f | %.2f | %.2f | %.2f | %.1f | %.1f |%s\n", (long long)n, policy.c_str(),
                r.tokens / r.seconds, spec.requests / r.seconds, Percentile(r.latencies, 0.5),
                Percentile(r.latencies, 0.99), r.mean_rows, r.mean_distinct,
                r.failures ? (" " + std::to_string(r.failures) + " FAILED").c_str() : "");
    std::fflush(stdout);
    JsonValue j = JsonValue::MakeObject();
    j.Add("tasks", JsonValue::Int(n));
    j.Add("policy", JsonValue::String(policy));
    j.Add("tokens_per_s", JsonValue::Number(r.tokens / r.seconds));
    j.Add("requests_per_s", JsonValue::Number(spec.requests / r.seconds));
    j.Add("p50_s", JsonValue::Number(Percentile(r.latencies, 0.5)));
    j.Add("p99_s", JsonValue::Number(Percentile(r.latencies, 0.99)));
    j.Add("mean_batch_rows", JsonValue::Number(r.mean_rows));
    rows_json.mutable_array().push_back(std::move(j));
  };
  auto registry_with = [&](int64_t n) {
    auto reg = std::make_unique<PromptRegistry>(nullptr);
    for (int64_t i = 0; i < n; ++i) {
      auto p = RandomPrompt(prompt_rows, d, 1000 + i, "task-" + std::to_string(i));
      NewPrompt np{p->rows(), p->dim(), p->values(), PromptFormat::kRaw, ""};
      (void)reg->Create("bench", "task-" + std::to_string(i), std::move(np));
    }
    return reg;
  };
  {
    // Warm-up: first-touch allocations and cache growth are not part of any figure.
    WorkloadSpec warm = spec;
    warm.requests = std::min(spec.requests, 2 * spec.concurrency);
    warm.tasks = 1;
    auto registry = registry_with(1);
    Run(model, BatchPolicy::kMixed, max_rows, warm, GenerateWorkload(warm, model->config().vocab_size), *registry);
  }
  for (int64_t n : *tasks) {
    spec.tasks = static_cast<int>(n);
    std::vector<WorkItem> items = GenerateWorkload(spec, model->config().vocab_size);
    auto registry = registry_with(n);
    if (policies.find("mixed") != std::string::npos) report(n, "mixed (a)", Run(model, BatchPolicy::kMixed, max_rows, spec, items, *registry));
    if (policies.find("per-task") != std::string::npos) report(n, "per-task (b)", Run(model, BatchPolicy::kSameKey, max_rows, spec, items, *registry));
    if (policies.find("one-at-a-time") != std::string::npos) report(n, "one at a time (c)", Run(model, BatchPolicy::kMixed, 1, spec, items, *registry));
  }
  if (registered > 0) {
    // Same 64-task workload against a registry of 64 prompts and one of `registered`, alternated
    // so that drift of a shared machine hits both alike.
    spec.tasks = 64;
    std::vector<WorkItem> items = GenerateWorkload(spec, model->config().vocab_size);
    auto small = registry_repeats > 0 ? registry_with(64) : nullptr;
    auto large = registry_repeats > 0 ? registry_with(registered) : nullptr;
    for (int64_t r = 0; r < registry_repeats; ++r) {
      report(64, "mixed (a), 64 prompts registered", Run(model, BatchPolicy::kMixed, max_rows, spec, items, *small));
      report(64, "mixed (a), " + std::to_string(registered) + " prompts registered",
             Run(model, BatchPolicy::kMixed, max_rows, spec, items, *large));
    }
    TimeRegistryLoad("var/bench-store-" + std::to_string(registered), static_cast<int>(registered), d, prompt_rows);
  }
  if (!json_out.empty()) (void)WriteFileDurably(json_out, rows_json.Serialize());
  return 0;
}

}  // namespace
}  // namespace softserve::bench

int main(int argc, char** argv) { return softserve::bench::Main(argc, argv); }
