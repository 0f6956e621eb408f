// libFuzzer target: a Residual Prompt Tuning checkpoint (prompt + MLP), folded at upload.
#include <cstdint>
#include <string_view>

#include "tests/fuzz/fuzz_checks.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  softserve::fuzz::CheckAccepted(softserve::core::ParseResidualPrompt(bytes, softserve::fuzz::Limits()));
  softserve::fuzz::CheckAccepted(softserve::core::ParseRawPrompt(bytes, softserve::fuzz::Limits()));
  return 0;
}
