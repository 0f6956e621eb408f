// Builds Hugging Face PEFT prompt-tuning adapters (adapter_config.json as PeftModel.
// save_pretrained writes it: pretty-printed, sorted keys; adapter_model.safetensors with
// prompt_embeddings [N * num_transformer_submodules, token_dim]) around a given prompt.
#ifndef SOFTSERVE_TESTS_TESTING_PEFT_FIXTURE_H_
#define SOFTSERVE_TESTS_TESTING_PEFT_FIXTURE_H_

#include <ATen/ATen.h>

#include <string>

#include "core/model/safetensors.h"

namespace softserve::testing {

inline std::string PeftAdapterConfig(int64_t n, int64_t token_dim, const std::string& peft_type = "PROMPT_TUNING",
                                     const std::string& submodules = "2") {
  return "{\n  \"auto_mapping\": null,\n  \"base_model_name_or_path\": \"t5-small\",\n"
         "  \"inference_mode\": true,\n  \"num_attention_heads\": 8,\n  \"num_layers\": 6,\n"
         "  \"num_transformer_submodules\": " + submodules + ",\n  \"num_virtual_tokens\": " + std::to_string(n) +
         ",\n  \"peft_type\": \"" + peft_type + "\",\n  \"prompt_tuning_init\": \"RANDOM\",\n"
         "  \"prompt_tuning_init_text\": null,\n  \"revision\": null,\n  \"task_type\": \"SEQ_2_SEQ_LM\",\n"
         "  \"token_dim\": " + std::to_string(token_dim) + ",\n  \"tokenizer_name_or_path\": null\n}\n";
}

// prompt_embeddings = cat(prompt, junk rows) as PEFT stores for seq2seq (2N rows); only the
// first N are the encoder prompt.
inline std::string PeftAdapterWeights(const at::Tensor& prompt, int64_t submodules = 2) {
  at::Tensor rows = prompt.to(at::kFloat);
  if (submodules == 2) rows = at::cat({rows, at::full_like(rows, 1000.0)});  // junk decoder half
  rows = rows.contiguous();
  core::TensorToWrite t{"prompt_embeddings", core::SafetensorsDtype::kF32,
                        {rows.size(0), rows.size(1)},
                        std::string(static_cast<const char*>(rows.data_ptr()), rows.numel() * 4)};
  return core::SerializeSafetensors({t}, {{"format", "pt"}}).value();
}

inline std::string RawPromptFile(const at::Tensor& prompt, const std::string& name = "prompt") {
  at::Tensor p = prompt.to(at::kFloat).contiguous();
  core::TensorToWrite t{name, core::SafetensorsDtype::kF32, {p.size(0), p.size(1)},
                        std::string(static_cast<const char*>(p.data_ptr()), p.numel() * 4)};
  return core::SerializeSafetensors({t}, {}).value();
}

}  // namespace softserve::testing

#endif  // SOFTSERVE_TESTS_TESTING_PEFT_FIXTURE_H_
