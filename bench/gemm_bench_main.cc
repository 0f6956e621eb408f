// The projections of one T5 decoder step (and of an encoder pass) on every CPU GEMM this process
// has, weights in the layout each uses, so that the per-product cost the engine bench only shows
// summed into a step is visible by row count. Each round walks all of a decoder step's weight
// matrices once (more bytes than L3 for t5-small and larger, so weights come from memory as in
// serving); rounds of the GEMMs are interleaved and the median is reported.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "core/model/cpu_gemm.h"
#include "core/model/cpu_packed_gemm.h"
#include "core/model/device.h"
#include "core/model/t5_config.h"
#include "tools/flags.h"

namespace softserve::bench {
namespace {

using core::CpuGemm;

struct Shape {
  int64_t k, n;
};

// The products of one decoder step: per layer qkv, self o, cross q, cross o, wi, wo; then the
// output projection.
std::vector<Shape> DecoderStepShapes(const core::T5Config& c) {
  const int64_t d = c.d_model, inner = c.inner_dim(), f = c.d_ff * (c.gated ? 2 : 1);
  std::vector<Shape> shapes;
  for (int64_t l = 0; l < c.num_decoder_layers; ++l) {
    for (Shape s : {Shape{d, 3 * inner}, Shape{inner, d}, Shape{d, inner}, Shape{inner, d}, Shape{d, f},
                    Shape{c.d_ff, d}}) {
      shapes.push_back(s);
    }
  }
  shapes.push_back({d, c.vocab_size});
  return shapes;
}

// "packed,onednn" -> the GEMMs, each one this process can run.
core::StatusOr<std::vector<CpuGemm>> ParseGemms(const std::string& list) {
  std::vector<CpuGemm> gemms;
  for (size_t start = 0; start <= list.size();) {
    const size_t comma = std::min(list.find(',', start), list.size());
    SOFTSERVE_ASSIGN_OR_RETURN(CpuGemm g, core::ParseCpuGemm(list.substr(start, comma - start)));
    SOFTSERVE_ASSIGN_OR_RETURN(g, core::ResolveCpuGemm(g));
    gemms.push_back(g);
    start = comma + 1;
  }
  return gemms;
}

// The weights of one decoder step, in the layout each GEMM takes.
struct StepWeights {
  std::vector<Shape> shapes;
  std::vector<at::Tensor> plain;  // [in, out]
  std::vector<core::PackedMatrix> packed;
};

// One timed pass over every product of a step with m rows, after an untimed one (the pool this
// GEMM runs on wakes up, as it is in a decode loop), in milliseconds.
double TimeStep(const StepWeights& w, CpuGemm gemm, int64_t m) {
  std::vector<at::Tensor> xs;
  for (Shape sh : w.shapes) xs.push_back(at::randn({m, sh.k}));
  double ms = 0;
  for (int pass = 0; pass < 2; ++pass) {
    const auto start = std::chrono::steady_clock::now();
    for (size_t i = 0; i < w.shapes.size(); ++i) {
      const at::Tensor y =
          gemm == CpuGemm::kPacked ? core::PackedMatmul(xs[i], w.packed[i]) : core::CpuMatmul(xs[i], w.plain[i]);
    }
    ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  }
  return ms;
}

double MedianMs(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

int Main(int argc, char** argv) {
  std::string config = "bench/configs/t5-small.json", rows_list = "1,2,4,8,16,32,64,84", gemm_list = "packed,onednn", shape_list;
  int64_t threads = 2, rounds = 7;
  tools::FlagParser flags("softserve-gemm-bench", "One decoder step's projections on each CPU GEMM, by row count.");
  flags.AddString("config", &config, "HF config.json of the model shape");
  flags.AddString("rows", &rows_list, "row counts (batch x new tokens) to time");
  flags.AddString("gemms", &gemm_list, "GEMMs to compare (packed, onednn, torch; one process's OpenBLAS pool spins "
                  "after torch's products and slows the others)");
  flags.AddString("shapes", &shape_list, "instead of a decoder step's products: these, as KxN,KxN (e.g. the "
                  "cross keys and values of every decoder layer: 768x18432 for t5-base)");
  flags.AddInt("threads", &threads, "threads");
  flags.AddInt("rounds", &rounds, "interleaved rounds per row count (median reported)");
  if (const int code = flags.ParseOrExitCode(argc, argv); code >= 0) return code;
  auto cfg = core::LoadT5Config(config);
  auto rows = tools::ParseIdList(rows_list);
  if (!cfg.ok() || !rows.ok()) {
    std::fprintf(stderr, "%s\n", (!cfg.ok() ? cfg.status() : rows.status()).ToString().c_str());
    return 2;
  }
  auto gemms = ParseGemms(gemm_list);
  if (!gemms.ok()) {
    std::fprintf(stderr, "--gemms: %s\n", gemms.status().ToString().c_str());
    return 2;
  }
  StepWeights w;
  w.shapes = DecoderStepShapes(*cfg);
  if (!shape_list.empty()) {
    auto dims = tools::ParseIdList(std::regex_replace(shape_list, std::regex("x"), ","));
    if (!dims.ok() || dims->size() % 2 != 0) {
      std::fprintf(stderr, "--shapes: expected KxN,KxN...\n");
      return 2;
    }
    w.shapes.clear();
    for (size_t i = 0; i < dims->size(); i += 2) w.shapes.push_back({(*dims)[i], (*dims)[i + 1]});
  }
  double bytes = 0;
  for (Shape sh : w.shapes) {
    w.plain.push_back(at::randn({sh.n, sh.k}).t().contiguous());
    if (core::PackedGemmSupported()) w.packed.push_back(core::PackedMatrix::Pack(w.plain.back()));
    bytes += 4.0 * sh.k * sh.n;
  }
  std::printf("%s: %zu products per pass, %.0f MB of float32 weights; %lld threads; packed kernel: %s\n",
              config.c_str(), w.shapes.size(), bytes / 1e6, static_cast<long long>(threads), core::PackedGemmIsa());
  std::printf("| rows |");
  for (CpuGemm g : *gemms) std::printf(" %s ms |", core::CpuGemmName(g));
  std::printf(" best other / packed |\n|---|");
  for (size_t i = 0; i <= gemms->size(); ++i) std::printf("---|");
  std::printf("\n");
  for (int64_t m : *rows) {
    std::vector<std::vector<double>> ms(gemms->size());
    for (int64_t r = 0; r < rounds; ++r) {
      for (size_t g = 0; g < gemms->size(); ++g) {
        if (!core::ConfigureCpuRuntime(static_cast<int>(threads), (*gemms)[g]).ok()) return 1;
        // at::set_num_threads re-creates libtorch's pthreadpool, whose new threads spin for tens
        // of milliseconds: let them settle, as they have in a server long after its one setup.
        std::this_thread::sleep_for(std::chrono::milliseconds(150));
        ms[g].push_back(TimeStep(w, (*gemms)[g], m));
      }
    }
    std::printf("| %lld |", static_cast<long long>(m));
    double best_other = 1e30, packed_ms = 0;
    for (size_t g = 0; g < gemms->size(); ++g) {
      const double v = MedianMs(ms[g]);
      std::printf(" %.2f |", v);
      if ((*gemms)[g] == CpuGemm::kPacked) {
        packed_ms = v;
      } else {
        best_other = std::min(best_other, v);
      }
    }
    if (packed_ms > 0 && best_other < 1e30) {
      std::printf(" %.2f |\n", best_other / packed_ms);
    } else {
      std::printf(" - |\n");
    }
  }
  return 0;
}

}  // namespace
}  // namespace softserve::bench

int main(int argc, char** argv) { return softserve::bench::Main(argc, argv); }
