#include "core/prompts/prompt_formats.h"

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>

#include <cmath>
#include <cstring>
#include <limits>

#include "core/common/file_util.h"
#include "core/common/json.h"
#include "core/common/status.h"
#include "core/model/safetensors.h"
#include "core/model/tensor_convert.h"

namespace softserve::core {
namespace {

std::string Str(int64_t v) { return std::to_string(v); }

StatusOr<SafetensorsContents> ParseBytes(std::string_view bytes, const std::string& what,
                                         const PromptLimits& limits) {
  if (static_cast<int64_t>(bytes.size()) > limits.max_file_bytes) {
    return ResourceExhaustedError(what + " is " + Str(bytes.size()) + " bytes, over the limit of " +
                                  Str(limits.max_file_bytes) + " (max_upload_bytes)");
  }
  SafetensorsLimits st;
  st.max_header_bytes = 1 << 20;
  st.max_tensors = 64;
  auto contents = SafetensorsContents::Parse(reinterpret_cast<const uint8_t*>(bytes.data()),
                                             bytes.size(), what, st);
  // A truncated upload is the client's bad input, not data loss on our side.
  if (!contents.ok() && contents.status().code() == StatusCode::kDataLoss) {
    return InvalidArgumentError(contents.status().message());
  }
  return contents;
}

// Float32 copy of a floating view with the expected shape (-1 = any).
StatusOr<at::Tensor> FloatTensor(const SafetensorsContents& c, const std::string& name,
                                 std::vector<int64_t> shape, const std::string& what) {
  const TensorView* v = c.Find(name);
  if (v == nullptr) return InvalidArgumentError(what + " has no tensor " + QuoteForMessage(name));
  bool ok = v->shape.size() == shape.size();
  for (size_t i = 0; ok && i < shape.size(); ++i) ok = shape[i] < 0 || shape[i] == v->shape[i];
  if (!ok) {
    std::string want = "[";
    for (size_t i = 0; i < shape.size(); ++i) want += (i ? ", " : "") + (shape[i] < 0 ? std::string("*") : Str(shape[i]));
    return InvalidArgumentError(what + ": tensor " + QuoteForMessage(name) + " has shape " + v->ShapeString() +
                                ", expected " + want + "]");
  }
  return FloatTensorFromView(*v, at::TensorOptions().dtype(at::kFloat), what);
}

PromptMatrix ToMatrix(const at::Tensor& t, PromptFormat format, std::string note) {
  at::Tensor c = t.to(at::kFloat).contiguous();
  PromptMatrix m;
  m.rows = c.size(0);
  m.dim = c.size(1);
  m.values.assign(c.data_ptr<float>(), c.data_ptr<float>() + c.numel());
  m.format = format;
  m.note = std::move(note);
  return m;
}

float DTypeMax(DType dtype) {
  switch (dtype) {
    case DType::kFloat32: return std::numeric_limits<float>::max();
    case DType::kBFloat16: return 3.3895313892515355e38f;  // largest finite bfloat16
    case DType::kFloat16: return 65504.0f;
  }
  return std::numeric_limits<float>::max();
}

}  // namespace

Status ValidatePromptMatrix(const PromptMatrix& m, const PromptLimits& limits) {
  if (m.dim != limits.d_model) {
    return InvalidArgumentError("prompt width is " + Str(m.dim) + " but the model's d_model is " +
                                Str(limits.d_model) + "; a prompt must be [rows, " +
                                Str(limits.d_model) + "]");
  }
  if (m.rows < 1 || m.rows > limits.max_rows) {
    return InvalidArgumentError("prompt has " + Str(m.rows) + " rows; allowed 1.." + Str(limits.max_rows));
  }
  const float max = DTypeMax(limits.serving_dtype);
  for (size_t i = 0; i < m.values.size(); ++i) {
    const float v = m.values[i];
    if (!std::isfinite(v)) {
      return InvalidArgumentError("prompt value at row " + Str(i / m.dim) + ", column " +
                                  Str(i % m.dim) + " is not finite (NaN or Inf)");
    }
    // Rounding to the serving dtype must not overflow to Inf either.
    if (std::fabs(v) > max) {
      return InvalidArgumentError("prompt value " + std::to_string(v) + " at row " + Str(i / m.dim) +
                                  " overflows to Inf in " + DTypeName(limits.serving_dtype));
    }
    if (std::fabs(v) > limits.max_abs_value) {
      return InvalidArgumentError("prompt value " + std::to_string(v) + " at row " + Str(i / m.dim) + ", column " +
                                  Str(i % m.dim) + " is beyond +-" + std::to_string(limits.max_abs_value) +
                                  " (max_prompt_abs_value): soft prompts live on the scale of the embedding table");
    }
  }
  return OkStatus();
}

StatusOr<PromptMatrix> ParseRawPrompt(std::string_view bytes, const PromptLimits& limits) {
  SOFTSERVE_ASSIGN_OR_RETURN(auto contents, ParseBytes(bytes, "raw prompt", limits));
  if (contents.tensors().size() != 1) {
    return InvalidArgumentError("a raw prompt file must hold exactly one tensor, found " +
                                Str(contents.tensors().size()));
  }
  const TensorView& v = contents.tensors()[0];
  if (v.shape.size() != 2) {
    return InvalidArgumentError("raw prompt tensor " + QuoteForMessage(v.name, 100) + " has shape " + v.ShapeString() +
                                "; expected 2-D [rows, d_model]");
  }
  c10::InferenceMode guard;
  SOFTSERVE_ASSIGN_OR_RETURN(at::Tensor t, FloatTensor(contents, v.name, {-1, -1}, "raw prompt"));
  PromptMatrix m = ToMatrix(t, PromptFormat::kRaw, "");
  SOFTSERVE_RETURN_IF_ERROR(ValidatePromptMatrix(m, limits));
  return m;
}

StatusOr<PromptMatrix> ParsePeftPrompt(std::string_view config_json, std::string_view bytes,
                                       const PromptLimits& limits) {
  auto json = ParseJson(config_json, JsonParseLimits{16, 1 << 20});
  if (!json.ok()) return json.status().WithPrefix("adapter_config.json");
  if (!json->is_object()) return InvalidArgumentError("adapter_config.json is not a JSON object");
  const JsonValue* type = json->Find("peft_type");
  if (type == nullptr || !type->is_string()) {
    return InvalidArgumentError("adapter_config.json has no string 'peft_type'");
  }
  const std::string& peft_type = type->string_value();
  if (peft_type != "PROMPT_TUNING" && peft_type != "P_TUNING") {
    return InvalidArgumentError("peft_type " + QuoteForMessage(peft_type, 40) + " is not served: softserve serves soft "
                                "prompts (PROMPT_TUNING, P_TUNING); LoRA and prefix tuning change "
                                "the model's weights or every layer");
  }
  const JsonValue* n_json = json->Find("num_virtual_tokens");
  if (n_json == nullptr || !n_json->is_int() || n_json->int_value() < 1) {
    return InvalidArgumentError("adapter_config.json: 'num_virtual_tokens' must be a positive integer");
  }
  const int64_t n = n_json->int_value();
  const JsonValue* dim_json = json->Find("token_dim");
  if (dim_json != nullptr && !dim_json->is_null()) {
    if (!dim_json->is_int()) return InvalidArgumentError("adapter_config.json: 'token_dim' must be an integer");
    if (dim_json->int_value() != limits.d_model) {
      return InvalidArgumentError("adapter token_dim is " + Str(dim_json->int_value()) +
                                  " but the model's d_model is " + Str(limits.d_model) +
                                  " (was it trained for another base model?)");
    }
  }
  const JsonValue* task = json->Find("task_type");
  if (task == nullptr || !task->is_string() || task->string_value() != "SEQ_2_SEQ_LM") {
    const std::string found = task == nullptr || task->is_null() ? "none" : task->is_string() ? task->string_value() : "not a string";
    return InvalidArgumentError("adapter_config.json: task_type is " + QuoteForMessage(found) +
                                "; softserve serves T5 encoder-decoder prompts, trained with task_type "
                                "SEQ_2_SEQ_LM (a CAUSAL_LM or classification prompt was trained for another "
                                "kind of model)");
  }
  int64_t submodules = 2;  // PEFT's default for seq2seq when the field is null
  if (const JsonValue* s = json->Find("num_transformer_submodules"); s != nullptr && !s->is_null()) {
    if (!s->is_int() || s->int_value() < 1 || s->int_value() > 2) {
      return InvalidArgumentError("adapter_config.json: 'num_transformer_submodules' must be 1 or 2");
    }
    submodules = s->int_value();
  }
  SOFTSERVE_ASSIGN_OR_RETURN(auto contents, ParseBytes(bytes, "adapter_model.safetensors", limits));
  c10::InferenceMode guard;
  SOFTSERVE_ASSIGN_OR_RETURN(
      at::Tensor table,
      FloatTensor(contents, "prompt_embeddings", {n * submodules, limits.d_model},
                  "adapter_model.safetensors"));
  std::string note = "PEFT " + peft_type + ": " + Str(table.size(0)) + " rows stored (" + Str(n) +
                     " virtual tokens x " + Str(submodules) + " submodules), first " + Str(n) +
                     " used as the encoder prompt";
  if (submodules == 2) {
    note += "; PEFT <= 0.3 also fed rows " + Str(n) + ".. to the decoder, which softserve does "
            "not (served as encoder-only, as PEFT >= 0.4 does)";
  }
  if (const JsonValue* v = json->Find("peft_version"); v != nullptr && v->is_string()) {
    note += "; peft_version " + v->string_value();
  }
  PromptMatrix m = ToMatrix(table.narrow(0, 0, n), PromptFormat::kPeft, note);
  SOFTSERVE_RETURN_IF_ERROR(ValidatePromptMatrix(m, limits));
  return m;
}

StatusOr<PromptMatrix> ParseResidualPrompt(std::string_view bytes, const PromptLimits& limits) {
  SOFTSERVE_ASSIGN_OR_RETURN(auto contents, ParseBytes(bytes, "residual prompt", limits));
  const std::string what = "residual prompt";
  const int64_t d = limits.d_model;
  c10::InferenceMode guard;
  SOFTSERVE_ASSIGN_OR_RETURN(at::Tensor p, FloatTensor(contents, "prompt", {-1, d}, what));
  SOFTSERVE_ASSIGN_OR_RETURN(at::Tensor down_w, FloatTensor(contents, "mlp.down.weight", {-1, d}, what));
  const int64_t b = down_w.size(0);
  if (b < 1) return InvalidArgumentError("residual prompt: bottleneck width must be >= 1");
  SOFTSERVE_ASSIGN_OR_RETURN(at::Tensor down_b, FloatTensor(contents, "mlp.down.bias", {b}, what));
  SOFTSERVE_ASSIGN_OR_RETURN(at::Tensor up_w, FloatTensor(contents, "mlp.up.weight", {d, b}, what));
  SOFTSERVE_ASSIGN_OR_RETURN(at::Tensor up_b, FloatTensor(contents, "mlp.up.bias", {d}, what));
  SOFTSERVE_ASSIGN_OR_RETURN(at::Tensor norm_w, FloatTensor(contents, "mlp.norm.weight", {d}, what));
  SOFTSERVE_ASSIGN_OR_RETURN(at::Tensor norm_b, FloatTensor(contents, "mlp.norm.bias", {d}, what));
  for (const at::Tensor* t : {&p, &down_w, &down_b, &up_w, &up_b, &norm_w, &norm_b}) {
    if (!at::isfinite(*t).all().item<bool>()) {
      return InvalidArgumentError("residual prompt: a tensor holds NaN or Inf values");
    }
  }
  // P' = P + LayerNorm(W_up ReLU(W_down P + b_down) + b_up), one MLP shared by all rows.
  at::Tensor u = at::linear(at::relu(at::linear(p, down_w, down_b)), up_w, up_b);
  at::Tensor folded = p + at::layer_norm(u, {d}, norm_w, norm_b, 1e-5);
  PromptMatrix m = ToMatrix(folded, PromptFormat::kResidual,
                            "residual reparameterization folded at upload (bottleneck " + Str(b) + ")");
  SOFTSERVE_RETURN_IF_ERROR(ValidatePromptMatrix(m, limits));
  return m;
}

StatusOr<PromptMatrix> LoadPromptFromPath(const std::string& path, const PromptLimits& limits) {
  if (!PathExists(path)) return NotFoundError("prompt path '" + path + "' does not exist");
  if (IsDirectory(path)) {
    const std::string config = JoinPath(path, "adapter_config.json");
    const std::string weights = JoinPath(path, "adapter_model.safetensors");
    if (!PathExists(config)) {
      return InvalidArgumentError(path + " is a directory without adapter_config.json (expected a "
                                  "PEFT adapter directory)");
    }
    if (!PathExists(weights)) {
      if (PathExists(JoinPath(path, "adapter_model.bin"))) {
        return InvalidArgumentError(path + " holds only adapter_model.bin (a torch pickle); save the "
                                    "adapter with safe_serialization=True to get adapter_model.safetensors");
      }
      return InvalidArgumentError(path + " has no adapter_model.safetensors");
    }
    SOFTSERVE_ASSIGN_OR_RETURN(std::string cfg, ReadFileToString(config, 1 << 20));
    SOFTSERVE_ASSIGN_OR_RETURN(std::string bytes, ReadFileToString(weights, limits.max_file_bytes));
    return ParsePeftPrompt(cfg, bytes, limits);
  }
  SOFTSERVE_ASSIGN_OR_RETURN(std::string bytes, ReadFileToString(path, limits.max_file_bytes));
  SOFTSERVE_ASSIGN_OR_RETURN(auto contents, ParseBytes(bytes, path, limits));
  if (contents.Find("mlp.down.weight") != nullptr) return ParseResidualPrompt(bytes, limits);
  return ParseRawPrompt(bytes, limits);
}

}  // namespace softserve::core
