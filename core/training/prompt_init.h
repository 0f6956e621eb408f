// How a soft prompt starts (Lester et al. 2021, section 2.1 and 3.2): uniform random values,
// rows of sampled vocabulary embeddings, or class labels (each label's token embeddings
// averaged, the remaining rows sampled from the vocabulary). All return [rows, d] float32 on the
// embedding's device, reproducibly for a seed.
#ifndef SOFTSERVE_CORE_TRAINING_PROMPT_INIT_H_
#define SOFTSERVE_CORE_TRAINING_PROMPT_INIT_H_

#include <ATen/ATen.h>

#include <cstdint>
#include <vector>

#include "core/common/status.h"

namespace softserve::core {

// Lester et al.'s "5,000 most common tokens": the first rows of T5's embedding table.
inline constexpr int64_t kCommonVocabRows = 5000;

// Uniform in [-range, range] (Lester et al.: 0.5).
at::Tensor UniformPromptInit(int64_t rows, int64_t d, uint64_t seed, double range = 0.5,
                             const at::TensorOptions& options = at::kFloat);

// Rows of the embedding table (the shared input embedding), drawn without replacement from the
// first min(kCommonVocabRows, V) rows. InvalidArgument when more rows are asked than there are.
StatusOr<at::Tensor> SampledVocabInit(const at::Tensor& embedding, int64_t rows, uint64_t seed);

// Row i < labels.size(): the mean of embedding[id] over label i's ids (a repeated id counts each
// time; no eos: give the ids as the tokenizer makes them without one); the remaining rows as
// SampledVocabInit. InvalidArgument for more labels than rows, an empty label or an id outside
// the table.
StatusOr<at::Tensor> ClassLabelInit(const at::Tensor& embedding, const std::vector<std::vector<int64_t>>& labels,
                                    int64_t rows, uint64_t seed);

// PEFT's TEXT initialisation: the embeddings of `ids` (a text's tokens, no eos), repeated and cut
// to `rows`. InvalidArgument for no ids or an id outside the table.
StatusOr<at::Tensor> TextPromptInit(const at::Tensor& embedding, const std::vector<int64_t>& ids, int64_t rows);

}  // namespace softserve::core

#endif  // SOFTSERVE_CORE_TRAINING_PROMPT_INIT_H_
