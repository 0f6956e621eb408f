// A seeded workload for serving benchmarks: N tasks (each with its own soft prompt), requests
// that pick a task uniformly, input and output lengths drawn uniformly from ranges, and arrival
// times for open-loop (Poisson) runs. Pure and deterministic for a seed.
#ifndef SOFTSERVE_BENCH_WORKLOAD_H_
#define SOFTSERVE_BENCH_WORKLOAD_H_

#include <cstdint>
#include <string>
#include <vector>

namespace softserve::bench {

enum class Arrival { kClosedLoop, kPoisson };

struct WorkloadSpec {
  int tasks = 64;
  int requests = 128;
  int input_min = 48, input_max = 80;    // tokens, including eos
  int output_min = 16, output_max = 48;  // generated exactly (min = max new tokens)
  Arrival arrival = Arrival::kClosedLoop;
  int concurrency = 64;      // closed loop: requests outstanding at any time
  double rate_per_s = 10.0;  // Poisson: mean arrivals per second
  uint64_t seed = 1;
};

struct WorkItem {
  int task = 0;
  std::vector<int64_t> input;
  int output_tokens = 0;
  double arrival_s = 0;  // Poisson: offset from the start
};

std::vector<WorkItem> GenerateWorkload(const WorkloadSpec& spec, int64_t vocab);

// "closed-loop" / "poisson"; false if unknown.
bool ParseArrival(const std::string& s, Arrival* out);

}  // namespace softserve::bench

#endif  // SOFTSERVE_BENCH_WORKLOAD_H_
