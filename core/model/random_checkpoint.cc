#include "core/model/random_checkpoint.h"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <c10/core/InferenceMode.h>

#include <cmath>
#include <cstdio>

#include "core/common/file_util.h"
#include "core/common/json.h"

namespace softserve::core {
namespace {

c10::ScalarType TorchType(SafetensorsDtype d) {
  switch (d) {
    case SafetensorsDtype::kF16: return at::kHalf;
    case SafetensorsDtype::kBF16: return at::kBFloat16;
    default: return at::kFloat;
  }
}

std::string ShardName(int i, int n) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "model-%05d-of-%05d.safetensors", i, n);
  return buf;
}

}  // namespace

Status WriteRandomT5Checkpoint(const T5Config& c, const std::string& dir,
                               const RandomCheckpointOptions& options) {
  if (options.shards < 1 || options.shards > 1000) return InvalidArgumentError("shards must be in 1..1000");
  if (options.dtype != SafetensorsDtype::kF32 && options.dtype != SafetensorsDtype::kF16 &&
      options.dtype != SafetensorsDtype::kBF16) {
    return InvalidArgumentError("dtype must be F32, F16 or BF16");
  }
  SOFTSERVE_RETURN_IF_ERROR(MakeDirectories(dir));
  c10::InferenceMode guard;
  at::Generator gen = at::detail::createCPUGenerator(options.seed);
  const double d = static_cast<double>(c.d_model), kv = static_cast<double>(c.d_kv);
  const int64_t inner = c.inner_dim();
  std::vector<TensorToWrite> tensors;
  auto add = [&](const std::string& name, std::vector<int64_t> shape, double std_dev) {
    at::Tensor t = std_dev > 0 ? at::randn(shape, gen) * std_dev : at::ones(shape);
    t = t.to(TorchType(options.dtype)).contiguous();
    TensorToWrite w;
    w.name = name;
    w.dtype = options.dtype;
    w.shape = std::move(shape);
    w.bytes.assign(static_cast<const char*>(t.data_ptr()), t.numel() * t.element_size());
    tensors.push_back(std::move(w));
  };
  // HF's T5 initialisation with initializer_factor 1.
  add("shared.weight", {c.vocab_size, c.d_model}, 1.0);
  auto attention = [&](const std::string& p, bool bias) {
    add(p + ".q.weight", {inner, c.d_model}, 1.0 / std::sqrt(d * kv));
    add(p + ".k.weight", {inner, c.d_model}, 1.0 / std::sqrt(d));
    add(p + ".v.weight", {inner, c.d_model}, 1.0 / std::sqrt(d));
    add(p + ".o.weight", {c.d_model, inner}, 1.0 / std::sqrt(static_cast<double>(inner)));
    if (bias) add(p + ".relative_attention_bias.weight", {c.relative_attention_num_buckets, c.num_heads}, 1.0 / std::sqrt(d));
  };
  auto feed_forward = [&](const std::string& p) {
    if (c.gated) {
      add(p + ".wi_0.weight", {c.d_ff, c.d_model}, 1.0 / std::sqrt(d));
      add(p + ".wi_1.weight", {c.d_ff, c.d_model}, 1.0 / std::sqrt(d));
    } else {
      add(p + ".wi.weight", {c.d_ff, c.d_model}, 1.0 / std::sqrt(d));
    }
    add(p + ".wo.weight", {c.d_model, c.d_ff}, 1.0 / std::sqrt(static_cast<double>(c.d_ff)));
  };
  for (int64_t i = 0; i < c.num_layers; ++i) {
    const std::string p = "encoder.block." + std::to_string(i) + ".layer.";
    attention(p + "0.SelfAttention", i == 0);
    add(p + "0.layer_norm.weight", {c.d_model}, 0);
    feed_forward(p + "1.DenseReluDense");
    add(p + "1.layer_norm.weight", {c.d_model}, 0);
  }
  add("encoder.final_layer_norm.weight", {c.d_model}, 0);
  for (int64_t j = 0; j < c.num_decoder_layers; ++j) {
    const std::string p = "decoder.block." + std::to_string(j) + ".layer.";
    attention(p + "0.SelfAttention", j == 0);
    add(p + "0.layer_norm.weight", {c.d_model}, 0);
    attention(p + "1.EncDecAttention", false);
    add(p + "1.layer_norm.weight", {c.d_model}, 0);
    feed_forward(p + "2.DenseReluDense");
    add(p + "2.layer_norm.weight", {c.d_model}, 0);
  }
  add("decoder.final_layer_norm.weight", {c.d_model}, 0);
  if (!c.tie_word_embeddings) add("lm_head.weight", {c.vocab_size, c.d_model}, 1.0);
  if (options.write_aliases) {
    for (const char* alias : {"encoder.embed_tokens.weight", "decoder.embed_tokens.weight"}) {
      TensorToWrite copy = tensors[0];
      copy.name = alias;
      tensors.push_back(std::move(copy));
    }
  }

  // config.json, marked as random.
  auto config_json = ParseJson(T5ConfigToJson(c));
  if (!config_json.ok()) return config_json.status();
  config_json->Add("softserve_random_weights", JsonValue::Bool(true));
  SOFTSERVE_RETURN_IF_ERROR(WriteFileDurably(JoinPath(dir, "config.json"), config_json->Serialize()));

  const std::map<std::string, std::string> metadata = {{"format", "pt"}};
  if (options.shards == 1) {
    SOFTSERVE_ASSIGN_OR_RETURN(std::string bytes, SerializeSafetensors(tensors, metadata));
    return WriteFileDurably(JoinPath(dir, "model.safetensors"), bytes);
  }
  // Sharded: contiguous groups of tensors, one file each, plus the index.
  JsonValue weight_map = JsonValue::MakeObject();
  size_t total = 0;
  for (const auto& t : tensors) total += t.bytes.size();
  const size_t per_shard = (tensors.size() + options.shards - 1) / options.shards;
  for (int s = 0; s < options.shards; ++s) {
    const size_t begin = s * per_shard, end = std::min(tensors.size(), begin + per_shard);
    std::vector<TensorToWrite> group(tensors.begin() + std::min(begin, tensors.size()),
                                     tensors.begin() + end);
    const std::string name = ShardName(s + 1, options.shards);
    for (const auto& t : group) weight_map.Add(t.name, JsonValue::String(name));
    SOFTSERVE_ASSIGN_OR_RETURN(std::string bytes, SerializeSafetensors(group, metadata));
    SOFTSERVE_RETURN_IF_ERROR(WriteFileDurably(JoinPath(dir, name), bytes));
  }
  JsonValue index = JsonValue::MakeObject();
  JsonValue meta = JsonValue::MakeObject();
  meta.Add("total_size", JsonValue::Int(static_cast<int64_t>(total)));
  index.Add("metadata", std::move(meta));
  index.Add("weight_map", std::move(weight_map));
  return WriteFileDurably(JoinPath(dir, "model.safetensors.index.json"), index.Serialize());
}

bool IsRandomCheckpoint(const std::string& dir) {
  auto text = ReadFileToString(JoinPath(dir, "config.json"), 16 << 20);
  if (!text.ok()) return false;
  auto json = ParseJson(*text);
  if (!json.ok()) return false;
  const JsonValue* flag = json->Find("softserve_random_weights");
  return flag != nullptr && flag->is_bool() && flag->bool_value();
}

}  // namespace softserve::core
