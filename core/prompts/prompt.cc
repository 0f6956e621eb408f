#include "core/prompts/prompt.h"

#include <atomic>
#include <cassert>

#include "core/common/sha256.h"

namespace softserve::core {

std::string PromptKey::ToString() const {
  return tenant + "/" + name + (version > 0 ? "@" + std::to_string(version) : "");
}

const char* PromptFormatName(PromptFormat format) {
  switch (format) {
    case PromptFormat::kRaw: return "raw";
    case PromptFormat::kPeft: return "peft";
    case PromptFormat::kResidual: return "residual";
  }
  return "raw";
}

bool ParsePromptFormat(const std::string& name, PromptFormat* format) {
  for (PromptFormat f : {PromptFormat::kRaw, PromptFormat::kPeft, PromptFormat::kResidual}) {
    if (name == PromptFormatName(f)) {
      *format = f;
      return true;
    }
  }
  return false;
}

Prompt::Prompt(PromptKey key, int64_t rows, int64_t dim, std::vector<float> values,
               PromptFormat format, int64_t created_unix_ms, std::string source_note)
    : key_(std::move(key)),
      rows_(rows),
      dim_(dim),
      values_(std::move(values)),
      format_(format),
      created_unix_ms_(created_unix_ms),
      source_note_(std::move(source_note)) {
  static std::atomic<uint64_t> next_uid{1};
  assert(static_cast<int64_t>(values_.size()) == rows_ * dim_);
  Sha256 h;
  h.Update(values_.data(), values_.size() * sizeof(float));
  auto digest = h.Finish();
  checksum_ = ToHex(digest.data(), digest.size());
  uid_ = next_uid.fetch_add(1);
}

std::shared_ptr<const Prompt> Prompt::Description(PromptKey key, int64_t rows, int64_t dim, PromptFormat format,
                                                  int64_t created_unix_ms, std::string source_note,
                                                  std::string checksum) {
  auto p = std::make_shared<Prompt>(std::move(key), 0, 0, std::vector<float>(), format, created_unix_ms,
                                    std::move(source_note));
  p->rows_ = rows;
  p->dim_ = dim;
  p->checksum_ = std::move(checksum);
  p->has_values_ = false;
  return p;
}

std::shared_ptr<const Prompt> Prompt::DescriptionOnly() const {
  return Description(key_, rows_, dim_, format_, created_unix_ms_, source_note_, checksum_);
}

}  // namespace softserve::core
