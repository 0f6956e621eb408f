// What a request costs in the units the engine's budgets count. One definition shared by the
// engine (queue and scheduling budgets) and the server (per-tenant in-flight budgets), so that
// both agree on what a request is worth. Pure functions; no libtorch.
#ifndef SOFTSERVE_CORE_ENGINE_COST_H_
#define SOFTSERVE_CORE_ENGINE_COST_H_

#include <cstdint>
#include <vector>

#include "core/engine/request.h"
#include "core/model/t5_config.h"

namespace softserve::core {

// Decode rows a generation holds while running: its beams, or 1.
int64_t GenerationRows(const DecodingParams& params);

// Token cost of one generated input: rows x (prompt rows + input tokens + max_new_tokens), the
// KV positions its rows may reach.
int64_t GenerationCostTokens(int64_t prompt_rows, int64_t input_tokens, const DecodingParams& params);

// Token cost of scoring: members x (prompt rows + input tokens + every target token).
int64_t ScoringCostTokens(const std::vector<int64_t>& member_prompt_rows, int64_t input_tokens,
                          const std::vector<std::vector<int64_t>>& targets);

// Upper bound of the working memory (bytes, float32 activations) that scoring one target of
// `target_tokens` against an encoder input of `encoder_tokens` positions takes in a
// teacher-forced pass: its encoder states and cross keys/values, the decoder's activations and
// attention scores, and one chunk of output-layer logits (T5Runner computes log-probabilities
// over at most kScoreLogitRows positions at a time, never a full [targets, T, vocab] copy).
int64_t ScoringBytes(const T5Config& config, int64_t encoder_tokens, int64_t target_tokens);
constexpr int64_t kScoreLogitRows = 256;

}  // namespace softserve::core

#endif  // SOFTSERVE_CORE_ENGINE_COST_H_
