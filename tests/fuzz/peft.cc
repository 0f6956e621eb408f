// libFuzzer target: a PEFT prompt-tuning adapter as a client uploads it. Input: a 2-byte
// little-endian length N, N bytes of adapter_config.json, then adapter_model.safetensors.
#include <cstdint>
#include <string_view>

#include "tests/fuzz/fuzz_checks.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  const size_t n = std::min<size_t>(data[0] | (data[1] << 8), size - 2);
  const std::string_view config(reinterpret_cast<const char*>(data + 2), n);
  const std::string_view weights(reinterpret_cast<const char*>(data + 2 + n), size - 2 - n);
  softserve::fuzz::CheckAccepted(softserve::core::ParsePeftPrompt(config, weights, softserve::fuzz::Limits()));
  return 0;
}
