#include "server/output_text.h"

#include <algorithm>

namespace softserve::server {
namespace {

// True when the text ends with an incomplete UTF-8 sequence (a byte-fallback character whose
// remaining bytes are still to come).
bool EndsInsideUtf8(const std::string& s) {
  size_t i = s.size(), cont = 0;
  while (i > 0 && (static_cast<unsigned char>(s[i - 1]) & 0xC0) == 0x80 && cont < 4) {
    --i;
    ++cont;
  }
  if (i == 0) return cont > 0;
  const unsigned char lead = static_cast<unsigned char>(s[i - 1]);
  const size_t need = lead >= 0xF0 ? 3 : lead >= 0xE0 ? 2 : lead >= 0xC0 ? 1 : 0;
  return need > cont;
}

// Length of the longest suffix of `text` that is a proper prefix of some stop sequence.
size_t PendingStopPrefix(const std::string& text, const std::vector<std::string>& stops) {
  size_t longest = 0;
  for (const std::string& stop : stops) {
    for (size_t n = std::min(stop.size() - 1, text.size()); n > longest; --n) {
      if (text.compare(text.size() - n, n, stop, 0, n) == 0) {
        longest = n;
        break;
      }
    }
  }
  return longest;
}

}  // namespace

core::Status ValidateStopSequences(const std::vector<std::string>& stops) {
  if (stops.size() > static_cast<size_t>(kMaxStopSequences)) {
    return core::InvalidArgumentError(std::to_string(stops.size()) + " stop sequences; at most " +
                                      std::to_string(kMaxStopSequences) + " are allowed");
  }
  for (const std::string& s : stops) {
    if (s.empty() || s.size() > kMaxStopSequenceBytes) {
      return core::InvalidArgumentError("each stop sequence must be 1-" + std::to_string(kMaxStopSequenceBytes) +
                                        " bytes; one is " + std::to_string(s.size()));
    }
  }
  return core::OkStatus();
}

std::string CutAtStopSequence(const std::string& text, const std::vector<std::string>& stops, std::string* matched) {
  size_t cut = std::string::npos;
  const std::string* found = nullptr;
  for (const std::string& stop : stops) {
    const size_t at = stop.empty() ? std::string::npos : text.find(stop);
    if (at < cut) cut = at, found = &stop;
  }
  if (matched != nullptr) *matched = found == nullptr ? std::string() : *found;
  return found == nullptr ? text : text.substr(0, cut);
}

OutputText::OutputText(const core::Tokenizer* tokenizer, std::vector<std::string> stops)
    : tokenizer_(tokenizer), stops_(std::move(stops)) {
  for (const std::string& s : stops_) longest_stop_ = std::max(longest_stop_, s.size());
}

std::string OutputText::NewText(int64_t token) {
  tokens_.push_back(token);
  if (tokenizer_ == nullptr) return "";
  auto slice = [this](size_t from, size_t to) {
    return std::vector<int64_t>(tokens_.begin() + static_cast<long>(from), tokens_.begin() + static_cast<long>(to));
  };
  auto before = tokenizer_->Decode(slice(prefix_, read_));
  auto after = tokenizer_->Decode(slice(prefix_, tokens_.size()));
  if (!before.ok() || !after.ok() || after->size() <= before->size() || EndsInsideUtf8(*after)) return "";
  std::string delta = after->substr(before->size());
  prefix_ = read_;
  read_ = tokens_.size();
  return delta;
}

std::string OutputText::Add(int64_t token) {
  if (stopped_) return "";
  const std::string delta = NewText(token);
  if (delta.empty()) return "";
  // A stop sequence can only begin in the new text or in the tail before it.
  const size_t from = text_.size() > longest_stop_ ? text_.size() - longest_stop_ : 0;
  text_ += delta;
  size_t visible = text_.size();
  if (!stops_.empty()) {
    std::string matched;
    const std::string head = CutAtStopSequence(text_.substr(from), stops_, &matched);
    if (!matched.empty()) {
      stopped_ = true;
      visible = from + head.size();
    } else {
      visible -= PendingStopPrefix(text_, stops_);
    }
  }
  std::string out;
  if (visible > shown_.size()) out = text_.substr(shown_.size(), visible - shown_.size());
  shown_ += out;
  return out;
}

}  // namespace softserve::server
