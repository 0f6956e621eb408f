#include "bench/workload.h"

#include <random>

namespace softserve::bench {

std::vector<WorkItem> GenerateWorkload(const WorkloadSpec& spec, int64_t vocab) {
  std::mt19937_64 rng(spec.seed);
  std::uniform_int_distribution<int> task(0, spec.tasks - 1);
  std::uniform_int_distribution<int> in_len(spec.input_min, spec.input_max);
  std::uniform_int_distribution<int> out_len(spec.output_min, spec.output_max);
  std::uniform_int_distribution<int64_t> id(2, std::min<int64_t>(vocab, 32000) - 1);
  std::exponential_distribution<double> gap(spec.rate_per_s);
  std::vector<WorkItem> items(spec.requests);
  double t = 0;
  for (WorkItem& w : items) {
    w.task = task(rng);
    w.input.resize(in_len(rng));
    for (auto& x : w.input) x = id(rng);
    w.input.back() = 1;  // eos, as the tokenizer appends
    w.output_tokens = out_len(rng);
    if (spec.arrival == Arrival::kPoisson) t += gap(rng);
    w.arrival_s = t;
  }
  return items;
}

bool ParseArrival(const std::string& s, Arrival* out) {
  if (s == "closed-loop") *out = Arrival::kClosedLoop;
  else if (s == "poisson") *out = Arrival::kPoisson;
  else return false;
  return true;
}

}  // namespace softserve::bench
