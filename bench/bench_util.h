// Shared pieces of softserve's benchmarks: random-weight models cached on disk, FLOP counts of a
// T5 job, a GEMM peak measured in the same process, and random prompts/inputs.
#ifndef SOFTSERVE_BENCH_BENCH_UTIL_H_
#define SOFTSERVE_BENCH_BENCH_UTIL_H_

#include <cstdint>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "core/common/status.h"
#include "core/engine/engine.h"
#include "core/engine/t5_runner.h"
#include "core/model/t5_config.h"
#include "core/model/t5_model.h"
#include "core/prompts/prompt.h"

namespace softserve::bench {

// Loads the random-weight checkpoint for `config_path` from `cache_dir`, writing it first if
// absent (seed 0, HF layout).
core::StatusOr<std::unique_ptr<core::T5Model>> LoadOrCreateRandomModel(
    const std::string& config_path, const std::string& cache_dir, const core::ModelOptions& options);

// Matmul FLOPs (2mnk) of the parts of one T5 job.
struct JobFlops {
  double encoder = 0;   // all encoder layers, incl. attention, over every input position
  double cross_kv = 0;  // cross-attention keys/values of every decoder layer
  double decoder = 0;   // every decode step incl. the output layer
  double total() const { return encoder + cross_kv + decoder; }
};
JobFlops CountJobFlops(const core::T5Config& c, int64_t batch, int64_t encoder_len, int64_t new_tokens);

// Bytes one decode step must read from device memory at `batch` rows: the weights the step
// uses (every decoder layer's self-attention, cross-attention query/output and feed-forward,
// and the output layer) plus the rows' cached keys/values (self over `decoder_len` positions,
// cross over `encoder_len`). Divided by the memory bandwidth, the step's time floor.
double DecodeStepBytes(const core::T5Config& c, int64_t batch, int64_t encoder_len, int64_t decoder_len,
                       int64_t element_bytes);

// Device memory read bandwidth measured in this process: a matrix-vector product over a matrix
// far larger than the caches (256 MiB on CPU, 1 GiB on CUDA), matrix bytes read per second, on
// the GEMM and threads the model's own single-row products use (a copy would also count write-allocate traffic).
double MeasureReadBandwidth(const core::ModelOptions& options);

struct GemmPeak {
  double best_gflops = 0;
  std::string best_shape;
  std::vector<std::pair<std::string, double>> shapes;
};
// Times float32 matmuls of the shapes that matter for T5 on this device/thread count, through
// what the model uses (on the CPU: core::CpuMatmul with the GEMM ConfigureCpuRuntime selected).
GemmPeak MeasureGemmPeak(const core::ModelOptions& options);

core::PromptPtr RandomPrompt(int64_t rows, int64_t dim, uint64_t seed, const std::string& name);
std::vector<int64_t> RandomInput(int64_t length, int64_t vocab, std::mt19937_64* rng);

double Seconds(std::chrono::steady_clock::time_point a, std::chrono::steady_clock::time_point b);

// An engine over a T5Runner whose KV cache is sized for `limits` (T5Runner::Create); exits the
// process with a message when the cache cannot be allocated.
std::unique_ptr<core::Engine> NewT5Engine(std::shared_ptr<const core::T5Model> model,
                                          core::EngineLimits limits,
                                          core::EngineObserver* observer = nullptr,
                                          const core::T5RunnerOptions& options = {});

}  // namespace softserve::bench

#endif  // SOFTSERVE_BENCH_BENCH_UTIL_H_
