// softserve-engine-bench: engine throughput on random-weight T5 models, on the workload of
// ../shared/BASELINES.md (a 20-vector soft prompt, 64 input tokens, exactly 32 new tokens,
// greedy), beside a GEMM peak measured in the same run. Reports encoder tokens/s, generated
// tokens/s with one shared prompt and with a different prompt on every row, and the job's
// achieved GFLOP/s (every matmul FLOP of the job counted) as a share of that peak, and the
// median decode step beside its memory floor: the bytes a step must read (decoder weights and
// the rows' keys/values, bench_util.h) over the read bandwidth measured in the same run.
#include <chrono>
#include <cstdio>
#include <future>
#include <algorithm>
#include <map>
#include <mutex>
#include <thread>

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>

#include "bench/bench_util.h"
#include "core/common/json.h"
#include "core/common/file_util.h"
#include "core/engine/engine.h"
#include "core/engine/t5_runner.h"
#include "core/model/cpu_gemm.h"
#include "core/model/tensor_convert.h"
#include "tools/flags.h"

namespace softserve::bench {
namespace {

using namespace softserve::core;  // NOLINT: a main file

struct Options {
  std::string config = "bench/configs/t5-small.json";
  std::string cache_dir;
  std::string batches = "1,8,32,64";
  std::string device = "cpu", dtype = "float32", json_out, cpu_gemm = "auto";
  int64_t threads = 2, prompt_rows = 20, input_tokens = 64, new_tokens = 32, repeats = 2;
  int64_t prefill_chunk_tokens = -1;
};

// Wall time of every full decode step (no rows joining) with `rows` rows, for the median.
class StepTimes : public EngineObserver {
 public:
  void OnStep(const StepStats& s) override {
    std::lock_guard<std::mutex> l(mu_);
    if (s.prefill_rows == 0 && s.rows > 0) seconds_[s.rows].push_back(s.seconds);
  }
  double MedianMs(int64_t rows) {
    std::lock_guard<std::mutex> l(mu_);
    std::vector<double> v = seconds_[rows];
    if (v.empty()) return 0;
    std::nth_element(v.begin(), v.begin() + v.size() / 2, v.end());
    return 1e3 * v[v.size() / 2];
  }

