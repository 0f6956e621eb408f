#include "core/model/t5_weights.h"

#include <ATen/ATen.h>

#include <map>
#include <memory>

#include "core/common/file_util.h"
#include "core/common/json.h"
#include "core/model/cpu_gemm.h"
#include "core/model/safetensors.h"
#include "core/model/tensor_convert.h"

namespace softserve::core {
namespace {

// All tensors of a (possibly sharded) checkpoint, by HF name.
class CheckpointReader {
 public:
  static StatusOr<std::unique_ptr<CheckpointReader>> Open(const std::string& dir);

  // Returns the first of `names` present, converted and shape-checked; InvalidArgument naming
  // the tensor and file otherwise.
  StatusOr<at::Tensor> Get(const std::vector<std::string>& names,
                           const std::vector<int64_t>& shape, const c10::TensorOptions& options);
  bool Has(const std::string& name) const { return names_.count(name) > 0; }

 private:
  Status AddFile(const std::string& path);

  std::string dir_;
  std::vector<std::unique_ptr<SafetensorsFile>> files_;
  std::map<std::string, std::pair<const SafetensorsFile*, const TensorView*>> names_;
};

Status CheckShardName(const std::string& name, const std::string& index_path) {
  if (name.empty() || name.find('/') != std::string::npos || name == "." || name == ".." ||
      name.find('\0') != std::string::npos) {
    return InvalidArgumentError(index_path + ": shard name \"" + name +
                                "\" must be a plain file name inside the checkpoint directory");
  }
  return OkStatus();
}

std::string ShapeString(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

StatusOr<std::unique_ptr<CheckpointReader>> CheckpointReader::Open(const std::string& dir) {
  auto reader = std::make_unique<CheckpointReader>();
  reader->dir_ = dir;
  const std::string single = JoinPath(dir, "model.safetensors");
  const std::string index = JoinPath(dir, "model.safetensors.index.json");
  if (PathExists(single)) {
    SOFTSERVE_RETURN_IF_ERROR(reader->AddFile(single));
    return reader;
  }
  if (!PathExists(index)) {
    if (PathExists(JoinPath(dir, "pytorch_model.bin"))) {
      return NotFoundError(dir + " holds only pytorch_model.bin; softserve reads safetensors "
                           "checkpoints (model.safetensors or model.safetensors.index.json). "
                           "Convert it with transformers' save_pretrained(safe_serialization=True)");
    }
    return NotFoundError("no model.safetensors or model.safetensors.index.json in " + dir);
  }
  SOFTSERVE_ASSIGN_OR_RETURN(std::string text, ReadFileToString(index, 64u << 20));
  auto json = ParseJson(text);
  if (!json.ok()) return json.status().WithPrefix(index);
  const JsonValue* map = json->Find("weight_map");
  if (map == nullptr || !map->is_object()) {
    return InvalidArgumentError(index + ": missing object \"weight_map\"");
  }
  std::map<std::string, bool> shards;
  for (const auto& [tensor, shard] : map->object()) {
    if (!shard.is_string()) {
      return InvalidArgumentError(index + ": shard of tensor '" + tensor + "' is not a string");
    }
    SOFTSERVE_RETURN_IF_ERROR(CheckShardName(shard.string_value(), index));
    shards[shard.string_value()] = true;
  }
  for (const auto& [shard, unused] : shards) {
    SOFTSERVE_RETURN_IF_ERROR(reader->AddFile(JoinPath(dir, shard)));
  }
  // The index must agree with the shards' contents for every tensor it lists.
  for (const auto& [tensor, shard] : map->object()) {
    auto it = reader->names_.find(tensor);
    if (it == reader->names_.end() || it->second.first->path() != JoinPath(dir, shard.string_value())) {
      return DataLossError(index + " places tensor '" + tensor + "' in " + shard.string_value() +
                           ", but that shard does not hold it");
    }
  }
  return reader;
}

Status CheckpointReader::AddFile(const std::string& path) {
  SOFTSERVE_ASSIGN_OR_RETURN(auto file, SafetensorsFile::Open(path));
  for (const TensorView& view : file->contents().tensors()) {
    auto [it, inserted] = names_.emplace(view.name, std::make_pair(file.get(), &view));
    if (!inserted) {
      return InvalidArgumentError("tensor '" + view.name + "' appears in both " +
                                  it->second.first->path() + " and " + path);
    }
  }
  files_.push_back(std::move(file));
  return OkStatus();
}

StatusOr<at::Tensor> CheckpointReader::Get(const std::vector<std::string>& names,
                                           const std::vector<int64_t>& shape,
                                           const c10::TensorOptions& options) {
  for (const std::string& name : names) {
    auto it = names_.find(name);
    if (it == names_.end()) continue;
    const auto& [file, view] = it->second;
    if (view->shape != shape) {
      return InvalidArgumentError(file->path() + ": tensor '" + name + "' has shape " +
                                  view->ShapeString() + ", the config needs " + ShapeString(shape));
    }
    return FloatTensorFromView(*view, options, file->path());
  }
  std::string msg = "checkpoint " + dir_ + " has no tensor '" + names[0] + "'";
  if (names.size() > 1) {
    msg += " (nor its aliases";
    for (size_t i = 1; i < names.size(); ++i) msg += " '" + names[i] + "'";
    msg += ")";
  }
  return InvalidArgumentError(msg);
}

}  // namespace

StatusOr<T5Weights> LoadT5Weights(const std::string& dir, const T5Config& c,
                                  const ModelOptions& options) {
  SOFTSERVE_RETURN_IF_ERROR(CheckDeviceAvailable(options.device));
  SOFTSERVE_ASSIGN_OR_RETURN(auto reader, CheckpointReader::Open(dir));
  const c10::TensorOptions topt = ToTensorOptions(options);
  const int64_t d = c.d_model, inner = c.inner_dim(), f = c.d_ff;
  const int64_t nb = c.relative_attention_num_buckets, h = c.num_heads;
  auto get = [&](const std::string& name, std::vector<int64_t> shape) {
    return reader->Get({name}, shape, topt);
  };
  const StatusOr<CpuGemm> gemm = ResolveCpuGemm(options.cpu_gemm);
  const bool pack = options.device.kind == DeviceKind::kCpu && options.dtype == DType::kFloat32 && gemm.ok() &&
                    gemm.value() == CpuGemm::kPacked;
  // out_in: HF's [out, in] layout; the projection holds it as [in, out].
  auto projection = [pack](const at::Tensor& out_in) {
    Projection p;
    if (pack) {
      p.packed = PackedMatrix::Pack(out_in.t());
    } else {
      p.wt = out_in.t().contiguous();
    }
    return p;
  };

  try {
    T5Weights w;
    SOFTSERVE_ASSIGN_OR_RETURN(
        w.embedding, reader->Get({"shared.weight", "encoder.embed_tokens.weight",
                                  "decoder.embed_tokens.weight"},
                                 {c.vocab_size, d}, topt));
    if (c.tie_word_embeddings) {
      w.lm_head = projection(w.embedding);
    } else {
      SOFTSERVE_ASSIGN_OR_RETURN(at::Tensor head, get("lm_head.weight", {c.vocab_size, d}));
      w.lm_head = projection(head);
    }

    auto load_self_attention = [&](const std::string& p) -> StatusOr<SelfAttentionWeights> {
      SelfAttentionWeights a;
      SOFTSERVE_ASSIGN_OR_RETURN(at::Tensor q, get(p + ".q.weight", {inner, d}));
      SOFTSERVE_ASSIGN_OR_RETURN(at::Tensor k, get(p + ".k.weight", {inner, d}));
      SOFTSERVE_ASSIGN_OR_RETURN(at::Tensor v, get(p + ".v.weight", {inner, d}));
      SOFTSERVE_ASSIGN_OR_RETURN(at::Tensor o, get(p + ".o.weight", {d, inner}));
      a.qkv = projection(at::cat({q, k, v}, 0));
      a.o = projection(o);
      return a;
    };
    auto load_feed_forward = [&](const std::string& p) -> StatusOr<FeedForwardWeights> {
      FeedForwardWeights ff;
      if (c.gated) {
        SOFTSERVE_ASSIGN_OR_RETURN(at::Tensor wi0, get(p + ".wi_0.weight", {f, d}));
        SOFTSERVE_ASSIGN_OR_RETURN(at::Tensor wi1, get(p + ".wi_1.weight", {f, d}));
        ff.wi = projection(at::cat({wi0, wi1}, 0));
      } else {
        SOFTSERVE_ASSIGN_OR_RETURN(at::Tensor wi, get(p + ".wi.weight", {f, d}));
        ff.wi = projection(wi);
      }
      SOFTSERVE_ASSIGN_OR_RETURN(at::Tensor wo, get(p + ".wo.weight", {d, f}));
      ff.wo = projection(wo);
      return ff;
    };

    for (int64_t i = 0; i < c.num_layers; ++i) {
      const std::string p = "encoder.block." + std::to_string(i) + ".layer.";
      EncoderLayerWeights l;
      SOFTSERVE_ASSIGN_OR_RETURN(l.attention_norm, get(p + "0.layer_norm.weight", {d}));
      SOFTSERVE_ASSIGN_OR_RETURN(l.attention, load_self_attention(p + "0.SelfAttention"));
      SOFTSERVE_ASSIGN_OR_RETURN(l.feed_forward_norm, get(p + "1.layer_norm.weight", {d}));
      SOFTSERVE_ASSIGN_OR_RETURN(l.feed_forward, load_feed_forward(p + "1.DenseReluDense"));
      w.encoder.push_back(std::move(l));
    }
    std::vector<at::Tensor> cross_kv;
    for (int64_t j = 0; j < c.num_decoder_layers; ++j) {
      const std::string p = "decoder.block." + std::to_string(j) + ".layer.";
      DecoderLayerWeights l;
      SOFTSERVE_ASSIGN_OR_RETURN(l.self_attention_norm, get(p + "0.layer_norm.weight", {d}));
      SOFTSERVE_ASSIGN_OR_RETURN(l.self_attention, load_self_attention(p + "0.SelfAttention"));
      SOFTSERVE_ASSIGN_OR_RETURN(l.cross_attention_norm, get(p + "1.layer_norm.weight", {d}));
      SOFTSERVE_ASSIGN_OR_RETURN(at::Tensor cq, get(p + "1.EncDecAttention.q.weight", {inner, d}));
      l.cross_attention.q = projection(cq);
      SOFTSERVE_ASSIGN_OR_RETURN(at::Tensor k, get(p + "1.EncDecAttention.k.weight", {inner, d}));
      SOFTSERVE_ASSIGN_OR_RETURN(at::Tensor v, get(p + "1.EncDecAttention.v.weight", {inner, d}));
      SOFTSERVE_ASSIGN_OR_RETURN(at::Tensor co, get(p + "1.EncDecAttention.o.weight", {d, inner}));
      l.cross_attention.o = projection(co);
      cross_kv.push_back(k);
      cross_kv.push_back(v);
      SOFTSERVE_ASSIGN_OR_RETURN(l.feed_forward_norm, get(p + "2.layer_norm.weight", {d}));
      SOFTSERVE_ASSIGN_OR_RETURN(l.feed_forward, load_feed_forward(p + "2.DenseReluDense"));
      w.decoder.push_back(std::move(l));
    }
    w.cross_kv = projection(at::cat(cross_kv, 0));
    SOFTSERVE_ASSIGN_OR_RETURN(
        w.encoder_relative_bias,
        get("encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight", {nb, h}));
    SOFTSERVE_ASSIGN_OR_RETURN(
        w.decoder_relative_bias,
        get("decoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight", {nb, h}));
    SOFTSERVE_ASSIGN_OR_RETURN(w.encoder_final_norm, get("encoder.final_layer_norm.weight", {d}));
    SOFTSERVE_ASSIGN_OR_RETURN(w.decoder_final_norm, get("decoder.final_layer_norm.weight", {d}));
    return w;
  } catch (const c10::Error& e) {
    // Out of device memory while placing weights is the one failure torch reports this way.
    return ResourceExhaustedError("loading " + dir + " onto " + options.device.ToString() +
                                  " failed: " + e.what_without_backtrace());
  }
}

}  // namespace softserve::core
