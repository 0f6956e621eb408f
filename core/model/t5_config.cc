#include "core/model/t5_config.h"

#include "core/common/file_util.h"
#include "core/common/json.h"

namespace softserve::core {
namespace {

// Reads an integer key if present and not null; keeps the default otherwise.
Status ReadInt(const JsonValue& root, const char* key, int64_t min_value, int64_t* out) {
  const JsonValue* v = root.Find(key);
  if (v == nullptr || v->is_null()) return OkStatus();
  if (!v->is_int()) return InvalidArgumentError(std::string("'") + key + "' must be an integer");
  if (v->int_value() < min_value || v->int_value() > (int64_t{1} << 40)) {
    return InvalidArgumentError(std::string("'") + key + "' = " + std::to_string(v->int_value()) +
                                " is out of range");
  }
  *out = v->int_value();
  return OkStatus();
}

}  // namespace

int64_t T5Config::ParameterCount() const {
  const int64_t attn = 4 * d_model * inner_dim();
  const int64_t ff = (gated ? 3 : 2) * d_model * d_ff;
  const int64_t enc = num_layers * (attn + ff + 2 * d_model);
  const int64_t dec = num_decoder_layers * (2 * attn + ff + 3 * d_model);
  const int64_t emb = vocab_size * d_model * (tie_word_embeddings ? 1 : 2);
  const int64_t bias = 2 * relative_attention_num_buckets * num_heads;
  return enc + dec + emb + bias + 2 * d_model;
}

StatusOr<T5Config> ParseT5Config(std::string_view json_text) {
  SOFTSERVE_ASSIGN_OR_RETURN(JsonValue root, ParseJson(json_text));
  if (!root.is_object()) return InvalidArgumentError("config.json is not a JSON object");
  if (const JsonValue* mt = root.Find("model_type"); mt != nullptr) {
    if (!mt->is_string() || (mt->string_value() != "t5" && mt->string_value() != "mt5")) {
      return InvalidArgumentError("model_type must be \"t5\" or \"mt5\", got " + mt->Serialize());
    }
  }
  if (const JsonValue* ed = root.Find("is_encoder_decoder");
      ed != nullptr && ed->is_bool() && !ed->bool_value()) {
    return InvalidArgumentError("is_encoder_decoder is false: softserve serves T5 encoder-decoders");
  }
  T5Config c;
  SOFTSERVE_RETURN_IF_ERROR(ReadInt(root, "vocab_size", 2, &c.vocab_size));
  SOFTSERVE_RETURN_IF_ERROR(ReadInt(root, "d_model", 1, &c.d_model));
  SOFTSERVE_RETURN_IF_ERROR(ReadInt(root, "d_kv", 1, &c.d_kv));
  SOFTSERVE_RETURN_IF_ERROR(ReadInt(root, "d_ff", 1, &c.d_ff));
  SOFTSERVE_RETURN_IF_ERROR(ReadInt(root, "num_heads", 1, &c.num_heads));
  SOFTSERVE_RETURN_IF_ERROR(ReadInt(root, "num_layers", 1, &c.num_layers));
  c.num_decoder_layers = c.num_layers;  // HF: None -> num_layers
  SOFTSERVE_RETURN_IF_ERROR(ReadInt(root, "num_decoder_layers", 1, &c.num_decoder_layers));
  SOFTSERVE_RETURN_IF_ERROR(
      ReadInt(root, "relative_attention_num_buckets", 2, &c.relative_attention_num_buckets));
  SOFTSERVE_RETURN_IF_ERROR(
      ReadInt(root, "relative_attention_max_distance", 1, &c.relative_attention_max_distance));
  SOFTSERVE_RETURN_IF_ERROR(ReadInt(root, "pad_token_id", 0, &c.pad_token_id));
  SOFTSERVE_RETURN_IF_ERROR(ReadInt(root, "eos_token_id", 0, &c.eos_token_id));
  c.decoder_start_token_id = c.pad_token_id;  // T5 starts decoding from pad
  SOFTSERVE_RETURN_IF_ERROR(ReadInt(root, "decoder_start_token_id", 0, &c.decoder_start_token_id));

  if (c.relative_attention_num_buckets % 4 != 0) {
    // Bidirectional buckets split NB in two halves, each with an exact and a log part.
    return InvalidArgumentError("relative_attention_num_buckets must be a multiple of 4, got " +
                                std::to_string(c.relative_attention_num_buckets));
  }
  if (c.relative_attention_max_distance <= c.relative_attention_num_buckets / 4) {
    return InvalidArgumentError("relative_attention_max_distance must exceed num_buckets/4");
  }
  for (int64_t id : {c.pad_token_id, c.eos_token_id, c.decoder_start_token_id}) {
    if (id >= c.vocab_size) {
      return InvalidArgumentError("special token id " + std::to_string(id) +
                                  " is outside the vocabulary of " + std::to_string(c.vocab_size));
    }
  }
  if (const JsonValue* eps = root.Find("layer_norm_epsilon"); eps != nullptr && !eps->is_null()) {
    if (!eps->is_number() || !(eps->number() > 0) || eps->number() > 1) {
      return InvalidArgumentError("'layer_norm_epsilon' must be a number in (0, 1]");
    }
    c.layer_norm_epsilon = eps->number();
  }
  if (const JsonValue* tie = root.Find("tie_word_embeddings"); tie != nullptr && !tie->is_null()) {
    if (!tie->is_bool()) return InvalidArgumentError("'tie_word_embeddings' must be a boolean");
    c.tie_word_embeddings = tie->bool_value();
  }
  if (const JsonValue* ff = root.Find("feed_forward_proj"); ff != nullptr && !ff->is_null()) {
    if (!ff->is_string()) return InvalidArgumentError("'feed_forward_proj' must be a string");
    const std::string& s = ff->string_value();
    // HF: "gated-<act>" or "<act>"; "gated-gelu" is special-cased to gelu_new.
    std::string act = s;
    if (s.rfind("gated-", 0) == 0) {
      c.gated = true;
      act = s.substr(6);
    }
    if (act == "relu") c.activation = Activation::kRelu;
    else if (act == "gelu_new" || s == "gated-gelu") c.activation = Activation::kGeluNew;
    else if (act == "gelu") c.activation = Activation::kGelu;
    else {
      return InvalidArgumentError("unsupported feed_forward_proj \"" + s +
                                  "\" (expected [gated-]relu, [gated-]gelu or [gated-]gelu_new)");
    }
  }
  return c;
}

StatusOr<T5Config> LoadT5Config(const std::string& path) {
  SOFTSERVE_ASSIGN_OR_RETURN(std::string text, ReadFileToString(path, 16u << 20));
  auto config = ParseT5Config(text);
  if (!config.ok()) return config.status().WithPrefix(path);
  return config;
}

std::string T5ConfigToJson(const T5Config& c) {
  JsonValue root = JsonValue::MakeObject();
  JsonValue arch = JsonValue::MakeArray();
  arch.mutable_array().push_back(JsonValue::String("T5ForConditionalGeneration"));
  root.Add("architectures", std::move(arch));
  root.Add("d_ff", JsonValue::Int(c.d_ff));
  root.Add("d_kv", JsonValue::Int(c.d_kv));
  root.Add("d_model", JsonValue::Int(c.d_model));
  root.Add("decoder_start_token_id", JsonValue::Int(c.decoder_start_token_id));
  root.Add("eos_token_id", JsonValue::Int(c.eos_token_id));
  std::string act = c.activation == Activation::kRelu      ? "relu"
                    : c.activation == Activation::kGelu    ? "gelu"
                    : c.gated                              ? "gelu"  // gated-gelu means gelu_new
                                                           : "gelu_new";
  root.Add("feed_forward_proj", JsonValue::String(c.gated ? "gated-" + act : act));
  root.Add("is_encoder_decoder", JsonValue::Bool(true));
  root.Add("layer_norm_epsilon", JsonValue::Number(c.layer_norm_epsilon));
  root.Add("model_type", JsonValue::String("t5"));
  root.Add("num_decoder_layers", JsonValue::Int(c.num_decoder_layers));
  root.Add("num_heads", JsonValue::Int(c.num_heads));
  root.Add("num_layers", JsonValue::Int(c.num_layers));
  root.Add("pad_token_id", JsonValue::Int(c.pad_token_id));
  root.Add("relative_attention_max_distance", JsonValue::Int(c.relative_attention_max_distance));
  root.Add("relative_attention_num_buckets", JsonValue::Int(c.relative_attention_num_buckets));
  root.Add("tie_word_embeddings", JsonValue::Bool(c.tie_word_embeddings));
  root.Add("vocab_size", JsonValue::Int(c.vocab_size));
  return root.Serialize();
}

}  // namespace softserve::core
