// Tokenizer: T5's SentencePiece tokenizer with Hugging Face's conventions.
//
// - Encode appends eos (</s>, id 1) unless told not to, as T5Tokenizer does.
// - `<extra_id_N>` sentinels (N < extra_ids, 100 for T5) map to id piece_size + extra_ids - 1 - N
//   (t5-small: <extra_id_0> = 32099, <extra_id_99> = 32000); like HF's fast tokenizer, text is
//   split on sentinels and on the literal special tokens </s>, <pad>, <unk> before SentencePiece.
// - Decode skips pad and eos (and, if asked, sentinels) and renders sentinels as their text.
//
// SentencePiece is reached only through libsoftserve_spm.so (see spm_shim.h), loaded with
// dlopen(RTLD_NOW | RTLD_LOCAL | RTLD_DEEPBIND), so it can live in a process with gRPC,
// protobuf and libtorch. Thread-safety: const methods are safe to call concurrently.
#ifndef SOFTSERVE_CORE_TOKENIZER_TOKENIZER_H_
#define SOFTSERVE_CORE_TOKENIZER_TOKENIZER_H_

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/common/status.h"

namespace softserve::core {

struct TokenizerOptions {
  int extra_ids = 100;
  // Path of libsoftserve_spm.so; empty: $SOFTSERVE_SPM_SHIM, then next to the executable
  // (./, ../lib, ../lib/softserve), then the install prefix.
  std::string shim_path;
};

class Tokenizer {
 public:
  // Returns NotFound if the model file or the shim library is missing, InvalidArgument if the
  // file is not a SentencePiece model, FailedPrecondition if the shim's ABI does not match.
  static StatusOr<std::unique_ptr<Tokenizer>> Load(const std::string& model_path,
                                                   const TokenizerOptions& options = {});
  ~Tokenizer();
  Tokenizer(const Tokenizer&) = delete;
  Tokenizer& operator=(const Tokenizer&) = delete;

  // Returns InvalidArgument if the text is not valid UTF-8.
  StatusOr<std::vector<int64_t>> Encode(std::string_view text, bool add_eos = true) const;
  // Returns InvalidArgument for a negative id. Ids past vocab_size() (the padded embedding
  // rows a model may still emit) have no text and are skipped.
  StatusOr<std::string> Decode(const std::vector<int64_t>& ids, bool skip_sentinels = false) const;

  // Pieces plus sentinels (t5-small: 32100; the model's vocab_size may be padded beyond).
  int64_t vocab_size() const { return piece_size_ + options_.extra_ids; }
  int64_t piece_size() const { return piece_size_; }
  // Sentinel id of <extra_id_n>. REQUIRES: 0 <= n < extra_ids.
  int64_t SentinelId(int n) const { return piece_size_ + options_.extra_ids - 1 - n; }
  // The piece (or sentinel) text of an id; empty if out of range.
  std::string IdToPiece(int64_t id) const;
  // Where the shim was loaded from.
  const std::string& shim_path() const { return shim_path_; }

  static constexpr int64_t kPad = 0;
  static constexpr int64_t kEos = 1;
  static constexpr int64_t kUnk = 2;

 private:
  struct Api;
  Tokenizer(TokenizerOptions options, std::string shim_path, void* handle,
            std::unique_ptr<Api> api, void* model, int64_t piece_size);
  Status EncodePlain(std::string_view text, std::vector<int64_t>* out) const;

  TokenizerOptions options_;
  std::string shim_path_;
  void* handle_;
  std::unique_ptr<Api> api_;
  void* model_;
  int64_t piece_size_;
};

}  // namespace softserve::core

#endif  // SOFTSERVE_CORE_TOKENIZER_TOKENIZER_H_
