// T5Config: the architecture of a T5 checkpoint, read from a Hugging Face config.json.
//
// HF writes only keys that differ from its defaults (PretrainedConfig.save_pretrained with
// use_diff), so absent keys take HF's T5Config defaults: tie_word_embeddings true,
// num_decoder_layers = num_layers, relative_attention_num_buckets 32,
// relative_attention_max_distance 128, layer_norm_epsilon 1e-6, feed_forward_proj "relu",
// pad 0, eos 1, decoder_start = pad. Nothing assumes num_heads * d_kv == d_model.
#ifndef SOFTSERVE_CORE_MODEL_T5_CONFIG_H_
#define SOFTSERVE_CORE_MODEL_T5_CONFIG_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "core/common/status.h"

namespace softserve::core {

// The feed-forward activation, as HF's ACT2FN names it.
enum class Activation {
  kRelu,     // "relu"
  kGeluNew,  // "gelu_new": 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
  kGelu,     // "gelu": exact, x * Phi(x)
};

struct T5Config {
  int64_t vocab_size = 32128;
  int64_t d_model = 512;
  int64_t d_kv = 64;
  int64_t d_ff = 2048;
  int64_t num_heads = 8;
  int64_t num_layers = 6;
  int64_t num_decoder_layers = 6;
  int64_t relative_attention_num_buckets = 32;
  int64_t relative_attention_max_distance = 128;
  double layer_norm_epsilon = 1e-6;
  // feed_forward_proj "<act>" gives wo(act(wi x)); "gated-<act>" gives wo(act(wi_0 x) * wi_1 x).
  // HF maps "gated-gelu" to gelu_new.
  Activation activation = Activation::kRelu;
  bool gated = false;
  bool tie_word_embeddings = true;
  int64_t pad_token_id = 0;
  int64_t eos_token_id = 1;
  int64_t decoder_start_token_id = 0;

  int64_t inner_dim() const { return num_heads * d_kv; }
  // Parameter count of the weights softserve keeps (embeddings counted once).
  int64_t ParameterCount() const;
};

// Parses config.json text. Returns InvalidArgument naming the key when a value has the wrong
// type or is out of range (non-positive sizes, odd bucket count, unknown feed_forward_proj, a
// model_type other than t5/mt5, ...).
StatusOr<T5Config> ParseT5Config(std::string_view json_text);

// Reads and parses `path`. NotFound if absent; errors of ParseT5Config prefixed by the path.
StatusOr<T5Config> LoadT5Config(const std::string& path);

// Serializes as HF would (every key written), for checkpoints softserve creates.
std::string T5ConfigToJson(const T5Config& config);

}  // namespace softserve::core

#endif  // SOFTSERVE_CORE_MODEL_T5_CONFIG_H_
