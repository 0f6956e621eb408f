#include "core/engine/cost.h"

#include <algorithm>

namespace softserve::core {

int64_t GenerationRows(const DecodingParams& params) {
  return params.mode == DecodingMode::kBeam ? std::max(1, params.num_beams) : 1;
}

int64_t GenerationCostTokens(int64_t prompt_rows, int64_t input_tokens, const DecodingParams& params) {
  return GenerationRows(params) * (prompt_rows + input_tokens + std::max(0, params.max_new_tokens));
}

int64_t ScoringCostTokens(const std::vector<int64_t>& member_prompt_rows, int64_t input_tokens,
                          const std::vector<std::vector<int64_t>>& targets) {
  int64_t target_tokens = 0;
  for (const auto& t : targets) target_tokens += static_cast<int64_t>(t.size());
  int64_t cost = 0;
  for (int64_t rows : member_prompt_rows) cost += rows + input_tokens + target_tokens;
  return cost;
}

int64_t ScoringBytes(const T5Config& c, int64_t s, int64_t t) {
  const int64_t inner = c.num_heads * c.d_kv;
  const int64_t ff = c.d_ff * (c.gated ? 2 : 1);
  const int64_t layers = c.num_decoder_layers;
  // Encoder pass of this row (states, q/k/v, feed-forward, scores and probabilities).
  const int64_t encoder = s * (4 * c.d_model + 3 * inner + ff) + 2 * c.num_heads * s * s;
  // Cross keys/values of every decoder layer, kept for the whole pass.
  const int64_t cross = layers * 2 * s * inner;
  // Decoder activations of one layer at a time, self and cross attention scores.
  const int64_t decoder = t * (4 * c.d_model + 4 * inner + ff) + 2 * c.num_heads * t * (t + s);
  // One chunk of output-layer logits and its log-softmax normalizer.
  const int64_t logits = 2 * std::min(t, kScoreLogitRows) * c.vocab_size;
  return 4 * (encoder + cross + decoder + logits);
}

}  // namespace softserve::core
