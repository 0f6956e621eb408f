// What every prompt a fuzz target accepts must satisfy; a violation aborts (a "crash" for
// libFuzzer). The targets parse against d_model kDim and at most kMaxRows rows.
#ifndef SOFTSERVE_TESTS_FUZZ_FUZZ_CHECKS_H_
#define SOFTSERVE_TESTS_FUZZ_FUZZ_CHECKS_H_

#include <cmath>
#include <cstdlib>

#include "core/prompts/prompt_formats.h"

namespace softserve::fuzz {

constexpr int64_t kDim = 8;
constexpr int64_t kMaxRows = 16;

inline core::PromptLimits Limits() {
  core::PromptLimits l;
  l.d_model = kDim;
  l.max_rows = kMaxRows;
  l.max_file_bytes = 1 << 20;
  return l;
}

inline void CheckAccepted(const core::StatusOr<core::PromptMatrix>& m) {
  if (!m.ok()) {
    if (m.status().message().empty()) std::abort();  // every refusal says why
    return;
  }
  if (m->dim != kDim || m->rows < 1 || m->rows > kMaxRows ||
      static_cast<int64_t>(m->values.size()) != m->rows * m->dim) {
    std::abort();
  }
  for (float v : m->values) {
    if (!std::isfinite(v) || std::fabs(v) > Limits().max_abs_value) std::abort();
  }
}

}  // namespace softserve::fuzz

#endif  // SOFTSERVE_TESTS_FUZZ_FUZZ_CHECKS_H_
