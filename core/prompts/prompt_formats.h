// Parsers that turn what a tenant uploads into the one matrix softserve serves, P [rows, dim]:
//
//  raw       a safetensors file holding exactly one 2-D floating tensor (any name);
//  PEFT      Hugging Face PEFT prompt tuning (`save_pretrained()` output): adapter_config.json
//            (peft_type PROMPT_TUNING or P_TUNING) + adapter_model.safetensors with
//            `prompt_embeddings` [N * num_transformer_submodules, token_dim]. Only the first N
//            rows are the encoder prompt (PEFT >= 0.4 prepends to the encoder only), so rows
//            N.. are dropped — never take the row count as the prompt length;
//  residual  Residual Prompt Tuning (Razdaibiedina et al. 2023): `prompt` P plus one shared
//            MLP (`mlp.down.*`, `mlp.up.*`, `mlp.norm.*`, torch Linear convention), folded once
//            at upload into P' = P + LayerNorm(W_up ReLU(W_down P + b_down) + b_up), eps 1e-5.
//
// Every parser validates against PromptLimits and returns InvalidArgument with a message that
// says what to fix (wrong width, too many rows, NaN/Inf — also after conversion to the serving
// dtype —, a value beyond max_abs_value, missing or mis-shaped tensors, an unsupported PEFT
// type or a task_type other than SEQ_2_SEQ_LM), or ResourceExhausted for a file over
// max_file_bytes. Floating tensors may be F32, F16, BF16 or F64. Thread-safe (pure functions).
#ifndef SOFTSERVE_CORE_PROMPTS_PROMPT_FORMATS_H_
#define SOFTSERVE_CORE_PROMPTS_PROMPT_FORMATS_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/common/status.h"
#include "core/model/device.h"
#include "core/prompts/prompt.h"

namespace softserve::core {

struct PromptLimits {
  int64_t d_model = 512;      // required width
  int64_t max_rows = 256;     // 1 <= rows <= max_rows
  int64_t max_file_bytes = 256 << 20;
  DType serving_dtype = DType::kFloat32;  // values must stay finite after conversion to it
  // |value| above this is refused: trained prompts live on the scale of the embedding table
  // (T5's are in the tens to hundreds); values far beyond it only push the encoder into
  // overflow and carry no meaning.
  double max_abs_value = 1e4;
};

// A parsed matrix before it gets an identity.
struct PromptMatrix {
  int64_t rows = 0;
  int64_t dim = 0;
  std::vector<float> values;  // row-major
  PromptFormat format = PromptFormat::kRaw;
  std::string note;           // e.g. "PEFT: 40 rows stored, first 20 used"
};

StatusOr<PromptMatrix> ParseRawPrompt(std::string_view safetensors_bytes, const PromptLimits& limits);

StatusOr<PromptMatrix> ParsePeftPrompt(std::string_view adapter_config_json,
                                       std::string_view adapter_safetensors_bytes,
                                       const PromptLimits& limits);

StatusOr<PromptMatrix> ParseResidualPrompt(std::string_view safetensors_bytes,
                                           const PromptLimits& limits);

// Reads a prompt from disk: a PEFT adapter directory (adapter_config.json inside), or a
// safetensors file holding either a residual checkpoint (has `mlp.down.weight`) or a raw
// matrix. NotFound if the path does not exist.
StatusOr<PromptMatrix> LoadPromptFromPath(const std::string& path, const PromptLimits& limits);

// Checks rows, width and finiteness (also after conversion to limits.serving_dtype).
Status ValidatePromptMatrix(const PromptMatrix& m, const PromptLimits& limits);

}  // namespace softserve::core

#endif  // SOFTSERVE_CORE_PROMPTS_PROMPT_FORMATS_H_
