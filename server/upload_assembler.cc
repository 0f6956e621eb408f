#include "server/upload_assembler.h"

#include <algorithm>
#include <cctype>

#include "core/prompts/prompt_names.h"

namespace softserve::server {
namespace {

namespace v1 = ::softserve::v1;

std::string Str(int64_t v) { return std::to_string(v); }

bool IsHex64(const std::string& s) {
  return s.size() == 64 && std::all_of(s.begin(), s.end(), [](char c) { return std::isxdigit(static_cast<unsigned char>(c)); });
}

std::string Lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

}  // namespace

core::Status UploadAssembler::Take(const v1::UploadPromptRequest& message) {
  if (!has_header_) {
    if (message.part_case() != v1::UploadPromptRequest::kHeader) {
      return core::InvalidArgumentError("the first upload message must be the header");
    }
    return TakeHeader(message.header());
  }
  if (message.part_case() != v1::UploadPromptRequest::kChunk) {
    return core::InvalidArgumentError("only the first upload message may be a header");
  }
  const std::string& chunk = message.chunk();
  if (bytes_ + static_cast<int64_t>(chunk.size()) > max_bytes_) {
    return core::ResourceExhaustedError("upload exceeds the limit of " + Str(max_bytes_) + " bytes (max_upload_bytes)");
  }
  sha_.Update(chunk);
  bytes_ += static_cast<int64_t>(chunk.size());
  return sink_(chunk);
}

core::Status UploadAssembler::TakeHeader(const v1::UploadHeader& header) {
  header_ = header;
  has_header_ = true;
  if (header_.total_bytes() < 0) {
    return core::InvalidArgumentError("total_bytes = " + Str(header_.total_bytes()) + " is negative");
  }
  if (header_.total_bytes() > max_bytes_) {
    return core::ResourceExhaustedError("total_bytes = " + Str(header_.total_bytes()) + "; uploads are limited to " +
                                        Str(max_bytes_) + " bytes (max_upload_bytes)");
  }
  if (!header_.sha256().empty() && !IsHex64(header_.sha256())) {
    return core::InvalidArgumentError("sha256 must be 64 hex digits (either case), got " +
                                      core::QuoteForMessage(header_.sha256(), 80));
  }
  if (!v1::PromptFormat_IsValid(header_.format()) || header_.format() == v1::PROMPT_FORMAT_UNSPECIFIED) {
    return core::InvalidArgumentError("format must be PROMPT_FORMAT_RAW, PROMPT_FORMAT_PEFT or PROMPT_FORMAT_RESIDUAL");
  }
  return core::ValidateName(header_.name(), "prompt name");
}

core::Status UploadAssembler::Finish() {
  if (!has_header_) return core::InvalidArgumentError("empty upload: send a header and the file bytes");
  if (header_.total_bytes() > 0 && bytes_ != header_.total_bytes()) {
    return core::InvalidArgumentError("upload truncated: received " + Str(bytes_) + " of " + Str(header_.total_bytes()) +
                                      " bytes; nothing stored");
  }
  if (!header_.sha256().empty()) {
    auto digest = sha_.Finish();
    if (core::ToHex(digest.data(), digest.size()) != Lower(header_.sha256())) {
      return core::InvalidArgumentError("upload corrupted: SHA-256 of the received bytes differs from the header's");
    }
  }
  return core::OkStatus();
}

}  // namespace softserve::server
