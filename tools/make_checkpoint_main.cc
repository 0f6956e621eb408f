// softserve-make-checkpoint: writes a T5 checkpoint with random weights for a given HF
// config.json, in the HF layout the loader reads (for the default model, benchmarks, tests).
#include <cstdio>

#include "core/common/file_util.h"
#include "core/model/random_checkpoint.h"
#include "core/model/t5_config.h"
#include "tools/flags.h"

int main(int argc, char** argv) {
  using namespace softserve;  // NOLINT: a main file
  std::string config_path, out, dtype = "F32", tokenizer;
  int64_t seed = 0, shards = 1;
  bool aliases = false, untie_output_layer = false;
  tools::FlagParser flags("softserve-make-checkpoint",
                          "Writes a random-weight T5 checkpoint (Hugging Face layout) for a config.json.");
  flags.AddString("config", &config_path, "HF config.json of the architecture");
  flags.AddString("out", &out, "output directory");
  flags.AddInt("seed", &seed, "random seed");
  flags.AddInt("shards", &shards, "number of safetensors shards (>1 writes the sharded layout)");
  flags.AddString("dtype", &dtype, "stored dtype: F32, F16 or BF16");
  flags.AddBool("aliases", &aliases, "also write encoder/decoder.embed_tokens.weight aliases");
  flags.AddString("tokenizer", &tokenizer, "spiece.model to copy into the checkpoint directory");
  flags.AddBool("untie-output-layer", &untie_output_layer,
                "write a separate random lm_head.weight (tie_word_embeddings false, as in T5 v1.1) even where the "
                "config ties it: with HF's initialisation a tied random T5 repeats its start token forever, an "
                "untied one writes varied tokens (the default model uses this)");
  auto fail = [](const std::string& m) {
    std::fprintf(stderr, "softserve-make-checkpoint: %s\n", m.c_str());
    return 1;
  };
  if (int code = flags.ParseOrExitCode(argc, argv); code >= 0) return code;
  if (config_path.empty() || out.empty()) return fail("--config and --out are required");
  auto config = core::LoadT5Config(config_path);
  if (!config.ok()) return fail(config.status().ToString());
  if (untie_output_layer) config->tie_word_embeddings = false;
  core::RandomCheckpointOptions options;
  options.seed = static_cast<uint64_t>(seed);
  options.shards = static_cast<int>(shards);
  options.write_aliases = aliases;
  if (!core::ParseSafetensorsDtype(dtype, &options.dtype)) return fail("bad --dtype " + dtype);
  if (core::Status s = core::WriteRandomT5Checkpoint(*config, out, options); !s.ok()) {
    return fail(s.ToString());
  }
  if (!tokenizer.empty()) {
    auto bytes = core::ReadFileToString(tokenizer);
    if (!bytes.ok()) return fail(bytes.status().ToString());
    if (core::Status s = core::WriteFileDurably(core::JoinPath(out, "spiece.model"), *bytes); !s.ok()) {
      return fail(s.ToString());
    }
  }
  std::printf("wrote a RANDOM-weight T5 checkpoint (%lld parameters) to %s\n",
              static_cast<long long>(config->ParameterCount()), out.c_str());
  return 0;
}
