// The text of one output as its tokens arrive, for streaming and for stop sequences.
//
// Incremental detokenization follows TGI's and vLLM's prefix/read-offset scheme: decode a short
// window ending with the new tokens and the same window without them; the difference is the new
// text. The window is re-anchored after each emitted piece, so a token costs O(window), never
// the whole output again. Text is held back while it ends inside a UTF-8 character.
//
// Stop sequences are matched on that text. What Add returns never includes a stop sequence or
// anything after it, nor a tail that could still become one (it is released once it cannot).
// Not thread-safe; used on the engine thread (its token callbacks) under the caller's lock.
#ifndef SOFTSERVE_SERVER_OUTPUT_TEXT_H_
#define SOFTSERVE_SERVER_OUTPUT_TEXT_H_

#include <cstdint>
#include <string>
#include <vector>

#include "core/common/status.h"
#include "core/tokenizer/tokenizer.h"

namespace softserve::server {

inline constexpr int kMaxStopSequences = 16;
inline constexpr size_t kMaxStopSequenceBytes = 240;

// InvalidArgument naming the rule for too many, empty or too long stop sequences.
core::Status ValidateStopSequences(const std::vector<std::string>& stops);

// `text` cut before the earliest occurrence of any stop sequence; *matched (when not null) gets
// that sequence, or is cleared when none occurs.
std::string CutAtStopSequence(const std::string& text, const std::vector<std::string>& stops,
                              std::string* matched);

class OutputText {
 public:
  // `tokenizer` may be null (no text: Add returns "" and nothing ever stops).
  OutputText(const core::Tokenizer* tokenizer, std::vector<std::string> stops);

  // Takes the next token; returns the text that may be shown now.
  std::string Add(int64_t token);
  // A stop sequence occurred: the output should end.
  bool stopped() const { return stopped_; }
  // Everything Add has returned, concatenated.
  const std::string& shown() const { return shown_; }

 private:
  std::string NewText(int64_t token);

  const core::Tokenizer* tokenizer_;
  std::vector<std::string> stops_;
  size_t longest_stop_ = 0;
  std::vector<int64_t> tokens_;
  size_t prefix_ = 0, read_ = 0;
  std::string text_;   // decoded so far
  std::string shown_;  // released so far (a prefix of text_)
  bool stopped_ = false;
};

}  // namespace softserve::server

#endif  // SOFTSERVE_SERVER_OUTPUT_TEXT_H_
