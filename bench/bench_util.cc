#include "bench/bench_util.h"

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>

#include "core/common/file_util.h"
#include "core/model/cpu_gemm.h"
#include "core/model/cpu_packed_gemm.h"
#include "core/model/random_checkpoint.h"
#include "core/model/tensor_convert.h"

namespace softserve::bench {

core::StatusOr<std::unique_ptr<core::T5Model>> LoadOrCreateRandomModel(
    const std::string& config_path, const std::string& cache_dir, const core::ModelOptions& options) {
  if (!core::PathExists(core::JoinPath(cache_dir, "model.safetensors"))) {
    SOFTSERVE_ASSIGN_OR_RETURN(core::T5Config config, core::LoadT5Config(config_path));
    SOFTSERVE_RETURN_IF_ERROR(core::WriteRandomT5Checkpoint(config, cache_dir, {}));
  }
  return core::T5Model::Load(cache_dir, options);
}

JobFlops CountJobFlops(const core::T5Config& c, int64_t batch, int64_t s, int64_t new_tokens) {
  const double d = c.d_model, inner = c.inner_dim(), f = c.d_ff, v = c.vocab_size;
  const double ff = 2 * d * f * (c.gated ? 3 : 2);
  JobFlops flops;
  // Per encoder position and layer: qkv, o, feed-forward, scores and weighted values over s keys.
  flops.encoder = batch * s * c.num_layers * (2 * d * 3 * inner + 2 * inner * d + ff + 4 * s * inner);
  flops.cross_kv = batch * s * c.num_decoder_layers * 2 * d * 2 * inner;
  for (int64_t t = 1; t <= new_tokens; ++t) {
    const double per_layer = 2 * d * 3 * inner + 2 * inner * d  // self q, k, v, o
                             + 2 * d * inner + 2 * inner * d    // cross q, o
                             + ff + 4 * t * inner + 4 * s * inner;
    flops.decoder += batch * (c.num_decoder_layers * per_layer + 2 * d * v);
  }
  return flops;
}

double DecodeStepBytes(const core::T5Config& c, int64_t batch, int64_t encoder_len, int64_t decoder_len,
                       int64_t element_bytes) {
  const double d = c.d_model, inner = c.inner_dim(), f = c.d_ff, v = c.vocab_size;
  const double layer_weights = 4 * d * inner     // self q, k, v, o
                               + 2 * d * inner   // cross q, o (cross k, v were computed at prefill)
                               + d * f * (c.gated ? 3 : 2);
  const double weights = c.num_decoder_layers * layer_weights + d * v;  // + output layer
  const double kv = static_cast<double>(batch) * c.num_decoder_layers * 2 * inner *
                    static_cast<double>(decoder_len + encoder_len);
  return (weights + kv) * static_cast<double>(element_bytes);
}

double MeasureReadBandwidth(const core::ModelOptions& options) {
  c10::InferenceMode guard;
  const auto topt = core::ToTensorOptions(options).dtype(at::kFloat);
  // A matrix-vector product reads the matrix once, on the threads the model's own GEMVs use.
  const int64_t rows = options.device.kind == core::DeviceKind::kCuda ? (int64_t{1} << 16) : (int64_t{1} << 14);
  at::Tensor a = at::ones({rows, 4096}, topt), x = at::ones({1, 4096}, topt);
  const bool cpu = options.device.kind == core::DeviceKind::kCpu;
  const bool packed = cpu && core::ActiveCpuGemm() == core::CpuGemm::kPacked;
  const core::PackedMatrix a_packed = packed ? core::PackedMatrix::Pack(a.t()) : core::PackedMatrix();
  auto product = [&] {
    if (packed) return core::PackedMatmul(x, a_packed);
    return cpu ? core::CpuMatmul(x, a.t()) : at::matmul(x, a.t());
  };
  product().sum().item<float>();  // warm-up
  double best = 1e30;
  for (int i = 0; i < 5; ++i) {
    auto t0 = std::chrono::steady_clock::now();
    product().sum().item<float>();  // waits for the device
    best = std::min(best, Seconds(t0, std::chrono::steady_clock::now()));
  }
  return static_cast<double>(a.numel()) * 4 / best;
}

GemmPeak MeasureGemmPeak(const core::ModelOptions& options) {
  c10::InferenceMode guard;
  const auto topt = core::ToTensorOptions(options).dtype(at::kFloat);
  const std::vector<std::array<int64_t, 3>> shapes = {
      {512, 768, 3072}, {2688, 512, 2048}, {2688, 2048, 512}, {32, 512, 32128}, {64, 768, 768}};
  GemmPeak peak;
  for (const auto& s : shapes) {
    at::Tensor a = at::randn({s[0], s[1]}, topt), b = at::randn({s[1], s[2]}, topt);
    auto product = [&] { return options.device.kind == core::DeviceKind::kCpu ? core::CpuMatmul(a, b) : at::matmul(a, b); };
    at::Tensor c = product();  // warm-up
    const int reps = 5;
    auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < reps; ++i) c = product();
    c.sum().item<float>();  // waits for the device
    const double sec = Seconds(t0, std::chrono::steady_clock::now()) / reps;
    const double gflops = 2.0 * s[0] * s[1] * s[2] / sec / 1e9;
    const std::string name = std::to_string(s[0]) + "x" + std::to_string(s[1]) + "x" + std::to_string(s[2]);
    peak.shapes.push_back({name, gflops});
    if (gflops > peak.best_gflops) {
      peak.best_gflops = gflops;
      peak.best_shape = name;
    }
  }
  return peak;
}

core::PromptPtr RandomPrompt(int64_t rows, int64_t dim, uint64_t seed, const std::string& name) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal(0.f, 1.f);
  std::vector<float> values(rows * dim);
  for (float& v : values) v = normal(rng);
  return std::make_shared<core::Prompt>(core::PromptKey{"bench", name, 1}, rows, dim, std::move(values),
                                        core::PromptFormat::kRaw, 0);
}

std::vector<int64_t> RandomInput(int64_t length, int64_t vocab, std::mt19937_64* rng) {
  std::uniform_int_distribution<int64_t> id(2, std::min<int64_t>(vocab, 32000) - 1);
  std::vector<int64_t> ids(length);
  for (auto& x : ids) x = id(*rng);
  ids.back() = 1;  // eos, as T5's tokenizer appends
  return ids;
}

double Seconds(std::chrono::steady_clock::time_point a, std::chrono::steady_clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

std::unique_ptr<core::Engine> NewT5Engine(std::shared_ptr<const core::T5Model> model,
                                          core::EngineLimits limits, core::EngineObserver* observer,
                                          const core::T5RunnerOptions& options) {
  auto runner = core::T5Runner::Create(std::move(model), options, &limits);
  if (!runner.ok()) {
    std::fprintf(stderr, "benchmark: %s\n", runner.status().ToString().c_str());
    std::exit(1);
  }
  return std::make_unique<core::Engine>(std::move(runner).value(), limits, observer);
}

}  // namespace softserve::bench
