// Prompt: one tenant's soft prompt, an immutable [rows, dim] float32 matrix plus its identity.
//
// Created once (by the format parsers or the store) and shared read-only through
// std::shared_ptr<const Prompt>: the registry, running requests and the engine all hold the
// same object, so a prompt deleted from the registry stays valid until the last request that
// uses it finishes. Thread-safe: immutable after construction.
#ifndef SOFTSERVE_CORE_PROMPTS_PROMPT_H_
#define SOFTSERVE_CORE_PROMPTS_PROMPT_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace softserve::core {

struct PromptKey {
  std::string tenant;
  std::string name;
  int64_t version = 0;  // 1, 2, ...; 0 means "latest" in lookups
  std::string ToString() const;  // "tenant/name@3"
};

// How the tenant uploaded it; every format is served as the same matrix.
enum class PromptFormat { kRaw, kPeft, kResidual };
const char* PromptFormatName(PromptFormat format);
// The inverse of PromptFormatName; false for any other string.
bool ParsePromptFormat(const std::string& name, PromptFormat* format);

class Prompt {
 public:
  // REQUIRES: values.size() == rows * dim.
  Prompt(PromptKey key, int64_t rows, int64_t dim, std::vector<float> values,
         PromptFormat format, int64_t created_unix_ms, std::string source_note = "");

  // A prompt's description without its values: what a replica of a shared store lists for the
  // versions whose values it does not hold (PromptRegistry loads them on first use).
  // has_values() is false, values() empty; `checksum` is the stored one.
  static std::shared_ptr<const Prompt> Description(PromptKey key, int64_t rows, int64_t dim, PromptFormat format,
                                                   int64_t created_unix_ms, std::string source_note,
                                                   std::string checksum);
  // The description of this prompt (no values).
  std::shared_ptr<const Prompt> DescriptionOnly() const;
  bool has_values() const { return has_values_; }

  const PromptKey& key() const { return key_; }
  int64_t rows() const { return rows_; }
  int64_t dim() const { return dim_; }
  // Row-major [rows, dim].
  const std::vector<float>& values() const { return values_; }
  PromptFormat format() const { return format_; }
  int64_t created_unix_ms() const { return created_unix_ms_; }
  // SHA-256 (hex) of the float32 little-endian values: the content identity.
  const std::string& checksum() const { return checksum_; }
  // Free-form notes from parsing (e.g. "PEFT: 40 rows stored, first 20 used").
  const std::string& source_note() const { return source_note_; }
  // Process-unique id of this object, for caches keyed by content instance.
  uint64_t uid() const { return uid_; }
  // Bytes of the values (also for a description: what loading them takes).
  int64_t bytes() const { return rows_ * dim_ * static_cast<int64_t>(sizeof(float)); }

 private:
  PromptKey key_;
  int64_t rows_;
  int64_t dim_;
  std::vector<float> values_;
  PromptFormat format_;
  int64_t created_unix_ms_;
  std::string source_note_;
  std::string checksum_;
  uint64_t uid_;
  bool has_values_ = true;
};

using PromptPtr = std::shared_ptr<const Prompt>;

}  // namespace softserve::core

#endif  // SOFTSERVE_CORE_PROMPTS_PROMPT_H_
