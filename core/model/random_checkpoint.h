// Writes a T5 checkpoint with random weights in exactly the Hugging Face layout the loader reads
// (config.json + model.safetensors, or sharded model-0000i-of-0000K.safetensors with
// model.safetensors.index.json), drawn as HF's T5PreTrainedModel._init_weights draws them.
// For the default model, benchmarks and tests: the weights carry no knowledge, and config.json
// says so with "softserve_random_weights": true (HF ignores unknown keys).
#ifndef SOFTSERVE_CORE_MODEL_RANDOM_CHECKPOINT_H_
#define SOFTSERVE_CORE_MODEL_RANDOM_CHECKPOINT_H_

#include <cstdint>
#include <string>

#include "core/common/status.h"
#include "core/model/safetensors.h"
#include "core/model/t5_config.h"

namespace softserve::core {

struct RandomCheckpointOptions {
  uint64_t seed = 0;
  int shards = 1;  // > 1 writes the sharded layout
  SafetensorsDtype dtype = SafetensorsDtype::kF32;  // F32, F16 or BF16
  // Also write encoder/decoder.embed_tokens.weight (and lm_head.weight when tied) as older HF
  // versions do.
  bool write_aliases = false;
};

// Creates `dir` if needed. Returns InvalidArgument for bad options, Internal/ResourceExhausted
// for I/O failures.
Status WriteRandomT5Checkpoint(const T5Config& config, const std::string& dir,
                               const RandomCheckpointOptions& options);

// True if dir/config.json carries "softserve_random_weights": true.
bool IsRandomCheckpoint(const std::string& dir);

}  // namespace softserve::core

#endif  // SOFTSERVE_CORE_MODEL_RANDOM_CHECKPOINT_H_
