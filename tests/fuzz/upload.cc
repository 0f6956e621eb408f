// libFuzzer target: the upload stream as a client frames it — any sequence of messages (each
// a 2-byte little-endian length and the encoded UploadPromptRequest) — through the server's
// UploadAssembler and, when the stream is complete, the prompt parser its header names.
#include <cstdint>
#include <cstdlib>
#include <string>

#include "server/upload_assembler.h"
#include "tests/fuzz/fuzz_checks.h"

namespace v1 = ::softserve::v1;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string bytes;
  softserve::server::UploadAssembler assembler(1 << 16, [&](std::string_view chunk) {
    bytes.append(chunk);
    return softserve::core::OkStatus();
  });
  size_t pos = 0;
  while (pos + 2 <= size) {
    const size_t len = std::min<size_t>(data[pos] | (data[pos + 1] << 8), size - pos - 2);
    v1::UploadPromptRequest message;
    if (!message.ParseFromArray(data + pos + 2, static_cast<int>(len))) return 0;
    pos += 2 + len;
    if (!assembler.Take(message).ok()) return 0;
  }
  if (!assembler.Finish().ok()) return 0;
  if (static_cast<int64_t>(bytes.size()) != assembler.bytes() || bytes.size() > (1u << 16)) std::abort();
  const auto limits = softserve::fuzz::Limits();
  switch (assembler.header().format()) {
    case v1::PROMPT_FORMAT_RAW: softserve::fuzz::CheckAccepted(softserve::core::ParseRawPrompt(bytes, limits)); break;
    case v1::PROMPT_FORMAT_RESIDUAL: softserve::fuzz::CheckAccepted(softserve::core::ParseResidualPrompt(bytes, limits)); break;
    case v1::PROMPT_FORMAT_PEFT:
      softserve::fuzz::CheckAccepted(softserve::core::ParsePeftPrompt(assembler.header().peft_adapter_config(), bytes, limits));
      break;
    default: std::abort();  // the assembler refuses any other format
  }
  return 0;
}
