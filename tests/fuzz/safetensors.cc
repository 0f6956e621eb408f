// libFuzzer target for the safetensors reader (and the JSON parser under it). Every accepted
// tensor's bytes are read in full, so AddressSanitizer reports any view that points outside
// the input. Built and run in the clang sanitizer build (tests/fuzz/CMakeLists.txt).
#include <cstddef>
#include <cstdint>

#include "core/model/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto contents = softserve::core::SafetensorsContents::Parse(data, size, "fuzz");
  if (!contents.ok()) return 0;
  volatile uint8_t sink = 0;
  for (const auto& t : contents->tensors()) {
    for (size_t i = 0; i < t.nbytes; ++i) sink ^= t.data[i];
    (void)t.numel();
  }
  return 0;
}
