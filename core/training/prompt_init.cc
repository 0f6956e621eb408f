#include "core/training/prompt_init.h"

#include <c10/core/GradMode.h>

#include <algorithm>
#include <numeric>
#include <random>
#include <string>

namespace softserve::core {

at::Tensor UniformPromptInit(int64_t rows, int64_t d, uint64_t seed, double range, const at::TensorOptions& options) {
  at::NoGradGuard no_grad;
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> u(-range, range);
  std::vector<float> v(static_cast<size_t>(rows * d));
  for (float& x : v) x = static_cast<float>(u(rng));
  return at::tensor(v).reshape({rows, d}).to(options);
}

StatusOr<at::Tensor> SampledVocabInit(const at::Tensor& embedding, int64_t rows, uint64_t seed) {
  const int64_t pool = std::min<int64_t>(kCommonVocabRows, embedding.size(0));
  if (rows < 0 || rows > pool) {
    return InvalidArgumentError("cannot sample " + std::to_string(rows) + " distinct rows from the first " +
                                std::to_string(pool) + " vocabulary embeddings");
  }
  std::vector<int64_t> ids(static_cast<size_t>(pool));
  std::iota(ids.begin(), ids.end(), 0);
  std::mt19937_64 rng(seed);
  std::shuffle(ids.begin(), ids.end(), rng);
  ids.resize(static_cast<size_t>(rows));
  at::NoGradGuard no_grad;
  const at::Tensor index = at::tensor(ids, at::kLong).to(embedding.device());
  return embedding.index_select(0, index).to(at::kFloat).clone();
}

StatusOr<at::Tensor> ClassLabelInit(const at::Tensor& embedding, const std::vector<std::vector<int64_t>>& labels,
                                    int64_t rows, uint64_t seed) {
  const int64_t n = static_cast<int64_t>(labels.size());
  if (n > rows) {
    return InvalidArgumentError(std::to_string(n) + " class labels need a prompt of at least " + std::to_string(n) +
                                " rows; it has " + std::to_string(rows));
  }
  at::NoGradGuard no_grad;
  std::vector<at::Tensor> out;
  for (int64_t i = 0; i < n; ++i) {
    const std::vector<int64_t>& ids = labels[static_cast<size_t>(i)];
    if (ids.empty()) return InvalidArgumentError("class label " + std::to_string(i) + " has no tokens");
    for (int64_t id : ids) {
      if (id < 0 || id >= embedding.size(0)) {
        return InvalidArgumentError("class label " + std::to_string(i) + " has token " + std::to_string(id) +
                                    ", outside the vocabulary [0, " + std::to_string(embedding.size(0)) + ")");
      }
    }
    const at::Tensor index = at::tensor(ids, at::kLong).to(embedding.device());
    out.push_back(embedding.index_select(0, index).to(at::kFloat).mean(0));
  }
  SOFTSERVE_ASSIGN_OR_RETURN(at::Tensor rest, SampledVocabInit(embedding, rows - n, seed));
  if (n == 0) return rest;
  return at::cat({at::stack(out), rest}, 0);
}

StatusOr<at::Tensor> TextPromptInit(const at::Tensor& embedding, const std::vector<int64_t>& ids, int64_t rows) {
  if (ids.empty()) return InvalidArgumentError("the initialisation text has no tokens");
  for (int64_t id : ids) {
    if (id < 0 || id >= embedding.size(0)) return InvalidArgumentError("an initialisation token id is outside the vocabulary");
  }
  std::vector<int64_t> picked;
  while (static_cast<int64_t>(picked.size()) < rows) picked.push_back(ids[picked.size() % ids.size()]);
  return embedding.index_select(0, at::tensor(picked, at::kLong).to(embedding.device())).to(at::kFloat).clone();
}

}  // namespace softserve::core