 private:
  std::mutex mu_;
  std::map<int64_t, std::vector<double>> seconds_;
};

// Runs `batch` generations submitted together; returns wall seconds.
double RunJob(Engine* engine, int64_t batch, bool mixed, const Options& o, const T5Config& config,
              const std::vector<PromptPtr>& prompts) {
  std::mt19937_64 rng(1234);
  std::vector<std::future<StatusOr<GenerationResult>>> futures;
  std::vector<std::shared_ptr<std::promise<StatusOr<GenerationResult>>>> promises;
  const auto t0 = std::chrono::steady_clock::now();
  for (int64_t i = 0; i < batch; ++i) {
    GenerationRequest req;
    req.common.input_ids = RandomInput(o.input_tokens, config.vocab_size, &rng);
    req.common.tenant = "bench";
    req.prompt = mixed ? prompts[i % prompts.size()] : prompts[0];
    req.params.max_new_tokens = static_cast<int>(o.new_tokens);
    req.params.min_new_tokens = static_cast<int>(o.new_tokens);
    auto p = std::make_shared<std::promise<StatusOr<GenerationResult>>>();
    futures.push_back(p->get_future());
    engine->Submit(std::move(req), [p](StatusOr<GenerationResult> r) { p->set_value(std::move(r)); });
  }
  for (auto& f : futures) {
    auto r = f.get();
    if (!r.ok() || static_cast<int64_t>(r->output_ids.size()) != o.new_tokens) {
      std::fprintf(stderr, "generation failed: %s\n", r.ok() ? "wrong length" : r.status().ToString().c_str());
      std::exit(1);
    }
  }
  return Seconds(t0, std::chrono::steady_clock::now());
}

// Encoder + cross-KV for `batch` prompted rows, timed directly on the model, in passes of as
// many rows as the runner's prefill chunks hold.
double EncoderSeconds(const T5Model& model, int64_t batch, const Options& o, const PromptPtr& prompt) {
  int64_t chunk_tokens = o.prefill_chunk_tokens;
  if (chunk_tokens < 0) chunk_tokens = model.options().device.kind == DeviceKind::kCpu ? kCpuPrefillChunkTokens : 0;
  const int64_t row_tokens = o.prompt_rows + o.input_tokens;
  const int64_t chunk_rows = chunk_tokens == 0 ? batch : std::max<int64_t>(1, chunk_tokens / row_tokens);
  c10::InferenceMode guard;
  std::mt19937_64 rng(99);
  at::Tensor p = at::from_blob(const_cast<float*>(prompt->values().data()), {prompt->rows(), prompt->dim()},
                               at::kFloat).to(model.tensor_options());
  std::vector<EncoderRow> rows;
  for (int64_t i = 0; i < batch; ++i) rows.push_back(EncoderRow{p, RandomInput(o.input_tokens, model.config().vocab_size, &rng)});
  double best = 1e30;
  for (int64_t r = 0; r < o.repeats + 1; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    for (int64_t first = 0; first < batch; first += chunk_rows) {
      const std::vector<EncoderRow> part(rows.begin() + first, rows.begin() + std::min(batch, first + chunk_rows));
      at::Tensor kv = model.ComputeCrossKv(model.Encode(model.EmbedRows(part)));
      kv.sum().item<float>();
    }
    if (r > 0) best = std::min(best, Seconds(t0, std::chrono::steady_clock::now()));  // r == 0 warms up
  }
  return best;
}

// On the CPU, the peak of libtorch's GEMM and of oneDNN's (where the process has it), each under
// the thread setup ConfigureCpuRuntime gives it, so that "% of peak" is against the best GEMM
// this machine offers, not just against the one the model happens to use.
GemmPeak MeasurePeakOfEveryGemm(const ModelOptions& mo) {
  if (mo.device.kind != DeviceKind::kCpu) return MeasureGemmPeak(mo);
  GemmPeak best;
  for (CpuGemm gemm : {CpuGemm::kTorch, CpuGemm::kOneDnn}) {
    if (gemm == CpuGemm::kOneDnn && !OneDnnSgemmAvailable()) continue;
    if (!ConfigureCpuRuntime(mo.num_threads, gemm).ok()) continue;
    std::this_thread::sleep_for(std::chrono::milliseconds(300));  // the other pool's threads go idle
    GemmPeak p = MeasureGemmPeak(mo);
    for (auto& [shape, g] : p.shapes) best.shapes.push_back({std::string(CpuGemmName(gemm)) + ":" + shape, g});
    if (p.best_gflops > best.best_gflops) {
      best.best_gflops = p.best_gflops;
      best.best_shape = std::string(CpuGemmName(gemm)) + ":" + p.best_shape;
    }
  }
  return best;
}

int Main(int argc, char** argv) {
  Options o;
  tools::FlagParser flags("softserve-engine-bench", "Engine throughput on a random-weight T5 (BASELINES.md workload).");
  flags.AddString("config", &o.config, "HF config.json of the model shape");
  flags.AddString("cache-dir", &o.cache_dir, "where the random checkpoint is kept (default var/bench-models/<config name>)");
  flags.AddString("batches", &o.batches, "batch sizes to run");
  flags.AddInt("threads", &o.threads, "intra-op threads");
  flags.AddInt("prompt-rows", &o.prompt_rows, "soft prompt length");
  flags.AddInt("input-tokens", &o.input_tokens, "input tokens per request (incl. eos)");
  flags.AddInt("new-tokens", &o.new_tokens, "tokens generated per request (min = max)");
  flags.AddInt("repeats", &o.repeats, "timed repetitions per figure (best is reported)");
  flags.AddString("device", &o.device, "cpu or cuda");
  flags.AddString("dtype", &o.dtype, "float32 or bfloat16");
  flags.AddString("cpu-gemm", &o.cpu_gemm, "CPU float32 GEMM: auto, packed, onednn or torch");
  flags.AddString("json", &o.json_out, "also write the figures to this JSON file");
  flags.AddInt("prefill-chunk-tokens", &o.prefill_chunk_tokens,
               "encoder positions per prefill pass (T5RunnerOptions; -1: the device's default, 0: all at once)");
  if (int code = flags.ParseOrExitCode(argc, argv); code >= 0) return code;
  auto batches = tools::ParseIdList(o.batches);
  auto device = ParseDevice(o.device);
  auto dtype = ParseDType(o.dtype);
  auto cpu_gemm = ParseCpuGemm(o.cpu_gemm);
  if (!batches.ok() || !device.ok() || !dtype.ok() || !cpu_gemm.ok()) {
    std::fprintf(stderr, "bad --batches, --device, --dtype or --cpu-gemm\n");
    return 2;
  }
  ModelOptions mo{*device, *dtype, static_cast<int>(o.threads), *cpu_gemm};
  std::string name = o.config.substr(o.config.find_last_of('/') + 1);
  name = name.substr(0, name.find('.'));
  if (o.cache_dir.empty()) o.cache_dir = "var/bench-models/" + name + "-random";
  auto model = LoadOrCreateRandomModel(o.config, o.cache_dir, mo);
  if (!model.ok()) {
    std::fprintf(stderr, "%s\n", model.status().ToString().c_str());
    return 1;
  }
  const T5Config config = (*model)->config();
  GemmPeak peak = MeasurePeakOfEveryGemm(mo);
  auto runtime = ConfigureCpuRuntime(mo.num_threads, mo.cpu_gemm);  // the model's own setting again
  if (!runtime.ok()) {
    std::fprintf(stderr, "%s\n", runtime.status().ToString().c_str());
    return 1;
  }
  std::printf("device %s %s, %s\n", o.device.c_str(), o.dtype.c_str(),
              mo.device.kind == DeviceKind::kCpu ? runtime->Describe().c_str() : "");
  std::printf("GEMM peak (float32, same run, best of every GEMM this process has): %.1f GFLOP/s (%s);",
              peak.best_gflops, peak.best_shape.c_str());
  for (const auto& [shape, g] : peak.shapes) std::printf(" %s %.1f", shape.c_str(), g);
  std::printf("\nmodel %s shape, %.1fM parameters, random weights; prompt %lld rows, input %lld tokens, %lld new tokens (greedy, min = max)\n\n",
              name.c_str(), config.ParameterCount() / 1e6, static_cast<long long>(o.prompt_rows),
              static_cast<long long>(o.input_tokens), static_cast<long long>(o.new_tokens));

  int64_t max_batch = 1;
  for (int64_t b : *batches) max_batch = std::max(max_batch, b);
  std::vector<PromptPtr> prompts;
  for (int64_t i = 0; i < max_batch; ++i) prompts.push_back(RandomPrompt(o.prompt_rows, config.d_model, 100 + i, "p" + std::to_string(i)));

  std::map<int64_t, double> encoder_tps;
  for (int64_t b : *batches) {
    const double sec = EncoderSeconds(**model, b, o, prompts[0]);
    encoder_tps[b] = b * (o.prompt_rows + o.input_tokens) / sec;
  }

  EngineLimits limits;
  limits.max_rows = max_batch;
  limits.max_prefill_tokens = int64_t{1} << 30;
  limits.max_tokens_in_flight = int64_t{1} << 40;
  limits.max_queue = 1 << 20;
  limits.max_input_tokens = o.input_tokens;  // the KV cache is sized for this workload
  limits.max_prompt_rows = std::max<int64_t>(1, o.prompt_rows);
  limits.max_new_tokens = o.new_tokens;
  const double bandwidth = MeasureReadBandwidth(mo);
  const int64_t element = ToTensorOptions(mo).dtype().itemsize();
  const int64_t kv_bytes = max_batch * KvCacheSlotBytes(config, c10::typeMetaToScalarType(ToTensorOptions(mo).dtype()),
                                                        o.new_tokens, std::max<int64_t>(1, o.prompt_rows) + o.input_tokens);
  std::printf("memory read bandwidth (same run): %.1f GB/s; KV cache %.1f MiB\n\n", bandwidth / 1e9,
              kv_bytes / 1048576.0);
  StepTimes steps;
  T5RunnerOptions runner_options;
  runner_options.prefill_chunk_tokens = o.prefill_chunk_tokens;
  std::unique_ptr<Engine> engine_owner = NewT5Engine(std::move(model).value(), limits, &steps, runner_options);
  Engine& engine = *engine_owner;

  JsonValue rows = JsonValue::MakeArray();
  std::printf("| batch | encoder tokens/s | new tokens/s, one prompt | new tokens/s, mixed prompts | job GFLOP | achieved GFLOP/s | %% of GEMM peak | decode step ms (median) | memory floor ms | step / floor |\n");
  std::printf("|---|---|---|---|---|---|---|---|---|---|\n");
  for (int64_t b : *batches) {
    RunJob(&engine, b, false, o, config, prompts);  // warm-up
    double one = 1e30, mixed = 1e30;
    for (int64_t r = 0; r < o.repeats; ++r) {
      one = std::min(one, RunJob(&engine, b, false, o, config, prompts));
      mixed = std::min(mixed, RunJob(&engine, b, true, o, config, prompts));
    }
    const JobFlops flops = CountJobFlops(config, b, o.prompt_rows + o.input_tokens, o.new_tokens);
    const double achieved = flops.total() / one / 1e9;
    const double step_ms = steps.MedianMs(b);
    // The median step reads half the generated history on average.
    const double floor_ms = 1e3 * DecodeStepBytes(config, b, o.prompt_rows + o.input_tokens,
                                                  (o.new_tokens + 1) / 2, element) / bandwidth;
    std::printf("| %lld | %.0f | %.1f | %.1f | %.1f | %.1f | %.0f%% | %.2f | %.3f | %.1f |\n", static_cast<long long>(b),
                encoder_tps[b], b * o.new_tokens / one, b * o.new_tokens / mixed, flops.total() / 1e9, achieved,
                100.0 * achieved / peak.best_gflops, step_ms, floor_ms, floor_ms > 0 ? step_ms / floor_ms : 0.0);
    std::fflush(stdout);
    JsonValue row = JsonValue::MakeObject();
    row.Add("batch", JsonValue::Int(b));
    row.Add("encoder_tokens_per_s", JsonValue::Number(encoder_tps[b]));
    row.Add("new_tokens_per_s_one_prompt", JsonValue::Number(b * o.new_tokens / one));
    row.Add("new_tokens_per_s_mixed_prompts", JsonValue::Number(b * o.new_tokens / mixed));
    row.Add("job_gflop", JsonValue::Number(flops.total() / 1e9));
    row.Add("achieved_gflops", JsonValue::Number(achieved));
    row.Add("gemm_peak_gflops", JsonValue::Number(peak.best_gflops));
    row.Add("decode_step_ms_median", JsonValue::Number(step_ms));
    row.Add("memory_floor_ms", JsonValue::Number(floor_ms));
    row.Add("memory_bandwidth_gbs", JsonValue::Number(bandwidth / 1e9));
    row.Add("kv_cache_bytes", JsonValue::Int(kv_bytes));
    if (auto memory = QueryDeviceMemory(mo.device); memory.ok()) {
      row.Add("device_memory_used_bytes", JsonValue::Int(memory->total_bytes - memory->free_bytes));
    }
    rows.mutable_array().push_back(std::move(row));
  }
  if (!o.json_out.empty()) {
    if (Status s = WriteFileDurably(o.json_out, rows.Serialize()); !s.ok()) {
      std::fprintf(stderr, "%s\n", s.ToString().c_str());
      return 1;
    }
  }
  return 0;
}

}  // namespace
}  // namespace softserve::bench

int main(int argc, char** argv) { return softserve::bench::Main(argc, argv); }
