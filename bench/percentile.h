// The nearest-rank percentile the benchmarks report (p in [0, 1]; 0 for no samples).
// Header-only and torch-free, for benchmarks that link only the client library.
#ifndef SOFTSERVE_BENCH_PERCENTILE_H_
#define SOFTSERVE_BENCH_PERCENTILE_H_

#include <algorithm>
#include <vector>

namespace softserve::bench {

inline double Percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size() - 1) + 0.5))];
}

}  // namespace softserve::bench

#endif  // SOFTSERVE_BENCH_PERCENTILE_H_
